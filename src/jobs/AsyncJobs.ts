/**
 * Async jobs: submit now, collect later (issue "durable jobs"). Each job is written to the
 * JobStore before the caller hears 202, then runs through the same Scheduler as sync
 * requests (priority `batch` by default), non-streaming, with its final body stored. Jobs
 * left queued or running by an earlier process are re-queued at start, in their order.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberMap from "effect/FiberMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import { ownerName } from "../auth/Keys.ts"
import { ForemanConfig } from "../Config.ts"
import { describeCause, JobConflict, JobNotFound, type ModelNotFound, silentFor, TargetError, TargetUnreachable } from "../Errors.ts"
import * as Json from "../Json.ts"
import * as Either from "effect/Either"
import type { JobInfo } from "../events/Events.ts"
import type { Priority } from "../scheduler/policy.ts"
import { Scheduler, type Ticket } from "../scheduler/Scheduler.ts"
import * as ModelName from "../ollama/ModelName.ts"
import { loadOf } from "../ollama/request.ts"
import { type Target, Targets } from "../target/Target.ts"
import type { JobEndpoint } from "../target/TargetClient.ts"
import { finished, type JobPage, type JobRecord, type JobStatus, JobStore } from "./JobStore.ts"
import { readAll } from "../streams/streams.ts"
import { Jobs, maxAnswerBytes, retrySchedule, unreachableSchedule } from "./Jobs.ts"
import { fold } from "./fold.ts"
import * as Report from "./report.ts"
import { withSpan } from "../tracing.ts"

export interface Submission {
  /** The target path the job calls: an Ollama route, or e.g. `/v1/chat/completions`. */
  readonly endpoint: string
  /** The Ollama route whose rules the job follows (the wording of its missing-model 404). */
  readonly kind: JobEndpoint
  readonly model: string
  /** The Ollama request body, as the caller sent it. */
  readonly body: Readonly<Record<string, unknown>>
  readonly priority: Priority
  /** The name of the key that submitted it (none with keys off: the job is admin's). */
  readonly owner?: string | undefined
  /** Its load (`JobSpec.load`), if the route read it; else read from `body`, as after a restart. */
  readonly load?: string
  /** The target it must run on (`JobSpec.target`). */
  readonly target?: string | undefined
}

/** A job as the API shows it. */
export interface JobView {
  readonly id: string
  readonly status: JobStatus
  readonly endpoint: string
  readonly model: string
  readonly priority: Priority
  readonly createdAt: string
  readonly startedAt: string | null
  readonly finishedAt: string | null
  readonly attempts: number
  /** The target it is pinned to (`X-Foreman-Target`), if any. */
  readonly target?: string
  /** 1-based place in the order the queue is expected to dispatch, while queued. */
  readonly position?: number
  /** When it is expected to be sent to the target, while queued (ISO; once job times are measured). */
  readonly estimatedStartAt?: string
  /** When its answer is expected to be complete, while queued or running (ISO; once measured). */
  readonly estimatedFinishAt?: string
  /** The target's final JSON body, once succeeded. */
  readonly result?: unknown
  readonly error?: string
}

export interface AsyncJobsService {
  readonly submit: (submission: Submission) => Effect.Effect<JobView, ModelNotFound>
  /**
   * A job by id. With `viewer.owner`, only that owner's jobs exist: another's is
   * `JobNotFound`, so a user key cannot tell it exists (here and in `await`, `cancel`, `list`).
   */
  readonly get: (id: string, viewer?: Viewer) => Effect.Effect<JobView, JobNotFound>
  /** The job once it has finished, or as it is when `wait` runs out. */
  readonly await: (id: string, wait: Duration.Duration, viewer?: Viewer) => Effect.Effect<JobView, JobNotFound>
  readonly cancel: (id: string, viewer?: Viewer) => Effect.Effect<JobView, JobNotFound | JobConflict>
  readonly list: (
    query: { readonly status?: JobStatus; readonly limit: number; readonly cursor?: number },
    viewer?: Viewer
  ) => Effect.Effect<{
    readonly jobs: ReadonlyArray<JobView>
    readonly nextCursor: number | undefined
  }>
  readonly counts: Effect.Effect<Readonly<Record<JobStatus, number>>>
  /** The counts a viewer may see: with `owner`, of its own jobs. */
  readonly countsFor: (viewer: Viewer) => Effect.Effect<Readonly<Record<JobStatus, number>>>
}

