/**
 * The background poller (ADR-0007): each target is polled at once, then every `pollInterval`
 * (`Target.polling`). A failed poll also starts that target's recovery probe, which polls on
 * a short backoff until the target answers again.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Targets } from "./Target.ts"

export const layer = Layer.scopedDiscard(
  Effect.gen(function*() {
    const { all } = yield* Targets
    yield* Effect.forEach(all, (target) => Effect.forkScoped(target.polling), { discard: true })
  })
)
