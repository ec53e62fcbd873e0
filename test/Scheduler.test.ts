/**
 * The Scheduler with its real dispatcher fiber, the real Inventory over an in-memory
 * target, and jobs that take simulated time under the TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Option, Ref, Scope, TestClock } from "effect"
import type { ForemanSettings } from "../src/Config.ts"
import { anonymous, type Priority } from "../src/scheduler/policy.ts"
import * as Scheduler from "../src/scheduler/Scheduler.ts"
import * as TestTarget from "./support/TestTarget.ts"

const A = "registry.ollama.ai/library/a:latest"
const B = "registry.ollama.ai/library/b:latest"
const C = "registry.ollama.ai/library/c:latest"

/** Lets the other fibers run until `condition` holds (no clock involved). */
const eventually = (condition: Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1_000; i++) {
      if (yield* condition) return
      yield* Effect.yieldNow()
    }
    throw new Error("condition never held")
  })

const setup = (settings: Partial<ForemanSettings>) =>
  Effect.gen(function*() {
    const { inventory, scheduler, target } = yield* TestTarget.scheduler(["a:latest", "b:latest", "c:latest"], { pollInterval: Duration.hours(1), ...settings })
    const started = yield* Ref.make<ReadonlyArray<{ model: string; load: string; at: number; id: string; caller: string }>>([])
    /** A job: waits for its slot, records when it started, runs for `duration`. */
    const job = (model: string, priority: Priority, duration: Duration.DurationInput, caller?: string, load = "") =>
      Effect.gen(function*() {
        const known = scheduler.stats.pipe(Effect.map((q) => q.waiting + q.running))
        const before = yield* known
        const ticket = yield* scheduler.ticket(model, priority, { ...(caller === undefined ? {} : { caller }), load })
        const fiber = yield* Effect.scoped(
          Effect.gen(function*() {
            yield* scheduler.acquire(ticket)
            const at = yield* TestClock.currentTimeMillis
            yield* Ref.update(started, (list) => [...list, { model, load, at, id: ticket.id, caller: ticket.caller }])
            yield* Effect.sleep(duration)
          })
        ).pipe(Effect.fork)
        // The scheduler has the ticket (queued or running) before the test goes on.
        yield* eventually(known.pipe(Effect.map((n) => n > before)))
        return { ticket, fiber }
      })
    return { target, inventory, scheduler, started, job }
  })

const startOf = (list: ReadonlyArray<{ id: string; at: number }>, id: string) =>
  Option.fromNullable(list.find((s) => s.id === id)).pipe(Option.map((s) => s.at))

