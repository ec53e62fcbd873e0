import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Ref, Stream, TestClock } from "effect"
import { ForemanConfig } from "../src/Config.ts"
import { Inventory, type InventoryState, isDegraded } from "../src/inventory/Inventory.ts"
import * as InventoryLayer from "../src/inventory/Inventory.ts"
import * as Poller from "../src/inventory/Poller.ts"
import * as TestTarget from "./support/TestTarget.ts"

const interval = Duration.seconds(30)

/** The poller over an in-memory target, in the test's scope (so under the TestClock). */
const setup = Effect.gen(function*() {
  const target = yield* TestTarget.make(["llama3.2:latest", "all-minilm:latest"])
  const context = yield* Layer.build(
    Poller.layer.pipe(
      Layer.provideMerge(InventoryLayer.layer),
      Layer.provide(target.layer),
      Layer.provide(ForemanConfig.make({ pollInterval: interval }))
    )
  )
  const inventory = yield* Effect.provide(Inventory, context)
  return { target, inventory }
})

/** Waits (without sleeping) until the inventory state satisfies `predicate`. */
const until = (inventory: Inventory["Type"], predicate: (state: InventoryState) => boolean) =>
  inventory.changes.pipe(Stream.filter(predicate), Stream.runHead, Effect.map(Option.getOrThrow))

describe("Poller", () => {
  it.scoped("polls at start, then once per interval", () =>
    Effect.gen(function*() {
      const { inventory, target } = yield* setup
      const first = yield* until(inventory, (s) => Option.isSome(s.lastSuccessAt))
      expect(first.models.map((m) => m.name)).toEqual(["llama3.2:latest", "all-minilm:latest"])
      expect(isDegraded(first)).toBe(false)
      expect((yield* Ref.get(target.state)).tagsCalls).toBe(1)

      // Jitter keeps each delay within 0.8-1.2 of the interval: nothing before 0.8x ...
      yield* TestClock.adjust(Duration.times(interval, 0.79))
      expect((yield* Ref.get(target.state)).tagsCalls).toBe(1)
      // ... and exactly one more poll by 1.2x.
      yield* TestClock.adjust(Duration.times(interval, 0.41))
      expect((yield* Ref.get(target.state)).tagsCalls).toBe(2)
      yield* TestClock.adjust(Duration.times(interval, 1.2))
      expect((yield* Ref.get(target.state)).tagsCalls).toBe(3)
    }))

  it.scoped("a failed poll marks degraded and keeps the last inventory", () =>
    Effect.gen(function*() {
      const { inventory, target } = yield* setup
      yield* until(inventory, (s) => Option.isSome(s.lastSuccessAt))
      yield* Ref.update(target.state, (s) => ({ ...s, up: false, models: [] }))
      yield* TestClock.adjust(Duration.times(interval, 1.2))
      const degraded = yield* until(inventory, (s) => s.consecutiveFailures > 0)
      expect(isDegraded(degraded)).toBe(true)
      expect(degraded.reachable).toBe(false)
      expect(Option.getOrNull(degraded.lastError)).toContain("unreachable")
      // The last inventory stays: jobs are not rejected wholesale.
      expect(degraded.models.map((m) => m.name)).toEqual(["llama3.2:latest", "all-minilm:latest"])
      expect(degraded.lastSuccessAt).toEqual(degraded.lastSuccessAt)
    }))

  it.scoped("probes on a backoff while degraded and recovers", () =>
    Effect.gen(function*() {
      const { inventory, target } = yield* setup
      yield* until(inventory, (s) => Option.isSome(s.lastSuccessAt))
      yield* Ref.update(target.state, (s) => ({ ...s, up: false }))
      yield* TestClock.adjust(Duration.times(interval, 1.2))
      yield* until(inventory, (s) => s.consecutiveFailures === 1)
      // The next probe comes after ~500 ms (jittered), not after another full interval.
      yield* TestClock.adjust(Duration.millis(600))
      yield* until(inventory, (s) => s.consecutiveFailures === 2)
      yield* TestClock.adjust(Duration.millis(1200))
      yield* until(inventory, (s) => s.consecutiveFailures === 3)

      yield* Ref.update(target.state, (s) => ({ ...s, up: true, models: ["qwen3:latest"] }))
      yield* TestClock.adjust(Duration.millis(2400))
      const recovered = yield* until(inventory, (s) => s.consecutiveFailures === 0)
      expect(isDegraded(recovered)).toBe(false)
      expect(recovered.reachable).toBe(true)
      expect(Option.isNone(recovered.lastError)).toBe(true)
      expect(recovered.models.map((m) => m.name)).toEqual(["qwen3:latest"])
    }))

  it("backoff delays double from 500 ms and are capped at the interval", () => {
    expect(Duration.toMillis(Poller.nextDelay(interval, 0))).toBe(30_000)
    expect(Duration.toMillis(Poller.nextDelay(interval, 1))).toBe(500)
    expect(Duration.toMillis(Poller.nextDelay(interval, 2))).toBe(1000)
    expect(Duration.toMillis(Poller.nextDelay(interval, 7))).toBe(30_000)
    expect(Duration.toMillis(Poller.nextDelay(interval, 100))).toBe(30_000)
  })

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
