/**
 * Queue positions and ETAs: the measurements and the forecast as pure functions, then the
 * real Scheduler under the TestClock, whose forecast must be what it then does when the
 * measured times hold and nothing else arrives.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Option, TestClock } from "effect"
import { Events } from "../src/events/Events.ts"
import {
  alpha,
  approximateOrder,
  type Cost,
  costModel,
  forecast,
  type ForecastInput,
  type ForecastTarget,
  loadTime,
  makeMeasurements,
  type ModelTimes,
  observe,
  roughPosition
} from "../src/scheduler/eta.ts"
import { anonymous, noneServed, type Priority, swapAware, type Waiting } from "../src/scheduler/policy.ts"
import * as TestTarget from "./support/TestTarget.ts"

const job = (seq: number, model: string, priority: Priority = "batch", enqueuedAt = 0, caller = anonymous): Waiting => ({
  id: `j${seq}`,
  seq,
  model,
  priority,
  enqueuedAt,
  attempts: 0,
  caller
})

const target = (overrides: Partial<ForecastTarget> = {}): ForecastTarget => ({
  reachable: true,
  slots: 1,
  running: [],
  resident: [],
  maxLoaded: 1,
  maxWait: 60_000,
  servingSince: 0,
  ...overrides
})

/** a: 1 s a job, 3 s with its load; b: 2 s, 6 s. */
const cost: Cost = (model, load) => (model === "a" ? (load ? 3_000 : 1_000) : load ? 6_000 : 2_000)

const input = (overrides: Partial<ForecastInput>): ForecastInput => ({
  policy: swapAware,
  waiting: [],
  targets: [target()],
  now: 0,
  served: noneServed,
  cost,
  ...overrides
})

/** The forecast as [id, position, start, finish] rows, in position order. */
const rows = (overrides: Partial<ForecastInput>) =>
  [...forecast(input(overrides)).waiting].map(([id, e]) => [id, e.position, e.startAt, e.finishAt] as const)
    .sort((x, y) => x[1] - y[1])

describe("measurements", () => {
  it("a moving average: the plain mean of the first 1 / alpha samples, then alpha of each new one", () => {
    const first = observe(undefined, 1_000)
    expect(first).toEqual({ mean: 1_000, samples: 1 })
    expect(observe(first, 2_000)).toEqual({ mean: 1_500, samples: 2 })
    let ewma = first
    for (let i = 1; i < 1 / alpha; i++) ewma = observe(ewma, 1_000)
    expect(ewma).toEqual({ mean: 1_000, samples: 1 / alpha })
    expect(observe(ewma, 2_000).mean).toBeCloseTo(1_000 + alpha * 1_000, 9)
  })

  it("a model's load time is its jobs with a load minus those without, once both are measured", () => {
    expect(loadTime({ warm: { mean: 1_000, samples: 3 } })).toBeUndefined()
    expect(loadTime({ warm: { mean: 1_000, samples: 3 }, cold: { mean: 4_000, samples: 1 } })).toBe(3_000)
    // A noisy cold job faster than the warm average is no negative load.
    expect(loadTime({ warm: { mean: 1_000, samples: 3 }, cold: { mean: 900, samples: 1 } })).toBe(0)
  })

  it("before anything is measured there is no cost model: no ETA rather than an invented one", () => {
    expect(costModel(new Map())).toBeUndefined()
  })

  it("costs: a model's own figures; cold only stands for warm too; warm only adds the others' typical load", () => {
    const measured = new Map<string, ModelTimes>([
      ["a", { warm: { mean: 1_000, samples: 5 }, cold: { mean: 4_000, samples: 1 } }],
      ["b", { cold: { mean: 6_000, samples: 1 } }],
      ["c", { warm: { mean: 2_000, samples: 2 } }]
    ])
    const cost = costModel(measured)!
    expect([cost("a", false), cost("a", true)]).toEqual([1_000, 4_000])
    expect([cost("b", false), cost("b", true)]).toEqual([6_000, 6_000])
    // a's load (3 s) is the only one known.
    expect([cost("c", false), cost("c", true)]).toEqual([2_000, 5_000])
    // A model never measured borrows the average of the measured ones.
    expect(cost("d", false)).toBe((1_000 + 6_000 + 2_000) / 3)
    expect(cost("d", true)).toBe((4_000 + 6_000 + 5_000) / 3)
  })

  it("jobs are measured by their model and whether they loaded it; failures and unknown jobs are not", () => {
    const m = makeMeasurements()
    expect(m.cost).toBeUndefined()
    m.dispatched("j1", "a", true)
    m.dispatched("j2", "a", false)
    m.dispatched("j3", "a", false)
    m.finished("j1", true, 4_000)
    m.finished("j2", true, 1_000)
    m.finished("j3", false, 10)
    m.finished("j9", true, 99_999)
    // A job's end is counted once.
    m.finished("j2", true, 50_000)
    expect(m.measured.get("a")).toEqual({ warm: { mean: 1_000, samples: 1 }, cold: { mean: 4_000, samples: 1 } })
    expect(m.revision).toBe(2)
    expect(m.cost!("a", true)).toBe(4_000)
    // A retry's dispatch replaces the first: measured as a load if the last one was.
    m.dispatched("j4", "b", false)
    m.dispatched("j4", "b", true)
    m.finished("j4", true, 6_000)
    expect(m.measured.get("b")).toEqual({ cold: { mean: 6_000, samples: 1 } })
  })
})

