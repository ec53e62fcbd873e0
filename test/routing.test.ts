/** Routing across several targets (issue 17): `place` with `routable`, a pure function. */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { anonymous, hasRoom, isWarm, loadedWith, place, routable, swapAware, type TargetState, type Waiting } from "../src/scheduler/policy.ts"

const job = (seq: number, model: string, pin?: string): Waiting => ({
  id: `j${seq}`,
  seq,
  model,
  priority: "normal",
  enqueuedAt: 0,
  attempts: 0,
  caller: anonymous,
  ...(pin === undefined ? {} : { target: pin })
})

const target = (name: string, models: ReadonlyArray<string>, overrides: Partial<TargetState> = {}): TargetState => ({
  name,
  has: (model) => models.includes(model),
  reachable: true,
  running: [],
  resident: [],
  freeSlots: 1,
  maxWait: 60_000,
  maxLoaded: 1,
  ...overrides
})

const decide = place(swapAware)
const where = (jobs: ReadonlyArray<Waiting>, targets: ReadonlyArray<TargetState>) => {
  const placed = decide({ waiting: jobs, targets, now: 0 })
  return placed === undefined ? undefined : { job: placed.job.id, target: targets[placed.target]!.name }
}

describe("routing", () => {
  it("a model one target has goes there, whatever the order of the targets", () => {
    const targets = [target("desk", ["a", "b"]), target("laptop", ["b", "c"])]
    expect(where([job(1, "c")], targets)).toEqual({ job: "j1", target: "laptop" })
    expect(where([job(1, "a")], targets)).toEqual({ job: "j1", target: "desk" })
    expect(where([job(1, "c")], [...targets].reverse())).toEqual({ job: "j1", target: "laptop" })
  })

  it("a model both have goes where it is loaded, even when the other target comes first", () => {
    const targets = [target("desk", ["a", "b"]), target("laptop", ["b", "c"], { resident: ["b"] })]
    expect(where([job(1, "b")], targets)).toEqual({ job: "j1", target: "laptop" })
  })

  it("warm on a busy target: it starts elsewhere where it evicts nothing, else it waits for its warm one", () => {
    const busyWarm = target("laptop", ["b"], { running: ["b"], freeSlots: 0 })
    expect(where([job(1, "b")], [target("desk", ["a", "b"]), busyWarm])).toEqual({ job: "j1", target: "desk" })
    const deskFull = target("desk", ["a", "b"], { resident: ["a"] })
    expect(where([job(1, "b")], [deskFull, busyWarm])).toBeUndefined()
  })

  it("warm nowhere: a target with room before one that must evict", () => {
    const targets = [target("desk", ["a", "b"], { resident: ["a"] }), target("laptop", ["b"])]
    expect(where([job(1, "b")], targets)).toEqual({ job: "j1", target: "laptop" })
    // No room anywhere: the first that has it, evicting.
    expect(where([job(1, "b")], [targets[0]!, target("laptop", ["b", "c"], { resident: ["c"] })])).toEqual({ job: "j1", target: "desk" })
  })

  it("a pinned job runs only on its target (names compare case-insensitively), warm elsewhere or not", () => {
    const targets = [target("desk", ["b"]), target("laptop", ["b"], { resident: ["b"] })]
    expect(where([job(1, "b", "DESK")], targets)).toEqual({ job: "j1", target: "desk" })
    expect(where([job(1, "b", "desk")], [targets[0]!, targets[1]!].map((t) => t.name === "desk" ? { ...t, freeSlots: 0 } : t))).toBeUndefined()
  })

  it("a model only a sleeping target has waits for it; one the awake target has too runs there", () => {
    const asleep = target("laptop", ["b", "c"], { reachable: false, resident: ["b"] })
    const desk = target("desk", ["a", "b"])
    expect(where([job(1, "c")], [desk, asleep])).toBeUndefined()
    expect(where([job(1, "c"), job(2, "b")], [desk, asleep])).toEqual({ job: "j2", target: "desk" })
  })

  it("a model no target has may run anywhere (the target decides), as may any job on an inventory never read", () => {
    expect(where([job(1, "z")], [target("desk", ["a"], { resident: ["a"] }), target("laptop", ["b"])])).toEqual({ job: "j1", target: "laptop" })
    const unknown: TargetState = { ...target("desk", []), has: undefined }
    expect(where([job(1, "b")], [unknown, target("laptop", ["b"], { freeSlots: 0 })])).toEqual({ job: "j1", target: "desk" })
  })

  it("one target: every job is routable, exactly as before", () => {
    const only = [{ reachable: true, running: [], resident: ["a"], freeSlots: 1, maxWait: 60_000, maxLoaded: 1 }]
    expect(routable(job(1, "z"), 0, only)).toBe(true)
    expect(where([job(1, "b"), job(2, "a")], only)).toEqual({ job: "j2", target: undefined })
  })

  it("isWarm and hasRoom", () => {
    expect(isWarm("a", { resident: ["a"], running: [] })).toBe(true)
    expect(isWarm("a", { resident: [], running: ["a"] })).toBe(true)
    expect(isWarm("a num_ctx=8192", { resident: ["a"], running: [] })).toBe(false)
    expect(hasRoom("b", { resident: ["a"], running: [], maxLoaded: 2 })).toBe(true)
    expect(hasRoom("b", { resident: ["a"], running: [], maxLoaded: 1 })).toBe(false)
    // Another unit of a loaded model is a reload, not room.
    expect(hasRoom("a num_ctx=8192", { resident: ["a"], running: [], maxLoaded: 2 })).toBe(false)
  })

  it("never places a job on a target without its model (when one has it), asleep, full, or not the pinned one", () => {
    const models = ["a", "b", "c"]
    const arbTarget = (name: string) =>
      fc.record({
        has: fc.subarray(models),
        resident: fc.subarray(models, { maxLength: 2 }),
        running: fc.subarray(models, { maxLength: 1 }),
        freeSlots: fc.integer({ min: 0, max: 2 }),
        reachable: fc.boolean(),
        maxLoaded: fc.integer({ min: 1, max: 2 })
      }).map(({ has, ...rest }): TargetState => ({ ...target(name, has), ...rest }))
    const arbJobs = fc.array(
      fc.record({ model: fc.constantFrom(...models), pin: fc.option(fc.constantFrom("t0", "t1", "t2"), { nil: undefined }) }),
      { minLength: 1, maxLength: 6 }
    ).map((specs) => specs.map((s, i) => job(i + 1, s.model, s.pin)))
    fc.assert(
      fc.property(fc.tuple(arbTarget("t0"), arbTarget("t1"), arbTarget("t2")), arbJobs, (targets, jobs) => {
        const placed = decide({ waiting: jobs, targets, now: 0 })
        if (placed === undefined) return
        const chosen = targets[placed.target]!
        expect(chosen.reachable).toBe(true)
        expect(chosen.freeSlots).toBeGreaterThan(0)
        if (placed.job.target !== undefined) expect(chosen.name).toBe(placed.job.target)
        else if (targets.some((t) => t.has!(placed.job.model))) expect(chosen.has!(placed.job.model)).toBe(true)
        // Warm on another reachable target with a free slot: it would have gone there.
        if (placed.job.target === undefined && !isWarm(placed.job.model, chosen)) {
          for (const other of targets) {
            if (other === chosen || !other.reachable || !other.has!(placed.job.model)) continue
            expect(isWarm(placed.job.model, other) && other.freeSlots > 0).toBe(false)
          }
        }
      }),
      { numRuns: 500 }
    )
  })

  it("what a target holds counts its running jobs first: a model a running job loaded pushed out the oldest", () => {
    // /api/ps said [c, b]; then a job loaded a on a box that holds two: b is gone.
    expect(loadedWith(["c", "b"], ["a"], 2)).toEqual(["c"])
    expect(loadedWith(["c", "b"], ["c"], 2)).toEqual(["c", "b"])
    expect(loadedWith(["c", "b"], [], 1)).toEqual(["c", "b"])
    // Another unit of a running model was replaced by it.
    expect(loadedWith(["a num_ctx=8192", "b"], ["a"], 2)).toEqual(["b"])
    expect(loadedWith(["a", "b"], ["a", "c"], 2)).toEqual(["a"])
    // So b is not warm on the desk, and goes to the laptop that holds it.
    const desk = target("desk", ["a", "b", "c"], { resident: loadedWith(["c", "b"], ["a"], 2), running: ["a"], maxLoaded: 2 })
    const laptop = target("laptop", ["b"], { resident: ["b"] })
    expect(where([job(1, "b")], [desk, laptop])).toEqual({ job: "j1", target: "laptop" })
  })
})
