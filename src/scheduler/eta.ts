/**
 * Queue positions and ETAs (issue 16, item 6): where each waiting job stands in the order the
 * policy would dispatch the queue, and when it is expected to start and finish. Pure: the
 * measured job times and the queue's and targets' states in, the forecast out. The Scheduler
 * keeps the measurements (`makeMeasurements`) and asks for a forecast when someone looks.
 *
 * Measurements, per model (its key; its units share them): an exponentially
 * weighted moving average (`alpha`) of the time at the target (dispatch to last byte, the
 * `durationMs` of a job that succeeded), kept apart for jobs that ran on a loaded model
 * (`warm`) and jobs whose start made the target load it (`cold`: the load included). The
 * model's load time is their difference. A model not measured yet borrows the average of the
 * models that are; before any job has been measured there is no ETA (positions only).
 *
 * The forecast replays the real policy over the current queue on a virtual clock: each slot
 * frees when its job is expected to end, the model it ran becomes resident, and the policy
 * picks again with the same rules (priority, resident first, max-wait, fair share), for at
 * most `budget` job visits. Past that (a deep queue), the rest follow in an approximation of
 * the policy's order: class, then model by model (the model in use first, then each by its
 * oldest job), then arrival. Jobs that arrive later are not known, so an interactive job
 * arriving after a batch job's estimate moves that batch job later: the estimate is what
 * happens if nothing else arrives.
 */
import { type Policy, place, priorities, type Served, type TargetState, type Waiting } from "./policy.ts"

// ---------------------------------------------------------------------------------------------
// Measurements

/** A moving average and how many samples it has seen. */
export interface Ewma {
  readonly mean: number
  readonly samples: number
}

/**
 * The weight of the newest sample (after the first ten): an average over about the last 20
 * jobs, which follows a lasting change within about ten. Chosen on the ETA benchmark
 * (`bench/eta.ts`), where 0.2 and 0.3 were up to a third worse.
 */
export const alpha = 0.1

/**
 * The average with one more sample: the plain mean of the first `1 / alpha` samples (so the
 * first job of a model does not outweigh the next ones), then `alpha` for each new one.
 */
export const observe = (ewma: Ewma | undefined, sample: number): Ewma => {
  if (ewma === undefined) return { mean: sample, samples: 1 }
  const weight = Math.max(alpha, 1 / (ewma.samples + 1))
  return { mean: ewma.mean + weight * (sample - ewma.mean), samples: ewma.samples + 1 }
}

/** A model's measured times at the target (milliseconds, dispatch to last byte). */
export interface ModelTimes {
  /** Jobs that started on the model already loaded. */
  readonly warm?: Ewma
  /** Jobs whose start made the target load the model: the load included. */
  readonly cold?: Ewma
}

export type Measured = ReadonlyMap<string, ModelTimes>

/** A model's load time: its jobs with a load minus those without, once both were measured. */
export const loadTime = (times: ModelTimes): number | undefined =>
  times.warm === undefined || times.cold === undefined ? undefined : Math.max(0, times.cold.mean - times.warm.mean)

/** What a job of a model is expected to take at the target, with or without a load. */
export type Cost = (model: string, load: boolean) => number

const average = (xs: ReadonlyArray<number>): number | undefined =>
  xs.length === 0 ? undefined : xs.reduce((a, b) => a + b, 0) / xs.length

/**
 * The expected time of a job from the measurements, or `undefined` while nothing is measured.
 * A model with a `cold` figure only is taken to take that long without a load too (an
 * overestimate by its load, until a job ran on it loaded); one with a `warm` figure only adds
 * the typical load of the other models (none if no model's is known). A model not measured at
 * all borrows the average of the measured models.
 */
export const costModel = (measured: Measured): Cost | undefined => {
  if (measured.size === 0) return undefined
  const loads = [...measured.values()].flatMap((t) => {
    const load = loadTime(t)
    return load === undefined ? [] : [load]
  })
  const typicalLoad = average(loads) ?? 0
  const own = (times: ModelTimes, load: boolean): number =>
    load
      ? times.cold?.mean ?? times.warm!.mean + typicalLoad
      : times.warm?.mean ?? times.cold!.mean
  const typical = {
    warm: average([...measured.values()].map((t) => own(t, false)))!,
    cold: average([...measured.values()].map((t) => own(t, true)))!
  }
  return (model, load) => {
    const times = measured.get(model)
    return times === undefined ? (load ? typical.cold : typical.warm) : own(times, load)
  }
}

