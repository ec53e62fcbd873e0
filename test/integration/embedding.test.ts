/**
 * foreman as a library: the README's embedding example, imported through the package's
 * own `exports` ("foreman-effect"), composed into a plain Effect program.
 */
import { FetchHttpClient } from "@effect/platform"
import { Effect, Layer, Logger, LogLevel, Option, Stream } from "effect"
import { ForemanConfig, Inventory, Jobs, ServicesLive } from "foreman-effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"

describe("embedding the Layers", () => {
  let target: FakeTarget
  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"] })
  })
  afterAll(() => target?.close())

  it("runs a job through the services, without foreman's HTTP server", async () => {
    const program = Effect.gen(function*() {
      const inventory = yield* Inventory
      // Wait for the first poll.
      yield* inventory.changes.pipe(Stream.filter((s) => Option.isSome(s.lastSuccessAt)), Stream.runHead)
      const jobs = yield* Jobs
      const started = yield* jobs.run({
        endpoint: "/api/generate",
        kind: "/api/generate",
        model: "llama3.2",
        body: new TextEncoder().encode(JSON.stringify({ model: "llama3.2", prompt: "embedded", stream: false })),
        priority: "normal"
      })
      // `stream: false`: one JSON body, read whole.
      expect(started.body).toBeInstanceOf(Uint8Array)
      const text = new TextDecoder().decode(started.body as Uint8Array)
      return JSON.parse(text) as { done: boolean; response: string }
    })
    const result = await program.pipe(
      Effect.provide(ServicesLive.pipe(Layer.provide(FetchHttpClient.layer), Layer.provide(ForemanConfig.make({ target: target.url, db: ":memory:" })))),
      Effect.scoped,
      Logger.withMinimumLogLevel(LogLevel.None),
      Effect.runPromise
    )
    expect(result.done).toBe(true)
    expect(result.response.length).toBeGreaterThan(0)
  })
})