describe("forecast", () => {
  it("replays the policy: the resident model's jobs first, each slot freed when its job is expected to end", () => {
    const running = [{ id: "r", model: "a", startedAt: 0, load: false }]
    expect(rows({ now: 200, waiting: [job(1, "b"), job(2, "a"), job(3, "a")], targets: [target({ running, resident: ["a"] })] })).toEqual([
      ["j2", 1, 1_000, 2_000],
      ["j3", 2, 2_000, 3_000],
      // b is not resident: its load is in its time.
      ["j1", 3, 3_000, 9_000]
    ])
  })

  it("priority first: an interactive job goes before older batch work, even at the cost of a load", () => {
    expect(rows({ waiting: [job(1, "a"), job(2, "a"), job(3, "b", "interactive")], targets: [target({ resident: ["a"] })] })).toEqual([
      ["j3", 1, 0, 6_000],
      ["j1", 2, 6_000, 9_000],
      ["j2", 3, 9_000, 10_000]
    ])
  })

  it("a job that will have waited past max-wait by then goes first, whatever its model", () => {
    // b's job arrived at 0; a's jobs keep a busy; at 2 s b's job is overdue (max-wait 1.5 s).
    const waiting = [job(1, "b", "batch", 0), job(2, "a", "batch", 100), job(3, "a", "batch", 100), job(4, "a", "batch", 100)]
    expect(rows({ waiting, targets: [target({ resident: ["a"], maxWait: 1_500 })] }).map((r) => r[0])).toEqual(["j2", "j3", "j1", "j4"])
  })

  it("two slots: two jobs start at once, the next when the first slot frees", () => {
    const waiting = [job(1, "a"), job(2, "a"), job(3, "a")]
    expect(rows({ waiting, targets: [target({ slots: 2, resident: ["a"] })] })).toEqual([
      ["j1", 1, 0, 1_000],
      ["j2", 2, 0, 1_000],
      ["j3", 3, 1_000, 2_000]
    ])
  })

  it("a running job past its expected end is expected to end now", () => {
    const running = [{ id: "r", model: "a", startedAt: 0, load: false }]
    const f = forecast(input({ now: 5_000, waiting: [job(1, "a")], targets: [target({ running, resident: ["a"] })] }))
    expect(f.running.get("r")).toBe(5_000)
    expect(f.waiting.get("j1")).toMatchObject({ startAt: 5_000, finishAt: 6_000 })
  })

  it("nothing measured: positions, no times", () => {
    const f = forecast(input({ cost: undefined, waiting: [job(1, "b"), job(2, "a")], targets: [target({ resident: ["a"] })] }))
    expect([...f.waiting]).toEqual([["j2", { position: 1, load: false }], ["j1", { position: 2, load: true }]])
    expect(f.running.size).toBe(0)
  })

  it("no target reachable: the order as if it answered now, no times (when it wakes is not known)", () => {
    const f = forecast(input({ waiting: [job(1, "b"), job(2, "a")], targets: [target({ reachable: false, resident: ["a"] })] }))
    expect([...f.waiting].map(([id, e]) => [id, e.position, e.startAt])).toEqual([["j2", 1, undefined], ["j1", 2, undefined]])
  })

  it("fair share: the second caller is served within the span, as the policy would", () => {
    const waiting = [
      ...Array.from({ length: 8 }, (_, i) => job(i + 1, "a", "batch", 0, "alice")),
      job(9, "a", "batch", 0, "bob")
    ]
    const order = rows({ waiting, targets: [target({ resident: ["a"] })] }).map((r) => r[0])
    // Both never served: the older job first, then Bob is due (never served), then Alice's.
    expect(order.slice(0, 3)).toEqual(["j1", "j9", "j2"])
  })

  it("past the budget the rest follow the approximation; every job has one place", () => {
    const waiting = Array.from({ length: 40 }, (_, i) => job(i + 1, i % 3 === 0 ? "b" : "a", i % 4 === 0 ? "interactive" : "batch"))
    const full = forecast(input({ waiting, targets: [target({ resident: ["a"] })] }))
    const cut = forecast(input({ waiting, targets: [target({ resident: ["a"] })], budget: 200 }))
    expect(full.simulated).toBe(40)
    expect(cut.simulated).toBeLessThan(40)
    for (const f of [full, cut]) {
      expect([...f.waiting.values()].map((e) => e.position).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
    }
    // The approximation keeps the policy's shape on this queue: class, model by model, arrival.
    const order = (f: typeof full) => [...f.waiting].sort((x, y) => x[1].position - y[1].position).map(([id]) => id)
    expect(order(cut)).toEqual(order(full))
  })

  it("the approximate order: by class; the model in use first (in a lower class, the one the class above ended on), then each model by its oldest job; then arrival", () => {
    const jobs = [job(1, "b"), job(2, "c"), job(3, "a"), job(4, "b"), job(5, "c", "interactive"), job(6, "a")]
    expect(approximateOrder(jobs, "a").map((j) => j.id)).toEqual(["j5", "j2", "j1", "j4", "j3", "j6"])
  })

  it("the rough position: 1 + the jobs ahead by class, then arrival", () => {
    const jobs = [job(1, "b"), job(2, "a", "interactive"), job(3, "a")]
    expect(jobs.map((j) => roughPosition(jobs, j))).toEqual([2, 1, 3])
  })
})

describe("the forecast over several targets", () => {
  it("routes as dispatch does: a pinned job waits for its target only, a model goes where it is", () => {
    const pinned = { ...job(4, "b"), target: "laptop" }
    const desk = target({
      name: "desk",
      has: (model) => model === "a",
      running: [{ id: "r1", model: "a", startedAt: 0, load: false }],
      resident: ["a"]
    })
    const laptop = target({
      name: "laptop",
      has: (model) => model === "b",
      running: [{ id: "r2", model: "b", startedAt: 0, load: false }],
      resident: ["b"]
    })
    // a: 1 s a job; b: 2 s. The desk frees at 1 s, the laptop at 2 s.
    expect(rows({ waiting: [job(1, "a"), job(2, "a"), job(3, "a"), pinned], targets: [desk, laptop] })).toEqual([
      ["j1", 1, 1_000, 2_000],
      ["j2", 2, 2_000, 3_000],
      ["j4", 3, 2_000, 4_000],
      ["j3", 4, 3_000, 4_000]
    ])
  })
})

describe("the Scheduler's forecast", () => {
  const A = "a:latest"
  const B = "b:latest"
  /** The simulated target: a job of a takes 1 s (3 s with its load), of b 2 s (6 s). */
  const durationOf = (model: string, load: boolean) => (model === A ? (load ? 3_000 : 1_000) : load ? 6_000 : 2_000)

  it.scoped("is what the Scheduler then does, when the measured times hold and nothing else arrives", () =>
    Effect.gen(function*() {
      const { context, scheduler } = yield* TestTarget.scheduler([A, B], { concurrency: 1, maxWait: Duration.minutes(10) })
      const events = yield* Effect.provide(Events, context)
      const loaded: Array<string> = []
      const starts = new Map<string, number>()
      /** A job as Jobs runs it: a slot, the target's time (a load when the model changes), the report. */
      const run = (model: string, priority: Priority = "batch") =>
        Effect.gen(function*() {
          const ticket = yield* scheduler.ticket(model, priority)
          const fiber = yield* Effect.scoped(Effect.gen(function*() {
            yield* scheduler.acquire(ticket)
            const at = yield* Clock.currentTimeMillis
            starts.set(ticket.id, at)
            const load = loaded.at(-1) !== model
            if (load) loaded.push(model)
            yield* Effect.sleep(durationOf(model, load))
            return { at, load }
          })).pipe(
            Effect.tap(({ at }) =>
              Effect.flatMap(Clock.currentTimeMillis, (end) =>
                events.publish({
                  _tag: "JobFinished",
                  job: { id: ticket.id, endpoint: "/api/generate", model, priority, async: false },
                  at: end,
                  status: 200,
                  waitMs: at - ticket.enqueuedAt,
                  durationMs: end - at,
                  ttfbMs: 0
                })
              )
            ),
            Effect.fork
          )
          // The ticket is in the queue (or holds a slot) before the test goes on.
          while (Option.isNone(yield* scheduler.estimate(ticket.id)) && fiber.unsafePoll() === null) yield* Effect.yieldNow()
          return { ticket, fiber }
        })
      const measured = (n: number) =>
        Effect.gen(function*() {
          while (Object.values((yield* scheduler.stats).estimates).reduce((sum, e) => sum + e.samples, 0) < n) yield* Effect.yieldNow()
        })

      // Measure each model with and without its load: a, a, b, b.
      for (const model of [A, A, B, B]) {
        const { fiber } = yield* run(model)
        yield* TestClock.adjust(6_000)
        yield* Fiber.join(fiber)
      }
      yield* measured(4)
      expect((yield* scheduler.stats).estimates).toEqual({
        [A]: { durationMs: 1_000, durationWithLoadMs: 3_000, loadMs: 2_000, samples: 2 },
        [B]: { durationMs: 2_000, durationWithLoadMs: 6_000, loadMs: 4_000, samples: 2 }
      })

      // b is loaded. One job holds the slot; the rest queue behind it.
      const t0 = yield* Clock.currentTimeMillis
      const jobs = [yield* run(B)]
      for (const [model, priority] of [[A, "batch"], [B, "batch"], [A, "interactive"], [A, "batch"], [B, "batch"]] as const) {
        jobs.push(yield* run(model, priority))
      }
      const forecasts = yield* Effect.forEach(jobs, ({ ticket }) => Effect.map(scheduler.estimate(ticket.id), Option.getOrThrow))
      expect(forecasts[0]).toEqual({ _tag: "Running", startedAt: t0, finishAt: t0 + 2_000 })
      yield* TestClock.adjust(60_000)
      yield* Effect.forEach(jobs, ({ fiber }) => Fiber.join(fiber))

      const actual = jobs.slice(1).map(({ ticket }) => starts.get(ticket.id)!)
      const forecast = forecasts.slice(1).map((e) => (e._tag === "Queued" ? e : undefined)!)
      expect(forecast.map((e) => e.startAt)).toEqual(actual)
      // The interactive job first (a load of a), then a's batch jobs on the loaded a, then b's (a load).
      expect(forecast.map((e) => e.position)).toEqual([2, 4, 1, 3, 5])
      expect(forecast.map((e) => e.finishAt! - e.startAt!)).toEqual([1_000, 6_000, 3_000, 1_000, 2_000])
    }))

  it.scoped("a job holding its slot is running, with its expected end; one that left the queue has no estimate", () =>
    Effect.gen(function*() {
      const { scheduler } = yield* TestTarget.scheduler([A], { concurrency: 1 })
      const first = yield* scheduler.ticket(A, "batch")
      const second = yield* scheduler.ticket(A, "batch")
      yield* scheduler.enqueue(first, () => Effect.void)
      yield* scheduler.enqueue(second, () => Effect.void)
      // Nothing measured yet: a place, no times.
      expect(yield* scheduler.estimate(first.id)).toEqual(Option.some({ _tag: "Running", startedAt: 0 }))
      expect(yield* scheduler.estimate(second.id)).toEqual(Option.some({ _tag: "Queued", position: 1 }))
      expect(yield* scheduler.position(second.id)).toEqual(Option.some(1))
      expect(yield* scheduler.release(first.id)).toBe("running")
      expect(yield* scheduler.estimate(first.id)).toEqual(Option.none())
      expect(yield* scheduler.estimate(second.id)).toEqual(Option.some({ _tag: "Running", startedAt: 0 }))
    }))
})
