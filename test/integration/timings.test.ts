/**
 * A job's times, as its log line, the histograms and the events report them: `waitMs` in the
 * queue (arrival to dispatch), `ttfbMs` from dispatch to the first byte (a model load is the
 * target's time), `durationMs` from dispatch to the last byte. On foreman's TestClock, so each
 * is exactly the time the test let pass in that phase.
 */
import { Duration, Effect, Fiber, Metric, Stream } from "effect"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { Events, type ForemanEvent } from "../../src/events/Events.ts"
import * as Metrics from "../../src/events/Metrics.ts"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type LogLine, type RunningForeman, startForeman } from "../support/foreman.ts"

type Finished = Extract<ForemanEvent, { _tag: "JobFinished" }>

describe("job timings", () => {
  let target: FakeTarget
  let foreman: RunningForeman

  const logs: Array<LogLine> = []

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"] })
    foreman = await startForeman({ target: target.url }, { testClock: true, logs })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"), { timeout: 15_000 })
  })
  afterAll(async () => {
    target?.release()
    await foreman?.close()
    await target?.close()
  })

  /** The next `n` jobs to finish, as their events. */
  const nextFinished = (n: number) =>
    foreman.runtime.runFork(
      Effect.flatMap(Events, (events) =>
        events.stream.pipe(
          Stream.filter((event): event is Finished => event._tag === "JobFinished"),
          Stream.take(n),
          Stream.runCollect
        )
      )
    )

  it("the target's slowness is target time; the wait behind another job is queue time", async () => {
    const finished = nextFinished(2)
    target.hold()
    const generate = (prompt: string) =>
      fetch(`${foreman.url}/api/generate`, {
        method: "POST",
        body: JSON.stringify({ model: "llama3.2", prompt, stream: false })
      }).then((r) => r.json())
    const first = generate("first")
    await vi.waitFor(() => expect(target.held).toBe(1))
    const second = generate("second")
    await vi.waitFor(async () => expect((await foreman.health()).queueDepth).toBe(1))
    // The first has been at the target 3 s without a byte, the second 3 s in the queue.
    await foreman.adjust(Duration.seconds(3))
    target.release()
    await Promise.all([first, second])
    const [a, b] = [...(await foreman.runtime.runPromise(Fiber.join(finished)))]
    expect(a).toMatchObject({ waitMs: 0, ttfbMs: 3000, durationMs: 3000 })
    // The second went to the target once the first was done: 3 s in the queue, none at the target.
    expect(b).toMatchObject({ waitMs: 3000, ttfbMs: 0, durationMs: 0 })
  })

  it("the log line and the histograms say the same: queue time apart from target time", async () => {
    const histogram = (metric: typeof Metrics.jobQueueWaitSeconds) =>
      foreman.runtime.runPromise(Metric.value(metric)).then((state) => ({ count: state.count, sum: state.sum }))
    const [waitBefore, durationBefore] = [await histogram(Metrics.jobQueueWaitSeconds), await histogram(Metrics.jobDurationSeconds)]
    logs.length = 0
    const finished = nextFinished(2)
    target.hold()
    const generate = (prompt: string) =>
      fetch(`${foreman.url}/api/generate`, { method: "POST", body: JSON.stringify({ model: "llama3.2", prompt, stream: false }) })
        .then((r) => r.json())
    // The first: 5 s at the target. The second: those 5 s in the queue, then 2 s at the target.
    const first = generate("first")
    await vi.waitFor(() => expect(target.held).toBe(1))
    const second = generate("second")
    await vi.waitFor(async () => expect((await foreman.health()).queueDepth).toBe(1))
    await foreman.adjust(Duration.seconds(5))
    target.release()
    target.hold()
    await first
    await vi.waitFor(() => expect(target.held).toBe(1))
    await foreman.adjust(Duration.seconds(2))
    target.release()
    await second
    const [a, b] = [...(await foreman.runtime.runPromise(Fiber.join(finished)))]
    const lines = logs.filter((line) => line.message === "job finished").map((line) => line.annotations)
    expect(lines).toEqual([
      expect.objectContaining({ job: a!.job.id, queueMs: 0, ttfbMs: 5000, durationMs: 5000 }),
      expect.objectContaining({ job: b!.job.id, queueMs: 5000, ttfbMs: 2000, durationMs: 2000 })
    ])
    // Queue wait: 0 + 5 s; target time: 5 + 2 s.
    expect(await histogram(Metrics.jobQueueWaitSeconds)).toEqual({ count: waitBefore.count + 2, sum: waitBefore.sum + 5 })
    expect(await histogram(Metrics.jobDurationSeconds)).toEqual({ count: durationBefore.count + 2, sum: durationBefore.sum + 7 })
  })
})
