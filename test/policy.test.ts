import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, FastCheck as fc, TestClock } from "effect"
import {
  anonymous,
  fairShareSpan,
  fifo,
  isSwap,
  modelOfUnit,
  noneServed,
  place,
  type Policy,
  type PolicyInput,
  priorities,
  type Priority,
  residentModels,
  type Served,
  swapAware,
  type TargetState,
  unitOf,
  type Waiting
} from "../src/scheduler/policy.ts"

/** A job for `unit`: a model (`"A"`), or a model with load options (`"A num_ctx=8192"`). */
const job = (seq: number, unit: string, priority: Priority = "normal", enqueuedAt = 0, caller = anonymous): Waiting => ({
  id: `j${seq}`,
  seq,
  model: modelOfUnit(unit),
  ...(unit === modelOfUnit(unit) ? {} : { unit }),
  priority,
  enqueuedAt,
  attempts: 0,
  caller
})

const input = (overrides: Partial<PolicyInput>): PolicyInput => ({
  waiting: [],
  running: [],
  resident: [],
  freeSlots: 1,
  now: 0,
  maxWait: 60_000,
  maxLoaded: 1,
  served: noneServed,
  ...overrides
})

const pickId = (policy: Policy, overrides: Partial<PolicyInput>) => policy(input(overrides))?.id

/** One target's state for `place`. */
const target = (overrides: Partial<TargetState> = {}): TargetState => ({
  reachable: true,
  running: [],
  resident: [],
  freeSlots: 1,
  maxWait: 60_000,
  maxLoaded: 1,
  ...overrides
})

/** What the target loads for a job. */
const unit = (j: Waiting) => j.unit ?? j.model

/**
 * Whether a unit can start beside `running`: it runs already, or its model is not running
 * (with other options) and the target has room for one more.
 */
const startsBeside = (running: ReadonlyArray<string>, maxLoaded: number) => (u: string) =>
  running.includes(u) || (!running.some((r) => modelOfUnit(r) === modelOfUnit(u)) && new Set([...running, u]).size <= maxLoaded)

/** What every pick must respect: no model forced out while in use, no reload under running jobs. */
const expectStartable = (input: PolicyInput, picked: Waiting) => {
  expect(input.waiting).toContain(picked)
  expect(startsBeside(input.running, input.maxLoaded)(unit(picked))).toBe(true)
}

/** ADR-0009 written as literally as possible (sorts, sets, finds): the oracle for swapAware. */
const reference: Policy = ({ freeSlots, maxLoaded, maxWait, now, resident, running, waiting }) => {
  if (freeSlots <= 0) return undefined
  const byAge = [...waiting].sort((a, b) => a.seq - b.seq)
  const canStart = startsBeside(running, maxLoaded)
  const overdue = byAge.find((j) => now - j.enqueuedAt > maxWait)
  if (overdue !== undefined) return canStart(unit(overdue)) ? overdue : undefined
  const top = priorities.find((p) => byAge.some((j) => j.priority === p))
  const klass = byAge.filter((j) => j.priority === top)
  const warm = klass.find((j) => (resident.includes(unit(j)) || running.includes(unit(j))) && canStart(unit(j)))
  if (warm !== undefined) return warm
  const head = klass[0]
  return head !== undefined && canStart(unit(head)) ? head : undefined
}

interface Arrival {
  readonly model: string
  readonly priority: Priority
  readonly enqueuedAt: number
  readonly caller?: string
}

/**
 * One slot, jobs of a fixed duration: each time the slot frees, the jobs that arrived so far
 * are offered to the policy; the picked one runs and its model becomes the resident one.
 */
const simulate = (
  policy: Policy,
  arrivals: ReadonlyArray<Arrival>,
  options: { readonly duration: number; readonly maxWait: number }
) => {
  const jobs = arrivals.map((a, i) => job(i + 1, a.model, a.priority, a.enqueuedAt, a.caller))
  const starts = new Map<string, number>()
  // Kept as the Scheduler keeps it: every start counted, each caller's latest noted.
  const last = new Map<string, number>()
  const order: Array<Waiting> = []
  let waiting: Array<Waiting> = []
  let resident: ReadonlyArray<string> = []
  let next = 0
  let t = 0
  let swaps = 0
  while (starts.size < jobs.length) {
    while (next < jobs.length && jobs[next]!.enqueuedAt <= t) waiting.push(jobs[next++]!)
    if (waiting.length === 0) {
      t = jobs[next]!.enqueuedAt
      continue
    }
    const picked = policy({
      waiting,
      running: [],
      resident,
      freeSlots: 1,
      now: t,
      maxWait: options.maxWait,
      maxLoaded: 1,
      served: { starts: order.length, last }
    })
    // With a free slot and nothing running, something must start, or the queue would stall.
    expect(picked).toBeDefined()
    expect(waiting).toContain(picked)
    if (isSwap(unit(picked!), { resident, running: [] })) swaps++
    resident = [unit(picked!)]
    starts.set(picked!.id, t)
    order.push(picked!)
    last.set(picked!.caller, order.length)
    waiting = waiting.filter((j) => j !== picked)
    t += options.duration
  }
  return { jobs, starts, swaps, order }
}

