/** What `GET /foreman/health` reports (`api/`): how foreman sees the target and its own queue. */
import * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { isDegraded } from "../inventory/Inventory.ts"
import { ownerName } from "../auth/Keys.ts"
import { AsyncJobs, type Viewer } from "../jobs/AsyncJobs.ts"
import { anonymous } from "../scheduler/policy.ts"
import { Scheduler } from "../scheduler/Scheduler.ts"
import * as ModelName from "../ollama/ModelName.ts"
import { Targets } from "../target/Target.ts"

/** A model key in Ollama's display form (`llama3.2:latest`). */
const display = (key: string) => Option.match(ModelName.parse(key), { onNone: () => key, onSome: ModelName.display })

const iso = Option.match({ onNone: () => null, onSome: (at: DateTime.Utc) => DateTime.formatIso(at) })

const isoAt = (ms: number) => new Date(ms).toISOString()

/**
 * The report. `viewer.owner` (a user key) limits the sync requests listed as waiting to its
 * own; the rest of the redaction for user keys and requests without one is the route's.
 */
export const health = (viewer: Viewer = {}) => Effect.gen(function*() {
  // One target today: its health is foreman's (per-target health comes with several).
  const { primary: target } = yield* Targets
  const state = yield* target.inventory.get
  const scheduler = yield* Scheduler
  const queue = yield* scheduler.stats
  const now = yield* Clock.currentTimeMillis
  const waiting = (yield* scheduler.waitingCallers).filter(({ ticket }) => viewer.owner === undefined || ticket.caller === viewer.owner)
  const jobs = yield* (yield* AsyncJobs).counts
  return {
    status: isDegraded(state) ? "degraded" as const : "ok" as const,
    target: target.url,
    reachable: state.reachable,
    lastPollAt: iso(state.lastPollAt),
    lastSuccessAt: iso(state.lastSuccessAt),
    consecutiveFailures: state.consecutiveFailures,
    lastError: Option.getOrNull(state.lastError.pipe(Option.orElse(() => state.lastJobFault))),
    jobFaults: state.jobFaults,
    models: state.models.length,
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
    jobs
  }
})
