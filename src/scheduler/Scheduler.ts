/**
 * The queue in front of the targets. Jobs wait here for a slot on a target (each has
 * `concurrency` of them), granted in the order the policy decides (ADR-0009) and only while
 * that target is not known to be asleep (ADR-0002). Dispatch runs in whichever fiber changed what it depends on (a job
 * arriving, a slot freed, the target's state): each grant is one atomic step on the
 * state, so no dispatcher fiber, and no hand-over, stands between a job and a free slot. The caller keeps running its own
 * job: a slot is a scoped lease, so whoever holds it (a sync request's fiber, an async
 * job's fiber) releases it by closing its scope, also when interrupted (a caller that
 * disconnects).
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { ForemanConfig } from "../Config.ts"
import * as Metrics from "../events/Metrics.ts"
import { Events } from "../events/Events.ts"
import { QueueFull, RequestTimeout, ShuttingDown } from "../Errors.ts"
import { hasModel, type InventoryState } from "../inventory/Inventory.ts"
import * as Waker from "../target/Waker.ts"
import * as ModelName from "../ollama/ModelName.ts"
import { type Target, Targets } from "../target/Target.ts"
import {
  anonymous,
  isSwap,
  loadedWith,
  type LastRun,
  modelOfUnit,
  place,
  type Policy,
  type Priority,
  priorities,
  type PsResidency,
  residentModels,
  swapAware,
  type TargetState,
  unitOf,
  type Waiting
} from "./policy.ts"
import * as Eta from "./eta.ts"

/** A job's place in the queue. */
export type Ticket = Waiting

/**
 * How long the target keeps a model after a job, when `/api/ps` has not told us yet
 * (Ollama's default keep-alive).
 */
export const assumedKeepAlive = Duration.minutes(5)

/** From this many jobs waiting, the forecast is not made again on every change (see `forecastNow`). */
const deepQueue = 1_000

interface Entry {
  readonly ticket: Ticket
  /**
   * A caller holding a connection waits on it (a sync request). Only these count against
   * `--max-queue`: stored async jobs were accepted when stored, and wait behind.
   */
  readonly caller: boolean
  /** A caller's fiber waiting for the grant (`acquire`): the target the slot is on... */
  readonly granted?: Deferred.Deferred<Target, ShuttingDown>
  /** ...or what to run when it is granted (`enqueue`), in the fiber that dispatched it. */
  readonly onGrant?: (target: Target) => Effect.Effect<void>
}

/**
 * The queue, and which target holds each slot granted (the slots themselves and what each
 * target ran last are the target's: `Target.slots`, `Target.residency`). Mutable, and
 * changed only in synchronous steps (each grant, arrival or release is one step: nothing can
 * interleave within it on one thread), which costs a fraction of copying an immutable state
 * through a `Ref` on every change.
 */
interface State {
  readonly waiting: Array<Entry>
  /** The target each running job holds its slot on, by job id. */
  readonly holders: Map<string, Target>
  /** When each running job was given its slot, and whether that made its target load its model. */
  readonly grants: Map<string, { readonly at: number; readonly load: boolean }>
  swaps: number
  /** Counts the changes to the queue and the slots: a forecast made at one version is stale at the next. */
  version: number
}

export interface WaitingGroup {
  readonly waiting: number
  /** Milliseconds the oldest job of the group has waited. */
  readonly oldestWaitMs: number
}

/** One target's share of the queue: the waiting jobs only it can serve (pinned to it, or no other target has their model). */
export interface TargetQueue extends WaitingGroup {
  /** Jobs holding one of its slots. */
  readonly running: number
  readonly slots: number
  /** Models it holds now (`/api/ps` and what foreman ran last there). */
  readonly resident: ReadonlyArray<string>
}