describe("swapAware: slots", () => {
  it("starts nothing without a free slot", () => {
    const waiting = [job(1, "A", "interactive", 0)]
    expect(pickId(swapAware, { waiting, freeSlots: 0, resident: ["A"] })).toBeUndefined()
    expect(pickId(swapAware, { waiting, freeSlots: -1, resident: ["A"] })).toBeUndefined()
    // not even an overdue job
    expect(pickId(swapAware, { waiting, freeSlots: 0, now: 120_000 })).toBeUndefined()
    expect(pickId(swapAware, { waiting, freeSlots: 1 })).toBe("j1")
  })

  it("starts nothing when nothing waits", () => {
    expect(pickId(swapAware, { waiting: [], resident: ["A"], running: ["A"], freeSlots: 2 })).toBeUndefined()
  })

  it("with one slot and nothing running, any model can start (a swap is unavoidable)", () => {
    expect(pickId(swapAware, { waiting: [job(1, "B")], resident: ["A"] })).toBe("j1")
  })
})

describe("swapAware: max-wait aging (no starvation)", () => {
  it.effect("waiting exactly maxWait is not overdue; 1 ms past it is", () =>
    Effect.gen(function*() {
      const enqueuedAt = yield* Clock.currentTimeMillis
      const rare = job(1, "B", "batch", enqueuedAt)
      const hot = job(2, "A", "interactive", enqueuedAt)
      const pick = Clock.currentTimeMillis.pipe(
        Effect.map((now) => pickId(swapAware, { waiting: [rare, hot], resident: ["A"], now, maxWait: 1_000 }))
      )
      expect(yield* pick).toBe("j2")
      yield* TestClock.adjust("1 second")
      expect(yield* pick).toBe("j2")
      yield* TestClock.adjust("1 millis")
      // Older and overdue: beats the interactive job on the resident model.
      expect(yield* pick).toBe("j1")
    }))

  it("an overdue job beats a higher class and a resident model", () => {
    const waiting = [job(2, "A", "interactive", 5_000), job(1, "B", "batch", 0)]
    expect(pickId(swapAware, { waiting, resident: ["A"], now: 5_000, maxWait: 4_000 })).toBe("j1")
  })

  it("serves the oldest overdue job first, by seq (not by class, position or enqueue time)", () => {
    const waiting = [
      job(3, "C", "interactive", 0),
      job(2, "B", "batch", 100), // a retry: kept its seq, enqueue time says later
      job(4, "A", "interactive", 0),
      job(5, "A", "interactive", 9_000)
    ]
    expect(pickId(swapAware, { waiting, resident: ["A"], now: 10_000, maxWait: 5_000 })).toBe("j2")
  })

  it("an overdue job blocked by a running model holds the slot", () => {
    // 2 slots, the target holds one model, A is running: B cannot load without evicting it.
    const waiting = [job(1, "B", "batch", 0), job(2, "A", "interactive", 9_000), job(3, "A", "normal", 9_000)]
    const base = { waiting, running: ["A"], resident: ["A"], freeSlots: 1, now: 10_000, maxWait: 5_000 }
    expect(pickId(swapAware, base)).toBeUndefined()
    // Once A drains, the overdue job starts.
    expect(pickId(swapAware, { ...base, running: [], freeSlots: 2 })).toBe("j1")
    // If the target can hold both, it starts alongside.
    expect(pickId(swapAware, { ...base, maxLoaded: 2 })).toBe("j1")
  })

  it("an overdue job for the running model starts at once", () => {
    const waiting = [job(1, "A", "batch", 0), job(2, "B", "interactive", 9_000)]
    const picked = pickId(swapAware, {
      waiting,
      running: ["A"],
      resident: ["B"],
      freeSlots: 1,
      now: 10_000,
      maxWait: 5_000
    })
    expect(picked).toBe("j1")
  })
})

describe("swapAware: priority classes", () => {
  it("interactive > normal > batch, even against older jobs on the resident model", () => {
    const batch = job(1, "A", "batch")
    const normal = job(2, "B", "normal")
    const interactive = job(3, "C", "interactive")
    const base = { resident: ["A"], now: 1_000 }
    expect(pickId(swapAware, { ...base, waiting: [batch, normal, interactive] })).toBe("j3")
    expect(pickId(swapAware, { ...base, waiting: [interactive, batch] })).toBe("j3")
    expect(pickId(swapAware, { ...base, waiting: [batch, normal] })).toBe("j2")
    expect(pickId(swapAware, { ...base, waiting: [normal, interactive] })).toBe("j3")
    expect(pickId(swapAware, { ...base, waiting: [batch] })).toBe("j1")
  })

  it("a lower class never overtakes a blocked top class", () => {
    // 2 slots, maxLoaded 1, A running: the interactive B job waits for A to drain, and the
    // batch A job (which could start) must not lengthen that wait.
    const waiting = [job(1, "A", "batch"), job(2, "B", "interactive"), job(3, "A", "normal")]
    expect(pickId(swapAware, { waiting, running: ["A"], resident: ["A"], freeSlots: 1 })).toBeUndefined()
    expect(pickId(swapAware, { waiting, running: [], resident: ["A"], freeSlots: 2 })).toBe("j2")
  })
})

