/**
 * What foreman knows about the target (ADR-0007): its models and resident models from the
 * last successful poll, and the health of the polling itself. The state lives in a
 * `SubscriptionRef` so the dispatcher and plugins can react to changes (the target waking
 * up resumes dispatch). A failed poll keeps the last inventory: one failure never makes
 * foreman reject jobs wholesale.
 */
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberHandle from "effect/FiberHandle"
import * as FiberSet from "effect/FiberSet"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { ForemanConfig, hostOf } from "../Config.ts"
import * as Metrics from "../events/Metrics.ts"
import { Events } from "../events/Events.ts"
import { type TargetError, TargetUnreachable } from "../Errors.ts"
import * as ModelName from "../ollama/ModelName.ts"
import type { PsModel, PsResponse, TagModel, TagsResponse } from "../ollama/schema.ts"
import { withSpan } from "../tracing.ts"

/** The least time between two refreshes of `/api/ps` after jobs (see `reportServed`). */
export const residencyRefreshEvery = Duration.millis(250)

export interface InventoryState {
  /** `/api/tags` entries from the last successful poll, as the target sent them. */
  readonly models: ReadonlyArray<TagModel>
  /** `/api/ps` entries from the last successful poll. */
  readonly resident: ReadonlyArray<PsModel>
  readonly lastPollAt: Option.Option<DateTime.Utc>
  readonly lastSuccessAt: Option.Option<DateTime.Utc>
  readonly consecutiveFailures: number
  readonly lastError: Option.Option<string>
  /**
   * Whether the target answered lately: false until the first successful contact, and from
   * the moment it is found unreachable until it answers again. Dispatch waits while false.
   */
  readonly reachable: boolean
  /**
   * Jobs in a row that the target took and then failed to answer: it stalled (sent nothing
   * for `--stall-timeout`), closed the connection, broke off mid-answer or answered what is
   * not an answer. Its polls may go on answering meanwhile; the next job it serves clears it.
   */
  readonly jobFaults: number
  readonly lastJobFault: Option.Option<string>
}

export const initialState: InventoryState = {
  models: [],
  resident: [],
  lastPollAt: Option.none(),
  lastSuccessAt: Option.none(),
  consecutiveFailures: 0,
  lastError: Option.none(),
  reachable: false,
  jobFaults: 0,
  lastJobFault: Option.none()
}

/**
 * Degraded: the last contact with the target failed, foreman has never reached it, or the
 * last job the target took it failed to answer.
 */
export const isDegraded = (state: InventoryState): boolean =>
  failing(state) || Option.isNone(state.lastSuccessAt)

/** The last poll failed, or the last job was not answered. */
const failing = (state: InventoryState): boolean => state.consecutiveFailures > 0 || state.jobFaults > 0

/** The normalised keys of a model list, computed once per list (every job checks them). */
const keyCache = new WeakMap<ReadonlyArray<TagModel>, ReadonlySet<string>>()
const keysOf = (models: ReadonlyArray<TagModel>): ReadonlySet<string> => {
  let keys = keyCache.get(models)
  if (keys === undefined) {
    keys = new Set(models.flatMap((entry) => Option.toArray(ModelName.keyOf(entry.model ?? entry.name))))
    keyCache.set(models, keys)
  }
  return keys
}

/** Whether the cache knows a model, by Ollama's name normalisation. */
export const hasModel = (state: InventoryState, key: string): boolean => keysOf(state.models).has(key)

/** The outcome of checking a model before a job is queued. */
export type Lookup = "found" | "missing" | "unknown"

export interface InventoryService {
  readonly get: Effect.Effect<InventoryState>
  readonly changes: Stream.Stream<InventoryState>
  /**
   * Poll `/api/tags` and `/api/ps` now. Never fails: the outcome is recorded in the state,
   * and a failure starts the recovery probe. Returns whether the poll succeeded.
   */
  readonly poll: Effect.Effect<boolean>
  /** Ask for a poll soon, without waiting for it (after model management, after a failure). */
  readonly requestPoll: Effect.Effect<void>
  /** A job found the target unreachable: mark degraded at once and start probing. */
  readonly reportUnreachable: (error: TargetUnreachable) => Effect.Effect<void>
  /**
   * The target took a job and failed to answer it (`reason` says how): degraded until it
   * serves one. Dispatch goes on: a poll that answers proves nothing about jobs, and only a
   * job can clear this.
   */
  readonly reportFault: (reason: string) => Effect.Effect<void>
  /**
   * The target served a job to its end: clears job faults, and asks the target's `/api/ps`
   * again soon (at most one call per 250 ms), so residency follows the switch the job caused.
   */
  readonly reportServed: Effect.Effect<void>
  /**
   * For a job's call to the target: a connection closed before any answer. A target that answers a poll now is up
   * and broken: the error stands. One that does not is asleep behind something that takes
   * connections for it (an ssh tunnel, a port forward): the job waits as for any target
   * asleep, and the failed poll has marked it so.
   */
  readonly checkClosed: <A, E, R>(call: Effect.Effect<A, E, R>) => Effect.Effect<A, E | TargetUnreachable, R>
  /**
   * Check a model against the cache; on a miss, ask the target's `/api/tags` once (the
   * grace path: a model pulled a second ago works). `unknown` means foreman has never
   * reached the target, so it cannot tell: the job is let through and the target decides.
   */
  readonly lookup: (key: string) => Effect.Effect<Lookup>
}

