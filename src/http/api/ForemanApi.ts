/**
 * foreman's own API, typed end to end: the async jobs (`/foreman/v1/jobs*`) and the health
 * report (`/foreman/health`), as an `HttpApi`. The same definition serves the routes
 * (`ForemanApiLive.ts`), produces the OpenAPI document (`/foreman/openapi.json`) and gives a
 * typed client (`HttpApiClient.make(ForemanApi, { baseUrl })`).
 *
 * Errors answer as the rest of foreman does, in Ollama's dialect: `{"error": "..."}` with the
 * status, one class per status. The byte-faithful Ollama and OpenAI routes are not here: they
 * forward what the target says, and stay on the `ForemanRouter`.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { parseDuration } from "../../Config.ts"
import { JobStatus } from "../../jobs/JobStore.ts"
import { priorities } from "../../scheduler/policy.ts"

// ---------------------------------------------------------------------------------------------
// Errors: `{"error": "..."}`, the status by class
// ---------------------------------------------------------------------------------------------

const ErrorBody = Schema.Struct({ error: Schema.String })

/**
 * An error class of the API and its wire form. The classes are told apart by `instanceof`
 * (plain `Schema.Class`es of one shape would all encode as the first), and only `error`
 * goes on the wire.
 */
const answeredWith = <A extends { readonly error: string }>(
  ErrorClass: new(body: { readonly error: string }) => A,
  status: number,
  description: string
) =>
  Schema.transform(ErrorBody, Schema.instanceOf(ErrorClass), {
    strict: true,
    decode: (body) => new ErrorClass(body),
    encode: (error) => ({ error: error.error })
  }).annotations({ ...HttpApiSchema.annotations({ status }), description })

export class BadRequestError extends Data.TaggedError("BadRequestError")<{ readonly error: string }> {
  override get message() {
    return this.error
  }
}
export class NotFoundError extends Data.TaggedError("NotFoundError")<{ readonly error: string }> {
  override get message() {
    return this.error
  }
}
export class ConflictError extends Data.TaggedError("ConflictError")<{ readonly error: string }> {
  override get message() {
    return this.error
  }
}
export class PayloadTooLargeError extends Data.TaggedError("PayloadTooLargeError")<{ readonly error: string }> {
  override get message() {
    return this.error
  }
}

const BadRequestSchema = answeredWith(BadRequestError, 400, "A bad body or query value.")
const NotFoundSchema = answeredWith(NotFoundError, 404, "No such job (a user key: of its own), or (on submit) a model no target has.")
const ConflictSchema = answeredWith(ConflictError, 409, "The job has already finished.")
const PayloadTooLargeSchema = answeredWith(PayloadTooLargeError, 413, "The body is larger than --max-body-size.")

/** The statuses foreman's own API answers errors with, and the class of each. */
export const errorClasses = {
  400: BadRequestError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError
} as const


// ---------------------------------------------------------------------------------------------
// Query values: each says what was wrong with it in one line
// ---------------------------------------------------------------------------------------------

/** A query value decoded by `parse`; a value it refuses is `invalid NAME "VALUE"[: expected]`. */
const queryValue = <A, I, R>(
  name: string,
  to: Schema.Schema<A, I, R>,
  parse: (text: string) => Option.Option<I>,
  expected: string | undefined,
  /** What the OpenAPI document says the text is. */
  jsonSchema: object,
  /** The value as text again (for the typed client). */
  print: (value: I) => string = String
) =>
  Schema.transformOrFail(Schema.String.annotations({ jsonSchema }), to, {
    strict: true,
    decode: (text, _, ast) =>
      Option.match(parse(text), {
        onNone: () =>
          ParseResult.fail(
            new ParseResult.Type(ast, text, `invalid ${name} ${JSON.stringify(text)}${expected === undefined ? "" : `: ${expected}`}`)
          ),
        onSome: ParseResult.succeed
      }),
    encode: (value) => ParseResult.succeed(print(value))
  })

/** As `Number` reads it (`" 5 "` and `"1e2"` included), if that is an integer. */
const integer = (text: string) => Option.liftPredicate(Number(text), Number.isInteger)

const StatusParam = queryValue(
  "status",
  JobStatus,
  (text) => (Schema.is(JobStatus)(text) ? Option.some(text) : Option.none()),
  `expected one of ${JobStatus.literals.join(", ")}`,
  { type: "string", enum: JobStatus.literals }
).annotations({ description: "Only jobs with this status." })