describe("swapAware: resident first, then the next model", () => {
  it("prefers the class's jobs on a resident model over older ones that need a load", () => {
    const waiting = [job(1, "B"), job(2, "C"), job(3, "A"), job(4, "A")]
    expect(pickId(swapAware, { waiting, resident: ["A"] })).toBe("j3")
  })

  it("among resident jobs, the oldest by seq wins (whatever its position or model)", () => {
    const waiting = [job(5, "A"), job(1, "C"), job(4, "B"), job(3, "A")]
    expect(pickId(swapAware, { waiting, resident: ["A", "B"], maxLoaded: 2 })).toBe("j3")
  })

  it("a running model counts as resident even when /api/ps has not caught up", () => {
    const waiting = [job(1, "B"), job(2, "A")]
    expect(pickId(swapAware, { waiting, running: ["A"], resident: [], freeSlots: 1 })).toBe("j2")
  })

  it("a resident model that cannot start now is not picked", () => {
    // B is listed as resident but A runs and the target holds one model.
    const waiting = [job(1, "B")]
    expect(pickId(swapAware, { waiting, running: ["A"], resident: ["B"], freeSlots: 1 })).toBeUndefined()
  })

  it("when no resident model has work in the class, its oldest job picks the next model", () => {
    // A has more jobs, but B's job is the oldest.
    const waiting = [job(3, "A"), job(2, "B"), job(4, "A"), job(5, "A")]
    expect(pickId(swapAware, { waiting, resident: ["C"] })).toBe("j2")
  })

  it("resident work in a lower class does not pull the top class onto the resident model", () => {
    const waiting = [job(1, "A", "batch"), job(2, "B", "interactive"), job(3, "C", "interactive")]
    expect(pickId(swapAware, { waiting, resident: ["A"] })).toBe("j2")
  })

  it("the class's oldest job waits for running jobs to drain rather than let another model in", () => {
    const waiting = [job(1, "B"), job(2, "C")]
    expect(pickId(swapAware, { waiting, running: ["A"], resident: ["A"], freeSlots: 3 })).toBeUndefined()
  })
})

describe("swapAware: concurrency and maxLoaded", () => {
  it("2 slots, maxLoaded 1: a B job does not start while A runs; maxLoaded 2: it does", () => {
    const waiting = [job(1, "B")]
    const base = { waiting, running: ["A"], resident: ["A"], freeSlots: 1 }
    expect(pickId(swapAware, { ...base, maxLoaded: 1 })).toBeUndefined()
    expect(pickId(swapAware, { ...base, maxLoaded: 2 })).toBe("j1")
  })

  it("counts distinct running models, and a running model can always take another job", () => {
    const b = [job(1, "B")]
    expect(pickId(swapAware, { waiting: b, running: ["A", "A"], freeSlots: 1, maxLoaded: 2 })).toBe("j1")
    expect(pickId(swapAware, { waiting: b, running: ["A", "C"], freeSlots: 1, maxLoaded: 2 })).toBeUndefined()
    const a = [job(1, "A")]
    expect(pickId(swapAware, { waiting: a, running: ["A", "C"], freeSlots: 1, maxLoaded: 2 })).toBe("j1")
  })

  it("treats maxLoaded below 1 as 1 (the target always holds the model it runs)", () => {
    expect(pickId(swapAware, { waiting: [job(1, "A")], maxLoaded: 0 })).toBe("j1")
    expect(pickId(swapAware, { waiting: [job(1, "B")], running: ["A"], freeSlots: 1, maxLoaded: 0 })).toBeUndefined()
  })
})

describe("fifo", () => {
  it("takes the oldest by seq and ignores residency, maxWait and maxLoaded", () => {
    const waiting = [job(3, "A", "interactive"), job(2, "B", "batch", 0)]
    expect(pickId(fifo, { waiting, resident: ["A"], now: 0, maxWait: 0 })).toBe("j2")
    expect(pickId(fifo, { waiting, running: ["A"], freeSlots: 1, maxLoaded: 1 })).toBe("j2")
    expect(pickId(fifo, { waiting, freeSlots: 0 })).toBeUndefined()
  })
})

describe("isSwap", () => {
  it("is a swap only when the model is neither resident nor running", () => {
    expect(isSwap("A", { resident: [], running: [] })).toBe(true)
    expect(isSwap("A", { resident: ["B"], running: ["C"] })).toBe(true)
    expect(isSwap("A", { resident: ["A"], running: [] })).toBe(false)
    expect(isSwap("A", { resident: [], running: ["A"] })).toBe(false)
    expect(isSwap("A", { resident: ["B", "A"], running: ["C"] })).toBe(false)
  })
})

