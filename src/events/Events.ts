/**
 * What happens to jobs and to the target, as a stream plugins can follow (the plugin
 * contract's second half, next to adding routes to the ForemanRouter). Delivery is
 * best-effort: a subscriber that falls more than `capacity` events behind loses the oldest.
 * Figures that must be exact live in `Metrics.ts`, not here.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

export interface JobInfo {
  readonly id: string
  /** The target path the job calls (`/api/chat`, `/v1/chat/completions`, ...). */
  readonly endpoint: string
  /** The model as the caller sent it. */
  readonly model: string
  readonly priority: "interactive" | "normal" | "batch"
  readonly async: boolean
  /** The name of the API key it came with (absent while keys are off). */
  readonly caller?: string
  /**
   * The name of the target that runs it (`Target.name`): set once the job has a slot (its
   * `JobStarted` and `JobFinished`), absent while it waits and for a job that never got one.
   */
  readonly target?: string
}

export type ForemanEvent =
  | { readonly _tag: "JobQueued"; readonly job: JobInfo; readonly at: number }
  | { readonly _tag: "JobStarted"; readonly job: JobInfo; readonly at: number; readonly waitMs: number }
  | {
    readonly _tag: "JobFinished"
    readonly job: JobInfo
    readonly at: number
    /** The target's HTTP status, or what ended the job without one. */
    readonly status: number | "failed" | "cancelled" | "expired"
    /** In the queue: from arrival to dispatch to the target. */
    readonly waitMs: number
    /** At the target: from dispatch (a model load included) to the last byte. */
    readonly durationMs: number
    /** From dispatch to the answer's first byte (absent if the target never answered). */
    readonly ttfbMs?: number
    readonly error?: string
  }
  | { readonly _tag: "ModelSwapped"; readonly jobId: string; readonly to: string; readonly from: ReadonlyArray<string>; readonly at: number }
  /** `target`: the target's name (`Target.name`). */
  | { readonly _tag: "TargetDegraded"; readonly error: string; readonly at: number; readonly target?: string }
  | { readonly _tag: "TargetRecovered"; readonly at: number; readonly target?: string }

/** How many events a slow subscriber may fall behind before it loses the oldest. */
export const capacity = 4096

export interface EventsService {
  readonly publish: (event: ForemanEvent) => Effect.Effect<void>
  /** A subscription for the enclosing scope: every event from now on. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<ForemanEvent>, never, Scope.Scope>
  /** The same, as a stream. */
  readonly stream: Stream.Stream<ForemanEvent>
}

export class Events extends Context.Tag("foreman/Events")<Events, EventsService>() {
  static readonly layer = Layer.scoped(
    Events,
    Effect.gen(function*() {
      const hub = yield* Effect.acquireRelease(PubSub.sliding<ForemanEvent>(capacity), PubSub.shutdown)
      return Events.of({
        publish: (event) => PubSub.publish(hub, event).pipe(Effect.asVoid),
        subscribe: PubSub.subscribe(hub),
        stream: Stream.fromPubSub(hub)
      })
    })
  )
}
