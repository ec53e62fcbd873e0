/** `GET /foreman/health`: how foreman sees the target and its own queue. */
import { HttpServerResponse } from "@effect/platform"
import { DateTime, Effect, Option } from "effect"
import { Inventory, isDegraded } from "../inventory/Inventory.ts"
import { Scheduler } from "../scheduler/Scheduler.ts"
import { TargetClient } from "../target/TargetClient.ts"
import { ForemanRouter } from "./Router.ts"

const iso = Option.match({ onNone: () => null, onSome: (at: DateTime.Utc) => DateTime.formatIso(at) })

export const health = Effect.gen(function*() {
  const target = yield* TargetClient
  const state = yield* (yield* Inventory).get
  const queue = yield* (yield* Scheduler).stats
  return {
    status: isDegraded(state) ? "degraded" as const : "ok" as const,
    target: target.url,
    reachable: state.reachable,
    lastPollAt: iso(state.lastPollAt),
    lastSuccessAt: iso(state.lastSuccessAt),
    consecutiveFailures: state.consecutiveFailures,
    lastError: Option.getOrNull(state.lastError),
    models: state.models.length,
    resident: state.resident.map((model) => model.name),
    queueDepth: queue.waiting,
    running: queue.running
  }
})

export const layer = ForemanRouter.use((router) =>
  Effect.gen(function*() {
    const context = yield* Effect.context<TargetClient | Inventory | Scheduler>()
    yield* router.get("/foreman/health", health.pipe(Effect.map(HttpServerResponse.unsafeJson), Effect.provide(context)))
  })
)
