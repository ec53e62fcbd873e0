/**
 * The scheduling policy: a pure function from the queue's and the targets' states to the
 * next job to start and where. No I/O, no clock of its own, so every rule can be tested
 * exhaustively. The Scheduler service calls it whenever a slot frees up or the queue or a
 * target's state changes. A `Policy` decides for one target; `place` offers the queue to
 * each target in turn.
 */
import * as LoadOptions from "../ollama/loadOptions.ts"

export type Priority = "interactive" | "normal" | "batch"
export const priorities: ReadonlyArray<Priority> = ["interactive", "normal", "batch"]

/** A job waiting for a slot, as far as the policy needs to know it. */
export interface Waiting {
  readonly id: string
  /** Arrival order; a retried job keeps its number and so its place. */
  readonly seq: number
  /** The model's normalised key (`ModelName.key`). */
  readonly model: string
  /**
   * What the target loads for it: the model with the job's load-affecting options (`unitOf`).
   * Absent: the model with the target's defaults, `model` itself.
   */
  readonly unit?: string
  readonly priority: Priority
  /** Epoch milliseconds of the first enqueue. */
  readonly enqueuedAt: number
  readonly attempts: number
  /** Who sent it: the API key's name, `anonymous` without keys. Fair share interleaves callers. */
  readonly caller: string
  /** The target it must run on (`X-Foreman-Target`), by name; absent: wherever `place` routes it. */
  readonly target?: string | undefined
}

/** The caller of every request made without an API key. */
export const anonymous = ""

/**
 * Who was served lately, by starts rather than time: what fair share between callers decides
 * from. The Scheduler counts every start, on any target, and notes each caller's latest.
 */
export interface Served {
  /** Jobs started so far. */
  readonly starts: number
  /** Each caller's latest start: the value of `starts` once it was counted. Never-served callers are absent. */
  readonly last: ReadonlyMap<string, number>
}

/** No start yet: every caller is as due as any other. */
export const noneServed: Served = { starts: 0, last: new Map() }

/**
 * Fair share's bound: a caller with work waiting in the top class waits for at most this many
 * starts per other caller waiting there, then its oldest job goes next (even if that costs a
 * model load). With two callers, at most 4 of the other's jobs start between two of its own.
 */
export const fairShareSpan = 4

/**
 * What the target loads for a job: its model key, followed by its load-affecting options when
 * any is set (`"registry.ollama.ai/library/llama3.2:latest num_ctx=8192"`; the options' text
 * is `ollama/loadOptions.ts`'s). Ollama loads a model again for a job whose options differ
 * from those it was loaded with, so two units of one model are two models to the policy:
 * grouping by unit groups what runs without a reload, and moving between them is a swap.
 * A model key has no space (`ModelName`), so the first space ends it.
 */
export const unitOf = (model: string, load: string): string => load === "" ? model : `${model} ${load}`

/** The model key of a unit (`unitOf`). */
export const modelOfUnit = (unit: string): string => {
  const space = unit.indexOf(" ")
  return space < 0 ? unit : unit.slice(0, space)
}

const unitOfJob = (job: Waiting): string => job.unit ?? job.model

/** The queue as one target sees it: what a `Policy` decides from. */
export interface PolicyInput {
  readonly waiting: ReadonlyArray<Waiting>
  /** Units (`unitOf`) of the jobs in flight at the target. */
  readonly running: ReadonlyArray<string>
  /** Units the target holds in memory now (at most one per model). */
  readonly resident: ReadonlyArray<string>
  readonly freeSlots: number
  readonly now: number
  /** Milliseconds a job may wait before it is served next whatever its model (`--max-wait`). */
  readonly maxWait: number
  /** How many models the target keeps loaded at once (`--max-loaded-models`, default 1). */
  readonly maxLoaded: number
  readonly served: Served
}

/** Picks the job to start next on a target, or `undefined` to start nothing there now. */
export type Policy = (input: PolicyInput) => Waiting | undefined

