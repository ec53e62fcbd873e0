/**
 * The async jobs API (`/foreman/v1/jobs`): submit now, collect later. Errors use the Ollama
 * dialect (`{"error": ...}`) like the rest of foreman's own routes.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { ForemanConfig, parseDuration } from "../Config.ts"
import { BadRequest } from "../Errors.ts"
import * as Json from "../Json.ts"
import { AsyncJobs } from "../jobs/AsyncJobs.ts"
import { JobStatus } from "../jobs/JobStore.ts"
import { type Priority, priorities } from "../scheduler/policy.ts"
import { readBody } from "./body.ts"
import { accepted, jobsPath, priorityOf } from "./jobRoute.ts"
import { decodeJobRequest, type JobEndpoint } from "../ollama/request.ts"
import { ForemanRouter } from "./Router.ts"


/** The longest `?wait=` honoured: a long-poll, not a parking spot. */
export const maxWait = Duration.minutes(10)

const SubmitBody = Schema.Struct({
  endpoint: Schema.Literal("/api/generate", "/api/chat", "/api/embed", "/api/embeddings"),
  body: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  priority: Schema.optional(Schema.Literal(...priorities))
})

const encoder = new TextEncoder()
const decoder = new TextDecoder()



/** The `:id` path parameter. */
const idParam = Effect.map(HttpRouter.params, (params) => ({ id: params["id"] ?? "" }))

const badRequest = (message: string) => Effect.fail(new BadRequest({ message }))

export const layer = ForemanRouter.use((router) =>
  Effect.gen(function*() {
    const config = yield* ForemanConfig
    const asyncJobs = yield* AsyncJobs

    yield* router.post(
      jobsPath,
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const bytes = yield* readBody(config.maxBodySize)
        const json = yield* Effect.try({
          try: () => JSON.parse(decoder.decode(bytes)) as unknown,
          catch: () => new BadRequest({ message: "the body is not valid JSON" })
        })
        const submission = yield* Schema.decodeUnknown(SubmitBody)(json).pipe(
          Effect.mapError((error) =>
            new BadRequest({
              message: `expected {"endpoint": "/api/chat" | "/api/generate" | "/api/embed" | "/api/embeddings", "body": {...}, "priority"?: "interactive" | "normal" | "batch"}: ${error.message}`
            })
          )
        )
        // The inner body gets exactly the checks a sync request gets.
        const endpoint: JobEndpoint = submission.endpoint
        const decoded = yield* decodeJobRequest(endpoint, encoder.encode(Json.encode(submission.body)))
        const priority: Priority = submission.priority ?? (yield* priorityOf(request, "batch"))
        const job = yield* asyncJobs.submit({ endpoint, kind: endpoint, model: decoded.model, body: decoded.body, priority })
        return accepted(job)
      })
    )

    yield* router.get(
      jobsPath,
      Effect.gen(function*() {
        const params = (yield* HttpServerRequest.ParsedSearchParams) as Record<string, string | undefined>
        const status = params["status"]
        if (status !== undefined && !Schema.is(JobStatus)(status)) {
          return yield* badRequest(`invalid status "${status}": expected one of ${JobStatus.literals.join(", ")}`)
        }
        const limit = params["limit"] === undefined ? 50 : Number(params["limit"])
        if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
          return yield* badRequest(`invalid limit "${params["limit"]}": expected an integer from 1 to 500`)
        }
        const cursor = params["cursor"] === undefined ? undefined : Number(params["cursor"])
        if (cursor !== undefined && !Number.isInteger(cursor)) {
          return yield* badRequest(`invalid cursor "${params["cursor"]}"`)
        }
        const page = yield* asyncJobs.list({
          limit,
          ...(status === undefined ? {} : { status }),
          ...(cursor === undefined ? {} : { cursor })
        })
        return HttpServerResponse.unsafeJson({
          jobs: page.jobs,
          ...(page.nextCursor === undefined ? {} : { nextCursor: String(page.nextCursor) })
        })
      })
    )

    yield* router.get(
      `${jobsPath}/:id`,
      Effect.gen(function*() {
        const { id } = yield* idParam
        const params = (yield* HttpServerRequest.ParsedSearchParams) as Record<string, string | undefined>
        const waitParam = params["wait"]
        if (waitParam === undefined) return HttpServerResponse.unsafeJson(yield* asyncJobs.get(id))
        const wait = yield* Option.match(parseDuration(waitParam), {
          onNone: () => badRequest(`invalid wait "${waitParam}": expected a duration such as 500ms, 30s or 2m`),
          onSome: (d) => Effect.succeed(Duration.min(d, maxWait))
        })
        return HttpServerResponse.unsafeJson(yield* asyncJobs.await(id, wait))
      })
    )

    yield* router.del(
      `${jobsPath}/:id`,
      idParam.pipe(
        Effect.flatMap(({ id }) => asyncJobs.cancel(id)),
        Effect.map((job) => HttpServerResponse.unsafeJson(job))
      )
    )
  })
)