export interface QueueStats {
  readonly waiting: number
  readonly running: number
  /**
   * Dispatched jobs whose model was not resident, or resident with other load options (which
   * Ollama reloads it for): the model loads foreman caused.
   */
  readonly swaps: number
  /** Model keys the scheduler takes as resident now (`/api/ps` plus its own last runs), on any target. */
  readonly resident: ReadonlyArray<string>
  readonly byModel: Readonly<Record<string, WaitingGroup>>
  readonly byPriority: Readonly<Record<Priority, WaitingGroup>>
  /** Per target, by name. */
  readonly byTarget: Readonly<Record<string, TargetQueue>>
  /** What the ETAs rest on: each measured model's average job time (ms) and load time (ms, once known). */
  readonly estimates: Readonly<Record<string, Eta.ModelEstimate>>
}

export interface TicketOptions {
  readonly id?: string
  readonly enqueuedAt?: number
  readonly caller?: string
  /**
   * The job's load-affecting options (`ollama/loadOptions.ts`; `""`, the default: none): the
   * queue's unit is the model with these (`unitOf`), so equal ones group and a change is a swap.
   */
  readonly load?: string
  /** The target the job must run on (`X-Foreman-Target`), by name. */
  readonly target?: string
}

export interface SchedulerService {
  /**
   * A new ticket: the next arrival number, now as its enqueue time unless given (a job
   * restored after a restart keeps its original arrival time). `caller` is who sent it (the
   * API key's name; `anonymous` if not given): the policy shares slots fairly between callers.
   */
  readonly ticket: (
    model: string,
    priority: Priority,
    options?: TicketOptions
  ) => Effect.Effect<Ticket>
  /**
   * Waits in the queue until a slot is granted, for at most `within` milliseconds if given
   * (then `RequestTimeout`): the target the slot is on. The slot is held until the enclosing scope closes; closing it
   * while still queued removes the ticket. A ticket with `attempts > 0` (a retry) is never
   * refused for a full queue: it was accepted once. `caller: false` (a stored async job's
   * retry) keeps it out of the count of waiting callers that `--max-queue` bounds.
   */
  readonly acquire: (
    ticket: Ticket,
    within?: number,
    options?: { readonly caller?: boolean }
  ) => Effect.Effect<Target, QueueFull | RequestTimeout | ShuttingDown, Scope.Scope>
  /**
   * Queues a ticket with no fiber waiting on it: an async job may wait for hours, and
   * 10 000 of them should cost their queue entries, not 10 000 suspended fibers.
   * `onGrant` runs when the slot is granted (with the target it is on), in the fiber that
   * dispatched it, so it must not block (it forks the job's work). The slot is then held
   * until `release(ticket.id)`. Never refused for a full queue (the job was accepted when it
   * was stored).
   */
  readonly enqueue: (ticket: Ticket, onGrant: (target: Target) => Effect.Effect<void>) => Effect.Effect<void>
  /**
   * Takes the ticket out of the queue, or frees its slot, whichever it holds (idempotent):
   * what it held.
   */
  readonly release: (id: string) => Effect.Effect<"queued" | "running" | "none">
  readonly stats: Effect.Effect<QueueStats>
  /**
   * A waiting job's place: 1-based, in the order the policy is expected to dispatch the queue
   * (see `eta.ts`); while no target is reachable, 1 + the jobs ahead of it by class and arrival.
   * Later arrivals can still go ahead of it, so it is an estimate.
   */
  readonly position: (id: string) => Effect.Effect<Option.Option<number>>
  /** A waiting or running job's place and expected times (`eta.ts`); none for a job the queue does not hold. */
  readonly estimate: (id: string) => Effect.Effect<Option.Option<Eta.JobEstimate>>
  /** The jobs waiting with a caller on the line (sync requests), in their forecast order. */
  readonly waitingCallers: Effect.Effect<ReadonlyArray<Eta.WaitingCaller>>
  /**
   * Shutdown: grants no more slots, and interrupts the callers waiting for one (queued async
   * jobs stay in the store for the next start). Idempotent; also done when the layer closes.
   */
  readonly close: Effect.Effect<void>
}

export class Scheduler extends Context.Tag("foreman/Scheduler")<Scheduler, SchedulerService>() {}

