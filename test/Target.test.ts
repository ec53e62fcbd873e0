/** A target is a value, one per configured target: today the configuration names one. */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer } from "effect"
import { ForemanConfig } from "../src/Config.ts"
import { Events } from "../src/events/Events.ts"
import { Inventory } from "../src/inventory/Inventory.ts"
import * as Target from "../src/target/Target.ts"
import { TargetClient } from "../src/target/TargetClient.ts"

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
