/**
 * The plugin contract from a third party's side: a plugin written here, using only what
 * the package exports, adds a route and follows job events.
 */
import { HttpServerResponse } from "@effect/platform"
import { Duration, Effect, Queue, Ref } from "effect"
import { type ForemanEvent, ForemanRouter, Events, Plugin, Scheduler } from "foreman-effect"
import { Ollama } from "ollama"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type RunningForeman, startForeman } from "../support/foreman.ts"

/** A plugin that keeps every event it sees and serves them, plus the queue, on its own route. */
const makeRecorder = () => {
  const seen: Array<ForemanEvent> = []
  const plugin = Plugin.make(
    "recorder",
    ForemanRouter.use((router) =>
      Effect.gen(function*() {
        const events = yield* Events
        const scheduler = yield* Scheduler
        const subscription = yield* events.subscribe
        yield* Queue.take(subscription).pipe(
          Effect.tap((event) => Effect.sync(() => seen.push(event))),
          Effect.forever,
          Effect.forkScoped
        )
        const served = yield* Ref.make(0)
        yield* router.get(
          "/recorder",
          Effect.gen(function*() {
            const n = yield* Ref.updateAndGet(served, (x) => x + 1)
            const stats = yield* scheduler.stats
            return HttpServerResponse.unsafeJson({ served: n, events: seen.length, waiting: stats.waiting })
          })
        )
      })
    )
  )
  return { plugin, seen }
}

describe("a third-party plugin", () => {
  let target: FakeTarget
  let foreman: RunningForeman
  const recorder = makeRecorder()

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2", "qwen3"], maxLoaded: 1 })
    foreman = await startForeman({ target: target.url, pollInterval: Duration.millis(100) }, { plugins: recorder.plugin.layer })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
  })
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  it("adds a route", async () => {
    const response = await fetch(`${foreman.url}/recorder`)
    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({ served: 1, waiting: 0 })
  })

  it("follows a job from queued to finished, and the swap it caused", async () => {
    const client = new Ollama({ host: foreman.url })
    await client.generate({ model: "llama3.2", prompt: "watched" })
    await client.generate({ model: "qwen3", prompt: "watched too" })
    await vi.waitFor(() => expect(recorder.seen.filter((e) => e._tag === "JobFinished").length).toBe(2))
    const tags = recorder.seen.map((e) => e._tag)
    expect(tags.filter((t) => t === "JobQueued").length).toBe(2)
    expect(tags.filter((t) => t === "JobStarted").length).toBe(2)
    expect(tags).toContain("ModelSwapped")
    const finished = recorder.seen.filter((e) => e._tag === "JobFinished")
    expect(finished.map((e) => [e.job.endpoint, e.job.model, e.status])).toEqual([
      ["/api/generate", "llama3.2", 200],
      ["/api/generate", "qwen3", 200]
    ])
    // Each job's events come in order.
    const first = recorder.seen.filter((e) => "job" in e && e.job.model === "llama3.2").map((e) => e._tag)
    expect(first).toEqual(["JobQueued", "JobStarted", "JobFinished"])
  })

  it("sees the target go down and come back", async () => {
    await target.sleep()
    await vi.waitFor(() => expect(recorder.seen.map((e) => e._tag)).toContain("TargetDegraded"))
    await target.wake()
    await vi.waitFor(() => expect(recorder.seen.map((e) => e._tag)).toContain("TargetRecovered"))
  })
})
