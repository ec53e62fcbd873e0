/** What `GET /foreman/health` reports (`api/`): how foreman sees the target and its own queue. */
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { isDegraded } from "../inventory/Inventory.ts"
import { AsyncJobs } from "../jobs/AsyncJobs.ts"
import { Scheduler } from "../scheduler/Scheduler.ts"
import * as ModelName from "../ollama/ModelName.ts"
import { Targets } from "../target/Target.ts"

/** A model key in Ollama's display form (`llama3.2:latest`). */
const display = (key: string) => Option.match(ModelName.parse(key), { onNone: () => key, onSome: ModelName.display })

const iso = Option.match({ onNone: () => null, onSome: (at: DateTime.Utc) => DateTime.formatIso(at) })

export const health = Effect.gen(function*() {
  // One target today: its health is foreman's (per-target health comes with several).
  const { primary: target } = yield* Targets
  const state = yield* target.inventory.get
  const queue = yield* (yield* Scheduler).stats
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
      byModel: Object.fromEntries(Object.entries(queue.byModel).map(([model, group]) => [display(model), group]))
    },
    jobs
  }
})