describe("units: a model with its load options", () => {
  const A8k = "A num_ctx=8192"

  it("a unit is the model's key, plus its options when any is set", () => {
    expect(unitOf("A", "")).toBe("A")
    expect(unitOf("A", "num_ctx=8192")).toBe(A8k)
    expect(modelOfUnit(A8k)).toBe("A")
    expect(modelOfUnit("A")).toBe("A")
  })

  it("another unit of the resident model is a swap (Ollama reloads it); the same unit is not", () => {
    expect(isSwap(A8k, { resident: ["A"], running: [] })).toBe(true)
    expect(isSwap("A", { resident: [A8k], running: [] })).toBe(true)
    expect(isSwap(A8k, { resident: [A8k], running: [] })).toBe(false)
    expect(isSwap(A8k, { resident: [], running: [A8k] })).toBe(false)
  })

  it("jobs of the resident unit go first; those of the model with other options wait like another model's", () => {
    const waiting = [job(1, A8k), job(2, "A"), job(3, A8k), job(4, "A")]
    expect(pickId(swapAware, { waiting, resident: ["A"] })).toBe("j2")
    expect(pickId(swapAware, { waiting, resident: [A8k] })).toBe("j1")
    // Nothing resident: the oldest picks the unit, as it picks a model.
    expect(pickId(swapAware, { waiting: [job(2, "A"), job(1, A8k)], resident: ["B"] })).toBe("j1")
  })

  it("a job for another unit of a running model waits for it to drain, even with room for another model", () => {
    const base = { running: ["A"], resident: ["A"], freeSlots: 1, maxLoaded: 2 }
    expect(pickId(swapAware, { ...base, waiting: [job(1, A8k)] })).toBeUndefined()
    expect(pickId(swapAware, { ...base, waiting: [job(1, A8k), job(2, "B")] })).toBeUndefined() // the head holds the slot
    expect(pickId(swapAware, { ...base, waiting: [job(1, "B")] })).toBe("j1")
    expect(pickId(swapAware, { ...base, waiting: [job(1, A8k), job(2, "A")] })).toBe("j2")
    // A running with options: a job for A's defaults waits, and a resident A is not warm then.
    expect(pickId(swapAware, { ...base, running: [A8k], waiting: [job(1, "A")] })).toBeUndefined()
    expect(pickId(swapAware, { ...base, running: [A8k], waiting: [job(1, "A"), job(2, A8k)] })).toBe("j2")
    // Drained: it starts (a reload).
    expect(pickId(swapAware, { ...base, running: [], freeSlots: 2, waiting: [job(1, A8k)] })).toBe("j1")
  })

  it("30 jobs interleaved over two num_ctx of one model and another model, 1 slot: at most 3 loads; FIFO loads 30 times", () => {
    const arrivals = Array.from({ length: 30 }, (_, i): Arrival => ({
      model: ["A", A8k, "B"][i % 3]!,
      priority: "batch",
      enqueuedAt: 0
    }))
    const options = { duration: 1_000, maxWait: 60_000 }
    expect(simulate(swapAware, arrivals, options).swaps).toBe(3)
    expect(simulate(fifo, arrivals, options).swaps).toBe(30)
  })
})

describe("residentModels", () => {
  const now = 1_000

  it("drops entries that expire now or earlier", () => {
    const ps = [{ model: "A", expiresAt: now }, { model: "B", expiresAt: now + 1 }, { model: "C", expiresAt: 0 }]
    expect(residentModels({ ps, lastRun: [], now, maxLoaded: 3 })).toEqual(["B"])
  })

  it("counts what foreman ran last, which /api/ps may not show yet", () => {
    expect(residentModels({ ps: [], lastRun: [{ model: "A", expiresAt: now + 300_000 }], now, maxLoaded: 1 }))
      .toEqual(["A"])
    // A stale poll says B; A finished after it and evicted B on a one-model target.
    const ps = [{ model: "B", expiresAt: now + 100_000 }]
    const lastRun = [{ model: "A", expiresAt: now + 300_000 }]
    expect(residentModels({ ps, lastRun, now, maxLoaded: 1 })).toEqual(["A"])
    expect(residentModels({ ps, lastRun, now, maxLoaded: 2 })).toEqual(["A", "B"])
  })

  it("lists each model once, with its latest expiry", () => {
    const ps = [{ model: "A", expiresAt: now + 10 }, { model: "B", expiresAt: now + 20 }]
    const lastRun = [{ model: "A", expiresAt: now + 30 }, { model: "B", expiresAt: now + 5 }]
    expect(residentModels({ ps, lastRun, now, maxLoaded: 5 })).toEqual(["A", "B"])
    // The dedup keeps A's later expiry: trimmed to one, A (now + 30) beats B (now + 20).
    expect(residentModels({ ps, lastRun, now, maxLoaded: 1 })).toEqual(["A"])
  })

  it("an expired duplicate does not hide a live one", () => {
    const ps = [{ model: "A", expiresAt: now - 1 }]
    const lastRun = [{ model: "A", expiresAt: now + 1 }]
    expect(residentModels({ ps, lastRun, now, maxLoaded: 1 })).toEqual(["A"])
  })

  it("keeps the maxLoaded models with the latest expiry, most recent first", () => {
    const ps = [
      { model: "A", expiresAt: now + 100 },
      { model: "B", expiresAt: now + 300 },
      { model: "C", expiresAt: now + 200 },
      { model: "D", expiresAt: now + 400 }
    ]
    expect(residentModels({ ps, lastRun: [], now, maxLoaded: 2 })).toEqual(["D", "B"])
    expect(residentModels({ ps, lastRun: [], now, maxLoaded: 4 })).toEqual(["D", "B", "C", "A"])
    expect(residentModels({ ps, lastRun: [], now, maxLoaded: 0 })).toEqual(["D"])
    expect(residentModels({ ps: [], lastRun: [], now, maxLoaded: 2 })).toEqual([])
  })

  describe("units", () => {
    const A8k = "A num_ctx=8192"
    const ranAt = now - 10

    it("a model in /api/ps is the unit foreman last ran on it, else the model with the defaults", () => {
      const ps = [{ model: "A", expiresAt: now + 100 }, { model: "B", expiresAt: now + 50 }]
      const lastRun = [{ model: A8k, expiresAt: now + 10, endedAt: ranAt }]
      expect(residentModels({ ps, lastRun, now, maxLoaded: 2 })).toEqual([A8k, "B"])
      // Once foreman's own expiry is past, /api/ps still says the model is there, with those options.
      expect(residentModels({ ps, lastRun, now: now + 20, maxLoaded: 2 })).toEqual([A8k, "B"])
      expect(residentModels({ ps, lastRun: [], now, maxLoaded: 2 })).toEqual(["A", "B"])
    })

    it("a context length Ollama would not give the options foreman ran: someone loaded it again since", () => {
      const lastRun = [{ model: A8k, expiresAt: now + 300_000, endedAt: ranAt }]
      const ps = (contextLength: number) => [{ model: "A", expiresAt: now + 100_000, contextLength }]
      // Larger than asked, in a /api/ps read after the run: another client's load, taken as the defaults.
      expect(residentModels({ ps: ps(32_768), psAt: now, lastRun, now, maxLoaded: 1 })).toEqual(["A"])
      // As asked, or smaller (the model's training context caps it): foreman's unit.
      expect(residentModels({ ps: ps(8_192), psAt: now, lastRun, now, maxLoaded: 1 })).toEqual([A8k])
      expect(residentModels({ ps: ps(4_096), psAt: now, lastRun, now, maxLoaded: 1 })).toEqual([A8k])
      // Read before the run ended (a poll that lags foreman's own reload): it says nothing of it.
      expect(residentModels({ ps: ps(32_768), psAt: ranAt, lastRun, now, maxLoaded: 1 })).toEqual([A8k])
      expect(residentModels({ ps: ps(32_768), lastRun, now, maxLoaded: 1 })).toEqual([A8k])
      // A vision model loads at least 2048: not a contradiction of a smaller num_ctx.
      const small = [{ model: "A num_ctx=1024", expiresAt: now + 300_000, endedAt: ranAt }]
      expect(residentModels({ ps: ps(2_048), psAt: now, lastRun: small, now, maxLoaded: 1 })).toEqual(["A num_ctx=1024"])
      // With the defaults foreman cannot tell: its unit stands.
      const plain = [{ model: "A", expiresAt: now + 300_000, endedAt: ranAt }]
      expect(residentModels({ ps: ps(32_768), psAt: now, lastRun: plain, now, maxLoaded: 1 })).toEqual(["A"])
    })
  })
})

