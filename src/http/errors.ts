/**
 * The one place that turns foreman's typed errors into HTTP responses. Ollama routes answer
 * `{"error": "..."}` with Ollama's status and wording; the OpenAI dialect wraps the same
 * text in OpenAI's envelope (shared reference §8.1). Anything unexpected is a 500 whose
 * cause is logged, never leaked.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { ForemanError } from "../Errors.ts"

export interface ErrorReply {
  readonly status: number
  readonly message: string
  readonly headers?: Record<string, string>
}

/** Seconds a caller should wait before retrying a 503 from a full queue. */
export const retryAfterSeconds = 5

export const reply = (error: ForemanError): ErrorReply => {
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
        message: `foreman: no response within ${Duration.format(Duration.millis(error.waitedMillis))}: ${error.reason}`,
        headers: { "retry-after": String(retryAfterSeconds) }
      }
    case "TargetUnreachable":
      return {
        status: 503,
        message: `foreman: the target ${error.url} is unreachable: ${error.message}`,
        headers: { "retry-after": String(retryAfterSeconds) }
      }
    case "TargetError":
      return { status: error.status, message: error.message }
    case "Forbidden":
      return { status: 403, message: error.message }
  }
}

/** Ollama's dialect: `{"error": "..."}`. */
export const ollama = (error: ForemanError) => {
  const { headers, message, status } = reply(error)
  return HttpServerResponse.unsafeJson({ error: message }, { status, ...(headers ? { headers } : {}) })
}

const openAiType = (status: number) =>
  status === 400
    ? "invalid_request_error"
    : status === 403
    ? "permission_error"
    : status === 404
    ? "not_found_error"
    : "api_error"

/** OpenAI's dialect: `{"error": {"message", "type", "param", "code"}}`. */
export const openAi = (error: ForemanError) => {
  const { headers, message, status } = reply(error)
  return HttpServerResponse.unsafeJson(
    { error: { message, type: openAiType(status), param: null, code: null } },
    { status, ...(headers ? { headers } : {}) }
  )
}

/** An unexpected failure: logged with its cause, answered with a plain 500. */
export const defect = (cause: Cause.Cause<unknown>) =>
  Effect.logError("unexpected failure", cause).pipe(
    Effect.as(HttpServerResponse.unsafeJson({ error: "internal error in foreman (see its log)" }, { status: 500 }))
  )