/** Whose jobs a caller may see: with `owner`, that owner's only; without, all. */
export interface Viewer {
  readonly owner?: string
}

export class AsyncJobs extends Context.Tag("foreman/AsyncJobs")<AsyncJobs, AsyncJobsService>() {}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())

const parseResult = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** Deeper than any answer of Ollama's (a few levels), shallow enough to write back out. */
const maxResultDepth = 512

/**
 * Why the target's final body is not a result (every job endpoint answers one JSON object),
 * or `undefined` when it is one.
 */
const invalidResult = (text: string): string | undefined => {
  const excerpt = () => JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}...` : text)
  if (!text.trimStart().startsWith("{")) return `the target's answer is not a JSON object: ${excerpt()}`
  if (Json.depth(text, maxResultDepth) > maxResultDepth) return `the target's answer nests deeper than ${maxResultDepth} levels`
  try {
    JSON.parse(text)
    return undefined
  } catch {
    return `the target's answer is not valid JSON: ${excerpt()}`
  }
}

/** Why an attempt did not produce a result. */
type AttemptFailure =
  | { readonly _tag: "Unreachable"; readonly error: TargetUnreachable }
  | { readonly _tag: "Failed"; readonly message: string; readonly retryable: boolean }
  | { readonly _tag: "Expired"; readonly message: string }

/** What one job's attempts have reached so far. */
interface Progress {
  attempts: number
  /** When the last attempt was sent to the target, and when its answer began. */
  dispatchedAt?: number | undefined
  startedAt: number | undefined
  /** The target of the last attempt, by name. */
  target?: string | undefined
}