/** One target's state, as far as placing a job needs to know it. */
export interface TargetState {
  /** Its name, which a pinned job (`Waiting.target`) names. */
  readonly name?: string | undefined
  /**
   * Whether it has a model (by key), from its inventory; absent: it has every model (one
   * target, or an inventory never read: the target decides).
   */
  readonly has?: ((model: string) => boolean) | undefined
  /** Whether it answered lately: nothing is sent to a target known to be asleep. */
  readonly reachable: boolean
  /** Units (`unitOf`) of the jobs in flight there. */
  readonly running: ReadonlyArray<string>
  /** Units it holds in memory now. */
  readonly resident: ReadonlyArray<string>
  readonly freeSlots: number
  /** Its `--max-wait` now (no job is overdue before the target has served that long since waking). */
  readonly maxWait: number
  readonly maxLoaded: number
}

export interface PlacementInput {
  readonly waiting: ReadonlyArray<Waiting>
  /** Every target, in the configuration's order. */
  readonly targets: ReadonlyArray<TargetState>
  readonly now: number
  /** Who was served lately (`noneServed` if not given). */
  readonly served?: Served
}

/** A job to start, and the index in `targets` of the target to start it on. */
export interface Placement {
  readonly job: Waiting
  readonly target: number
}

/** The input `policy` sees for one target. */
export const inputFor = (input: PlacementInput, target: TargetState): PolicyInput => ({
  waiting: input.waiting,
  running: target.running,
  resident: target.resident,
  freeSlots: target.freeSlots,
  now: input.now,
  maxWait: target.maxWait,
  maxLoaded: target.maxLoaded,
  served: input.served ?? noneServed
})

/**
 * Places the next job: the first reachable target with a free slot for which `policy` picks
 * one, in the configuration's order; `undefined` to start nothing now. With several targets,
 * each is offered only the jobs `routable` to it.
 */
export const place = (policy: Policy) => (input: PlacementInput): Placement | undefined => {
  const several = input.targets.length > 1
  for (let index = 0; index < input.targets.length; index++) {
    const target = input.targets[index]!
    if (!target.reachable || target.freeSlots <= 0) continue
    const offered = several ? input.waiting.filter((job) => routable(job, index, input.targets)) : input.waiting
    if (offered.length === 0) continue
    const job = policy(inputFor(several ? { ...input, waiting: offered } : input, target))
    if (job !== undefined) return { job, target: index }
  }
  return undefined
}

/** Whether a target has a model, as far as routing knows (`TargetState.has`). */
const holds = (target: TargetState, model: string): boolean => target.has === undefined || target.has(model)

/** Whether the target has a unit loaded or in flight: a job for it starts there without a load. */
export const isWarm = (unit: string, target: Pick<TargetState, "resident" | "running">): boolean =>
  target.resident.includes(unit) || target.running.includes(unit)

/**
 * Whether the target can load a unit without evicting a model: it is warm there, or its
 * model is not loaded there and fewer models than `maxLoaded` are.
 */
export const hasRoom = (unit: string, target: Pick<TargetState, "resident" | "running" | "maxLoaded">): boolean => {
  if (isWarm(unit, target)) return true
  const loaded = loadedModels(target)
  return !loaded.has(modelOfUnit(unit)) && loaded.size < loadLimit(target.maxLoaded)
}

/** The models a target holds or runs, made once per target state (routing asks per job; a state is a snapshot, never changed). */
const loadedCache = new WeakMap<object, ReadonlySet<string>>()
const loadedModels = (target: Pick<TargetState, "resident" | "running">): ReadonlySet<string> => {
  let loaded = loadedCache.get(target)
  if (loaded === undefined) {
    const models = new Set<string>()
    for (const held of target.resident) models.add(modelOfUnit(held))
    for (const held of target.running) models.add(modelOfUnit(held))
    loadedCache.set(target, loaded = models)
  }
  return loaded
}

/**
 * Whether a job may start on `targets[index]` now (routing, issue 17; with one target every
 * job is). A pinned job (`Waiting.target`) runs only on the target it names. Any other runs
 * only on a target that has its model (on any target if none has: the targets decide), and,
 * among those, prefers in this order: one where it is warm (resident or in flight: no load);
 * else one with room for it (a free slot and nothing to evict); else one that must evict. So
 * a job warm on a target with a free slot is not offered elsewhere; one warm on a busy target
 * starts elsewhere only where it evicts nothing (else it waits for its warm target); one warm
 * nowhere is not offered to a target that would evict while another reachable one has room.
 * A target asleep counts only for having the model: a job whose model only sleeping targets
 * have waits for them (and they may be woken).
 */