/** Jobs dispatched and not yet finished that the measurements remember, at most (events can be lost). */
const maxPending = 4096

/**
 * The measurements the Scheduler keeps: it notes each dispatch (model, whether it loaded) and
 * each job's end (`finished`, from the job's `JobFinished` event). Mutable; `revision` counts
 * the changes, so a forecast made from them knows when it is stale.
 */
export const makeMeasurements = () => {
  const times = new Map<string, ModelTimes>()
  const pending = new Map<string, { readonly model: string; readonly load: boolean }>()
  let revision = 0
  let cost: Cost | undefined
  return {
    /** A job was given a slot; `load`: its model was neither resident nor running. */
    dispatched: (id: string, model: string, load: boolean): void => {
      // A retry's new dispatch replaces the old one (its time is measured from the last).
      pending.delete(id)
      pending.set(id, { model, load })
      if (pending.size > maxPending) pending.delete(pending.keys().next().value!)
    },
    /** A job ended: measured when it succeeded (a failure's time says nothing about the next job). */
    finished: (id: string, succeeded: boolean, durationMs: number): void => {
      const job = pending.get(id)
      if (job === undefined) return
      pending.delete(id)
      if (!succeeded || !Number.isFinite(durationMs) || durationMs < 0) return
      const current = times.get(job.model) ?? {}
      times.set(job.model, job.load ? { ...current, cold: observe(current.cold, durationMs) } : { ...current, warm: observe(current.warm, durationMs) })
      revision += 1
      cost = undefined
    },
    get revision() {
      return revision
    },
    get measured(): Measured {
      return times
    },
    /** The cost model of the measurements now (`undefined` before the first). */
    get cost(): Cost | undefined {
      if (cost === undefined && times.size > 0) cost = costModel(times)
      return cost
    }
  }
}

export type Measurements = ReturnType<typeof makeMeasurements>

/** What a model's ETAs rest on, in milliseconds (rounded), as health shows it. */
export interface ModelEstimate {
  /** Average time at the target of a job that started on the model loaded; `null` until one did. */
  readonly durationMs: number | null
  /** The same for jobs whose start made the target load the model; `null` until one did. */
  readonly durationWithLoadMs: number | null
  /** Their difference, the model's load time; `null` until both were measured. */
  readonly loadMs: number | null
  /** Jobs measured. */
  readonly samples: number
}

/**
 * Where a job stands (`estimate`): waiting, its 1-based place in the order the policy is
 * expected to dispatch the queue and its expected dispatch and end (epoch ms; absent while
 * nothing has been measured, or no target is reachable); running, since when and its
 * expected end.
 */
export type JobEstimate = QueuedEstimate | { readonly _tag: "Running"; readonly startedAt: number; readonly finishAt?: number }

export interface QueuedEstimate {
  readonly _tag: "Queued"
  readonly position: number
  readonly startAt?: number
  readonly finishAt?: number
}

/** A job waiting with a caller on the line (a sync request), as health lists it. */
export interface WaitingCaller {
  readonly ticket: Waiting
  readonly estimate: QueuedEstimate
}

/** The measurements as health shows them, by model key. */
export const summary = (measured: Measured): Readonly<Record<string, ModelEstimate>> =>
  Object.fromEntries(Array.from(measured, ([model, times]): [string, ModelEstimate] => {
    const load = loadTime(times)
    return [model, {
      durationMs: times.warm === undefined ? null : Math.round(times.warm.mean),
      durationWithLoadMs: times.cold === undefined ? null : Math.round(times.cold.mean),
      loadMs: load === undefined ? null : Math.round(load),
      samples: (times.warm?.samples ?? 0) + (times.cold?.samples ?? 0)
    }]
  }))

// ---------------------------------------------------------------------------------------------
// The forecast

/** A job holding a slot: since when, and whether its start made the target load its model. */
export interface Running {
  readonly id: string
  /** Its model's key, as measured. */
  readonly model: string
  /** What the target loaded for it (`unitOf`; the model, without options). */
  readonly unit?: string | undefined
  readonly startedAt: number
  readonly load: boolean
}

/** One target as the forecast needs it. */
export interface ForecastTarget {
  /** As in `TargetState`: its name (pins name it) and which models it has (routing). */
  readonly name?: string | undefined
  readonly has?: ((model: string) => boolean) | undefined
  readonly reachable: boolean
  /** Its `--concurrency`. */
  readonly slots: number
  readonly running: ReadonlyArray<Running>
  /** Models it holds now, most recently used first. */
  readonly resident: ReadonlyArray<string>
  readonly maxLoaded: number
  /** `--max-wait`. */
  readonly maxWait: number
  /** Since when it has been serving (max-wait aging counts from here, as in the Scheduler). */
  readonly servingSince: number
}