const info = (job: JobRecord, target?: string): JobInfo => ({
  id: job.id,
  endpoint: job.endpoint,
  model: job.model,
  priority: job.priority,
  async: true,
  ...(job.owner === null ? {} : { caller: ownerName(job.owner) }),
  ...(target === undefined ? {} : { target })
})

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export const make = Effect.gen(function*() {
  const config = yield* ForemanConfig
  const store = yield* JobStore
  const scheduler = yield* Scheduler
  const jobs = yield* Jobs
  const targets = yield* Targets
  // Runners run on the layer's runtime, not forked from the submitting request (a queued
  // job must not keep that request's objects alive for hours), and belong to the layer's
  // scope: at shutdown they are interrupted and awaited, their jobs left queued.
  const runners = yield* FiberMap.make<string>()
  const runFork = yield* FiberMap.runtime(runners)<never>()
  // At shutdown, first stop the queue: a slot freed by what is being stopped goes to no one.
  yield* Effect.addFinalizer(() => scheduler.close)
  const ended = yield* PubSub.unbounded<string>()
  const ttl = Duration.toMillis(config.jobTtl)
  const report = yield* Report.make

  const view = (job: JobRecord) =>
    Effect.map(finished(job.status) ? Effect.succeed(Option.none()) : scheduler.estimate(job.id), (found): JobView => {
      const estimate = Option.getOrUndefined(found)
      // The queue is the authority on an unfinished job: one granted a slot is running even
      // before its runner has written that down (at once, on an idle foreman).
      const status = estimate === undefined ? job.status : estimate._tag === "Running" ? "running" : "queued"
      const startedAt = job.startedAt ?? (estimate?._tag === "Running" ? estimate.startedAt : null)
      return {
        id: job.id,
        status,
        endpoint: job.endpoint,
        model: job.model,
        priority: job.priority,
        createdAt: iso(job.createdAt)!,
        startedAt: iso(startedAt),
        finishedAt: iso(job.finishedAt),
        attempts: job.attempts,
        // As anyone may read it: a name taken from a URL's host is an address.
        ...(job.target === null ? {} : { target: Option.match(targets.byName(job.target), { onNone: () => job.target!, onSome: (t) => t.publicName }) }),
        ...(estimate?._tag === "Queued" ? { position: estimate.position } : {}),
        ...(estimate?._tag === "Queued" && estimate.startAt !== undefined ? { estimatedStartAt: iso(estimate.startAt)! } : {}),
        ...(estimate?.finishAt === undefined ? {} : { estimatedFinishAt: iso(estimate.finishAt)! }),
        ...(job.result === null ? {} : { result: parseResult(job.result) }),
        ...(job.error === null ? {} : { error: job.error })
      }
    })

  const end = (id: string, outcome: Parameters<typeof store.finish>[1]) =>
    store.finish(id, outcome).pipe(Effect.tap((ended_) => (ended_ ? PubSub.publish(ended, id) : Effect.void)))

  /**
   * One run at the target: the final body, or why not. The ticket is the job's one place
   * in the queue, kept across attempts. The first attempt runs on the slot the queue
   * granted the job (see `start`); a retry queues again for one. An async job was accepted
   * when it was stored, so --max-queue (back-pressure for callers holding a connection)
   * never refuses it: its ticket goes in marked as a retry.
   */
  const attempt = (job: JobRecord, ticket: Ticket, progress: Progress, slot: { granted: Target | undefined }) =>
    Effect.scoped(
      Effect.gen(function*() {
        let target: Target
        if (slot.granted !== undefined) {
          target = slot.granted
          slot.granted = undefined
          yield* Effect.addFinalizer(() => scheduler.release(job.id))
        } else {
          target = yield* scheduler.acquire({ ...ticket, attempts: ticket.attempts + 1 }, undefined, { caller: false }).pipe(
            // At shutdown the job is stopped like any other runner: back to queued.
            Effect.catchTag("ShuttingDown", () => Effect.interrupt),
            Effect.orDie
          )
        }
        const { inventory } = target
        progress.target = target.name
        progress.dispatchedAt = yield* Clock.currentTimeMillis
        yield* store.markRunning(job.id, progress.dispatchedAt)
        // Generate and chat are asked for the stream and folded (see fold.ts): with
        // `stream: false` the target would say nothing until the whole answer is done.
        const folds = job.endpoint === "/api/generate" || job.endpoint === "/api/chat"
        const request = folds ? JSON.parse(job.body) as Record<string, unknown> : undefined
        const body = request === undefined ? encoder.encode(job.body) : encoder.encode(Json.encode({ ...request, stream: true }))
        const startBounded = folds || /\/embed(dings)?$/.test(job.endpoint)
        // An answer the target sends only once it is whole (a dialect's `stream: false`) has
        // --request-timeout to start, as a sync caller's has: a target that took the job and
        // says nothing frees the slot then, and the attempt counts.
        const within = startBounded ? undefined : Duration.toMillis(config.requestTimeout)
        const upstream = yield* target.client.job(job.endpoint, body, within, { startBounded }).pipe(
          Effect.catchTag("RequestTimeout", () => Effect.fail(silentFor(config.requestTimeout))),
          inventory.checkClosed,
          // Reported while the slot is still held (see Jobs).
          Effect.tapError((error) =>
            error._tag === "TargetUnreachable"
              ? inventory.reportUnreachable(error)
              // The target answered with an error, or took the job and did not answer: that
              // was an attempt.
              : store.countAttempt(job.id).pipe(
                Effect.map((n) => (progress.attempts = n)),
                Effect.zipRight(error.fault === undefined ? Effect.void : inventory.reportFault(error.message))
              )
          ),
          Effect.mapError((error: TargetUnreachable | TargetError): AttemptFailure =>
            error._tag === "TargetUnreachable"
              ? { _tag: "Unreachable", error }
              : { _tag: "Failed", message: error.message, retryable: error.status >= 500 }
          )
        )
        progress.attempts = yield* store.countAttempt(job.id)
        progress.startedAt = yield* Clock.currentTimeMillis
        yield* report.started(info(job, progress.target), progress.startedAt, progress.dispatchedAt - job.createdAt)
        const bytes = yield* readAll(upstream.body, {
          limit: maxAnswerBytes,
          overflow: "destroy",
          onError: (error): AttemptFailure => ({
            _tag: "Failed",
            message: `the target failed mid-way: ${describeCause(error)}`,
            retryable: true
          }),
          // The same request would give the same answer: not retried, and not the target's fault.
          tooLarge: (): AttemptFailure => ({
            _tag: "Failed",
            message: `the target's answer is larger than ${maxAnswerBytes / 2 ** 20} MiB`,
            retryable: false
          })
        }).pipe(Effect.tapError((failure) =>
          failure._tag === "Failed" && failure.retryable ? inventory.reportFault(failure.message) : Effect.void
        ))
        const answer = decoder.decode(bytes)
        const invalid = folds && Json.depth(answer, maxResultDepth) > maxResultDepth
          ? `the target's answer nests deeper than ${maxResultDepth} levels`
          : undefined
        const folded = folds && invalid === undefined ? fold(job.endpoint as "/api/generate", answer, request!) : undefined
        if (folded !== undefined && Either.isLeft(folded)) {
          // An error line is the target's own report (a runner that failed): retried, not a fault.
          const { broken, message } = folded.left
          if (broken) yield* inventory.reportFault(message)
          return yield* Effect.fail<AttemptFailure>({ _tag: "Failed", message, retryable: true })
        }
        const text = folded !== undefined && Either.isRight(folded) ? Json.encode(folded.right) : answer
        const bad = invalid ?? invalidResult(text)
        if (bad !== undefined) {
          yield* inventory.reportFault(bad)
          return yield* Effect.fail<AttemptFailure>({ _tag: "Failed", message: bad, retryable: true })
        }
        yield* inventory.reportServed
        return text
      })
    ).pipe(
      // Unreachable: back to its place; dispatch waits until the target answers.
      Effect.retry({ schedule: unreachableSchedule, while: (failure) => failure._tag === "Unreachable" })
    )

  /**
   * Runs a job granted a slot to its end: retried on the backoff schedule while it can be,
   * expired past its TTL.
   */
  const run = (job: JobRecord, ticket: Ticket, target: Target) =>
    Effect.gen(function*() {
      const slot: { granted: Target | undefined } = { granted: target }
      const now = yield* Clock.currentTimeMillis
      // Failures the target caused count against --max-attempts; an unreachable target
      // does not (the job never reached it).
      let failures = job.attempts
      const progress: Progress = { attempts: job.attempts, startedAt: undefined }
      const outcome = yield* attempt(job, ticket, progress, slot).pipe(
        Effect.tapError((failure) =>
          Effect.gen(function*() {
            yield* store.requeue(job.id)
            if (failure._tag === "Failed") failures += 1
          })
        ),
        Effect.retry({
          schedule: retrySchedule,
          while: (failure) => failure._tag === "Failed" && failure.retryable && failures < config.maxAttempts
        }),
        Effect.timeoutFail({
          duration: Duration.millis(Math.max(0, job.createdAt + ttl - now)),
          onTimeout: (): AttemptFailure => ({
            _tag: "Expired",
            message: `expired: not served within ${Duration.format(config.jobTtl)} (--job-ttl)`
          })
        }),
        Effect.either
      )
      const at = yield* Clock.currentTimeMillis
      const outcomeOf = (status: Report.FinishStatus, error?: string): Report.Outcome => ({
        status,
        enqueuedAt: job.createdAt,
        dispatchedAt: progress.dispatchedAt,
        startedAt: progress.startedAt,
        at,
        attempts: progress.attempts,
        error
      })
      if (outcome._tag === "Right") {
        yield* end(job.id, { status: "succeeded", at, result: outcome.right })
        yield* report.finished(info(job, progress.target), outcomeOf(200))
      } else {
        const failure = outcome.left
        const message = failure._tag === "Unreachable" ? `target unreachable: ${failure.error.message}` : failure.message
        // Put back in the queue after its last failure: its start is the last attempt's.
        yield* end(job.id, { status: "failed", at, error: message, startedAt: progress.dispatchedAt })
        yield* report.finished(info(job, progress.target), outcomeOf(failure._tag === "Expired" ? "expired" : "failed", message))
      }
    }).pipe(
      // Interrupted: foreman is shutting down (or the job was cancelled, which ended it first:
      // then this changes nothing). The job stays queued for the next start.
      Effect.onInterrupt(() => store.requeue(job.id)),
      withSpan("AsyncJobs.run", { attributes: { job: job.id }, captureStackTrace: false })
    )

  const load = (id: string, viewer: Viewer = {}) =>
    store.get(id).pipe(
      Effect.map(Option.filter((job) => viewer.owner === undefined || job.owner === viewer.owner)),
      Effect.flatMap(Option.match({ onNone: () => Effect.fail(new JobNotFound({ id })), onSome: Effect.succeed }))
    )

  /**
   * Async jobs in the queue, by id: when each expires. Queued, a job is its queue entry and
   * this, nothing more: no fiber until the queue grants it a slot, and its body stays in
   * the store until then (bodies of images run to megabytes).
   */
  const queued = new Map<string, number>()

  /**
   * Takes the job's place in the queue now (so restored jobs keep their order). When the
   * slot is granted, the job is read back from the store and run on the layer's runtime:
   * a queued job must not keep the submitting request's objects alive for hours. Its load
   * is read from the stored body unless given, so a restored job groups as it did.
   */
  const start = (job: JobRecord, load?: string) =>
    scheduler.ticket(Option.getOrElse(ModelName.keyOf(job.model), () => job.model.toLowerCase()), job.priority, {
      id: job.id,
      enqueuedAt: job.createdAt,
      // Fair share between callers: the job's owner (stored, so a restart keeps it).
      ...(job.owner === null ? {} : { caller: job.owner }),
      ...(job.target === null ? {} : { target: job.target }),
      load: load ?? loadOf(job.endpoint, encoder.encode(job.body))
    }).pipe(Effect.flatMap(enqueue))

  /** Only the ticket is kept while queued (not the record, whose body may be megabytes). */
  const enqueue = (ticket: Ticket) => {
    const { id } = ticket
    queued.set(id, ticket.enqueuedAt + ttl)
    return scheduler.enqueue(
      { ...ticket, attempts: ticket.attempts + 1 },
      (target) => Effect.suspend(() => {
        queued.delete(id)
        const runner = store.get(id).pipe(
          Effect.flatMap((stored) =>
            // Cancelled between the grant and now: nothing to run.
            Option.isSome(stored) && !finished(stored.value.status) ? run(stored.value, ticket, target) : Effect.void
          ),
          Effect.ensuring(scheduler.release(id))
        )
        return Effect.sync(() => runFork(id, runner))
      })
    )
  }

  /** Ends the queued jobs past their TTL (a granted job's runner keeps its own time). */
  const expireQueued = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    // In arrival order, hence in expiry order: stop at the first still in time.
    for (const [id, expiresAt] of queued) {
      if (expiresAt > now) break
      queued.delete(id)
      if ((yield* scheduler.release(id)) !== "queued") continue
      const message = `expired: not served within ${Duration.format(config.jobTtl)} (--job-ttl)`
      if (!(yield* end(id, { status: "failed", at: now, error: message }))) continue
      const job = yield* store.get(id)
      if (Option.isNone(job)) continue
      yield* report.finished(info(job.value), {
        status: "expired",
        enqueuedAt: job.value.createdAt,
        startedAt: undefined,
        at: now,
        attempts: job.value.attempts,
        error: message
      })
    }
  })

  // Jobs an earlier process accepted and did not finish: back in the queue, in their order.
  // A job that was running may have reached the target: that counts as an attempt.
  for (const job of yield* store.unfinished) {
    const attempts = job.status === "running" ? yield* store.countAttempt(job.id) : job.attempts
    if (job.status === "running") yield* store.requeue(job.id)
    if (job.target !== null && Option.isNone(targets.byName(job.target))) {
      // Pinned to a target this process does not have: it cannot run, and must not run elsewhere.
      const at = yield* Clock.currentTimeMillis
      const error = `its target ${JSON.stringify(job.target)} is no longer configured`
      if (yield* end(job.id, { status: "failed", at, error })) {
        yield* report.finished(info(job), { status: "failed", enqueuedAt: job.createdAt, startedAt: undefined, at, attempts, error })
      }
      continue
    }
    yield* start({ ...job, status: "queued", attempts })
  }

  yield* expireQueued.pipe(
    Effect.repeat(Schedule.spaced(Duration.min(Duration.seconds(1), Duration.times(config.jobTtl, 0.1)))),
    Effect.forkScoped
  )

  // Finished jobs are kept for --retention, then deleted.
  yield* Clock.currentTimeMillis.pipe(
    Effect.flatMap((now) => store.prune(now - Duration.toMillis(config.retention))),
    Effect.tap((n) => (n > 0 ? Effect.logInfo("pruned finished jobs").pipe(Effect.annotateLogs({ count: n })) : Effect.void)),
    Effect.repeat(Schedule.spaced(Duration.min(config.retention, Duration.hours(1)))),
    Effect.forkScoped
  )

  const submit = (submission: Submission) =>
    Effect.gen(function*() {
      yield* jobs.check(submission)
      // The stored result is the final body: no streaming (embeddings never stream).
      const body = submission.kind === "/api/generate" || submission.kind === "/api/chat"
        ? { ...submission.body, stream: false }
        : submission.body
      const job = yield* store.insert({
        id: crypto.randomUUID(),
        endpoint: submission.endpoint,
        model: submission.model,
        priority: submission.priority,
        body: Json.encode(body),
        createdAt: yield* Clock.currentTimeMillis,
        owner: submission.owner,
        target: submission.target
      })
      yield* report.queued(info(job), job.createdAt)
      yield* start(job, submission.load)
      return yield* view(job)
    }).pipe(withSpan("AsyncJobs.submit", { captureStackTrace: false }))

  const await_ = (id: string, wait: Duration.Duration, viewer: Viewer = {}) =>
    Effect.scoped(
      Effect.gen(function*() {
        // Subscribe before looking, so an end between the two is not missed.
        const endings = yield* PubSub.subscribe(ended)
        const job = yield* load(id, viewer)
        if (finished(job.status)) return yield* view(job)
        yield* Queue.take(endings).pipe(
          Effect.repeat({ until: (ended_) => ended_ === id }),
          Effect.timeoutOption(wait)
        )
        return yield* load(id).pipe(Effect.flatMap(view))
      })
    )

  const cancel = (id: string, viewer: Viewer = {}) =>
    Effect.gen(function*() {
      const job = yield* load(id, viewer)
      if (finished(job.status)) return yield* new JobConflict({ id, status: job.status })
      const at = yield* Clock.currentTimeMillis
      // Ending it first makes the runner's own ending a no-op; then stop the runner
      // (a queued job leaves the queue, a running one has its upstream request aborted).
      const cancelled = yield* end(id, { status: "cancelled", at })
      queued.delete(id)
      yield* FiberMap.remove(runners, id)
      yield* scheduler.release(id)
      if (!cancelled) return yield* load(id).pipe(Effect.flatMap((now) => new JobConflict({ id, status: now.status })))
      const after = yield* load(id)
      yield* report.finished(info(after), {
        status: "cancelled",
        enqueuedAt: after.createdAt,
        startedAt: after.startedAt ?? undefined,
        at,
        attempts: after.attempts,
        error: "cancelled by DELETE"
      })
      return yield* view(after)
    })

  return AsyncJobs.of({
    submit,
    get: (id, viewer) => load(id, viewer).pipe(Effect.flatMap(view)),
    await: await_,
    cancel,
    list: (query, viewer = {}) =>
      store.list(viewer.owner === undefined ? query : { ...query, owner: viewer.owner }).pipe(
        Effect.flatMap((page: JobPage) =>
          Effect.forEach(page.jobs, view).pipe(Effect.map((views) => ({ jobs: views, nextCursor: page.nextCursor })))
        )
      ),
    counts: store.counts,
    countsFor: (viewer) => (viewer.owner === undefined ? store.counts : store.countsOf(viewer.owner))
  })
})

export const layer = Layer.scoped(AsyncJobs, make)