describe("Scheduler", () => {
  it.scoped("a lone job for a rare model starts within max-wait plus one job time under a steady stream", () =>
    Effect.gen(function*() {
      const { job, started } = yield* setup({ maxWait: Duration.seconds(10) })
      // A job for A arrives every second and takes 2 s: A always has work waiting.
      yield* job(A, "interactive", "2 seconds")
      const stream = yield* Effect.forever(Effect.sleep("1 second").pipe(Effect.zipRight(job(A, "interactive", "2 seconds"))))
        .pipe(Effect.fork)
      yield* TestClock.adjust("500 millis")
      const rare = yield* job(B, "interactive", "2 seconds")
      for (let i = 0; i < 30; i++) yield* TestClock.adjust("500 millis")
      const at = Option.getOrThrow(startOf(yield* Ref.get(started), rare.ticket.id))
      const waited = at - rare.ticket.enqueuedAt
      // Resident-first kept serving A until B was overdue, then B went next.
      expect(waited).toBeGreaterThanOrEqual(10_000)
      expect(waited).toBeLessThanOrEqual(10_000 + 2_000)
      yield* Fiber.interrupt(stream)
    }))

  it.scoped("batch work for A delays an interactive job for B by at most the job in flight", () =>
    Effect.gen(function*() {
      const { job, scheduler, started } = yield* setup({})
      for (let i = 0; i < 5; i++) yield* job(A, "batch", "3 seconds")
      yield* TestClock.adjust("1 second")
      const urgent = yield* job(B, "interactive", "3 seconds")
      yield* TestClock.adjust("2 seconds")
      expect(Option.getOrThrow(startOf(yield* Ref.get(started), urgent.ticket.id))).toBe(3_000)
      for (let i = 0; i < 5; i++) yield* TestClock.adjust("3 seconds")
      const order = (yield* Ref.get(started)).map((s) => s.model)
      expect(order).toEqual([A, B, A, A, A, A])
      // B was one swap; going back to A another.
      expect((yield* scheduler.stats).swaps).toBe(3)
    }))

  it.scoped("nothing starts while the target sleeps; after a sleep longer than max-wait 30 interleaved jobs cause 3 loads", () =>
    Effect.gen(function*() {
      const { inventory, job, scheduler, started, target } = yield* setup({ maxWait: Duration.seconds(60) })
      yield* Ref.update(target.state, (s) => ({ ...s, up: false }))
      yield* inventory.poll
      const fibers = []
      for (let i = 0; i < 30; i++) fibers.push((yield* job([A, B, C][i % 3]!, "interactive", "1 second")).fiber)
      yield* TestClock.adjust(Duration.hours(2))
      expect(yield* Ref.get(started)).toEqual([])
      expect((yield* scheduler.stats).waiting).toBe(30)

      yield* Ref.update(target.state, (s) => ({ ...s, up: true }))
      yield* inventory.poll
      for (let i = 0; i < 31; i++) yield* TestClock.adjust("1 second")
      yield* Fiber.joinAll(fibers)
      const order = (yield* Ref.get(started)).map((s) => s.model)
      expect(order).toEqual([...Array(10).fill(A), ...Array(10).fill(B), ...Array(10).fill(C)])
      expect((yield* scheduler.stats).swaps).toBe(3)
    }))

  it.scoped("with two slots and one model's room, a job for another model waits for the running one", () =>
    Effect.gen(function*() {
      const { job, started } = yield* setup({ concurrency: 2, maxLoadedModels: 1 })
      yield* job(A, "interactive", "2 seconds")
      const other = yield* job(B, "interactive", "2 seconds")
      yield* TestClock.adjust("1 second")
      expect((yield* Ref.get(started)).map((s) => s.model)).toEqual([A])
      yield* TestClock.adjust("1 second")
      expect(startOf(yield* Ref.get(started), other.ticket.id)).toEqual(Option.some(2_000))
    }))

  it.scoped("with room for two models, two slots run A and B side by side", () =>
    Effect.gen(function*() {
      const { job, started } = yield* setup({ concurrency: 2, maxLoadedModels: 2 })
      yield* job(A, "interactive", "2 seconds")
      yield* job(B, "interactive", "2 seconds")
      yield* eventually(Ref.get(started).pipe(Effect.map((list) => list.length === 2)))
      expect((yield* Ref.get(started)).map((s) => [s.model, s.at])).toEqual([[A, 0], [B, 0]])
    }))

  it.scoped("a full queue refuses new tickets but never a retry", () =>
    Effect.gen(function*() {
      const { job, scheduler } = yield* setup({ maxQueue: 2 })
      yield* job(A, "interactive", "10 seconds") // running
      yield* job(A, "interactive", "1 second")
      yield* job(A, "interactive", "1 second")
      const refused = yield* scheduler.ticket(A, "interactive").pipe(
        Effect.flatMap((t) => Effect.scoped(scheduler.acquire(t))),
        Effect.flip
      )
      expect(refused._tag).toBe("QueueFull")
      const retry = yield* scheduler.ticket(A, "interactive").pipe(
        Effect.flatMap((t) => Effect.scoped(scheduler.acquire({ ...t, attempts: 1 }))),
        Effect.fork
      )
      yield* Effect.yieldNow()
      expect((yield* scheduler.stats).waiting).toBe(3)
      yield* TestClock.adjust("20 seconds")
      expect(Exit.isSuccess(yield* Fiber.await(retry))).toBe(true)
    }))

  it.scoped("stored async jobs waiting do not fill the queue for callers: --max-queue counts callers only", () =>
    Effect.gen(function*() {
      const { job, scheduler } = yield* setup({ maxQueue: 1 })
      yield* job(A, "interactive", "10 seconds") // running
      for (let i = 0; i < 3; i++) {
        const stored = yield* scheduler.ticket(B, "batch")
        yield* scheduler.enqueue(stored, () => Effect.void)
      }
      // A stored job's retry waits without counting either.
      yield* scheduler.ticket(B, "batch").pipe(
        Effect.flatMap((t) => Effect.scoped(scheduler.acquire({ ...t, attempts: 1 }, undefined, { caller: false }))),
        Effect.fork
      )
      yield* Effect.yieldNow()
      expect((yield* scheduler.stats).waiting).toBe(4)
      // One caller fits in --max-queue 1, behind them or (interactive) ahead; the next does not.
      yield* job(A, "interactive", "1 second")
      expect((yield* scheduler.stats).waiting).toBe(5)
      const refused = yield* scheduler.ticket(A, "interactive").pipe(
        Effect.flatMap((t) => Effect.scoped(scheduler.acquire(t))),
        Effect.flip
      )
      expect(refused._tag).toBe("QueueFull")
    }))

  it.scoped("a caller that leaves the queue (cancelled, timed out) makes room for the next", () =>
    Effect.gen(function*() {
      const { job, scheduler } = yield* setup({ maxQueue: 1 })
      yield* job(A, "interactive", "10 seconds") // running
      const waiting = yield* job(A, "interactive", "1 second")
      const full = yield* scheduler.ticket(A, "interactive").pipe(Effect.flatMap((t) => Effect.scoped(scheduler.acquire(t))), Effect.flip)
      expect(full._tag).toBe("QueueFull")
      yield* Fiber.interrupt(waiting.fiber)
      const timedOut = yield* scheduler.ticket(A, "interactive").pipe(
        Effect.flatMap((t) => Effect.scoped(scheduler.acquire(t, 1_000))),
        Effect.flip,
        Effect.fork
      )
      yield* TestClock.adjust("2 seconds")
      expect((yield* Fiber.join(timedOut))._tag).toBe("RequestTimeout")
      // Both left: the queue has room for one caller again.
      yield* job(A, "interactive", "1 second")
      expect((yield* scheduler.stats).waiting).toBe(1)
    }))

  it.scoped("closing the scope leaves the queue, or frees the slot", () =>
    Effect.gen(function*() {
      const { scheduler } = yield* setup({})
      const holder = yield* Scope.make()
      yield* Scope.extend(scheduler.acquire(yield* scheduler.ticket(A, "interactive")), holder)
      const queued = yield* Effect.scoped(scheduler.ticket(B, "batch").pipe(Effect.flatMap(scheduler.acquire))).pipe(Effect.fork)
      yield* Effect.yieldNow()
      expect(yield* scheduler.stats).toMatchObject({ waiting: 1, running: 1 })
      yield* Fiber.interrupt(queued)
      expect(yield* scheduler.stats).toMatchObject({ waiting: 0, running: 1 })
      yield* Scope.close(holder, Exit.void)
      expect(yield* scheduler.stats).toMatchObject({ waiting: 0, running: 0 })
      // A is now resident by foreman's own account, for the assumed keep-alive.
      expect((yield* scheduler.stats).resident).toEqual([A])
      yield* TestClock.adjust(Scheduler.assumedKeepAlive)
      expect((yield* scheduler.stats).resident).toEqual([])
    }))

  it.scoped("queue visibility: waiting per model and per priority, with the oldest wait", () =>
    Effect.gen(function*() {
      const { job, scheduler } = yield* setup({})
      yield* job(A, "interactive", "1 minute")
      yield* job(B, "batch", "1 second")
      yield* TestClock.adjust("2 seconds")
      yield* job(B, "normal", "1 second")
      yield* TestClock.adjust("1 second")
      const stats = yield* scheduler.stats
      expect(stats.byModel).toEqual({ [B]: { waiting: 2, oldestWaitMs: 3_000 } })
      expect(stats.byPriority).toEqual({
        interactive: { waiting: 0, oldestWaitMs: 0 },
        normal: { waiting: 1, oldestWaitMs: 1_000 },
        batch: { waiting: 1, oldestWaitMs: 3_000 }
      })
    }))

  it.scoped("a job queued with no fiber: its start runs on the grant, holds the slot until released; release withdraws a queued one", () =>
    Effect.gen(function*() {
      const { job, scheduler } = yield* setup({ maxQueue: 1 })
      const first = yield* job(A, "interactive", "1 minute")
      const granted = yield* Ref.make<ReadonlyArray<string>>([])
      const grant = (id: string) => Ref.update(granted, (ids) => [...ids, id])
      const b = yield* scheduler.ticket(B, "batch")
      const c = yield* scheduler.ticket(A, "batch")
      // Never refused for a full queue (--max-queue 1): the job was accepted when stored.
      yield* scheduler.enqueue(b, () => grant(b.id))
      yield* scheduler.enqueue(c, () => grant(c.id))
      expect(yield* scheduler.stats).toMatchObject({ waiting: 2, running: 1 })
      expect(yield* scheduler.release(c.id)).toBe("queued")
      expect(yield* scheduler.release(c.id)).toBe("none")
      expect(yield* Ref.get(granted)).toEqual([])
      // The running job ends: B's start runs, and B holds the slot with no fiber of its own.
      yield* Fiber.interrupt(first.fiber)
      expect(yield* Ref.get(granted)).toEqual([b.id])
      expect(yield* scheduler.stats).toMatchObject({ waiting: 0, running: 1 })
      expect(yield* scheduler.release(b.id)).toBe("running")
      expect(yield* scheduler.stats).toMatchObject({ waiting: 0, running: 0 })
    }))

  it.scoped("a ticket's caller defaults to anonymous; a new caller's batch job takes the next slot behind another's backlog", () =>
    Effect.gen(function*() {
      const { job, scheduler, started } = yield* setup({})
      expect((yield* scheduler.ticket(A, "batch")).caller).toBe(anonymous)
      expect((yield* scheduler.ticket(A, "batch", { caller: "team-b" })).caller).toBe("team-b")
      // A: 20 batch jobs, 1 s each, on A then B; B's caller sends 3 for C at 2.5 s.
      for (let i = 0; i < 20; i++) yield* job(i < 10 ? A : B, "batch", "1 second", "team-a")
      yield* TestClock.adjust("2500 millis")
      for (let i = 0; i < 3; i++) yield* job(C, "batch", "1 second", "team-b")
      for (let i = 0; i < 30; i++) yield* TestClock.adjust("1 second")
      const list = yield* Ref.get(started)
      expect(list).toHaveLength(23)
      // B never served: its first job takes the next slot (3 s); its model is then resident
      // and B has it to itself, so its other two follow (fair share costs one load there and
      // one back to A, where A alone would have loaded C last).
      expect(list.filter((s) => s.caller === "team-b").map((s) => s.at)).toEqual([3_000, 4_000, 5_000])
      expect(list.map((s) => s.model)).toEqual([A, A, A, C, C, C, ...Array(7).fill(A), ...Array(10).fill(B)])
      expect((yield* scheduler.stats).swaps).toBe(4)
    }))

  it.scoped("one caller's jobs on the resident model alternate with another's: at most 4 of one between two of the other", () =>
    Effect.gen(function*() {
      const { job, started } = yield* setup({})
      for (let i = 0; i < 12; i++) yield* job(A, "batch", "1 second", "team-a")
      yield* TestClock.adjust("500 millis")
      for (let i = 0; i < 3; i++) yield* job(A, "batch", "1 second", "team-b")
      for (let i = 0; i < 16; i++) yield* TestClock.adjust("1 second")
      const callers = (yield* Ref.get(started)).map((s) => s.caller === "team-a" ? "a" : "b").join("")
      expect(callers).toBe("abababaaaaaaaaa")
    }))

  describe("a model with other load options is another unit: Ollama reloads it", () => {
    const ctx8k = "num_ctx=8192"

    it.scoped("jobs with equal options group; the other num_ctx of the same model loads once, as a swap", () =>
      Effect.gen(function*() {
        const { job, scheduler, started } = yield* setup({})
        yield* job(A, "interactive", "1 second", undefined, ctx8k) // running
        for (let i = 0; i < 6; i++) yield* job(A, "interactive", "1 second", undefined, i % 2 === 0 ? "" : ctx8k)
        for (let i = 0; i < 7; i++) yield* TestClock.adjust("1 second")
        const list = yield* Ref.get(started)
        expect(list.map((s) => s.load)).toEqual([ctx8k, ctx8k, ctx8k, ctx8k, "", "", ""])
        // The first load, then the reload for the defaults; by model alone it would have been
        // one, while the target reloaded seven times.
        const stats = yield* scheduler.stats
        expect(stats.swaps).toBe(2)
        // Resident is reported by model, whatever its options.
        expect(stats.resident).toEqual([A])
      }))

    it.scoped("with room for two models, another model starts beside a running job, another unit of its model does not", () =>
      Effect.gen(function*() {
        const { job, started } = yield* setup({ concurrency: 2, maxLoadedModels: 2 })
        yield* job(A, "interactive", "2 seconds", undefined, ctx8k)
        const other = yield* job(B, "interactive", "1 second")
        const sameModel = yield* job(A, "interactive", "1 second")
        yield* eventually(Ref.get(started).pipe(Effect.map((list) => list.length === 2)))
        expect(startOf(yield* Ref.get(started), other.ticket.id)).toEqual(Option.some(0))
        yield* TestClock.adjust("1 second")
        // B's slot is free, but A's defaults would reload A under its running job.
        expect(startOf(yield* Ref.get(started), sameModel.ticket.id)).toEqual(Option.none())
        yield* TestClock.adjust("1 second")
        expect(startOf(yield* Ref.get(started), sameModel.ticket.id)).toEqual(Option.some(2_000))
      }))

    it.scoped("a model /api/ps shows is the unit foreman last ran on it, or, if it ran none, the model's defaults", () =>
      Effect.gen(function*() {
        const { inventory, job, scheduler, target } = yield* setup({})
        yield* Ref.update(target.state, (s) => ({ ...s, resident: ["a:latest"] }))
        yield* inventory.poll
        const swaps = scheduler.stats.pipe(Effect.map((q) => q.swaps))
        // Loaded by someone else (or before foreman started): taken as the defaults.
        yield* job(A, "interactive", "1 second")
        expect(yield* swaps).toBe(0)
        yield* TestClock.adjust("1 second")
        yield* job(A, "interactive", "1 second", undefined, ctx8k)
        expect(yield* swaps).toBe(1)
        yield* TestClock.adjust("1 second")
        // /api/ps still says A, now with foreman's options: the defaults are a reload again.
        yield* job(A, "interactive", "1 second")
        expect(yield* swaps).toBe(2)
      }))
  })
})
