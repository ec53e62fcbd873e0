/**
 * The one place a job's lifecycle is reported: the log line, the metrics and the events,
 * for sync and async jobs alike.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Metrics from "../events/Metrics.ts"
import { Events, type JobInfo } from "../events/Events.ts"
import * as ModelName from "../ollama/ModelName.ts"
import { Targets } from "../target/Target.ts"

/**
 * A model as a metric label: Ollama's display form of its normalised name, so `LLAMA3.2`,
 * `llama3.2` and `llama3.2:latest` count as one series.
 */
export const modelLabel = (model: string): string => {
  let label = labels.get(model)
  if (label === undefined) {
    // Bounded: names are whatever callers send.
    if (labels.size >= 1_000) labels.clear()
    label = labelOf(model)
    labels.set(model, label)
  }
  return label
}

/** Labels by name as sent: parsing a model name on every job costs more than the lookup. */
const labels = new Map<string, string>()

const labelOf = (model: string): string => {
  const source = ModelName.source(model)
  // Cloud names are the target's (ollama.com's) business: kept as sent.
  if (source._tag === "Left" || source.right.source === "cloud") return model
  return Option.match(ModelName.keyOf(source.right.name).pipe(Option.flatMap(ModelName.parse)), {
    onNone: () => model,
    onSome: ModelName.display
  })
}

export type FinishStatus = number | "failed" | "cancelled" | "expired"

export interface Reporter {
  readonly queued: (job: JobInfo, at: number) => Effect.Effect<void>
  readonly started: (job: JobInfo, at: number, waitMs: number) => Effect.Effect<void>
  /**
   * A job ended. `startedAt` is when the target started it (undefined if it never did: the
   * whole time was spent waiting).
   */
  readonly finished: (job: JobInfo, outcome: Outcome) => Effect.Effect<void>
}

export interface Outcome {
  readonly status: FinishStatus
  readonly enqueuedAt: number
  /** When the queue gave it a slot and it was sent to the target (undefined if never). */
  readonly dispatchedAt?: number | undefined
  /** When the target's answer began (its headers: after the model load). */
  readonly startedAt: number | undefined
  readonly at: number
  readonly attempts: number
  readonly error?: string | undefined
}

export const make = Effect.gen(function*() {
  const events = yield* Events
  // The `target` label of the job metrics comes with a second target (one target: the
  // series are what they were); the log line names the target either way.
  const several = Option.match(yield* Effect.serviceOption(Targets), { onNone: () => false, onSome: (targets) => targets.all.length > 1 })
  return {
    queued: (job, at) => events.publish({ _tag: "JobQueued", job, at }),
    started: (job, at, waitMs) => events.publish({ _tag: "JobStarted", job, at, waitMs }),
    finished: (job, outcome) => finished(events, job, outcome, several)
  } satisfies Reporter
})

const finished = (
  events: Events["Type"],
  job: JobInfo,
  outcome: Outcome,
  labelTarget: boolean
) =>
  Effect.gen(function*() {
    // In the queue until dispatched; at the target from dispatch (model load and all) to the
    // last byte; the first byte in between. Without a dispatch time (a job that never got a
    // slot), all of it was queueing.
    const dispatchedAt = outcome.dispatchedAt ?? outcome.startedAt ?? outcome.at
    const waitMs = dispatchedAt - outcome.enqueuedAt
    const durationMs = outcome.at - dispatchedAt
    const ttfbMs = outcome.startedAt === undefined ? undefined : outcome.startedAt - dispatchedAt
    const ok = typeof outcome.status === "number" && outcome.status < 400
    yield* (ok ? Effect.logInfo("job finished") : Effect.logWarning("job finished")).pipe(
      Effect.annotateLogs({
        job: job.id,
        endpoint: job.endpoint,
        model: job.model,
        priority: job.priority,
        async: job.async,
        ...(job.caller === undefined ? {} : { caller: job.caller }),
        ...(job.target === undefined ? {} : { target: job.target }),
        status: outcome.status,
        attempts: outcome.attempts,
        queueMs: waitMs,
        ...(ttfbMs === undefined ? {} : { ttfbMs }),
        durationMs,
        ...(outcome.error === undefined ? {} : { error: outcome.error })
      })
    )
    yield* Metrics.recordJob({
      endpoint: job.endpoint,
      model: modelLabel(job.model),
      status: outcome.status,
      caller: job.caller,
      target: labelTarget ? job.target : undefined,
      waitMs,
      durationMs,
      started: outcome.startedAt !== undefined
    })
    yield* events.publish({
      _tag: "JobFinished",
      job,
      at: outcome.at,
      status: outcome.status,
      waitMs,
      durationMs,
      ...(ttfbMs === undefined ? {} : { ttfbMs }),
      ...(outcome.error === undefined ? {} : { error: outcome.error })
    })
  })