const LimitParam = queryValue(
  "limit",
  Schema.Int.pipe(Schema.between(1, 500)),
  (text) => Option.filter(integer(text), (n) => n >= 1 && n <= 500),
  "expected an integer from 1 to 500",
  { type: "integer", minimum: 1, maximum: 500 }
).annotations({ description: "Jobs per page, 1 to 500 (default 50)." })

const CursorParam = queryValue("cursor", Schema.Int, integer, undefined, { type: "integer" }).annotations({
  description: "The `nextCursor` of the previous page."
})

/** The longest `?wait=` honoured: a long-poll, not a parking spot. */
export const maxWait = Duration.minutes(10)

const WaitParam = queryValue(
  "wait",
  Schema.DurationFromSelf,
  parseDuration,
  "expected a duration such as 500ms, 30s or 2m",
  { type: "string", examples: ["500ms", "30s", "2m"] },
  (wait) => `${Duration.toMillis(wait)}ms`
).annotations({ description: "Hold the request until the job finishes, at most this long (at most 10m)." })

// ---------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------

export const Priority = Schema.Literal(...priorities)

/** `POST /foreman/v1/jobs`: one of the four job routes and its usual request body. */
export const JobSubmission = Schema.Struct({
  endpoint: Schema.Literal("/api/generate", "/api/chat", "/api/embed", "/api/embeddings"),
  body: Schema.Record({ key: Schema.String, value: Schema.Unknown }).annotations({
    description: "The request body the route takes, with exactly the checks a sync request gets."
  }),
  priority: Schema.optional(Priority),
  target: Schema.optional(Schema.String.annotations({
    description: "The target it must run on, by name (as the X-Foreman-Target header says it on the other routes)."
  }))
}).annotations({ identifier: "JobSubmission" })

/** An async job as the API shows it. */
export const Job = Schema.Struct({
  id: Schema.String,
  status: JobStatus,
  endpoint: Schema.String,
  model: Schema.String,
  priority: Priority,
  createdAt: Schema.String,
  startedAt: Schema.NullOr(Schema.String),
  finishedAt: Schema.NullOr(Schema.String),
  attempts: Schema.Number.annotations({ description: "The times the target took the job." }),
  target: Schema.optional(Schema.String.annotations({ description: "The target it is pinned to (X-Foreman-Target), if any." })),
  position: Schema.optional(Schema.Number.annotations({
    description: "1-based place in the order the queue is expected to dispatch, while queued (an estimate: later interactive jobs, or jobs for the loaded model, can still go ahead)."
  })),
  estimatedStartAt: Schema.optional(Schema.String.annotations({
    description: "While queued: when the job is expected to be sent to the target, from the measured job and load times (absent until a job has been measured, and while the target is asleep)."
  })),
  estimatedFinishAt: Schema.optional(Schema.String.annotations({
    description: "While queued or running: when its answer is expected to be complete (absent as `estimatedStartAt` is)."
  })),
  result: Schema.optional(Schema.Unknown.annotations({ description: "The target's final JSON body, once succeeded." })),
  error: Schema.optional(Schema.String)
}).annotations({ identifier: "Job" })

export const JobPage = Schema.Struct({
  jobs: Schema.Array(Job),
  nextCursor: Schema.optional(Schema.String)
}).annotations({ identifier: "JobPage" })

const WaitingGroup = Schema.Struct({ waiting: Schema.Number, oldestWaitMs: Schema.Number })

/** A sync request waiting for a slot, as health lists it. */
const WaitingRequest = Schema.Struct({
  id: Schema.String.annotations({ description: "The job's id in foreman's log lines." }),
  model: Schema.String,
  priority: Priority,
  caller: Schema.optional(Schema.String.annotations({ description: "The name of the API key it came with (with keys on)." })),
  waitedMs: Schema.Number,
  position: Schema.Number.annotations({ description: "1-based place in the order the queue is expected to dispatch (async jobs included)." }),
  estimatedStartAt: Schema.optional(Schema.String),
  estimatedFinishAt: Schema.optional(Schema.String)
}).annotations({ identifier: "WaitingRequest" })

/** What a model's ETAs rest on (milliseconds, moving averages of the jobs measured). */
const ModelEstimate = Schema.Struct({
  durationMs: Schema.NullOr(Schema.Number),
  durationWithLoadMs: Schema.NullOr(Schema.Number),
  loadMs: Schema.NullOr(Schema.Number),
  samples: Schema.Number
}).annotations({ identifier: "ModelEstimate" })