export class Inventory extends Context.Tag("foreman/Inventory")<Inventory, InventoryService>() {}

const describeFailure = (error: TargetUnreachable | TargetError): string =>
  error._tag === "TargetUnreachable"
    ? `target unreachable: ${error.message}`
    : `target answered ${error.status}: ${error.message}`

/** The first recovery probe comes this soon after a failure; each further one waits twice as long. */
export const firstProbe = Duration.millis(500)

/**
 * Recovery probes: jittered exponential backoff from `firstProbe`, never slower than the
 * regular poll interval, so dispatch resumes within seconds of the laptop waking.
 */
export const probeSchedule = (interval: Duration.Duration) =>
  Schedule.exponential(firstProbe).pipe(Schedule.union(Schedule.spaced(interval)), Schedule.jittered)

export interface InventoryOptions {
  /**
   * The target's name (`Target.name`; default: its URL's host): the `target` label of its
   * gauges and poll counts, and what its log lines and events call it.
   */
  readonly name?: string | undefined
}

/** What an inventory reads its target with: its `/api/tags` and `/api/ps` (a target's client). */
export interface Source {
  readonly url: string
  readonly tags: Effect.Effect<TagsResponse, TargetUnreachable | TargetError>
  readonly ps: Effect.Effect<PsResponse, TargetUnreachable | TargetError>
}