export const routable = (job: Waiting, index: number, targets: ReadonlyArray<TargetState>): boolean => {
  const target = targets[index]!
  if (job.target !== undefined) return target.name !== undefined && job.target.toLowerCase() === target.name.toLowerCase()
  // A model no target has may run on any (the target decides), with the same preferences.
  const anyHolds = targets.some((other) => holds(other, job.model))
  if (anyHolds && !holds(target, job.model)) return false
  const unit = job.unit ?? job.model
  if (isWarm(unit, target)) return true
  const room = hasRoom(unit, target)
  for (let other = 0; other < targets.length; other++) {
    if (other === index) continue
    const candidate = targets[other]!
    if (!candidate.reachable || (anyHolds && !holds(candidate, job.model))) continue
    if (isWarm(unit, candidate) && (candidate.freeSlots > 0 || !room)) return false
    if (!room && candidate.freeSlots > 0 && hasRoom(unit, candidate)) return false
  }
  return true
}

/** First come, first served: the oldest job by arrival. */
export const fifo: Policy = ({ freeSlots, waiting }) => {
  if (freeSlots <= 0) return undefined
  let best: Waiting | undefined
  for (const job of waiting) {
    if (best === undefined || job.seq < best.seq) best = job
  }
  return best
}

// Comparisons, not a lookup table: a keyed load per job costs several times the rest of the loop.
const rank = (priority: Priority): number => priority === "interactive" ? 0 : priority === "normal" ? 1 : 2

// A non-positive (or NaN) limit would let nothing ever start; the target always holds at least one.
const loadLimit = (maxLoaded: number): number => maxLoaded >= 1 ? maxLoaded : 1

/**
 * Whether starting a job for `unit` (`unitOf`) makes the target load it: neither resident nor
 * running. Another unit of its model resident is a swap too: Ollama reloads the model.
 */
export const isSwap = (unit: string, input: Pick<PolicyInput, "resident" | "running">): boolean =>
  !input.resident.includes(unit) && !input.running.includes(unit)

/**
 * Whether `unit`'s model is in flight under another unit, for a caller that has asked first
 * whether `unit` itself is (the warm set holds the running units). `runningModels`, the
 * running units' models, is made only when one of them has options; without it, only a unit
 * with options can clash with a running one.
 */
const inFlight = (unit: string, running: ReadonlyArray<string>, runningModels: ReadonlySet<string> | undefined): boolean =>
  runningModels !== undefined
    ? runningModels.has(modelOfUnit(unit))
    : unit.includes(" ") && running.includes(modelOfUnit(unit))

/** One caller's jobs in the top class: its oldest, and its oldest on a warm model. */
interface Share {
  readonly caller: string
  head: Waiting
  warm: Waiting | undefined
}

/**
 * Swap-aware scheduling (ADR-0009). In order: a job that has waited longer than `maxWait`
 * goes first (oldest such first); then only the highest priority class present counts;
 * within it, the oldest job whose model is resident; otherwise the class's oldest job picks
 * the next model. A job starts only if it forces out no model in use (its model is running,
 * or the running models plus it fit in `maxLoaded`); when the job the rules point at cannot
 * start, the slot stays free rather than go to work that would delay it further. "Model" is
 * the job's unit (`unitOf`) throughout: a job whose model runs with other options would
 * reload it under the running jobs, so it waits for them like a job for another model.
 *
 * Fair share, when the class holds jobs of several callers: a caller who has waited
 * `fairShareSpan` starts per other caller there since its own last start (or was never
 * served) is due, and the least recently served due caller goes next, with its oldest job
 * on a resident model or else its oldest job. Otherwise, of the callers with work on a
 * resident model, the least recently served one goes (oldest job first); with none, the least
 * recently served caller's oldest job picks the next model. One caller: the rules above, unchanged.
 *
 * One pass over the queue, no sorting, one small set: it runs on every dispatch.
 */