export interface ForecastInput {
  readonly policy: Policy
  readonly waiting: ReadonlyArray<Waiting>
  readonly targets: ReadonlyArray<ForecastTarget>
  readonly now: number
  readonly served: Served
  /** Expected job times; without (nothing measured yet), positions only. */
  readonly cost: Cost | undefined
  /** Job visits of the real policy before the rest is placed by the approximation. */
  readonly budget?: number
}

/** Where a waiting job stands. */
export interface Estimate {
  /** 1-based place in the forecast dispatch order. */
  readonly position: number
  /** Expected dispatch (epoch ms); absent without measurements. */
  readonly startAt?: number
  /** Expected last byte (epoch ms); absent without measurements. */
  readonly finishAt?: number
  /** Whether its start is expected to make the target load its model. */
  readonly load: boolean
}

export interface Forecast {
  /** Every waiting job, by id. */
  readonly waiting: ReadonlyMap<string, Estimate>
  /** Every running job's expected end (epoch ms), by id; empty without measurements. */
  readonly running: ReadonlyMap<string, number>
  /** How many jobs the real policy placed (the rest by the approximation). */
  readonly simulated: number
}

/**
 * Enough for the whole queue up to a few hundred jobs (n² / 2 visits), a few milliseconds at
 * most; a deeper queue has its first jobs placed by the policy and the rest approximated.
 */
export const defaultBudget = 100_000

const rank = (priority: Waiting["priority"]): number => (priority === "interactive" ? 0 : priority === "normal" ? 1 : 2)

interface Slot {
  /** What the target holds for it: the unit (`unitOf`). */
  readonly unit: string
  readonly freeAt: number
}

interface SimTarget {
  readonly of: ForecastTarget
  readonly busy: Array<Slot>
  resident: Array<string>
}

/**
 * The forecast: the real policy replayed over the queue (see the module's comment). With no
 * target reachable the order is forecast as if they answered now, without times: when one
 * wakes is not known.
 */