/** The inventory of one target, polled through its client; its background fibers live in the scope. */
export const make = (target: Source, options: InventoryOptions = {}) => Effect.gen(function*() {
  const { pollInterval } = yield* ForemanConfig
  const events = yield* Events
  const name = options.name ?? hostOf(target.url)
  const up = Metric.tagged(Metrics.targetUp, "target", name)
  const modelCount = Metric.tagged(Metrics.inventoryModels, "target", name)
  const polled = Metric.tagged(Metrics.targetPollsTotal, "target", name)
  const pollsSucceeded = Metric.tagged(polled, "result", "success")
  const pollsFailed = Metric.tagged(polled, "result", "failure")
  const ref = yield* SubscriptionRef.make(initialState)
  const background = yield* FiberSet.make()
  const prober = yield* FiberHandle.make()
  const pollLock = yield* Effect.makeSemaphore(1)

  /** A copy of the state's `jobFaults > 0`, kept by `update`: a served job costs one read when all is well. */
  let faulty = false

  /** Applies a change, keeps the gauges current, and reports the degraded/recovered transitions. */
  const update = (f: (state: InventoryState) => InventoryState) =>
    SubscriptionRef.modify(ref, (before) => {
      const after = f(before)
      faulty = after.jobFaults > 0
      return [[before, after] as const, after]
    }).pipe(
      Effect.tap(([, after]) =>
        Effect.all([
          Metric.set(up, after.reachable ? 1 : 0),
          Metric.set(modelCount, after.models.length)
        ], { discard: true })
      ),
      Effect.flatMap(([before, after]) => {
        if (failing(after) && !failing(before)) {
          const error = Option.getOrElse(after.lastError.pipe(Option.orElse(() => after.lastJobFault)), () => "")
          return Effect.logWarning("target degraded").pipe(
            Effect.annotateLogs({ target: name, url: target.url, error }),
            Effect.zipRight(DateTime.now),
            Effect.flatMap((now) => events.publish({ _tag: "TargetDegraded", error, at: DateTime.toEpochMillis(now), target: name }))
          )
        }
        if (!failing(after) && failing(before)) {
          return Effect.logInfo("target recovered").pipe(
            Effect.annotateLogs({
              target: name,
              url: target.url,
              models: after.models.length,
              failures: before.consecutiveFailures + before.jobFaults
            }),
            Effect.zipRight(DateTime.now),
            Effect.flatMap((now) => events.publish({ _tag: "TargetRecovered", at: DateTime.toEpochMillis(now), target: name }))
          )
        }
        if (Option.isSome(after.lastSuccessAt) && Option.isNone(before.lastSuccessAt)) {
          return Effect.logInfo("target reached").pipe(
            Effect.annotateLogs({ target: name, url: target.url, models: after.models.length })
          )
        }
        return Effect.void
      })
    )

  const recordFailure = (error: TargetUnreachable | TargetError, now: DateTime.Utc) =>
    update((state) => ({
      ...state,
      lastPollAt: Option.some(now),
      consecutiveFailures: state.consecutiveFailures + 1,
      lastError: Option.some(describeFailure(error)),
      reachable: error._tag !== "TargetUnreachable"
    }))

  const pollOnce = pollLock.withPermits(1)(
    Effect.gen(function*() {
      const result = yield* Effect.all([target.tags, target.ps], { concurrency: 2 }).pipe(Effect.either)
      yield* Metric.increment(result._tag === "Right" ? pollsSucceeded : pollsFailed)
      const now = yield* DateTime.now
      if (result._tag === "Left") {
        yield* recordFailure(result.left, now)
        return false
      }
      const [tags, ps] = result.right
      yield* update((state) => ({
        ...state,
        models: tags.models,
        resident: ps.models,
        lastPollAt: Option.some(now),
        lastSuccessAt: Option.some(now),
        consecutiveFailures: 0,
        lastError: Option.none(),
        reachable: true
      }))
      return true
    })
  ).pipe(withSpan("Inventory.poll", { captureStackTrace: false }))

  const down = SubscriptionRef.get(ref).pipe(Effect.map((state) => state.consecutiveFailures > 0))

  /** Probes (after a first short delay) until the target answers; at most one prober at a time. */
  const startProbing = FiberHandle.run(
    prober,
    pollOnce.pipe(Effect.schedule(probeSchedule(pollInterval).pipe(Schedule.checkEffect(() => down)))),
    { onlyIfMissing: true }
  ).pipe(Effect.asVoid)

  const poll = pollOnce.pipe(Effect.tap((ok) => (ok ? Effect.void : startProbing)))

  const requestPoll = FiberSet.run(background, poll).pipe(Effect.asVoid)

  const reportUnreachable = (error: TargetUnreachable) =>
    DateTime.now.pipe(
      Effect.flatMap((now) =>
        update((state) => ({
          ...state,
          consecutiveFailures: state.consecutiveFailures + 1,
          lastError: Option.some(describeFailure(error)),
          reachable: false,
          lastPollAt: state.lastPollAt.pipe(Option.orElse(() => Option.some(now)))
        }))
      ),
      Effect.zipRight(requestPoll),
      Effect.zipRight(startProbing)
    )

  const reportFault = (reason: string) =>
    update((state) => ({ ...state, jobFaults: state.jobFaults + 1, lastJobFault: Option.some(reason) })).pipe(Effect.asVoid)

  /**
   * `/api/ps` again soon after a job has been served, so that what foreman reports as resident
   * (`/api/ps` through foreman, health) follows the model switches it caused within a fraction
   * of a second, not at the next poll. One call at a time and at most one per
   * `residencyRefreshEvery`, however many jobs end: a request while one runs (or while it
   * waits out the interval) asks for one more after it. A failed call changes nothing: the
   * polls and the jobs themselves see a target that is down.
   */
  let refreshing = false
  let refreshAgain = false
  const refreshLoop = Effect.gen(function*() {
    do {
      refreshAgain = false
      yield* target.ps.pipe(
        Effect.flatMap((ps) => update((state) => ({ ...state, resident: ps.models }))),
        Effect.ignore
      )
      yield* Effect.sleep(residencyRefreshEvery)
    } while (refreshAgain)
  }).pipe(Effect.ensuring(Effect.sync(() => (refreshing = false))))
  const refreshResidency = Effect.suspend(() => {
    if (refreshing) {
      refreshAgain = true
      return Effect.void
    }
    refreshing = true
    return FiberSet.run(background, refreshLoop).pipe(Effect.asVoid)
  })

  const reportServed = Effect.suspend(() =>
    faulty
      ? update((state) => ({ ...state, jobFaults: 0, lastJobFault: Option.none() })).pipe(Effect.zipRight(refreshResidency))
      : refreshResidency
  )

  const checkClosed = <A, E, R>(call: Effect.Effect<A, E, R>): Effect.Effect<A, E | TargetUnreachable, R> =>
    Effect.catchIf(
      call,
      (error): error is E & TargetError =>
        (error as { _tag?: unknown })._tag === "TargetError" && (error as TargetError).fault === "closed",
      (error) =>
        poll.pipe(
          Effect.flatMap((up) => Effect.fail(up ? error : new TargetUnreachable({ url: target.url, message: error.message })))
        )
    )

  const lookup = (key: string) =>
    Effect.gen(function*() {
      const cached = yield* SubscriptionRef.get(ref)
      if (hasModel(cached, key)) return "found" as const
      const live = yield* target.tags.pipe(Effect.either)
      if (live._tag === "Right") {
        const now = yield* DateTime.now
        yield* update((state) => ({ ...state, models: live.right.models, lastSuccessAt: Option.some(now), reachable: true }))
        return hasModel({ ...cached, models: live.right.models }, key) ? "found" as const : "missing" as const
      }
      // The target cannot be asked. With a last-known inventory, that inventory decides
      // (ADR-0007); with none at all, let the job wait for the target to decide.
      return Option.isSome(cached.lastSuccessAt) ? "missing" as const : "unknown" as const
    }).pipe(withSpan("Inventory.lookup", { captureStackTrace: false }))

  return Inventory.of({
    get: SubscriptionRef.get(ref),
    changes: ref.changes,
    poll,
    requestPoll,
    reportUnreachable,
    reportFault,
    reportServed,
    checkClosed,
    lookup
  })
})
