/**
 * What `GET /foreman/health` reports (`api/`): how foreman sees its targets and its own queue.
 *
 * The top-level target fields (`target`, `reachable`, `lastPollAt`, `lastSuccessAt`,
 * `consecutiveFailures`, `lastError`, `jobFaults`) are the primary target's, as with one
 * target; `status` is foreman's: `degraded` when any target is; `models` counts what
 * `/api/tags` lists (each model once over every target). `targets` has each target's own.
 */
import * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { isDegraded } from "../inventory/Inventory.ts"
import { ownerName } from "../auth/Keys.ts"
import { AsyncJobs, type Viewer } from "../jobs/AsyncJobs.ts"
import { anonymous } from "../scheduler/policy.ts"
import { type QueueStats, Scheduler, type WaitingGroup } from "../scheduler/Scheduler.ts"
import * as ModelName from "../ollama/ModelName.ts"
import type { PsModel } from "../ollama/schema.ts"
import * as Inventories from "../target/inventories.ts"
import { type Target, Targets } from "../target/Target.ts"
import { emptyStatus, type WakeStatus } from "../target/Waker.ts"

/** A model key in Ollama's display form (`llama3.2:latest`). */
const display = (key: string) => Option.match(ModelName.parse(key), { onNone: () => key, onSome: ModelName.display })

const iso = Option.match({ onNone: () => null, onSome: (at: DateTime.Utc) => DateTime.formatIso(at) })

const isoAt = (ms: number) => new Date(ms).toISOString()

const isoOrNull = (ms: number | undefined) => (ms === undefined ? null : isoAt(ms))

/**
 * The target's wake status (`WakeStatus`, kept by its Wake-on-LAN loop), once the target
 * carries one: read through here only, so that its absence reads as no packet sent yet.
 */
export const wakeStatusOf = (target: Target): WakeStatus | undefined => target.wakeStatus

/**
 * The jobs waiting that only `target` can run, once the scheduler says so (`QueueStats.byTarget`,
 * by target name); undefined until it does.
 */
export const queueOf = (stats: QueueStats, target: Target): WaitingGroup | undefined => {
  const mine = stats.byTarget[target.name]
  return mine === undefined ? undefined : { waiting: mine.waiting, oldestWaitMs: mine.oldestWaitMs }
}

/** A model of a target's `/api/ps`, in Ollama's display form. */
const residentName = (entry: PsModel) => {
  const name = entry.model ?? entry.name
  return Option.match(ModelName.keyOf(name), { onNone: () => name, onSome: display })
}

/** One target as health reports it. */
const targetHealth = (target: Target, stats: QueueStats) =>
  Effect.map(target.inventory.get, (state) => {
    const queue = queueOf(stats, target)
    const wake = target.wake === undefined ? undefined : (wakeStatusOf(target) ?? emptyStatus())
    return {
      name: target.name,
      /** How a user key sees it named (`Target.publicName`); `forUser` puts it in `name`. */
      publicName: target.publicName,
      url: target.url,
      status: isDegraded(state) ? "degraded" as const : "ok" as const,
      reachable: state.reachable,
      lastPollAt: iso(state.lastPollAt),
      lastSuccessAt: iso(state.lastSuccessAt),
      consecutiveFailures: state.consecutiveFailures,
      lastError: Option.getOrNull(state.lastError.pipe(Option.orElse(() => state.lastJobFault))),
      jobFaults: state.jobFaults,
      models: state.models.length,
      // As its /api/ps said at the last poll (or at the refresh after a job).
      resident: state.resident.map(residentName),
      running: target.slots.running.size,
      slots: target.slots.size,
      ...(queue === undefined ? {} : { queue }),
      ...(wake === undefined ? {} : {
        wake: {
          packets: wake.packets,
          lastAttemptAt: isoOrNull(wake.lastAttemptAt),
          lastWokeAt: isoOrNull(wake.lastWokeAt),
          lastWakeMillis: wake.lastWakeMillis ?? null,
          lastError: wake.lastError ?? null
        }
      })
    }
  })

/**
 * The report. `viewer.owner` (a user key) limits the sync requests listed as waiting to its
 * own; the rest of the redaction for user keys (`forUser`) and requests without one is the route's.
 */
export const health = (viewer: Viewer = {}) => Effect.gen(function*() {
  const targets = yield* Targets
  const { primary: target } = targets
  const state = yield* target.inventory.get
  const scheduler = yield* Scheduler
  const queue = yield* scheduler.stats
  const each = yield* Effect.forEach(targets.all, (target) => targetHealth(target, queue))
  const models = yield* Inventories.of(targets).models
  const now = yield* Clock.currentTimeMillis
  const waiting = (yield* scheduler.waitingCallers).filter(({ ticket }) => viewer.owner === undefined || ticket.caller === viewer.owner)
  const jobs = yield* (yield* AsyncJobs).counts
  return {
    status: each.some((target) => target.status === "degraded") ? "degraded" as const : "ok" as const,
    target: target.url,
    reachable: state.reachable,
    lastPollAt: iso(state.lastPollAt),
    lastSuccessAt: iso(state.lastSuccessAt),
    consecutiveFailures: state.consecutiveFailures,
    lastError: Option.getOrNull(state.lastError.pipe(Option.orElse(() => state.lastJobFault))),
    jobFaults: state.jobFaults,
    models: models.length,
    resident: queue.resident.map(display),
    queueDepth: queue.waiting,
    running: queue.running,
    swaps: queue.swaps,
    queue: {
      byPriority: queue.byPriority,
      byModel: Object.fromEntries(Object.entries(queue.byModel).map(([model, group]) => [display(model), group])),
      // Sync requests waiting for a slot, in their expected order (async jobs show theirs in their view).
      waiting: waiting.map(({ estimate, ticket }) => ({
        id: ticket.id,
        model: display(ticket.model),
        priority: ticket.priority,
        ...(ticket.caller === anonymous ? {} : { caller: ownerName(ticket.caller) }),
        waitedMs: Math.max(0, now - ticket.enqueuedAt),
        position: estimate.position,
        ...(estimate.startAt === undefined ? {} : { estimatedStartAt: isoAt(estimate.startAt) }),
        ...(estimate.finishAt === undefined ? {} : { estimatedFinishAt: isoAt(estimate.finishAt) })
      })),
      estimates: Object.fromEntries(Object.entries(queue.estimates).map(([model, estimate]) => [display(model), estimate]))
    },
    jobs,
    targets: each
  }
})

export type HealthReport = Effect.Effect.Success<ReturnType<typeof health>>

/**
 * The report as a user key sees it: nothing that says where a target is (its URL, an error
 * text that may name it, why a wake packet could not be sent). Names stay: they are the
 * admin's labels, and a user needs them for `X-Foreman-Target`.
 */
export const forUser = (report: HealthReport) => {
  const { lastError: _lastError, target: _target, targets, ...rest } = report
  return {
    ...rest,
    // A target's name may be its host (an address): a user key sees its public name.
    targets: targets.map(({ url: _url, lastError: _error, wake, name: _name, publicName, ...target }) => {
      if (wake === undefined) return { name: publicName, ...target }
      const { lastError: _wakeError, ...seen } = wake
      return { name: publicName, ...target, wake: seen }
    })
  }
}