// Two units of A (its defaults and a num_ctx) and of B (a context shift): another unit of a
// model is another model to the policy, except that it cannot start beside its own.
const models = ["A", "B", "C", "D", "A num_ctx=8192", "B shift=false"] as const
const modelArb = fc.constantFrom(...models)
const priorityArb = fc.constantFrom(...priorities)

/** The target's side of a policy input at `now`, random within the bounds every property uses. */
const stateArbs = (now: number) => ({
  running: fc.array(modelArb, { maxLength: 3 }),
  resident: fc.uniqueArray(modelArb, { maxLength: 3 }),
  freeSlots: fc.integer({ min: -1, max: 3 }),
  now: fc.constant(now),
  maxWait: fc.integer({ min: 0, max: 21 }).map((s) => s * 1_000),
  maxLoaded: fc.integer({ min: 1, max: 3 })
})

describe("swapAware: properties", () => {
  // Ages and maxWait on a coarse grid so "exactly maxWait" comes up often.
  const now = 20_000
  const waitingArb = fc.uniqueArray(
    fc.record({
      seq: fc.integer({ min: 1, max: 1_000 }),
      model: modelArb,
      priority: priorityArb,
      age: fc.integer({ min: 0, max: 20 })
    }),
    { selector: (j) => j.seq, maxLength: 25 }
  ).map((js) => js.map((j) => job(j.seq, j.model, j.priority, now - j.age * 1_000)))
  const inputArb: fc.Arbitrary<PolicyInput> = fc.record({
    waiting: waitingArb,
    ...stateArbs(now),
    served: fc.constant(noneServed)
  })

  it.prop("agrees with the literal rules; picks a waiting job that can start, never without a slot", {
    input: inputArb
  }, ({ input }) => {
    const picked = swapAware(input)
    expect(picked).toBe(reference(input))
    if (input.freeSlots <= 0) expect(picked).toBeUndefined()
    if (picked !== undefined) expectStartable(input, picked)
  }, { fastCheck: { numRuns: 2_000, seed: 20261122 } })

  it.prop("one target: the same pick as the policy for that target, on it", { input: inputArb }, ({ input }) => {
    const { maxLoaded, maxWait, now, resident, running, waiting } = input
    const state = target({ resident, running, freeSlots: input.freeSlots, maxWait, maxLoaded })
    const picked = swapAware(input)
    expect(place(swapAware)({ waiting, targets: [state], now })).toEqual(
      picked === undefined ? undefined : { job: picked, target: 0 }
    )
  }, { fastCheck: { numRuns: 500, seed: 20261123 } })

  const duration = 1_000
  const arrivalsArb = fc.array(
    fc.record({
      // Skewed so one model is rare and would starve without aging.
      model: fc.constantFrom("A", "A", "A", "B", "B", "C"),
      priority: priorityArb,
      gap: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3 * duration }))
    }),
    { minLength: 1, maxLength: 40 }
  ).map((rs) => {
    let at = 0
    return rs.map(({ gap, model, priority }): Arrival => ({ model, priority, enqueuedAt: (at += gap) }))
  })

  it.prop("serves every job, and no job waits past maxWait + (older overdue jobs + 1) x job time", {
    arrivals: arrivalsArb,
    maxWait: fc.integer({ min: 0, max: 10 }).map((s) => s * duration)
  }, ({ arrivals, maxWait }) => {
    const { jobs, starts } = simulate(swapAware, arrivals, { duration, maxWait })
    expect(starts.size).toBe(jobs.length)
    for (const j of jobs) {
      const overdueAt = j.enqueuedAt + maxWait
      // Once j is overdue, only the job in flight and older overdue jobs may go before it.
      const olderServedAfter = jobs.filter((o) => o.seq < j.seq && starts.get(o.id)! > overdueAt).length
      expect(starts.get(j.id)! - j.enqueuedAt).toBeLessThanOrEqual(maxWait + (olderServedAfter + 1) * duration)
    }
  }, { fastCheck: { numRuns: 500, seed: 20261122 } })
})