/** A target's Wake-on-LAN, as health reports it (present for a target that has a `wake`). */
const TargetWake = Schema.Struct({
  packets: Schema.Number.annotations({ description: "Magic packets sent since foreman started." }),
  lastAttemptAt: Schema.NullOr(Schema.String),
  lastWokeAt: Schema.NullOr(Schema.String.annotations({ description: "When it last answered after a wake began." })),
  lastWakeMillis: Schema.NullOr(Schema.Number.annotations({ description: "How long that wake took: its first packet to the first answer." })),
  lastError: Schema.optional(Schema.NullOr(Schema.String.annotations({
    description: "Why the last packet could not be sent (admin keys only)."
  })))
}).annotations({ identifier: "TargetWake" })

/** How a target answers: its polls, and the jobs it took and failed (`lastError`: admin only). */
const targetState = {
  reachable: Schema.Boolean,
  lastPollAt: Schema.NullOr(Schema.String),
  lastSuccessAt: Schema.NullOr(Schema.String),
  consecutiveFailures: Schema.Number,
  lastError: Schema.optional(Schema.NullOr(Schema.String)),
  jobFaults: Schema.Number
}

/** One target as health reports it. `url` and `lastError` for admin keys only (or with keys off). */
const TargetHealth = Schema.Struct({
  name: Schema.String.annotations({ description: "Its name: what `X-Foreman-Target` names it by." }),
  url: Schema.optional(Schema.String),
  status: Schema.Literal("ok", "degraded"),
  ...targetState,
  models: Schema.Number.annotations({ description: "Models in its last inventory." }),
  resident: Schema.Array(Schema.String).annotations({ description: "The models its /api/ps listed, as last polled." }),
  running: Schema.Number.annotations({ description: "Its slots in use." }),
  slots: Schema.Number.annotations({ description: "Its slots: the jobs it runs at once." }),
  queue: Schema.optional(WaitingGroup.annotations({ description: "Jobs waiting that only this target can run." })),
  wake: Schema.optional(TargetWake)
}).annotations({ identifier: "TargetHealth" })

/**
 * `GET /foreman/health`: how foreman sees its targets and its own queue. The target fields at
 * the top are the primary target's (the first configured); `status` is `degraded` when any
 * target is; `targets` has each. `target` and `lastError` (which can name the target) only
 * for an admin key, or with keys off.
 */
export const Health = Schema.Struct({
  status: Schema.Literal("ok", "degraded").annotations({ description: "`degraded` when any target is." }),
  target: Schema.optional(Schema.String),
  ...targetState,
  models: Schema.Number.annotations({ description: "The models `/api/tags` lists: each once over every target." }),
  resident: Schema.Array(Schema.String),
  queueDepth: Schema.Number,
  running: Schema.Number,
  swaps: Schema.Number,
  queue: Schema.Struct({
    byPriority: Schema.Struct({ interactive: WaitingGroup, normal: WaitingGroup, batch: WaitingGroup }),
    byModel: Schema.Record({ key: Schema.String, value: WaitingGroup }),
    waiting: Schema.Array(WaitingRequest).annotations({
      description: "Sync requests waiting for a slot, in their expected order (a user key: its own only)."
    }),
    estimates: Schema.Record({ key: Schema.String, value: ModelEstimate })
  }),
  jobs: Schema.Record({ key: JobStatus, value: Schema.Number }),
  targets: Schema.Array(TargetHealth).annotations({ description: "Each target, in the configuration's order." })
}).annotations({ identifier: "Health" })

/** Health without a key while keys are on: only whether foreman is well. */
export const HealthStatus = Schema.Struct({ status: Schema.Literal("ok", "degraded") }).annotations({
  identifier: "HealthStatus"
})

// ---------------------------------------------------------------------------------------------
// The API
// ---------------------------------------------------------------------------------------------

const IdPath = Schema.Struct({ id: Schema.String })

