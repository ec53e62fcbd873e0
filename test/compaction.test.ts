import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import * as Compaction from "../src/compaction.ts"
import * as Metrics from "../src/Metrics.ts"

const MB = 1024 * 1024

/** A process whose memory and CPU time the test sets, and a collector that counts its calls. */
const fakeProcess = () => {
  const state = { rss: 100 * MB, cpuMillis: 0, collections: 0, afterCollection: 100 * MB }
  return {
    state,
    options: {
      checkEvery: "1 second",
      gc: () => {
        state.collections += 1
        state.rss = state.afterCollection
      },
      sample: () => ({ rss: state.rss, cpuMillis: state.cpuMillis })
    } satisfies Compaction.Options
  }
}

describe("Compaction", () => {
  it.scoped("collects once at start, then when RSS is a fifth over its resting level after two quiet checks with nothing running", () =>
    Effect.gen(function*() {
      const { options, state } = fakeProcess()
      yield* Layer.build(Compaction.layer(options))
      expect(state.collections).toBe(1)

      // Grown 10 %: not worth it, however quiet.
      state.rss = 110 * MB
      yield* TestClock.adjust("3 seconds")
      expect(state.collections).toBe(1)

      // Grown 30 %, but foreman used a tenth of a core over the last second: busy, wait...
      state.rss = 130 * MB
      state.cpuMillis += 100
      yield* TestClock.adjust("1 second")
      expect(state.collections).toBe(1)
      // ...and one quiet second after a busy one is a lull between bursts, not rest.
      yield* TestClock.adjust("1 second")
      expect(state.collections).toBe(1)

      // Quiet, but a job runs at the target (it may be streaming): wait.
      Metrics.jobsRunning.unsafeModify(1, [])
      yield* TestClock.adjust("3 seconds")
      expect(state.collections).toBe(1)
      Metrics.jobsRunning.unsafeModify(-1, [])

      // Two quiet checks with nothing running: collect, and measure growth from what is left.
      state.afterCollection = 105 * MB
      yield* TestClock.adjust("1 second")
      expect(state.collections).toBe(1)
      yield* TestClock.adjust("1 second")
      expect(state.collections).toBe(2)
      state.rss = 120 * MB
      yield* TestClock.adjust("3 seconds")
      expect(state.collections).toBe(2)
      state.rss = 130 * MB
      yield* TestClock.adjust("2 seconds")
      expect(state.collections).toBe(3)
    }))

  it.scoped("measures from the resting level: what a long queue's run leaves behind is given back", () =>
    Effect.gen(function*() {
      const { options, state } = fakeProcess()
      yield* Layer.build(Compaction.layer(options))
      expect(state.collections).toBe(1)

      // A collection while 10 000 jobs sit queued: much of it is live, RSS stays high.
      state.afterCollection = 150 * MB
      state.rss = 180 * MB
      yield* TestClock.adjust("2 seconds")
      expect(state.collections).toBe(2)
      // The queue stays: however long, no collection again without growth since the last.
      state.rss = 155 * MB
      yield* TestClock.adjust("10 seconds")
      expect(state.collections).toBe(2)

      // It drained, leaving garbage: 13 % over the last collection, 70 % over rest. Collect.
      state.afterCollection = 104 * MB
      state.rss = 170 * MB
      yield* TestClock.adjust("2 seconds")
      expect(state.collections).toBe(3)
      yield* TestClock.adjust("10 seconds")
      expect(state.collections).toBe(3)
    }))

  it.scoped("does nothing without a collector (no --expose-gc, Deno)", () =>
    Effect.gen(function*() {
      const { options, state } = fakeProcess()
      yield* Layer.build(Compaction.layer({ ...options, gc: undefined }))
      state.rss = 500 * MB
      yield* TestClock.adjust("10 seconds")
      expect(state.collections).toBe(0)
    }))
})