describe("swapAware: the point of it", () => {
  it("30 jobs interleaved over 3 models, 1 slot: at most 3 loads; FIFO loads 30 times", () => {
    const arrivals = Array.from({ length: 30 }, (_, i): Arrival => ({
      model: "ABC"[i % 3]!,
      priority: "batch",
      enqueuedAt: 0
    }))
    const options = { duration: 1_000, maxWait: 60_000 }
    const aware = simulate(swapAware, arrivals, options)
    const naive = simulate(fifo, arrivals, options)
    expect(aware.swaps).toBeLessThanOrEqual(3)
    expect(naive.swaps).toBe(30)
    expect(aware.starts.size).toBe(30)
  })
})

describe("place: the queue over the targets' states", () => {
  it("a target not reachable, or with no free slot, gets nothing; the next one is offered the queue", () => {
    const waiting = [job(1, "A"), job(2, "B")]
    expect(place(swapAware)({ waiting, targets: [target({ reachable: false })], now: 0 })).toBeUndefined()
    expect(place(swapAware)({ waiting, targets: [target({ freeSlots: 0 }), target({ reachable: false })], now: 0 }))
      .toBeUndefined()
    expect(place(swapAware)({ waiting, targets: [target({ reachable: false }), target({ resident: ["B"] })], now: 0 }))
      .toEqual({ job: waiting[1], target: 1 })
    expect(place(swapAware)({ waiting, targets: [], now: 0 })).toBeUndefined()
  })
})

/**
 * Fair share written as literally as possible (sets, sorts, finds): the oracle for swapAware
 * with several callers. One caller: `reference`.
 */
const fairReference: Policy = (input) => {
  const { freeSlots, maxLoaded, maxWait, now, resident, running, served, waiting } = input
  if (freeSlots <= 0) return undefined
  const byAge = [...waiting].sort((a, b) => a.seq - b.seq)
  if (byAge.some((j) => now - j.enqueuedAt > maxWait)) return reference(input)
  const top = priorities.find((p) => byAge.some((j) => j.priority === p))
  const klass = byAge.filter((j) => j.priority === top)
  const callers = [...new Set(klass.map((j) => j.caller))]
  if (callers.length <= 1) return reference(input)
  const canStart = startsBeside(running, maxLoaded)
  const isWarm = (j: Waiting) => (resident.includes(unit(j)) || running.includes(unit(j))) && canStart(unit(j))
  const since = (c: string) => served.last.has(c) ? served.starts - served.last.get(c)! : Number.POSITIVE_INFINITY
  const headOf = (c: string) => klass.find((j) => j.caller === c)!
  const warmOf = (c: string) => klass.find((j) => j.caller === c && isWarm(j))
  // Least recently served first; never-served callers tie, broken by the job named.
  const leastRecent = (cs: ReadonlyArray<string>, job: (c: string) => Waiting) =>
    [...cs].sort((a, b) => since(a) === since(b) ? job(a).seq - job(b).seq : since(b) > since(a) ? 1 : -1)[0]
  const startable = (j: Waiting) => canStart(unit(j)) ? j : undefined
  const due = leastRecent(callers, headOf)!
  if (since(due) >= fairShareSpan * (callers.length - 1)) return warmOf(due) ?? startable(headOf(due))
  const warmCallers = callers.filter((c) => warmOf(c) !== undefined)
  if (warmCallers.length > 0) return warmOf(leastRecent(warmCallers, (c) => warmOf(c)!)!)
  return startable(headOf(due))
}

/** `served` from each caller's latest start, counted back from `starts`. */
const servedAgo = (starts: number, ago: Record<string, number>): Served => ({
  starts,
  last: new Map(Object.entries(ago).map(([caller, n]) => [caller, starts - n]))
})