/** Each route lists the errors it can answer (the OpenAPI document shows them; 400 is API-wide). */
export class JobsGroup extends HttpApiGroup.make("jobs")
  .add(
    HttpApiEndpoint.post("submit", "/foreman/v1/jobs")
      .setPayload(JobSubmission)
      .addSuccess(Job, { status: 202 })
      .addError(NotFoundSchema)
      .addError(PayloadTooLargeSchema)
      .annotate(OpenApi.Summary, "Submit an async job")
      .annotate(
        OpenApi.Description,
        "Stored before the answer; `202` with the job and its `Location`. Priority `batch` unless the body's `priority` or `X-Foreman-Priority` says otherwise."
      )
  )
  .add(
    HttpApiEndpoint.get("list", "/foreman/v1/jobs")
      .setUrlParams(Schema.Struct({
        status: Schema.optional(StatusParam),
        limit: Schema.optional(LimitParam),
        cursor: Schema.optional(CursorParam)
      }))
      .addSuccess(JobPage)
      .annotate(OpenApi.Summary, "List async jobs, newest first")
  )
  .add(
    HttpApiEndpoint.get("get", "/foreman/v1/jobs/:id")
      .setPath(IdPath)
      .setUrlParams(Schema.Struct({ wait: Schema.optional(WaitParam) }))
      .addSuccess(Job)
      .addError(NotFoundSchema)
      .annotate(OpenApi.Summary, "A job as it is now, or once finished (`?wait=`)")
  )
  .add(
    HttpApiEndpoint.del("cancel", "/foreman/v1/jobs/:id")
      .setPath(IdPath)
      .addSuccess(Job)
      .addError(NotFoundSchema)
      .addError(ConflictSchema)
      .annotate(OpenApi.Summary, "Cancel a job (409 once it has finished)")
  )
{}

export class HealthGroup extends HttpApiGroup.make("health")
  .add(
    HttpApiEndpoint.get("health", "/foreman/health")
      .addSuccess(Schema.Union(Health, HealthStatus))
      .annotate(OpenApi.Summary, "How foreman sees the target and its queue (always 200)")
  )
  .add(
    HttpApiEndpoint.get("openapi", "/foreman/openapi.json")
      .addSuccess(Schema.Unknown)
      .annotate(OpenApi.Summary, "This document")
  )
{}

export class ForemanApi extends HttpApi.make("foreman")
  .addError(BadRequestSchema)
  .add(JobsGroup)
  .add(HealthGroup)
  .annotate(OpenApi.Title, "foreman-effect")
  .annotate(
    OpenApi.Description,
    "foreman's own API. The Ollama API (`/api/*`) and the OpenAI-compatible one (`/v1/*`) are forwarded as Ollama defines them."
  )
{}

/** The API's paths, for "known path, wrong method" (405) at the edge (`:id` style). */
export const paths: ReadonlyArray<string> = Object.values(ForemanApi.groups).flatMap((group) =>
  Object.values(group.endpoints).map((endpoint) => endpoint.path)
)


/**
 * The OpenAPI document. A query value the API refuses answers as `BadRequestError` (the
 * server turns the API's own decode failure into it), so the decode failure's shape, which
 * `HttpApi` lists on every route, is taken out, and the 400 with it where a route takes no
 * query and no body.
 */
export const openApi = (): OpenApi.OpenAPISpec => {
  // The version of the API (`/foreman/v1`), not of the package.
  const spec = OpenApi.fromApi(ForemanApi.annotate(OpenApi.Version, "1"))
  const isDecodeError = (schema: unknown) =>
    typeof schema === "object" && schema !== null && "$ref" in schema && String(schema.$ref).endsWith("/HttpApiDecodeError")
  for (const operations of Object.values(spec.paths)) {
    for (const operation of Object.values(operations as Record<string, OpenApi.OpenAPISpecOperation>)) {
      // The API-wide 400 is for a bad query value or body: a route that takes neither has none
      // (a path's id is any string).
      if (!operation.parameters.some((parameter) => parameter.in === "query") && operation.requestBody === undefined) {
        delete (operation.responses as Record<string, unknown>)["400"]
        continue
      }
      const content = operation.responses?.["400"]?.content?.["application/json"]
      if (content?.schema === undefined || !("anyOf" in content.schema)) continue
      const rest = (content.schema.anyOf as ReadonlyArray<unknown>).filter((schema) => !isDecodeError(schema))
      ;(content as { schema: unknown }).schema = rest.length === 1 ? rest[0] : { anyOf: rest }
      ;(operation.responses["400"] as { description: string }).description = "A bad body or query value."
    }
  }
  const schemas = spec.components.schemas as Record<string, unknown>
  delete schemas["HttpApiDecodeError"]
  delete schemas["Issue"]
  delete schemas["PropertyKey"]
  return spec
}
