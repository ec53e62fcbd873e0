/** The Wake-on-LAN loop on the TestClock: when it sends, how often, and when it stops. */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Option, TestClock } from "effect"
import { TargetUnreachable } from "../src/Errors.ts"
import type { Target, Wake } from "../src/target/Target.ts"
import * as Waker from "../src/target/Waker.ts"
import * as WakeOnLan from "../src/target/WakeOnLan.ts"

const wake: Wake = { mac: Option.getOrThrow(WakeOnLan.parseMac("02:00:00:00:00:01")), address: "127.0.0.1", port: 9 }

/** A target whose readiness and the need for it the test sets; it counts polls and packets. */
const setup = () => {
  const world = { awake: false, needed: false, polls: 0, sent: [] as Array<number>, hangs: false, pollFails: false }
  const target = {
    name: "laptop",
    client: {
      version: Effect.suspend(() =>
        world.hangs
          ? Effect.never
          : world.awake
          ? Effect.succeed({ version: "0.33.0" })
          : Effect.fail(new TargetUnreachable({ url: "http://laptop:11434", message: "connect EHOSTUNREACH" }))
      )
    },
    inventory: { poll: Effect.sync(() => (world.polls += 1, world.awake && !world.pollFails)) }
  } as unknown as Target
  const status = Waker.emptyStatus()
  const loop = Waker.run(target, wake, status, {
    // Needed while a job waits and the inventory has not seen it up.
    needed: Effect.sync(() => world.needed && !(world.awake && !world.pollFails && world.polls > 0)),
    send: () => Effect.flatMap(Effect.clockWith((clock) => clock.currentTimeMillis), (now) => Effect.sync(() => void world.sent.push(now)))
  })
  return { world, status, loop }
}

describe("Waker", () => {
  it.effect("sends nothing while no job needs the target", () =>
    Effect.gen(function*() {
      const { loop, world } = setup()
      const fiber = yield* Effect.fork(loop)
      yield* TestClock.adjust(Duration.minutes(1))
      expect(world.sent).toEqual([])
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("while needed: a packet at once, then after 2, 4, 8, 16, 30, 30 s; stops once the target answers, and polls it", () =>
    Effect.gen(function*() {
      const { loop, status, world } = setup()
      world.needed = true
      const fiber = yield* Effect.fork(loop)
      yield* TestClock.adjust(Duration.millis(1))
      // Packets at 0, 2, 6, 14, 30, 60 and 90 s.
      yield* TestClock.adjust(Duration.seconds(91))
      const gaps = world.sent.slice(1).map((at, i) => at - world.sent[i]!)
      expect(gaps.slice(0, 6)).toEqual([2_000, 4_000, 8_000, 16_000, 30_000, 30_000])
      expect(status.packets).toBe(world.sent.length)
      world.awake = true
      yield* TestClock.adjust(Waker.readyEvery)
      const sent = world.sent.length
      yield* TestClock.adjust(Duration.minutes(1))
      expect(world.sent.length).toBe(sent)
      expect(world.polls).toBe(1)
      expect(status.lastWakeMillis).toBeGreaterThan(91_000)
      expect(status.lastWokeAt).toBeDefined()
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("stops when the job that needed it leaves, and starts again for the next one", () =>
    Effect.gen(function*() {
      const { loop, world } = setup()
      world.needed = true
      const fiber = yield* Effect.fork(loop)
      yield* TestClock.adjust(Duration.seconds(3))
      expect(world.sent.length).toBe(2)
      world.needed = false
      yield* TestClock.adjust(Duration.minutes(1))
      expect(world.sent.length).toBe(2)
      world.needed = true
      yield* TestClock.adjust(Duration.seconds(2))
      expect(world.sent.length).toBe(3)
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("a target that answers /api/version but not its poll is not awake yet: no more packets than the backoff's, no wake counted", () =>
    Effect.gen(function*() {
      const { loop, status, world } = setup()
      world.needed = true
      const fiber = yield* Effect.fork(loop)
      yield* TestClock.adjust(Duration.millis(1))
      world.awake = true
      world.pollFails = true
      yield* TestClock.adjust(Duration.seconds(31))
      // At 0, 2, 6, 14 and 30 s: the backoff's, not one per poll.
      expect(world.sent.length).toBe(5)
      expect(status.lastWokeAt).toBeUndefined()
      world.pollFails = false
      yield* TestClock.adjust(Waker.readyEvery)
      expect(status.lastWokeAt).toBeDefined()
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("a target that takes the request and never answers (half-open) is not awake", () =>
    Effect.gen(function*() {
      const { loop, status, world } = setup()
      world.needed = true
      world.hangs = true
      const fiber = yield* Effect.fork(loop)
      yield* TestClock.adjust(Duration.seconds(60))
      expect(world.polls).toBe(0)
      expect(status.lastWokeAt).toBeUndefined()
      expect(world.sent.length).toBeGreaterThan(1)
      yield* Fiber.interrupt(fiber)
    }))
})
