import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, FastCheck as fc, TestClock } from "effect"
import {
  fifo,
  isSwap,
  place,
  type Policy,
  type PolicyInput,
  priorities,
  type Priority,
  residentModels,
  swapAware,
  type TargetState,
  type Waiting
} from "../src/scheduler/policy.ts"

const job = (seq: number, model: string, priority: Priority = "normal", enqueuedAt = 0): Waiting => ({
  id: `j${seq}`,
  seq,
  model,
  priority,
  enqueuedAt,
  attempts: 0
})

const input = (overrides: Partial<PolicyInput>): PolicyInput => ({
  waiting: [],
  running: [],
  resident: [],
  freeSlots: 1,
  now: 0,
  maxWait: 60_000,
  maxLoaded: 1,
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

/** ADR-0009 written as literally as possible (sorts, sets, finds): the oracle for swapAware. */
const reference: Policy = ({ freeSlots, maxLoaded, maxWait, now, resident, running, waiting }) => {
  if (freeSlots <= 0) return undefined
  const byAge = [...waiting].sort((a, b) => a.seq - b.seq)
  const canStart = (model: string) => running.includes(model) || new Set([...running, model]).size <= maxLoaded
  const overdue = byAge.find((j) => now - j.enqueuedAt > maxWait)
  if (overdue !== undefined) return canStart(overdue.model) ? overdue : undefined
  const top = priorities.find((p) => byAge.some((j) => j.priority === p))
  const klass = byAge.filter((j) => j.priority === top)
  const warm = klass.find((j) => (resident.includes(j.model) || running.includes(j.model)) && canStart(j.model))
  if (warm !== undefined) return warm
  const head = klass[0]
  return head !== undefined && canStart(head.model) ? head : undefined
}

interface Arrival {
  readonly model: string
  readonly priority: Priority
  readonly enqueuedAt: number
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
  const jobs = arrivals.map((a, i) => job(i + 1, a.model, a.priority, a.enqueuedAt))
  const starts = new Map<string, number>()
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
      maxLoaded: 1
    })
    // With a free slot and nothing running, something must start, or the queue would stall.
    expect(picked).toBeDefined()
    expect(waiting).toContain(picked)
    if (isSwap(picked!.model, { resident, running: [] })) swaps++
    resident = [picked!.model]
    starts.set(picked!.id, t)
    waiting = waiting.filter((j) => j !== picked)
    t += options.duration
  }
  return { jobs, starts, swaps }
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
})

const models = ["A", "B", "C", "D"] as const
const modelArb = fc.constantFrom(...models)
const priorityArb = fc.constantFrom(...priorities)

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
    running: fc.array(modelArb, { maxLength: 3 }),
    resident: fc.uniqueArray(modelArb, { maxLength: 3 }),
    freeSlots: fc.integer({ min: -1, max: 3 }),
    now: fc.constant(now),
    maxWait: fc.integer({ min: 0, max: 21 }).map((s) => s * 1_000),
    maxLoaded: fc.integer({ min: 1, max: 3 })
  })

  it.prop("agrees with the literal rules; picks a waiting job that can start, never without a slot", {
    input: inputArb
  }, ({ input }) => {
    const picked = swapAware(input)
    expect(picked).toBe(reference(input))
    if (input.freeSlots <= 0) expect(picked).toBeUndefined()
    if (picked !== undefined) {
      expect(input.waiting).toContain(picked)
      const loaded = new Set([...input.running, picked.model]).size
      expect(input.running.includes(picked.model) || loaded <= input.maxLoaded).toBe(true)
    }
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
