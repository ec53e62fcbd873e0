/**
 * Every inference request becomes a job: checked against the inventory before it is
 * queued, given a slot by the Scheduler, run at the target, retried while the target is
 * unreachable before the first byte (ADR-0004), and reported once when it finishes.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import type { Readable } from "node:stream"
import { ForemanConfig } from "../Config.ts"
import { describeCause, ModelNotFound, QueueFull, RequestTimeout, type ShuttingDown, silentFor, TargetError, TargetUnreachable } from "../Errors.ts"
import { ownerName } from "../auth/Keys.ts"
import { missingModelError, reply } from "../ollama/errors.ts"
import { type Ending, guard, readAll } from "../streams/streams.ts"
import type { Priority } from "../scheduler/policy.ts"
import { Scheduler, type Ticket } from "../scheduler/Scheduler.ts"
import type { JobInfo } from "../events/Events.ts"
import * as ModelName from "../ollama/ModelName.ts"
import { Targets } from "../target/Target.ts"
import type { JobEndpoint } from "../target/TargetClient.ts"
import * as Report from "./report.ts"
import { withSpan } from "../tracing.ts"

export interface JobSpec {
  /** The target path the job calls: an Ollama route, or e.g. `/v1/chat/completions`. */
  readonly endpoint: string
  /** The Ollama route whose rules the job follows (the wording of its missing-model 404). */
  readonly kind: JobEndpoint
  /** The model exactly as the caller sent it. */
  readonly model: string
  /** The request body, forwarded to the target byte for byte. */
  readonly body: Uint8Array
  readonly priority: Priority
  /**
   * Whether the answer streams (the default). One that does not (`stream: false`) starts only
   * once it is complete, so `--stall-timeout` bounds its chunks, not its start; embeddings
   * answer promptly and are bounded either way.
   */
  readonly streams?: boolean
  /** The API key the request came with, as `ownerOf` writes it (none while keys are off). */
  readonly caller?: string | undefined
  /** The body's content type, when not JSON (a transcription's multipart form). */
  readonly contentType?: string
  /** The target it must run on (`X-Foreman-Target`), by name; absent: wherever it is routed. */
  readonly target?: string | undefined
  /**
   * The last words of an SSE answer cut short after its first byte, in the route's dialect
   * (Anthropic's `error` event). Without it the stream just ends, as OpenAI's does.
   */
  readonly streamError?: (message: string) => Uint8Array
  /**
   * The options that make the target load the model again (`ollama/loadOptions.ts`): jobs are
   * scheduled by model and load. `""` or absent: the target's defaults.
   */
  readonly load?: string
}

/** A job that has started at the target: its status and its body, still streaming. */
export interface Started {
  readonly status: number
  readonly contentType: string | undefined
  /**
   * A stream (NDJSON, SSE): the target's bytes as they arrive, to pipe into the caller's
   * response. A failure after the first byte ends an NDJSON stream with an `{"error": ...}`
   * line (Ollama's convention). The job's slot is held until this stream ends; destroying
   * it (the caller went away) aborts the upstream request.
   * One JSON body: its bytes, read whole (the job has ended).
   */
  readonly body: Readable | Uint8Array
}

export type JobError = ModelNotFound | QueueFull | RequestTimeout | ShuttingDown | TargetError

export interface JobsService {
  readonly run: (spec: JobSpec) => Effect.Effect<Started, JobError>
  /**
   * Checks the model against the inventory (with the grace re-check) and returns its
   * normalised key, or fails with Ollama's 404 for that endpoint.
   */
  readonly check: (spec: Pick<JobSpec, "kind" | "model" | "target">) => Effect.Effect<string, ModelNotFound>
}

export class Jobs extends Context.Tag("foreman/Jobs")<Jobs, JobsService>() {}

/**
 * Backoff between attempts that the target failed (it answered, but with an error):
 * jittered exponential from 250 ms, capped at 5 s. An unreachable target needs none of
 * this: the job goes straight back to its place in the queue, dispatch pauses while the
 * target is known to be asleep, and the inventory's recovery probe (a backoff of its own)
 * resumes it.
 */