export const forecast = (input: ForecastInput): Forecast => {
  const { now } = input
  const anyReachable = input.targets.some((t) => t.reachable)
  const cost = anyReachable ? input.cost : undefined
  const timed = cost !== undefined
  const costOf = (model: string, load: boolean) => (cost === undefined ? 0 : Math.max(0, cost(model, load)))
  const running = new Map<string, number>()
  const targets: Array<SimTarget> = input.targets.map((of) => {
    const t = anyReachable ? of : { ...of, reachable: true, servingSince: now }
    return {
      of: t,
      busy: t.running.map((job) => {
        const freeAt = Math.max(now, job.startedAt + costOf(job.model, job.load))
        if (timed) running.set(job.id, freeAt)
        return { unit: job.unit ?? job.model, freeAt }
      }),
      resident: [...t.resident]
    }
  })
  const queue = input.waiting.slice()
  const waiting = new Map<string, Estimate>()
  const last = new Map(input.served.last)
  let starts = input.served.starts
  let clock = now
  let position = 0

  /** Frees the slots whose jobs have ended by `at`: their models are the most recently used. */
  const release = (at: number) => {
    for (const target of targets) {
      for (let i = target.busy.length - 1; i >= 0; i--) {
        const slot = target.busy[i]!
        if (slot.freeAt > at) continue
        target.busy.splice(i, 1)
        // In place: this runs once per job placed.
        const { resident } = target
        const seen = resident.indexOf(slot.unit)
        if (seen >= 0) resident.splice(seen, 1)
        resident.unshift(slot.unit)
        if (resident.length > Math.max(1, target.of.maxLoaded)) resident.length = Math.max(1, target.of.maxLoaded)
      }
    }
  }
  const isLoad = (unit: string, target: SimTarget) =>
    !target.resident.includes(unit) && !target.busy.some((slot) => slot.unit === unit)
  const stateOf = (target: SimTarget): TargetState => ({
    name: target.of.name,
    has: target.of.has,
    reachable: target.of.reachable,
    running: target.busy.map((s) => s.unit),
    // Read by the policy within the call only: `release` changes it between calls.
    resident: target.resident,
    freeSlots: target.of.slots - target.busy.length,
    maxWait: clock - target.of.servingSince > target.of.maxWait ? target.of.maxWait : Number.POSITIVE_INFINITY,
    maxLoaded: target.of.maxLoaded
  })
  const start = (job: Waiting, target: SimTarget) => {
    const unit = job.unit ?? job.model
    const load = isLoad(unit, target)
    const finishAt = clock + costOf(job.model, load)
    target.busy.push({ unit, freeAt: finishAt })
    position += 1
    waiting.set(job.id, timed ? { position, startAt: clock, finishAt, load } : { position, load })
    starts += 1
    last.set(job.caller, starts)
  }
  /** When the next busy slot frees, after `clock`; `undefined` if none is busy. */
  const nextFree = () => {
    let next: number | undefined
    for (const target of targets) {
      if (!target.of.reachable) continue
      for (const slot of target.busy) if (next === undefined || slot.freeAt < next) next = slot.freeAt
    }
    return next
  }

  // The real policy, while the budget lasts.
  const decide = place(input.policy)
  const budget = input.budget ?? defaultBudget
  let visits = 0
  while (queue.length > 0 && visits + queue.length <= budget) {
    release(clock)
    const states = targets.map(stateOf)
    const placed = decide({ waiting: queue, targets: states, now: clock, served: { starts, last } })
    visits += queue.length
    if (placed === undefined) {
      // Every slot busy, or the job the rules point at waits for a model to drain: the next end.
      const next = nextFree()
      if (next === undefined) break
      clock = Math.max(clock, next)
      continue
    }
    queue.splice(queue.indexOf(placed.job), 1)
    start(placed.job, targets[placed.target]!)
  }
  const simulated = position

  // The rest, in the approximate order, each on the slot that frees first.
  if (queue.length > 0) {
    const usable = targets.filter((t) => t.of.reachable && t.of.slots > 0)
    const recent = usable[0]?.busy.at(-1)?.unit ?? usable[0]?.resident[0]
    for (const job of approximateOrder(queue, recent)) {
      if (usable.length === 0) {
        position += 1
        waiting.set(job.id, { position, load: false })
        continue
      }
      let best = usable[0]!
      let bestAt = Number.POSITIVE_INFINITY
      for (const target of usable) {
        let at = clock
        if (target.busy.length >= target.of.slots) {
          at = Number.POSITIVE_INFINITY
          for (const slot of target.busy) if (slot.freeAt < at) at = slot.freeAt
        }
        if (at < bestAt) {
          best = target
          bestAt = at
        }
      }
      clock = Math.max(clock, bestAt)
      release(clock)
      start(job, best)
    }
  }
  return { waiting, running, simulated }
}

/**
 * The policy's order, roughly, for jobs past the simulated ones: by class; within one, model
 * by model (the model in use first: `first` for the top class, then the model the class
 * before ended on; then each model by its oldest job); within a model, by arrival.
 */
export const approximateOrder = (jobs: ReadonlyArray<Waiting>, first?: string): ReadonlyArray<Waiting> => {
  // Per class, per model, the jobs in arrival order: one pass and small sorts, as this is for deep queues.
  const classes = priorities.map(() => new Map<string, Array<Waiting>>())
  for (const job of jobs) {
    const models = classes[rank(job.priority)]!
    const unit = job.unit ?? job.model
    const group = models.get(unit)
    if (group === undefined) models.set(unit, [job])
    else group.push(job)
  }
  const order: Array<Waiting> = []
  let current = first
  for (const models of classes) {
    const groups = [...models.values()]
    for (const group of groups) group.sort((a, b) => a.seq - b.seq)
    const unitOf = (job: Waiting) => job.unit ?? job.model
    groups.sort((a, b) => (unitOf(a[0]!) === current ? -1 : unitOf(b[0]!) === current ? 1 : a[0]!.seq - b[0]!.seq))
    for (const group of groups) order.push(...group)
    const lastGroup = groups.at(-1)
    current = lastGroup === undefined ? current : unitOf(lastGroup[0]!)
  }
  return order
}

/**
 * A position without a forecast: 1 + the jobs ahead by class, then arrival. What the queue
 * shows while no target is reachable (whatever it holds when it wakes decides the order) and
 * what costs one pass over the queue.
 */
export const roughPosition = (waiting: ReadonlyArray<Waiting>, me: Waiting): number => {
  let ahead = 0
  const mine = rank(me.priority)
  for (const job of waiting) {
    const r = rank(job.priority)
    if (r < mine || (r === mine && job.seq < me.seq)) ahead++
  }
  return ahead + 1
}
