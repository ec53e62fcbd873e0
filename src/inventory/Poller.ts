/**
 * The background poller (ADR-0007): polls the target at once, then every `pollInterval`.
 * A failed poll also starts the inventory's recovery probe, which polls on a short backoff
 * until the target answers again.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import { ForemanConfig } from "../Config.ts"
import { Inventory } from "./Inventory.ts"

export const layer = Layer.scopedDiscard(
  Effect.gen(function*() {
    const { pollInterval } = yield* ForemanConfig
    const inventory = yield* Inventory
    yield* inventory.poll.pipe(Effect.repeat(Schedule.spaced(pollInterval)), Effect.forkScoped)
  })
)