export const swapAware: Policy = ({ freeSlots, maxLoaded, maxWait, now, resident, running, served, waiting }) => {
  if (freeSlots <= 0) return undefined
  // The models a job can start on without a load: those in flight, plus the resident ones
  // when the target has room for one more model. One small set per call: its lookups use
  // the strings' cached hashes, where comparing long model keys costs several times more.
  const warmModels = new Set(running)
  const roomForAnother = warmModels.size < loadLimit(maxLoaded)
  // The models in flight, when one of them runs with options (else `running` says it): a job
  // for another unit of one of them would reload it under its running jobs, so it waits.
  let runningModels: Set<string> | undefined
  for (const unit of running) {
    if (unit.includes(" ")) {
      runningModels = new Set(running.map(modelOfUnit))
      break
    }
  }
  if (roomForAnother) for (const unit of resident) if (!inFlight(unit, running, runningModels)) warmModels.add(unit)
  const canStart = (unit: string) => warmModels.has(unit) || (roomForAnother && !inFlight(unit, running, runningModels))

  let overdue: Waiting | undefined
  // The highest class seen so far (by rank), and per caller its oldest job and its oldest job
  // on a resident model that can start now. Lower classes are skipped as soon as a higher one
  // shows. Most queues hold one caller's jobs: its share is kept aside, and the map is made
  // only when a second caller shows; `share` is the last job's, as callers' jobs come in runs.
  let top = priorities.length
  let first: Share | undefined
  let others: Map<string, Share> | undefined
  let share: Share | undefined
  for (const job of waiting) {
    if (now - job.enqueuedAt > maxWait) {
      if (overdue === undefined || job.seq < overdue.seq) overdue = job
      continue
    }
    if (overdue !== undefined) continue // the overdue head decides alone
    const r = rank(job.priority)
    if (r > top) continue
    if (r < top) {
      top = r
      first = undefined
      others = undefined
      share = undefined
    }
    if (share === undefined || share.caller !== job.caller) {
      if (first === undefined) share = first = { caller: job.caller, head: job, warm: undefined }
      else if (first.caller === job.caller) share = first
      else {
        others ??= new Map()
        share = others.get(job.caller)
        if (share === undefined) others.set(job.caller, share = { caller: job.caller, head: job, warm: undefined })
      }
    }
    if (job.seq < share.head.seq) share.head = job
    // Checked only for a job that would become the pick: the queue is mostly in seq order.
    if ((share.warm === undefined || job.seq < share.warm.seq) && warmModels.has(job.unit ?? job.model)) share.warm = job
  }
  if (overdue !== undefined) return canStart(unitOfJob(overdue)) ? overdue : undefined
  if (first === undefined) return undefined
  const pick = others === undefined ? first : fairShare(first, others, served)
  return pick.warm ?? (canStart(unitOfJob(pick.head)) ? pick.head : undefined)
}

/**
 * Whose turn it is among the top class's callers (see `swapAware`): the due caller, else the
 * least recently served caller with work on a resident model, else the least recently served.
 */
const fairShare = (first: Share, others: ReadonlyMap<string, Share>, served: Served): Share => {
  const since = (caller: string) => {
    const at = served.last.get(caller)
    return at === undefined ? Number.POSITIVE_INFINITY : served.starts - at
  }
  let due = first
  let dueSince = since(first.caller)
  let warm = first.warm === undefined ? undefined : first
  let warmSince = dueSince
  for (const share of others.values()) {
    const t = since(share.caller)
    if (t > dueSince || (t === dueSince && share.head.seq < due.head.seq)) {
      due = share
      dueSince = t
    }
    if (share.warm !== undefined && (warm === undefined || t > warmSince || (t === warmSince && share.warm.seq < warm.warm!.seq))) {
      warm = share
      warmSince = t
    }
  }
  if (dueSince >= fairShareSpan * others.size) return due
  // Not due: the warm caller's pick is its warm job; with no warm work, `due` picks the model.
  return warm ?? due
}

/**
 * The units a target holds, its running jobs taken into account: the models of the running
 * jobs are loaded (a job that loaded one has pushed out what it evicted, whatever the last
 * `/api/ps` or foreman's own memory said), so of the other resident units only the most
 * recent fit in beside them, within `maxLoaded`; a resident unit of a model running under
 * other options was replaced by it. Most recent first, as given.
 */
export const loadedWith = (
  resident: ReadonlyArray<string>,
  running: ReadonlyArray<string>,
  maxLoaded: number
): ReadonlyArray<string> => {
  if (running.length === 0) return resident
  const limit = loadLimit(maxLoaded)
  const models = new Set(running.map(modelOfUnit))
  const out: Array<string> = []
  for (const unit of resident) {
    const model = modelOfUnit(unit)
    if (models.has(model)) {
      if (running.includes(unit)) out.push(unit)
      continue
    }
    if (models.size >= limit) continue
    models.add(model)
    out.push(unit)
  }
  return out
}