export const retrySchedule = Schedule.exponential(Duration.millis(250)).pipe(
  Schedule.either(Schedule.spaced(Duration.seconds(5))),
  Schedule.jittered
)

/**
 * Between attempts that found the target unreachable: short (from 50 ms, capped at 2 s), so
 * the job is back at its place long before a sleeping target wakes, yet a target that
 * flaps (answers polls, refuses jobs) cannot spin a job in a tight loop.
 */
export const unreachableSchedule = Schedule.exponential(Duration.millis(50)).pipe(
  Schedule.either(Schedule.spaced(Duration.seconds(2))),
  Schedule.jittered
)

/**
 * The most of a whole (not streamed) answer foreman reads: embeddings of a large batch run to
 * tens of megabytes; past this a target is broken, and must not take foreman's memory.
 */
export const maxAnswerBytes = 256 * 2 ** 20

const encoder = new TextEncoder()
const errorLine = (message: string) => encoder.encode(JSON.stringify({ error: message }) + "\n")
const empty = new Uint8Array(0)

/** What a caller whose answer is cut short by foreman's own shutdown reads. */
export const shutdownMessage = "foreman is shutting down"

export const make = Effect.gen(function*() {
  const config = yield* ForemanConfig
  const scheduler = yield* Scheduler
  const targets = yield* Targets
  const report = yield* Report.make
  /**
   * One fiber per answer still streaming to its caller, in the layer's scope: it frees the
   * slot and reports the job when the stream ends. At shutdown it is interrupted: it cuts
   * the stream short (the caller reads Ollama's error line and the response ends) and is
   * awaited, so no stream outlives foreman.
   */
  const streaming = yield* FiberSet.make()
  const runStreaming = yield* FiberSet.runtime(streaming)<never>()
  // At shutdown, first stop the queue: a slot freed by what is being stopped goes to no one.
  yield* Effect.addFinalizer(() => scheduler.close)

  /**
   * One attempt: wait for a slot, then call the target, both by `deadline`. On success the
   * slot stays held in `scope`.
   */
  const attempt = (spec: JobSpec, ticket: Ticket, deadline: number) =>
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const exit = yield* restore(
          Effect.gen(function*() {
            const target = yield* Scope.extend(scheduler.acquire(ticket, deadline - (yield* Clock.currentTimeMillis)), scope)
            const dispatchedAt = yield* Clock.currentTimeMillis
            const { inventory } = target
            // Reported while the slot is still held, so no other job is sent to a target
            // known to be down.
            const startBounded = spec.streams !== false || spec.kind === "/api/embed" || spec.kind === "/api/embeddings"
            const options = spec.contentType === undefined ? { startBounded } : { startBounded, contentType: spec.contentType }
            const within = deadline - (yield* Clock.currentTimeMillis)
            return yield* target.client.job(spec.endpoint, spec.body, within, options).pipe(
              Effect.map((upstream) => ({ upstream, target, dispatchedAt })),
              inventory.checkClosed,
              Effect.tapError((error) =>
                error._tag === "TargetUnreachable"
                  ? inventory.reportUnreachable(error)
                  : error._tag === "TargetError" && error.fault !== undefined
                  ? inventory.reportFault(error.message)
                  // The caller's time ran out at the target on an answer that comes whole
                  // (`stream: false`: no stall bound before it): health says so when the
                  // target had a fair share of that time, half the caller's --request-timeout
                  // or --stall-timeout if less (a job that got less was held up in the queue).
                  // A streamed answer's start is --stall-timeout's to judge (a model load).
                  : error._tag === "RequestTimeout" && !startBounded &&
                      within >= Math.min(Duration.toMillis(config.stallTimeout), Duration.toMillis(config.requestTimeout) / 2)
                  ? inventory.reportFault(silentFor().message)
                  : Effect.void
              )
            )
          })
        ).pipe(Effect.exit)
        if (Exit.isFailure(exit)) {
          yield* Scope.close(scope, exit)
          return yield* Effect.failCause(exit.cause)
        }
        return { ...exit.value, scope }
      })
    )

  const run = (spec: JobSpec) =>
    Effect.gen(function*() {
      const key = yield* checkModel(spec)
      const ticket = yield* scheduler.ticket(key, spec.priority, {
        ...(spec.caller === undefined ? {} : { caller: spec.caller }),
        ...(spec.load === undefined ? {} : { load: spec.load }),
        ...(spec.target === undefined ? {} : { target: spec.target })
      })
      let info: JobInfo = {
        id: ticket.id,
        endpoint: spec.endpoint,
        model: spec.model,
        priority: spec.priority,
        async: false,
        ...(spec.caller === undefined ? {} : { caller: ownerName(spec.caller) })
      }
      let attempts = 0
      let lastUnreachable: TargetUnreachable | undefined
      let dispatchedAt: number | undefined
      const finish = (status: Report.FinishStatus, startedAt: number | undefined, error?: string) =>
        Clock.currentTimeMillis.pipe(
          Effect.flatMap((at) =>
            report.finished(info, { status, enqueuedAt: ticket.enqueuedAt, dispatchedAt, startedAt, at, attempts, error })
          )
        )
      yield* report.queued(info, ticket.enqueuedAt)

      // The request timeout bounds the whole wait for a first byte: queue, sleeping target,
      // retries. Each step gets the time left (no timer raced on the happy path).
      const timeout = Duration.toMillis(config.requestTimeout)
      const deadline = ticket.enqueuedAt + timeout
      const timedOut = (reason: string) =>
        lastUnreachable === undefined
          ? new RequestTimeout({ waitedMillis: timeout, reason })
          : new RequestTimeout({ waitedMillis: timeout, reason: "the target is unreachable", detail: lastUnreachable.message })
      // A target that took the request and closed the connection is tried again too, a few
      // times (--max-attempts in all), not until the deadline: it may be broken, not asleep.
      let closes = 0
      const tryOnce = Effect.suspend(() => attempt(spec, { ...ticket, attempts: attempts++ }, deadline)).pipe(
        Effect.tapError((error) => Effect.sync(() => {
          if (error._tag === "TargetUnreachable") lastUnreachable = error
          if (error._tag === "TargetError" && error.fault === "closed") closes++
        }))
      )
      const { dispatchedAt: dispatched, scope, target, upstream } = yield* tryOnce.pipe(
        // Back to its place (same ticket): dispatch waits for the target, not the job.
        Effect.retry({
          schedule: unreachableSchedule,
          while: (error) =>
            (error._tag === "TargetUnreachable" ||
              (error._tag === "TargetError" && error.fault === "closed" && closes < config.maxAttempts)) &&
            Clock.currentTimeMillis.pipe(Effect.map((now) => now < deadline))
        }),
        Effect.catchTags({
          TargetUnreachable: (error) => Effect.fail(timedOut(error.message)),
          RequestTimeout: (error) => Effect.fail(timedOut(error.reason))
        }),
        Effect.tapError((error) => finish(reply(error).status, undefined, error.message)),
        Effect.onInterrupt(() => finish("cancelled", undefined, "caller went away while queued"))
      )
      const { inventory } = target
      dispatchedAt = dispatched
      // Its report names the target that ran it (the log line, `foreman_jobs_total`).
      info = { ...info, target: target.name }
      const startedAt = yield* Clock.currentTimeMillis
      yield* report.started(info, startedAt, dispatched - ticket.enqueuedAt)
      const ndjson = upstream.contentType?.includes("ndjson") === true
      const sse = upstream.contentType?.includes("event-stream") === true
      if (!ndjson && !sse) {
        // One JSON body (`stream: false`, embeddings): read whole, then answered at once, as
        // Ollama answers it. Cheaper than a pipe, and a failure mid-way can still get a
        // proper error status, as Ollama gives it.
        const read = yield* readAll(upstream.body, {
          limit: maxAnswerBytes,
          overflow: "destroy",
          onError: describeCause,
          tooLarge: () => `the target's answer is larger than ${maxAnswerBytes / 2 ** 20} MiB`
        }).pipe(
          Effect.either,
          Effect.onInterrupt(() =>
            Scope.close(scope, Exit.void).pipe(Effect.zipRight(finish("cancelled", startedAt, "caller went away")))
          )
        )
        yield* Scope.close(scope, Exit.void)
        if (read._tag === "Left") {
          yield* inventory.reportFault(read.left)
          yield* finish("failed", startedAt, read.left)
          return yield* new TargetError({ status: 500, message: read.left })
        }
        if (upstream.status < 300) yield* inventory.reportServed
        yield* finish(upstream.status, startedAt)
        return { status: upstream.status, contentType: upstream.contentType, body: read.right } satisfies Started
      }
      const ended = Deferred.unsafeMake<Ending>(FiberId.none)
      const body = guard(upstream.body, {
        // Ollama's convention; an SSE stream ends with the route's error event, or else just
        // ends (OpenAI's, without `[DONE]`).
        lastWords: ndjson ? errorLine : spec.streamError ?? (() => empty),
        onEnd: (ending) => Deferred.unsafeDone(ended, Exit.succeed(ending))
      })
      const settle = (ending: Ending, shutdown: boolean) =>
        Scope.close(scope, Exit.void).pipe(Effect.zipRight(
          shutdown && ending._tag === "Failed"
            ? finish("failed", startedAt, shutdownMessage)
            : ending._tag === "Done"
            ? Effect.zipRight(upstream.status < 300 ? inventory.reportServed : Effect.void, finish(upstream.status, startedAt))
            : ending._tag === "Failed"
            ? Effect.zipRight(inventory.reportFault(ending.message), finish("failed", startedAt, ending.message))
            : finish("cancelled", startedAt, "caller went away")
        ))
      runStreaming(Effect.uninterruptibleMask((restore) =>
        restore(Deferred.await(ended)).pipe(
          Effect.exit,
          Effect.flatMap((exit) =>
            Exit.isSuccess(exit)
              ? settle(exit.value, false)
              // Shutdown: the stream is cut short (its `error` event comes on the next tick),
              // then settled like any other ending.
              : Effect.sync(() => upstream.body.destroy(new Error(shutdownMessage))).pipe(
                Effect.zipRight(Deferred.await(ended)),
                Effect.flatMap((ending) => settle(ending, true))
              )
          )
        )
      ))
      return { status: upstream.status, contentType: upstream.contentType, body } satisfies Started
    }).pipe(withSpan("Jobs.run", { attributes: { endpoint: spec.endpoint, model: spec.model }, captureStackTrace: false }))

  /** Rejects a model the target does not have, before anything is queued. */
  const checkModel = (spec: Pick<JobSpec, "kind" | "model" | "target">) =>
    Effect.gen(function*() {
      const source = ModelName.source(spec.model)
      const local = source._tag === "Right" ? source.right : { source: "default" as const, name: spec.model }
      const key = Option.getOrElse(ModelName.keyOf(local.name), () => spec.model.toLowerCase())
      // Cloud models are served by ollama.com through the target; only the target knows them.
      if (local.source === "cloud") return key
      // A pinned job needs its model on that target; any other, on any target.
      const pinned = spec.target === undefined ? Option.none() : targets.byName(spec.target)
      const found = yield* (Option.isSome(pinned) ? pinned.value.inventory.lookup(key) : targets.lookup(key))
      if (found === "missing") {
        const error = missingModelError(spec.kind, spec.model)
        yield* Effect.logInfo("job rejected").pipe(
          Effect.annotateLogs({ kind: spec.kind, model: spec.model, status: 404, error: error.message })
        )
        return yield* error
      }
      return key
    })

  return Jobs.of({ run, check: checkModel })
})

export const layer = Layer.scoped(Jobs, make)