describe("swapAware: fair share between callers", () => {
  const A = "team-a"
  const B = "team-b"
  const C = "team-c"

  it("one caller: its name and history change nothing", () => {
    const waiting = [job(1, "B", "normal", 0, A), job(2, "A", "normal", 0, A)]
    for (const served of [noneServed, servedAgo(100, { [A]: 0 }), servedAgo(100, { [A]: 99 })]) {
      expect(pickId(swapAware, { waiting, resident: ["A"], served })).toBe("j2")
    }
  })

  it("a caller never served goes next with its oldest job, even if that loads a model", () => {
    const waiting = [job(1, "A", "batch", 0, A), job(2, "A", "batch", 0, A), job(3, "B", "batch", 0, B)]
    expect(pickId(swapAware, { waiting, resident: ["A"], served: servedAgo(10, { [A]: 0 }) })).toBe("j3")
  })

  it("a caller not yet due waits while another caller's jobs use the resident model (no swap)", () => {
    const waiting = [job(1, "B", "batch", 0, B), job(2, "A", "batch", 0, A), job(3, "A", "batch", 0, A)]
    // B was served 1..3 starts ago: A's resident work goes first.
    for (let ago = 1; ago < fairShareSpan; ago++) {
      expect(pickId(swapAware, { waiting, resident: ["A"], served: servedAgo(10, { [A]: 0, [B]: ago }) })).toBe("j2")
    }
  })

  it("fairShareSpan starts per other caller since its last: due, its job loads its model", () => {
    const waiting = [job(1, "B", "batch", 0, B), job(2, "A", "batch", 0, A), job(3, "C", "batch", 0, C)]
    const two = waiting.slice(0, 2)
    expect(pickId(swapAware, { waiting: two, resident: ["A"], served: servedAgo(10, { [A]: 0, [B]: fairShareSpan }) }))
      .toBe("j1")
    // Three callers waiting: the span counts per other caller.
    const three = { waiting, resident: ["A"] }
    expect(pickId(swapAware, { ...three, served: servedAgo(20, { [A]: 0, [B]: 2 * fairShareSpan - 1, [C]: 1 }) })).toBe("j2")
    expect(pickId(swapAware, { ...three, served: servedAgo(20, { [A]: 0, [B]: 2 * fairShareSpan, [C]: 1 }) })).toBe("j1")
  })

  it("the least recently served due caller goes first; never-served callers by their oldest job", () => {
    const waiting = [job(1, "A", "batch", 0, A), job(2, "B", "batch", 0, B), job(3, "C", "batch", 0, C)]
    expect(pickId(swapAware, { waiting, resident: ["A"], served: servedAgo(30, { [A]: 0, [B]: 20, [C]: 25 }) })).toBe("j3")
    expect(pickId(swapAware, { waiting, resident: ["A"], served: servedAgo(30, { [A]: 0 }) })).toBe("j2")
  })

  it("a due caller's job on the resident model comes before its older one that needs a load", () => {
    const waiting = [job(1, "B", "batch", 0, B), job(2, "A", "batch", 0, A), job(3, "A", "batch", 0, B)]
    expect(pickId(swapAware, { waiting, resident: ["A"], served: servedAgo(10, { [A]: 0 }) })).toBe("j3")
  })

  it("on the resident model, callers take turns: the least recently served one's oldest job", () => {
    const waiting = [job(1, "A", "batch", 0, A), job(2, "A", "batch", 0, A), job(3, "A", "batch", 0, B)]
    // B's latest start was 1 start ago, A's just now: B's turn, though A's jobs are older.
    expect(pickId(swapAware, { waiting, resident: ["A"], served: servedAgo(10, { [A]: 0, [B]: 1 }) })).toBe("j3")
    expect(pickId(swapAware, { waiting, resident: ["A"], served: servedAgo(10, { [A]: 1, [B]: 0 }) })).toBe("j1")
  })

  it("with no work on a resident model, the least recently served caller picks the next model", () => {
    // A has the class's oldest job, but B was served longer ago.
    const waiting = [job(1, "B", "batch", 0, A), job(2, "C", "batch", 0, B)]
    expect(pickId(swapAware, { waiting, resident: ["A"], served: servedAgo(10, { [A]: 0, [B]: 1 }) })).toBe("j2")
  })

  it("overdue jobs and higher classes come first: fair share is within the class", () => {
    const served = servedAgo(10, { [A]: 0 })
    const higher = [job(1, "B", "batch", 0, B), job(2, "A", "interactive", 0, A)]
    expect(pickId(swapAware, { waiting: higher, resident: ["A"], served })).toBe("j2")
    const overdue = [job(1, "A", "batch", 0, A), job(2, "B", "batch", 5_000, B)]
    expect(pickId(swapAware, { waiting: overdue, resident: ["B"], now: 6_000, maxWait: 5_000, served })).toBe("j1")
  })

  it("a due caller's job that cannot start holds the slot (it is not overtaken)", () => {
    const waiting = [job(1, "B", "batch", 0, B), job(2, "A", "batch", 0, A)]
    const base = { waiting, running: ["A"], resident: ["A"], freeSlots: 1, served: servedAgo(10, { [A]: 0 }) }
    expect(pickId(swapAware, base)).toBeUndefined()
    expect(pickId(swapAware, { ...base, maxLoaded: 2 })).toBe("j1")
  })

  const now = 20_000
  const callerArb = fc.constantFrom(anonymous, A, B, C)
  const servedArb: fc.Arbitrary<Served> = fc.record({
    starts: fc.constant(50),
    // Ties (equal latest starts, callers never served) come up often.
    last: fc.dictionary(callerArb, fc.integer({ min: 30, max: 50 })).map((d) => new Map(Object.entries(d)))
  })
  const manyCallersArb: fc.Arbitrary<PolicyInput> = fc.record({
    waiting: fc.uniqueArray(
      fc.record({
        seq: fc.integer({ min: 1, max: 1_000 }),
        model: modelArb,
        priority: priorityArb,
        age: fc.integer({ min: 0, max: 20 }),
        caller: callerArb
      }),
      { selector: (j) => j.seq, maxLength: 25 }
    ).map((js) => js.map((j) => job(j.seq, j.model, j.priority, now - j.age * 1_000, j.caller))),
    ...stateArbs(now),
    served: servedArb
  })

  it.prop("one caller, any name and history: exactly the one-caller rules", {
    input: manyCallersArb,
    caller: callerArb
  }, ({ caller, input }) => {
    const one = { ...input, waiting: input.waiting.map((j) => ({ ...j, caller })) }
    expect(swapAware(one)).toBe(reference(one))
  }, { fastCheck: { numRuns: 1_000, seed: 20261201 } })

  it.prop("several callers: agrees with the literal rules; picks a waiting job that can start", {
    input: manyCallersArb
  }, ({ input }) => {
    const picked = swapAware(input)
    expect(picked).toBe(fairReference(input))
    if (picked !== undefined) expectStartable(input, picked)
  }, { fastCheck: { numRuns: 2_000, seed: 20261202 } })

  const duration = 1_000
  it.prop("two callers, one class, no aging: at most fairShareSpan of one's jobs start while the other waits", {
    arrivals: fc.array(
      fc.record({
        model: fc.constantFrom("A", "A", "A", "B", "C"),
        caller: fc.constantFrom(A, A, A, B),
        gap: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 * duration }))
      }),
      { minLength: 1, maxLength: 40 }
    )
  }, ({ arrivals }) => {
    let at = 0
    const timed = arrivals.map(({ caller, gap, model }): Arrival => ({ model, caller, priority: "batch", enqueuedAt: (at += gap) }))
    const { jobs, order, starts } = simulate(swapAware, timed, { duration, maxWait: Number.POSITIVE_INFINITY })
    for (const [i, picked] of order.entries()) {
      const t = starts.get(picked.id)!
      // Jobs of the other caller waiting at this start: it must have had one of the last span + 1 starts.
      const starved = jobs.some((j) => j.caller !== picked.caller && j.enqueuedAt <= t && starts.get(j.id)! > t)
      if (!starved || i < fairShareSpan) continue
      const recent = order.slice(i - fairShareSpan, i + 1)
      const waitingSince = Math.min(...jobs.filter((j) => j.caller !== picked.caller && j.enqueuedAt <= t && starts.get(j.id)! > t)
        .map((j) => j.enqueuedAt))
      // Only once it has waited through the whole window does the window have to hold one of its starts.
      if (starts.get(recent[0]!.id)! < waitingSince) continue
      expect(recent.some((j) => j.caller !== picked.caller)).toBe(true)
    }
  }, { fastCheck: { numRuns: 500, seed: 20261203 } })
})

