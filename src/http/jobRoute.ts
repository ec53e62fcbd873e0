/**
 * An inference route: its request becomes a job, sync (the target's answer streamed back)
 * or async (`Prefer: respond-async`: 202 now, the result at the job's Location). The
 * Ollama routes and the OpenAI plugin's routes are all this, with their own body checks.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import type { Readable } from "node:stream"
import * as Access from "../auth/access.ts"
import { ForemanConfig } from "../Config.ts"
import { BadRequest } from "../Errors.ts"
import { AsyncJobs, type JobView } from "../jobs/AsyncJobs.ts"
import { Jobs } from "../jobs/Jobs.ts"
import { type Priority, priorities } from "../scheduler/policy.ts"
import { Targets } from "../target/Target.ts"
import type { JobEndpoint } from "../target/TargetClient.ts"
import { readBody } from "./body.ts"
import * as TargetChoice from "./targetChoice.ts"

/** Where async jobs are collected. */
export const jobsPath = "/foreman/v1/jobs"

/** `202 Accepted` with the job and where to collect it. */
export const accepted = (job: JobView) =>
  HttpServerResponse.unsafeJson(job, { status: 202, headers: { location: `${jobsPath}/${job.id}` } })

/** Whether the caller asked for an async job (RFC 7240 `Prefer: respond-async`). */
export const prefersAsync = (request: HttpServerRequest.HttpServerRequest) =>
  (request.headers["prefer"] ?? "").split(",").some((token) => token.trim().toLowerCase() === "respond-async")

export { targetHeader } from "./targetChoice.ts"

/** The request header that sets a job's priority class. */
export const priorityHeader = "x-foreman-priority"

/** The priority of a request: its header if any, else the default for its kind. */
export const priorityOf = (request: HttpServerRequest.HttpServerRequest, fallback: Priority) => {
  const header = request.headers[priorityHeader]
  if (header === undefined || header === "") return Effect.succeed(fallback)
  const value = header.trim().toLowerCase()
  return (priorities as ReadonlyArray<string>).includes(value)
    ? Effect.succeed(value as Priority)
    : Effect.fail(
      new BadRequest({ message: `invalid X-Foreman-Priority "${header}": expected one of ${priorities.join(", ")}` })
    )
}

/**
 * The response for a target's answer: bytes at once, or a stream piped as it comes (Node
 * streams end to end, see `streams.ts`).
 */
export const streamed = (
  response: { readonly status: number; readonly contentType: string | undefined; readonly body: Readable | Uint8Array }
) => {
  const options = { status: response.status, ...(response.contentType === undefined ? {} : { contentType: response.contentType }) }
  return response.body instanceof Uint8Array
    ? HttpServerResponse.uint8Array(response.body, options)
    : HttpServerResponse.raw(response.body, options)
}

/** Made once per router layer (it captures the services); called per route. */
export const makeJobRoute = Effect.gen(function*() {
  const config = yield* ForemanConfig
  const jobs = yield* Jobs
  const asyncJobs = yield* AsyncJobs
  const targets = yield* Targets
  return <E>(options: {
    /** The target path the job calls. */
    readonly endpoint: string
    /** The Ollama route whose rules the job follows (the wording of its missing-model 404). */
    readonly kind: JobEndpoint
    /**
     * Checks the body before anything is queued, and names the model. `body` is what an
     * async job stores (the job itself turns streaming off).
     */
    readonly decode: (
      bytes: Uint8Array,
      request: HttpServerRequest.HttpServerRequest
    ) => Effect.Effect<{
      readonly model: string
      readonly body: Readonly<Record<string, unknown>>
      /** Whether the sync answer streams (default: yes); see `JobSpec.streams`. */
      readonly stream?: boolean
      /** The options that make the target reload the model (`JobSpec.load`); none by default. */
      readonly load?: string
    }, E>
    /**
     * Whether `Prefer: respond-async` makes an async job (default: yes). A route whose request
     * is not JSON (a transcription's multipart form) cannot be stored as one: it answers in
     * the request, which RFC 7240 allows (a preference may be ignored; no
     * `Preference-Applied` says so).
     */
    readonly async?: boolean
    /** See `JobSpec.streamError`. */
    readonly streamError?: (message: string) => Uint8Array
  }) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const access = yield* FiberRef.get(Access.currentAccess)
      const priority = yield* priorityOf(request, "interactive")
      const pinned = Option.map(yield* TargetChoice.named(targets, request), (target) => target.name)
      const bytes = yield* readBody(config.maxBodySize)
      const decoded = yield* options.decode(bytes, request)
      const { endpoint, kind } = options
      if (options.async !== false && prefersAsync(request)) {
        // Async work is batch unless the caller says otherwise.
        const asyncPriority = request.headers[priorityHeader] === undefined ? "batch" : priority
        return accepted(
          yield* asyncJobs.submit({
            endpoint,
            kind,
            model: decoded.model,
            body: decoded.body,
            priority: asyncPriority,
            owner: Access.owner(access),
            ...(decoded.load === undefined ? {} : { load: decoded.load }),
            ...(Option.isSome(pinned) ? { target: pinned.value } : {})
          })
        )
      }
      const contentType = options.async === false ? request.headers["content-type"] : undefined
      return streamed(
        yield* jobs.run({
          endpoint,
          kind,
          model: decoded.model,
          body: bytes,
          priority,
          caller: Access.owner(access),
          ...(decoded.stream === undefined ? {} : { streams: decoded.stream }),
          ...(contentType === undefined ? {} : { contentType }),
          ...(options.streamError === undefined ? {} : { streamError: options.streamError }),
          ...(decoded.load === undefined ? {} : { load: decoded.load }),
          ...(Option.isSome(pinned) ? { target: pinned.value } : {})
        })
      )
    })
})
