/** A target is a value, one per configured target (`--target`, or the targets file). */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Layer, Option } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ForemanConfig } from "../src/Config.ts"
import { Events } from "../src/events/Events.ts"
import { Inventory } from "../src/inventory/Inventory.ts"
import * as Target from "../src/target/Target.ts"
import { TargetClient } from "../src/target/TargetClient.ts"
import * as WakeOnLan from "../src/target/WakeOnLan.ts"

describe("Targets", () => {
  it("names a target after its URL's host", () => {
    expect(Target.nameOf("http://127.0.0.1:11434")).toBe("127.0.0.1")
    expect(Target.nameOf("http://laptop:11434/ollama")).toBe("laptop")
    expect(Target.nameOf("https://gpu.example")).toBe("gpu.example")
  })

  it.scoped("the configured target is the one and primary target; TargetClient and Inventory are its own", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(
        Target.primaryLayer.pipe(
          Layer.provideMerge(Target.layer),
          Layer.provide(Events.layer),
          Layer.provide(FetchHttpClient.layer),
          Layer.provide(ForemanConfig.make({ target: "http://gpu-box:11434", pollInterval: Duration.hours(1), concurrency: 2 }))
        )
      )
      const targets = yield* Effect.provide(Target.Targets, context)
      expect(targets.all.length).toBe(1)
      const [only] = targets.all
      expect(targets.primary).toBe(only)
      expect(only).toMatchObject({ name: "gpu-box", url: "http://gpu-box:11434", slots: { size: 2 } })
      expect(only.client.url).toBe("http://gpu-box:11434")
      expect(yield* Effect.provide(TargetClient, context)).toBe(only.client)
      expect(yield* Effect.provide(Inventory, context)).toBe(only.inventory)
      // Never polled (the poller is not running here): nothing known yet.
      expect((yield* only.inventory.get).reachable).toBe(false)
    }))
})

describe("the targets file", () => {
  const dir = mkdtempSync(join(tmpdir(), "foreman-targets-"))
  const write = (name: string, content: unknown) => {
    const file = join(dir, name)
    writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content))
    return file
  }
  const read = (file: string) => Effect.runPromise(Effect.either(Target.readTargetsFile(file)))

  it("names targets, gives each its own settings and its wake address (defaults: broadcast, port 9)", async () => {
    const file = write("ok.json", {
      targets: [
        { name: "desk", url: "http://desk:11434/", concurrency: 2, maxLoadedModels: 3 },
        { url: "http://laptop.lan:11434", wake: { mac: "AA-BB-CC-DD-EE-01" } },
        { name: "nas", url: "http://10.0.0.9:11434", wake: { mac: "aa:bb:cc:dd:ee:02", address: "10.0.0.255", port: 7 } }
      ]
    })
    const read_ = await read(file)
    expect(Either.isRight(read_)).toBe(true)
    const [desk, laptop, nas] = Either.getOrThrow(read_)
    expect(desk).toMatchObject({ name: "desk", url: "http://desk:11434", concurrency: 2, maxLoadedModels: 3, wake: undefined })
    expect(laptop).toMatchObject({ name: "laptop.lan", url: "http://laptop.lan:11434", wake: { address: "255.255.255.255", port: 9 } })
    expect(WakeOnLan.formatMac(laptop!.wake!.mac)).toBe("aa:bb:cc:dd:ee:01")
    expect(nas?.wake).toMatchObject({ address: "10.0.0.255", port: 7 })
  })

  it("refuses what it cannot use, in one line naming the problem", async () => {
    const cases: Array<[unknown, RegExp]> = [
      ["{", /not JSON/],
      [{}, /targets/],
      [{ targets: [] }, /targets/],
      [{ targets: [{ url: "ftp://x" }] }, /http:\/\/ or https:\/\/ URL/],
      [{ targets: [{ url: "http://a:1", concurrency: 0 }] }, /concurrency/],
      [{ targets: [{ url: "http://a:1", wake: { mac: "nope" } }] }, /MAC address/],
      [{ targets: [{ url: "http://a:1", colour: "red" }] }, /colour/],
      [{ targets: [{ url: "http://a:1" }, { url: "http://a:2" }] }, /same name/]
    ]
    for (const [index, [content, message]] of cases.entries()) {
      const result = await read(write(`bad${index}.json`, content))
      expect(Either.isLeft(result), JSON.stringify(content)).toBe(true)
      const error = Either.getLeft(result).pipe(Option.getOrThrow)
      expect(error._tag).toBe("TargetsFileInvalid")
      expect(error.message, JSON.stringify(content)).toMatch(message)
      expect(error.message).not.toContain("\n")
    }
    const missing = await read(join(dir, "missing.json"))
    expect(Either.isLeft(missing)).toBe(true)
  })
})
