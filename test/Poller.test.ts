import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Layer, Option, Ref, Schedule, Stream, TestClock } from "effect"
import { ForemanConfig } from "../src/Config.ts"
import * as Inventory from "../src/inventory/Inventory.ts"
import * as Target from "../src/target/Target.ts"
import { type InventoryState, isDegraded } from "../src/inventory/Inventory.ts"
import * as Poller from "../src/target/Poller.ts"
import { Events } from "../src/events/Events.ts"
import * as TestTarget from "./support/TestTarget.ts"

const interval = Duration.seconds(30)

/** The poller over an in-memory target, in the test's scope (so under the TestClock). */
const setup = Effect.gen(function*() {
  const target = yield* TestTarget.make(["llama3.2:latest", "all-minilm:latest"])
  const context = yield* Layer.build(
    Poller.layer.pipe(
      Layer.provideMerge(Target.fromClients([target.client])),
      Layer.provide(Events.layer),
      Layer.provide(ForemanConfig.make({ pollInterval: interval }))
    )
  )
  const inventory = (yield* Effect.provide(Target.Targets, context)).primary.inventory
  return { target, inventory }
})

/** Waits (without sleeping) until the inventory state satisfies `predicate`. */
const until = (inventory: Inventory.InventoryService, predicate: (state: InventoryState) => boolean) =>
  inventory.changes.pipe(Stream.filter(predicate), Stream.runHead, Effect.map(Option.getOrThrow))

describe("Poller", () => {
  it.scoped("polls at start, then once per interval", () =>
    Effect.gen(function*() {
      const { inventory, target } = yield* setup
      const first = yield* until(inventory, (s) => Option.isSome(s.lastSuccessAt))
      expect(first.models.map((m) => m.name)).toEqual(["llama3.2:latest", "all-minilm:latest"])
      expect(isDegraded(first)).toBe(false)
      expect((yield* Ref.get(target.state)).tagsCalls).toBe(1)

      yield* TestClock.adjust(Duration.seconds(29))
      expect((yield* Ref.get(target.state)).tagsCalls).toBe(1)
      yield* TestClock.adjust(Duration.seconds(1))
      expect((yield* Ref.get(target.state)).tagsCalls).toBe(2)
      yield* TestClock.adjust(interval)
      expect((yield* Ref.get(target.state)).tagsCalls).toBe(3)
      expect((yield* Ref.get(target.state)).psCalls).toBe(3)
    }))

  it.scoped("a failed poll marks degraded and keeps the last inventory", () =>
    Effect.gen(function*() {
      const { inventory, target } = yield* setup
      const healthy = yield* until(inventory, (s) => Option.isSome(s.lastSuccessAt))
      yield* Ref.update(target.state, (s) => ({ ...s, up: false, models: [] }))
      yield* TestClock.adjust(interval)
      const degraded = yield* until(inventory, (s) => s.consecutiveFailures > 0)
      expect(isDegraded(degraded)).toBe(true)
      expect(degraded.reachable).toBe(false)
      expect(Option.getOrNull(degraded.lastError)).toContain("unreachable")
      // The last inventory stays: jobs are not rejected wholesale.
      expect(degraded.models.map((m) => m.name)).toEqual(["llama3.2:latest", "all-minilm:latest"])
      expect(degraded.lastSuccessAt).toEqual(healthy.lastSuccessAt)
    }))

  it.scoped("probes on a jittered backoff while degraded, and stops once recovered", () =>
    Effect.gen(function*() {
      const { inventory, target } = yield* setup
      yield* until(inventory, (s) => Option.isSome(s.lastSuccessAt))
      yield* Ref.update(target.state, (s) => ({ ...s, up: false }))
      yield* TestClock.adjust(interval)
      yield* until(inventory, (s) => s.consecutiveFailures === 1)
      const calls = () => Ref.get(target.state).pipe(Effect.map((s) => s.tagsCalls))
      expect(yield* calls()).toBe(2)
      // Probe delays are 500 ms, 1 s, 2 s, ... each jittered by 0.8-1.2, far below the interval.
      yield* TestClock.adjust(Duration.millis(600))
      expect(yield* calls()).toBe(3)
      yield* TestClock.adjust(Duration.millis(1200))
      expect(yield* calls()).toBe(4)

      yield* Ref.update(target.state, (s) => ({ ...s, up: true, models: ["qwen3:latest"] }))
      yield* TestClock.adjust(Duration.millis(2400))
      const recovered = yield* until(inventory, (s) => s.consecutiveFailures === 0)
      expect(yield* calls()).toBe(5)
      expect(isDegraded(recovered)).toBe(false)
      expect(recovered.reachable).toBe(true)
      expect(Option.isNone(recovered.lastError)).toBe(true)
      expect(recovered.models.map((m) => m.name)).toEqual(["qwen3:latest"])
      // Recovered: the prober has stopped; only the regular interval polls remain.
      yield* TestClock.adjust(Duration.seconds(20))
      expect(yield* calls()).toBe(5)
    }))

  it("the probe schedule doubles from 500 ms and never exceeds the interval (jitter aside)", () =>
    Effect.gen(function*() {
      const delays = yield* Schedule.run(
        Schedule.delays(Inventory.probeSchedule(Duration.seconds(4))),
        0,
        [1, 2, 3, 4, 5, 6]
      )
      const millis = Chunk.toReadonlyArray(delays).map(Duration.toMillis)
      const nominal = [500, 1000, 2000, 4000, 4000, 4000]
      millis.forEach((delay, i) => {
        expect(delay).toBeGreaterThanOrEqual(nominal[i]! * 0.8)
        expect(delay).toBeLessThanOrEqual(nominal[i]! * 1.2)
      })
    }).pipe(Effect.runPromise))

  it.scoped("a job's unreachable report marks degraded at once and asks for an early poll", () =>
    Effect.gen(function*() {
      const { inventory, target } = yield* setup
      yield* until(inventory, (s) => Option.isSome(s.lastSuccessAt))
      yield* Ref.update(target.state, (s) => ({ ...s, up: false }))
      const before = (yield* Ref.get(target.state)).tagsCalls
      yield* inventory.reportUnreachable(TestTarget.unreachable())
      const state = yield* inventory.get
      expect(state.reachable).toBe(false)
      expect(isDegraded(state)).toBe(true)
      // The early poll runs without any clock movement.
      yield* until(inventory, (s) => s.consecutiveFailures >= 2)
      expect((yield* Ref.get(target.state)).tagsCalls).toBe(before + 1)
    }))
})