const group = (tickets: ReadonlyArray<Ticket>, now: number): WaitingGroup => ({
  waiting: tickets.length,
  oldestWaitMs: tickets.reduce((oldest, t) => Math.max(oldest, now - t.enqueuedAt), 0)
})

export const make = (policy: Policy) =>
  Effect.gen(function*() {
    const config = yield* ForemanConfig
    const targets = yield* Targets
    const events = yield* Events
    // One tagged gauge per class, made once: tagging builds and hashes a key on every call.
    const depthGauges = Object.fromEntries(
      priorities.map((p) => [p, Metric.tagged(Metrics.queueDepth, "priority", p)])
    ) as Record<Priority, Metric.Metric.Gauge<number>>
    const maxWait = Duration.toMillis(config.maxWait)
    const keepAlive = Duration.toMillis(assumedKeepAlive)
    const state: State = { waiting: [], holders: new Map(), grants: new Map(), swaps: 0, version: 0 }
    // What the ETAs rest on: each job's time at the target, from its `JobFinished` event.
    const measurements = Eta.makeMeasurements()
    // Starts so far and each caller's latest (fair share's input): one entry per caller ever
    // served, and callers are API keys, so it stays small.
    const last = new Map<string, number>()
    let starts = 0
    let seq = 0
    /** Shut down: no more grants. */
    let closed = false
    // Since when each target has been serving (`Target.residency.servingSince`): waiting
    // while it slept is not starvation. Max-wait aging counts from the later of a job's
    // arrival and the target's last wake, or every job would be overdue after a long sleep
    // and the queue would thrash in arrival order.
    // Gauges updated in the synchronous steps (the effectful `Metric.incrementBy` would make
    // every step an effect chain); they carry no fiber-level metric tags.
    const depth = (priority: Priority, by: number) => depthGauges[priority].unsafeModify(by, [])
    /** Waiting entries with a caller behind them (what `--max-queue` bounds). */
    let callers = 0
    const runningBy = (by: number) => Metrics.jobsRunning.unsafeModify(by, [])

    const ticket = (model: string, priority: Priority, options?: TicketOptions) =>
      Clock.currentTimeMillis.pipe(Effect.map((now): Ticket => {
        seq += 1
        const load = options?.load ?? ""
        return {
          id: options?.id ?? `j${seq}`,
          seq,
          model,
          ...(load === "" ? {} : { unit: unitOf(model, load) }),
          priority,
          enqueuedAt: options?.enqueuedAt ?? now,
          attempts: 0,
          caller: options?.caller ?? anonymous,
          ...(options?.target === undefined ? {} : { target: options.target })
        }
      }))

    /** Leaves the queue or frees the slot, whichever the ticket holds; idempotent. */
    const leave = (id: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const target = state.holders.get(id)
        const ticket = target?.slots.running.get(id)
        if (target !== undefined && ticket !== undefined) {
          state.holders.delete(id)
          state.grants.delete(id)
          state.version++
          target.slots.running.delete(id)
          // The target keeps the model it just ran (until `/api/ps` says otherwise), with
          // this job's options: it holds one runner per model.
          const unit = ticket.unit ?? ticket.model
          const { lastRun } = target.residency
          if (!lastRun.has(unit)) for (const other of lastRun.keys()) if (modelOfUnit(other) === ticket.model) lastRun.delete(other)
          lastRun.set(unit, now + keepAlive)
          runningBy(-1)
          return Effect.as(dispatch, "running" as const)
        }
        const index = state.waiting.findIndex((entry) => entry.ticket.id === id)
        if (index < 0) return Effect.succeed("none" as const)
        const entry = state.waiting[index]!
        depth(entry.ticket.priority, -1)
        if (entry.caller) callers--
        state.waiting.splice(index, 1)
        state.version++
        return Effect.as(dispatch, "queued" as const)
      })

    const enqueue = (entry: Entry, refuseWhenFull: boolean) =>
      Effect.suspend(() => {
        if (refuseWhenFull && callers >= config.maxQueue) return new QueueFull({ limit: config.maxQueue })
        state.waiting.push(entry)
        state.version++
        depth(entry.ticket.priority, 1)
        if (entry.caller) callers++
        return dispatch
      })

    const acquire = (ticket: Ticket, within?: number, options?: { readonly caller?: boolean }) =>
      // The release goes straight into the scope: `acquireRelease` would also diff and
      // restore every fiber ref around it, a measurable share of a job's cost.
      Effect.uninterruptible(Effect.scopeWith((scope): Effect.Effect<Deferred.Deferred<Target, ShuttingDown>, QueueFull | ShuttingDown> => {
        const granted = Deferred.unsafeMake<Target, ShuttingDown>(FiberId.none)
        if (closed) return Effect.fail(new ShuttingDown())
        return enqueue({ ticket, granted, caller: options?.caller ?? true }, ticket.attempts === 0).pipe(
          Effect.zipRight(Scope.addFinalizer(scope, leave(ticket.id))),
          Effect.as(granted)
        )
      })).pipe(
        Effect.flatMap((granted) =>
          // Granted on arrival (a free slot): no timer to arm, no fiber to race.
          Deferred.isDone(granted).pipe(Effect.flatMap((done) =>
            done || within === undefined
              ? Deferred.await(granted)
              : Deferred.await(granted).pipe(Effect.timeoutFail({
                duration: Duration.millis(Math.max(0, within)),
                onTimeout: () => new RequestTimeout({ waitedMillis: within, reason: "the job was still queued" })
              }))
          ))
        )
      )

    /** What a target holds now (units), by `/api/ps` and by what foreman ran last. */
    const resident = (target: Target, seen: Seen, now: number) =>
      residentModels({
        ps: seen.ps,
        psAt: seen.at,
        lastRun: Array.from(target.residency.lastRun, ([model, expiresAt]): LastRun => ({
          model,
          expiresAt,
          endedAt: expiresAt - keepAlive
        })),
        now,
        maxLoaded: target.maxLoaded
      })

    type Seen = {
      readonly of: InventoryState
      readonly reachable: boolean
      readonly ps: ReadonlyArray<PsResidency>
      /** When this `/api/ps` list was first seen: it is not older than that. */
      readonly at: number
    }
    /** Each target's residency by `/api/ps`, worked out once per inventory snapshot. */
    const psOf: Array<Seen | undefined> = targets.all.map(() => undefined)
    const psResidency = (target: Target, index: number, now: number) =>
      Effect.map(target.inventory.get, (inventory) => {
        const seen = psOf[index]
        if (seen?.of === inventory) return seen
        const next: Seen = {
          of: inventory,
          reachable: inventory.reachable,
          // Other changes of the inventory's state keep its list, and so its age.
          at: seen !== undefined && seen.of.resident === inventory.resident ? seen.at : now,
          ps: inventory.resident.flatMap((m): Array<PsResidency> =>
            Option.match(ModelName.keyOf(m.model ?? m.name), {
              onNone: () => [],
              onSome: (model) => {
                const expiresAt = m.expires_at === undefined ? Number.NaN : Date.parse(m.expires_at)
                const contextLength = m["context_length"]
                return [{
                  model,
                  expiresAt: Number.isNaN(expiresAt) ? Number.POSITIVE_INFINITY : expiresAt,
                  ...(typeof contextLength === "number" ? { contextLength } : {})
                }]
              }
            })
          )
        }
        psOf[index] = next
        return next
      })
    const residencies = (now: number) => Effect.all(targets.all.map((target, index) => psResidency(target, index, now)))

    const several = targets.all.length > 1
    /** A target's state as the policy sees it. With one target, routing needs no more. */
    const stateOf = (target: Target, seen: Seen, now: number): TargetState => {
      const running = Array.from(target.slots.running.values(), (t) => t.unit ?? t.model)
      return {
      ...(several
        ? {
          name: target.name,
          // An inventory never read cannot tell: the target decides.
          has: Option.isNone(seen.of.lastSuccessAt) ? undefined : (model: string) => hasModel(seen.of, model)
        }
        : {}),
      reachable: seen.reachable,
      running,
      // A model a running job loaded has pushed out what it evicted, whatever `/api/ps` said.
      resident: loadedWith(resident(target, seen, now), running, target.maxLoaded),
      freeSlots: target.slots.size - target.slots.running.size,
      // No job can be overdue before the target has served for max-wait since waking.
      maxWait: now - target.residency.servingSince > maxWait ? maxWait : Number.POSITIVE_INFINITY,
      maxLoaded: target.maxLoaded
    }
    }

    const decide = place(policy)

    /**
     * Grants slots while the policy picks jobs, in one synchronous step; then runs what the
     * grants need run (async jobs' starts, the log line and event of a model swap).
     */
    const dispatch: Effect.Effect<void> = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.flatMap(residencies(now), (seen) => {
        if (closed || state.waiting.length === 0) return Effect.void
        const after: Array<Effect.Effect<void>> = []
        while (state.waiting.length > 0) {
          const views = targets.all.map((target, index) => stateOf(target, seen[index]!, now))
          const placed = decide({ waiting: state.waiting.map((e) => e.ticket), targets: views, now, served: { starts, last } })
          if (placed === undefined) break
          const { job } = placed
          const target = targets.all[placed.target]!
          const view = views[placed.target]!
          const index = state.waiting.findIndex((e) => e.ticket.id === job.id)
          const entry = state.waiting[index]!
          state.waiting.splice(index, 1)
          if (entry.caller) callers--
          target.slots.running.set(job.id, job)
          state.holders.set(job.id, target)
          last.set(job.caller, ++starts)
          depth(job.priority, -1)
          runningBy(1)
          const load = isSwap(job.unit ?? job.model, view)
          state.grants.set(job.id, { at: now, load })
          state.version++
          measurements.dispatched(job.id, job.model, load)
          if (load) {
            state.swaps += 1
            Metrics.modelSwapsTotal.unsafeUpdate(1, [])
            after.push(
              Effect.logInfo("model swap").pipe(
                // `resident` and `to` name units: a reload of one model for other options is a swap.
                Effect.annotateLogs({ job: job.id, to: job.unit ?? job.model, resident: view.resident.join(",") }),
                Effect.zipRight(events.publish({
                  _tag: "ModelSwapped",
                  jobId: job.id,
                  to: job.model,
                  from: view.resident.map(modelOfUnit),
                  at: now
                }))
              )
            )
          }
          if (entry.granted !== undefined) Deferred.unsafeDone(entry.granted, Exit.succeed(target))
          if (entry.onGrant !== undefined) after.push(entry.onGrant(target))
        }
        return after.length === 0 ? Effect.void : Effect.forEach(after, (effect) => effect, { discard: true })
      })
    )

    // A target's state changing (asleep -> awake, new residency) may unblock dispatch.
    for (const target of targets.all) {
      let wasReachable = (yield* target.inventory.get).reachable
      yield* target.inventory.changes.pipe(
        Stream.runForEach((inventory) =>
          Effect.gen(function*() {
            if (inventory.reachable && !wasReachable) target.residency.servingSince = yield* Clock.currentTimeMillis
            wasReachable = inventory.reachable
            yield* dispatch
          })
        ),
        Effect.forkScoped
      )
    }

    // Each job's time at the target, as its report has it (dispatch to last byte), feeds the
    // ETAs. Subscribed now, so no job finishing from here on is missed.
    const reports = yield* events.subscribe
    yield* Queue.takeBetween(reports, 1, 1024).pipe(
      Effect.map((batch) => {
        for (const event of batch) {
          if (event._tag !== "JobFinished") continue
          const succeeded = typeof event.status === "number" && event.status < 400 && event.ttfbMs !== undefined
          measurements.finished(event.job.id, succeeded, event.durationMs)
        }
      }),
      Effect.forever,
      Effect.forkScoped
    )

    /**
     * Whether a job waits that only `target` can serve while it is unreachable: one pinned to
     * it, or one whose model no reachable target has and this one has (or none has: the
     * targets decide). What makes its Waker send the magic packet.
     */
    const wakeNeeded = (index: number) =>
      Effect.map(Effect.all(targets.all.map((target) => target.inventory.get)), (inventories) => {
        const target = targets.all[index]!
        if (inventories[index]!.reachable || closed || state.waiting.length === 0) return false
        const name = target.name.toLowerCase()
        const has = (i: number, model: string) =>
          Option.isNone(inventories[i]!.lastSuccessAt) || hasModel(inventories[i]!, model)
        return state.waiting.some(({ ticket }) => {
          if (ticket.target !== undefined) return ticket.target.toLowerCase() === name
          if (!has(index, ticket.model) && targets.all.some((_, i) => has(i, ticket.model))) return false
          return !targets.all.some((_, i) => i !== index && inventories[i]!.reachable && has(i, ticket.model))
        })
      })
    yield* Effect.forEach(targets.all, (target, index) =>
      target.wake === undefined || target.wakeStatus === undefined
        ? Effect.void
        : Effect.forkScoped(Waker.run(target, target.wake, target.wakeStatus, { needed: wakeNeeded(index) })), { discard: true })

    const stats = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const seen = yield* residencies(now)
      // Each target's view once (the per-target counts below ask it per job).
      const views = targets.all.map((target, index) => stateOf(target, seen[index]!, now))
      const tickets = state.waiting.map((e) => e.ticket)
      const models = new Map<string, Array<Ticket>>()
      for (const t of tickets) {
        const group = models.get(t.model)
        if (group === undefined) models.set(t.model, [t])
        else group.push(t)
      }
      return {
        waiting: tickets.length,
        running: state.holders.size,
        swaps: state.swaps,
        // Models, not units: a model is resident whatever options it was loaded with.
        resident: Array.from(new Set(targets.all.flatMap((target, index) => resident(target, seen[index]!, now).map(modelOfUnit)))),
        byModel: Object.fromEntries(Array.from(models, ([model, ts]) => [model, group(ts, now)])),
        byPriority: Object.fromEntries(
          priorities.map((p) => [p, group(tickets.filter((t) => t.priority === p), now)])
        ) as Record<Priority, WaitingGroup>,
        estimates: Eta.summary(measurements.measured),
        byTarget: Object.fromEntries(targets.all.map((target, index) => {
          const view = views[index]!
          const only = (t: Ticket) =>
            t.target !== undefined
              ? t.target.toLowerCase() === target.name.toLowerCase()
              : (view.has === undefined || view.has(t.model)) &&
                !views.some((other, i) => i !== index && (other.has?.(t.model) ?? true))
          return [target.name, {
            ...group(several ? tickets.filter(only) : tickets, now),
            running: target.slots.running.size,
            slots: target.slots.size,
            resident: view.resident.map(modelOfUnit)
          } satisfies TargetQueue]
        }))
      } satisfies QueueStats
    })

    /**
     * The forecast of the queue as it is (see `eta.ts`), made when someone asks and kept until
     * the queue, the slots, the targets' states or the measurements change (or a second
     * passes: the running jobs' expected ends move with the clock). `undefined` while no target
     * is reachable: whatever a target holds when it wakes decides the order. A deep queue's
     * forecast costs milliseconds (10 000 jobs: ~10 ms), so there it is made again at most
     * once per ten times what the last one cost; a job that arrived since has a rough place.
     */
    let cached: {
      readonly version: number
      readonly revision: number
      readonly seen: ReadonlyArray<Seen>
      readonly at: number
      /** Wall-clock time it was made at and what it cost (`performance.now()`, ms). */
      readonly madeAt: number
      readonly costMs: number
      readonly forecast: Eta.Forecast | undefined
    } | undefined
    const forecastNow = Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.map(residencies(now), (seen) => {
      const sameTargets = cached !== undefined && cached.seen.every((s, i) => s === seen[i])
      if (
        cached !== undefined && sameTargets && cached.version === state.version && cached.revision === measurements.revision &&
        now - cached.at < 1_000 && cached.at <= now
      ) return cached.forecast
      const wall = performance.now()
      if (cached !== undefined && sameTargets && state.waiting.length >= deepQueue && wall - cached.madeAt < 10 * cached.costMs) {
        return cached.forecast
      }
      const forecast = seen.some((s) => s.reachable)
        ? Eta.forecast({
          policy,
          waiting: state.waiting.map((e) => e.ticket),
          targets: targets.all.map((target, index): Eta.ForecastTarget => {
            // Routing as dispatch sees it: names for pins, models per target, what is loaded.
            const view = stateOf(target, seen[index]!, now)
            return {
              name: view.name,
              has: view.has,
              reachable: view.reachable,
              slots: target.slots.size,
              running: Array.from(target.slots.running.values(), (t) => {
                const grant = state.grants.get(t.id)
                return { id: t.id, model: t.model, unit: t.unit, startedAt: grant?.at ?? now, load: grant?.load ?? false }
              }),
              resident: view.resident,
              maxLoaded: target.maxLoaded,
              maxWait,
              servingSince: target.residency.servingSince
            }
          }),
          now,
          served: { starts, last },
          cost: measurements.cost
        })
        : undefined
      const madeAt = performance.now()
      cached = { version: state.version, revision: measurements.revision, seen, at: now, madeAt, costMs: madeAt - wall, forecast }
      return forecast
    }))

    const queued = (forecast: Eta.Forecast | undefined, entry: Entry): Eta.QueuedEstimate => {
      const estimate = forecast?.waiting.get(entry.ticket.id)
      if (estimate === undefined) {
        return { _tag: "Queued", position: Eta.roughPosition(state.waiting.map((e) => e.ticket), entry.ticket) }
      }
      return {
        _tag: "Queued",
        position: estimate.position,
        ...(estimate.startAt === undefined ? {} : { startAt: estimate.startAt }),
        ...(estimate.finishAt === undefined ? {} : { finishAt: estimate.finishAt })
      }
    }

    const estimate = (id: string) =>
      Effect.suspend((): Effect.Effect<Option.Option<Eta.JobEstimate>> => {
        const grant = state.grants.get(id)
        if (grant !== undefined) {
          return Effect.map(forecastNow, (forecast) => {
            const finishAt = forecast?.running.get(id)
            return Option.some({ _tag: "Running", startedAt: grant.at, ...(finishAt === undefined ? {} : { finishAt }) })
          })
        }
        const entry = state.waiting.find((e) => e.ticket.id === id)
        if (entry === undefined) return Effect.succeed(Option.none())
        return Effect.map(forecastNow, (forecast) => Option.some(queued(forecast, entry)))
      })

    const position = (id: string) =>
      Effect.map(estimate(id), Option.flatMap((e) => (e._tag === "Queued" ? Option.some(e.position) : Option.none())))

    const waitingCallers = Effect.suspend(() => {
      const entries = state.waiting.filter((e) => e.caller)
      if (entries.length === 0) return Effect.succeed([])
      return Effect.map(forecastNow, (forecast) =>
        entries.map((entry): Eta.WaitingCaller => ({ ticket: entry.ticket, estimate: queued(forecast, entry) }))
          .sort((a, b) => a.estimate.position - b.estimate.position))
    })

    const close = Effect.sync(() => {
      if (closed) return
      closed = true
      // Each caller's own scope then takes its ticket out of the queue.
      for (const entry of state.waiting) {
        if (entry.granted !== undefined) Deferred.unsafeDone(entry.granted, Exit.fail(new ShuttingDown()))
      }
    })
    yield* Effect.addFinalizer(() => close)

    return Scheduler.of({
      ticket,
      acquire,
      enqueue: (ticket, onGrant) => enqueue({ ticket, onGrant, caller: false }, false).pipe(Effect.orDie),
      release: leave,
      stats,
      position,
      estimate,
      waitingCallers,
      close
    })
  })

export const layer = Layer.scoped(Scheduler, make(swapAware))
