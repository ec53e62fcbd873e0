/**
 * Ollama's wording and statuses for foreman's expected failures: what each error answers, in
 * the words Ollama uses where it has them (reference §8), so clients that match on a text keep
 * working. `src/http/errors.ts` renders these as responses in the caller's dialect.
 */
import * as Duration from "effect/Duration"
import { type ForemanError, ModelNotFound } from "../Errors.ts"
import type { JobEndpoint } from "./request.ts"
import * as ModelName from "./ModelName.ts"

export interface ErrorReply {
  readonly status: number
  readonly message: string
  readonly headers?: Record<string, string>
}

/** Seconds a caller should wait before retrying a 503 from a full queue. */
export const retryAfterSeconds = 5

export interface ReplyOptions {
  /**
   * Whether the text may say where the target is (its URL, a transport error naming its
   * address): yes unless the caller has a user key (see `src/auth/access.ts`).
   */
  readonly revealTarget?: boolean
}

export const reply = (error: ForemanError, options: ReplyOptions = {}): ErrorReply => {
  const reveal = options.revealTarget ?? true
  switch (error._tag) {
    case "BadRequest":
      return { status: 400, message: error.message }
    case "BodyTooLarge":
      return { status: 413, message: `request body too large (limit ${error.limit} bytes)` }
    case "ModelNotFound":
      return { status: 404, message: error.message }
    case "JobNotFound":
      return { status: 404, message: `job '${error.id}' not found` }
    case "JobConflict":
      return { status: 409, message: `job '${error.id}' has already ${error.status === "cancelled" ? "been cancelled" : error.status}` }
    case "QueueFull":
      // Ollama's own queue-full text, so clients that match on it keep working.
      return {
        status: 503,
        message: "server busy, please try again.  maximum pending requests exceeded",
        headers: { "retry-after": String(retryAfterSeconds) }
      }
    case "RequestTimeout":
      return {
        status: 503,
        message: `foreman: no response within ${Duration.format(Duration.millis(error.waitedMillis))}: ${error.reason}${
          reveal && error.detail !== undefined ? ` (${error.detail})` : ""
        }`,
        headers: { "retry-after": String(retryAfterSeconds) }
      }
    case "ShuttingDown":
      return { status: 503, message: "foreman is shutting down", headers: { "retry-after": String(retryAfterSeconds) } }
    case "TargetUnreachable":
      return {
        status: 503,
        message: reveal ? `foreman: the target ${error.url} is unreachable: ${error.message}` : "foreman: the target is unreachable",
        headers: { "retry-after": String(retryAfterSeconds) }
      }
    case "TargetError":
      return { status: error.status, message: error.message }
    case "Unauthorized":
      return { status: 401, message: error.message, headers: { "www-authenticate": "Bearer" } }
    case "Forbidden":
      return { status: 403, message: error.message }
  }
}

/** A model the target does not have, in the wording of the route that was asked. */
export const missingModelError = (endpoint: JobEndpoint, model: string): ModelNotFound =>
  new ModelNotFound({
    model,
    message: endpoint === "/api/generate" || endpoint === "/api/chat"
      ? `model '${model}' not found`
      : `model ${ModelName.goQuote(model)} not found, try pulling it first`
  })