/** A model the target holds and when it lets it go (epoch milliseconds). */
export interface Residency {
  /** A model key in `/api/ps`'s entries; a unit (`unitOf`) in foreman's own last runs. */
  readonly model: string
  readonly expiresAt: number
}

/** One `/api/ps` entry. */
export interface PsResidency extends Residency {
  /** The context the target loaded it with (`context_length`, newer Ollama), if it said. */
  readonly contextLength?: number
}

/** The unit foreman last ran on a model there. */
export interface LastRun extends Residency {
  /** When that job ended (epoch milliseconds). */
  readonly endedAt?: number
}

/**
 * Ollama never loads an explicit `num_ctx` larger than asked, except up to 2048 for a vision
 * model (`server/sched.go`, `getRunner`); it may load it smaller (the model's training context).
 */
const visionContextFloor = 2048

/**
 * Whether `/api/ps` shows that the model foreman last ran with `run`'s options was loaded
 * again since, by someone else: read after that run ended, it reports a context length Ollama
 * would not have given those options.
 */
const contradicts = (run: LastRun, entry: PsResidency, psAt: number | undefined): boolean => {
  if (entry.contextLength === undefined || psAt === undefined || run.endedAt === undefined || psAt <= run.endedAt) return false
  const numCtx = LoadOptions.numCtxOf(run.model.slice(run.model.indexOf(" ") + 1))
  return numCtx !== undefined && entry.contextLength > Math.max(numCtx, visionContextFloor)
}

/**
 * The units the target holds now. `/api/ps` lags (it is polled), so what foreman itself ran
 * last counts too: a job that just finished on X means X stays loaded until its keep-alive
 * runs out. Expired entries (`expiresAt <= now`) are gone; a unit seen twice keeps its later
 * expiry. The target holds at most `maxLoaded` models, so if more remain, the ones with the
 * latest expiry win: loading a newer model evicted the older ones. Most recent first.
 *
 * `/api/ps` names models, not the options they were loaded with: a model there is the unit
 * foreman last ran on it (it holds one runner per model, and foreman caused its last load),
 * else the model with the target's defaults (loaded by another client, or before foreman
 * started: most clients set no load options). Unless the entry's `context_length`, read after
 * that run ended, is larger than its `num_ctx` (`contradicts`): then another client loaded it
 * since, taken as with the defaults, and foreman's own run no longer counts.
 */
export const residentModels = (input: {
  readonly ps: ReadonlyArray<PsResidency>
  readonly lastRun: ReadonlyArray<LastRun>
  /** When `ps` was read (epoch milliseconds); without it, its context lengths are not used. */
  readonly psAt?: number
  readonly now: number
  readonly maxLoaded: number
}): ReadonlyArray<string> => {
  // Foreman's last runs with options, by model: how `/api/ps`'s models are labelled.
  let withOptions: Map<string, LastRun> | undefined
  for (const run of input.lastRun) {
    const model = modelOfUnit(run.model)
    if (model !== run.model) (withOptions ??= new Map()).set(model, run)
  }
  let superseded: Set<string> | undefined
  const latest = new Map<string, number>()
  const note = (unit: string, expiresAt: number) => {
    if (expiresAt <= input.now) return
    const seen = latest.get(unit)
    if (seen === undefined || expiresAt > seen) latest.set(unit, expiresAt)
  }
  for (const entry of input.ps) {
    const run = withOptions?.get(entry.model)
    if (run !== undefined && contradicts(run, entry, input.psAt)) (superseded ??= new Set()).add(run.model)
    note(run === undefined || superseded?.has(run.model) === true ? entry.model : run.model, entry.expiresAt)
  }
  for (const run of input.lastRun) if (superseded?.has(run.model) !== true) note(run.model, run.expiresAt)
  // Stable sort: equal expiries keep first-seen order (`ps` before `lastRun`).
  return [...latest].sort((a, b) => b[1] - a[1]).slice(0, loadLimit(input.maxLoaded)).map(([unit]) => unit)
}
