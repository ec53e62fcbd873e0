/**
 * foreman's own API served: the handlers of `ForemanApi`, mounted on the `ForemanRouter` under
 * `/foreman` next to the byte-faithful passthrough routes, with the OpenAPI document at
 * `/foreman/openapi.json`.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { HttpApiDecodeError } from "@effect/platform/HttpApiError"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Access from "../../auth/access.ts"
import { ForemanConfig } from "../../Config.ts"
import { BadRequest } from "../../Errors.ts"
import * as Json from "../../Json.ts"
import { AsyncJobs } from "../../jobs/AsyncJobs.ts"
import { decodeJobRequest } from "../../ollama/request.ts"
import { readBody } from "../body.ts"
import * as HttpErrors from "../errors.ts"
import { forUser, health } from "../health.ts"
import { accepted, priorityOf } from "../jobRoute.ts"
import { ForemanRouter } from "../Router.ts"
import * as TargetChoice from "../targetChoice.ts"
import { Targets } from "../../target/Target.ts"
import { BadRequestError, ForemanApi, maxWait, openApi, JobSubmission } from "./ForemanApi.ts"

/** Whose jobs the request may see (a user key: its own). */
const viewer = Effect.map(FiberRef.get(Access.currentAccess), Access.viewer)

const encoder = new TextEncoder()
const decoder = new TextDecoder()

const JobsLive = HttpApiBuilder.group(ForemanApi, "jobs", (handlers) =>
  Effect.gen(function*() {
    const config = yield* ForemanConfig
    const asyncJobs = yield* AsyncJobs
    const targets = yield* Targets
    return handlers
      // The body is read here, not by the API: within --max-body-size (413), and a body that
      // is not JSON or not a submission is a 400 that says so.
      .handleRaw("submit", ({ request }) =>
        Effect.gen(function*() {
          const bytes = yield* readBody(config.maxBodySize)
          const json = yield* Effect.try({
            try: () => JSON.parse(decoder.decode(bytes)) as unknown,
            catch: () => new BadRequest({ message: "the body is not valid JSON" })
          })
          const submission = yield* Schema.decodeUnknown(JobSubmission)(json).pipe(
            Effect.mapError((error) =>
              new BadRequest({
                message: `expected {"endpoint": "/api/chat" | "/api/generate" | "/api/embed" | "/api/embeddings", "body": {...}, "priority"?: "interactive" | "normal" | "batch", "target"?: NAME}: ${error.message}`
              })
            )
          )
          // The inner body gets exactly the checks a sync request gets.
          const { endpoint } = submission
          const decoded = yield* decodeJobRequest(endpoint, encoder.encode(Json.encode(submission.body)))
          const priority = submission.priority ?? (yield* priorityOf(request, "batch"))
          const owner = Access.owner(yield* FiberRef.get(Access.currentAccess))
          // The body's `target`, else the header's; either must name a target.
          const named = submission.target === undefined
            ? yield* TargetChoice.named(targets, request)
            : Option.some(yield* TargetChoice.byName(targets, submission.target, "the job's target"))
          return accepted(yield* asyncJobs.submit({
            endpoint,
            kind: endpoint,
            model: decoded.model,
            body: decoded.body,
            priority,
            owner,
            ...(Option.isSome(named) ? { target: named.value.name } : {})
          }))
        }).pipe(Effect.mapError(HttpErrors.api)))
      .handle("list", ({ urlParams }) =>
        Effect.flatMap(viewer, (viewer) =>
          asyncJobs.list({
            limit: urlParams.limit ?? 50,
            ...(urlParams.status === undefined ? {} : { status: urlParams.status }),
            ...(urlParams.cursor === undefined ? {} : { cursor: urlParams.cursor })
          }, viewer)).pipe(Effect.map((page) => ({
          jobs: page.jobs,
          ...(page.nextCursor === undefined ? {} : { nextCursor: String(page.nextCursor) })
        }))))
      .handle("get", ({ path, urlParams }) =>
        Effect.flatMap(viewer, (viewer) =>
          urlParams.wait === undefined
            ? asyncJobs.get(path.id, viewer)
            : asyncJobs.await(path.id, Duration.min(urlParams.wait, maxWait), viewer)).pipe(Effect.mapError(HttpErrors.api)))
      .handle("cancel", ({ path }) =>
        Effect.flatMap(viewer, (viewer) => asyncJobs.cancel(path.id, viewer)).pipe(Effect.mapError(HttpErrors.api)))
  }))

const HealthLive = HttpApiBuilder.group(ForemanApi, "health", (handlers) => {
  const document = openApi()
  return handlers
    .handle("health", () =>
      Effect.gen(function*() {
        const access = yield* FiberRef.get(Access.currentAccess)
        const viewer = Access.viewer(access)
        const report = yield* health(viewer)
        if (access._tag === "Public") return { status: report.status }
        if (Access.isAdmin(access)) return report
        // A user key does not learn where a target is (its URL, or an error naming it), nor
        // how many jobs other keys have stored, nor which requests of theirs wait (`health`).
        return { ...forUser(report), jobs: yield* (yield* AsyncJobs).countsFor(viewer) }
      }))
    .handle("openapi", () => Effect.succeed(document))
})

/**
 * A query value the API refuses answers in foreman's words (`invalid limit "0": expected an
 * integer from 1 to 500`, each query schema says its own), as `{"error": ...}` with 400.
 */
const queryErrors = HttpApiBuilder.middleware(ForemanApi, (app) =>
  Effect.catchAllCause(app, (cause) => {
    // The app's error type says `never`; the API's own decode failures are in its cause.
    const failure = Cause.failureOption(cause as Cause.Cause<unknown>).pipe(Option.filter(Schema.is(HttpApiDecodeError)))
    return Option.isSome(failure)
      ? Effect.fail(new BadRequestError({ error: failure.value.issues[0]?.message ?? failure.value.message }))
      : Effect.failCause(cause)
  }))

export const layer = ForemanRouter.use((router) =>
  Effect.flatMap(HttpApiBuilder.httpApp, (app) => router.mountApp("/foreman", app, { includePrefix: true }))
).pipe(
  Layer.provide(HttpApiBuilder.api(ForemanApi).pipe(Layer.provide([JobsLive, HealthLive]))),
  Layer.provide(queryErrors),
  Layer.provide([HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer])
)
