/**
 * The expected failures of foreman. Each carries what a caller needs to understand it; the
 * HTTP layer (`src/http/errors.ts`) is the one place that turns them into responses.
 */
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"
import { types } from "node:util"

/**
 * Whether `u` is an Error, whichever realm made it (`instanceof Error` is false for an error
 * from another VM context, such as the ones Node's own modules throw into a test's context).
 */
export const isError = (u: unknown): u is Error => u instanceof Error || types.isNativeError(u)

/** Transport failures that have a plainer name than their code. */
const plainly: Readonly<Record<string, string>> = {
  UND_ERR_BODY_TIMEOUT: "the target stalled mid-answer: it sent nothing for --stall-timeout"
}

/** A transport failure as one line of text: its code, its message, and what caused it. */
export const describeCause = (cause: unknown): string => {
  if (!isError(cause)) return String(cause)
  const code = (cause as { code?: unknown }).code
  if (typeof code === "string" && code in plainly) return plainly[code]!
  const inner = (cause as { cause?: unknown }).cause
  const base = typeof code === "string" && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message
  return inner !== undefined && inner !== cause ? `${base} (${describeCause(inner)})` : base
}

/** The target could not be reached: refused, reset, DNS failure, connect timeout. */
export class TargetUnreachable extends Schema.TaggedError<TargetUnreachable>()("TargetUnreachable", {
  url: Schema.String,
  message: Schema.String
}) {}

/**
 * The target answered with a non-2xx status; `message` is its `error` text (or body). Or it
 * failed to answer although it took the request: `fault` says how (it sent nothing for
 * `--stall-timeout`, or closed the connection before answering; status 504 or 502).
 */
export class TargetError extends Schema.TaggedError<TargetError>()("TargetError", {
  status: Schema.Number,
  message: Schema.String,
  fault: Schema.optional(Schema.Literal("stalled", "closed"))
}) {}

/**
 * A target that took a job whose answer comes whole (a dialect's `stream: false`) and said
 * nothing within --request-timeout (an async job's whole timeout; without it, a sync caller's
 * time left): a fault, as a stall is. The slot is freed.
 */
export const silentFor = (requestTimeout?: Duration.Duration) =>
  new TargetError({
    status: 504,
    fault: "stalled",
    message: requestTimeout === undefined
      ? "the target sent nothing before the caller's --request-timeout ran out"
      : `the target sent nothing within ${Duration.format(requestTimeout)} (--request-timeout)`
  })

/**
 * A model the target does not have. `message` is already in Ollama's exact wording for the
 * endpoint that was asked (the wording differs between generate/chat and embed).
 */
export class ModelNotFound extends Schema.TaggedError<ModelNotFound>()("ModelNotFound", {
  model: Schema.String,
  message: Schema.String
}) {}

/** Input foreman refuses before queueing; `message` is Ollama's wording where Ollama has one. */
export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", {
  message: Schema.String
}) {}

/** A request body larger than the configured limit. */
export class BodyTooLarge extends Schema.TaggedError<BodyTooLarge>()("BodyTooLarge", {
  limit: Schema.Number
}) {}

/** More jobs are waiting than `--max-queue` allows. */
export class QueueFull extends Schema.TaggedError<QueueFull>()("QueueFull", {
  limit: Schema.Number
}) {}

/** A sync caller waited longer than `--request-timeout` (typically: the target slept through it). */
export class RequestTimeout extends Schema.TaggedError<RequestTimeout>()("RequestTimeout", {
  waitedMillis: Schema.Number,
  reason: Schema.String,
  /** What the transport said (it can name the target's address): shown to admins only. */
  detail: Schema.optional(Schema.String)
}) {}

/** foreman is stopping (SIGTERM): a caller still waiting for a slot is answered, not left hanging. */
export class ShuttingDown extends Schema.TaggedError<ShuttingDown>()("ShuttingDown", {}) {}

/** No job with that id. */
export class JobNotFound extends Schema.TaggedError<JobNotFound>()("JobNotFound", {
  id: Schema.String
}) {}

/** The job has already finished (it cannot be cancelled any more). */
export class JobConflict extends Schema.TaggedError<JobConflict>()("JobConflict", {
  id: Schema.String,
  status: Schema.String
}) {}

/**
 * A request refused before routing: a browser origin that is not allowed, or a `Host` that is
 * not local on a loopback listener (`src/http/origins.ts`).
 */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  message: Schema.String
}) {}

/** A request without a valid API key where keys are required (`src/auth/`). */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  message: Schema.String
}) {}

/**
 * Start-up refused: a listener other than loopback with no API key to require, and
 * `--allow-unauthenticated` not given.
 */
export class Unprotected extends Schema.TaggedError<Unprotected>()("Unprotected", {
  host: Schema.String
}) {}

/** Start-up refused: the targets file (`--targets-file`) cannot be read or says something wrong. */
export class TargetsFileInvalid extends Schema.TaggedError<TargetsFileInvalid>()("TargetsFileInvalid", {
  path: Schema.String,
  message: Schema.String
}) {}

/** Start-up refused: the database file is held by another foreman process (one per file). */
export class DatabaseInUse extends Schema.TaggedError<DatabaseInUse>()("DatabaseInUse", {
  path: Schema.String,
  message: Schema.String
}) {}

/** The expected failures, as one union for the HTTP error mapping (`Schema.is(ForemanError)`). */
export const ForemanError = Schema.Union(
  TargetUnreachable,
  TargetError,
  ModelNotFound,
  BadRequest,
  BodyTooLarge,
  QueueFull,
  RequestTimeout,
  ShuttingDown,
  JobNotFound,
  JobConflict,
  Unauthorized,
  Forbidden
)
export type ForemanError = typeof ForemanError.Type