describe("swapAware: fair share, the point of it", () => {
  // A holds 100 batch jobs over 3 models; B sends 5 batch jobs 10 job-times later. One slot,
  // one model held, no aging (max-wait never fires): the bound is fair share's own.
  const options = { duration: 1_000, maxWait: Number.POSITIVE_INFINITY }
  const backlog = Array.from({ length: 100 }, (_, i): Arrival => ({
    model: "abc"[i % 3]!,
    priority: "batch",
    enqueuedAt: 0,
    caller: "team-a"
  }))
  const workload = (model: string) => [
    ...backlog,
    ...Array.from({ length: 5 }, (): Arrival => ({ model, priority: "batch", enqueuedAt: 10_000, caller: "team-b" }))
  ]
  /** For each of B's jobs, how many of A's started after B's jobs arrived and before it. */
  const behind = (run: ReturnType<typeof simulate>) =>
    run.order.flatMap((j, i) =>
      j.caller === "team-b"
        ? [run.order.slice(0, i).filter((o) => o.caller === "team-a" && run.starts.get(o.id)! >= j.enqueuedAt).length]
        : []
    )
  const oneCaller = (arrivals: ReadonlyArray<Arrival>) => arrivals.map(({ caller: _, ...a }) => a)

  it("B's jobs on a model A's backlog also needs: each waits behind at most 4 of A's; a cold model costs one load", () => {
    for (const model of ["a", "b", "c"]) {
      const two = simulate(swapAware, workload(model), options)
      const one = simulate(swapAware, oneCaller(workload(model)), options)
      // Alone, B's jobs wait for their model's turn: up to two thirds of A's backlog.
      expect(Math.max(...behind({ ...one, order: one.order.map((j) => ({ ...j, caller: j.seq > 100 ? "team-b" : "team-a" })) })))
        .toBeGreaterThanOrEqual(model === "a" ? 0 : 30)
      // Shared: B's first goes next, then one of A's between each of B's (they share the model).
      expect(behind(two)).toEqual([0, 1, 2, 3, 4])
      expect(Math.max(...behind(two))).toBeLessThanOrEqual(fairShareSpan)
      expect(two.starts.size).toBe(105)
      // On the resident model, fair share costs no load; on another, B's model loads early and
      // the model it interrupted loads once more: the one-caller figure plus one.
      expect(two.swaps).toBe(one.swaps + (model === "a" ? 0 : 1))
      expect(one.swaps).toBe(3)
    }
  })

  it("B's jobs over several models: each waits behind at most 4 x (its turn) of A's, one extra load per turn at most", () => {
    const arrivals = [
      ...backlog,
      ...["b", "c", "a", "b", "c"].map((model): Arrival => ({ model, priority: "batch", enqueuedAt: 10_000, caller: "team-b" }))
    ]
    const two = simulate(swapAware, arrivals, options)
    const one = simulate(swapAware, oneCaller(arrivals), options)
    for (const [k, n] of behind(two).entries()) expect(n).toBeLessThanOrEqual(fairShareSpan * k)
    expect(two.swaps).toBeLessThanOrEqual(one.swaps + 5)
  })
})
