/**
 * The one place that turns foreman's typed errors into HTTP responses: the status and text
 * are the Ollama dialect's (`src/ollama/errors.ts`); Ollama routes answer `{"error": "..."}`,
 * the OpenAI dialect wraps the same text in OpenAI's envelope (shared reference §8.1).
 * Anything unexpected is a 500 whose cause is logged, never leaked.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import { currentAccess, isAdmin } from "../auth/access.ts"
import type { BadRequest, BodyTooLarge, ForemanError, JobConflict, JobNotFound, ModelNotFound } from "../Errors.ts"
import { type ApiError, BadRequestError, errorClasses } from "./api/ForemanApi.ts"
import { reply, type ReplyOptions } from "../ollama/errors.ts"

export { type ErrorReply, reply, type ReplyOptions, retryAfterSeconds } from "../ollama/errors.ts"

/** What the caller of the request being served may read in an error (`ReplyOptions`). */
export const replyOptions = Effect.map(FiberRef.get(currentAccess), (access): ReplyOptions => ({ revealTarget: isAdmin(access) }))

/** Ollama's dialect: `{"error": "..."}`. */
export const ollama = (error: ForemanError, options?: ReplyOptions) => {
  const { headers, message, status } = reply(error, options)
  return HttpServerResponse.unsafeJson({ error: message }, { status, ...(headers ? { headers } : {}) })
}

const openAiType = (status: number) =>
  status === 400 || status === 401
    ? "invalid_request_error"
    : status === 403
    ? "permission_error"
    : status === 404
    ? "not_found_error"
    : "api_error"

/** OpenAI's dialect: `{"error": {"message", "type", "param", "code"}}`. */
export const openAi = (error: ForemanError, options?: ReplyOptions) => {
  const { headers, message, status } = reply(error, options)
  return HttpServerResponse.unsafeJson(
    { error: { message, type: openAiType(status), param: null, code: status === 401 ? "invalid_api_key" : null } },
    { status, ...(headers ? { headers } : {}) }
  )
}

/**
 * In the dialect of the path asked, for answers no route's own mapping gives (refusals at the
 * edge, paths passed through): OpenAI's envelope under `/v1/`, Ollama's everywhere else.
 */
export const forPath = (url: string): (error: ForemanError, options?: ReplyOptions) => HttpServerResponse.HttpServerResponse =>
  url.startsWith("/v1/") ? openAi : ollama

/** The failures foreman's own API (`/foreman/v1/jobs*`) answers with. */
export type ApiFailure = BadRequest | BodyTooLarge | ModelNotFound | JobNotFound | JobConflict

/** foreman's own API: the same `{"error": "..."}` and status, as the API's error class for it. */
export const api = (error: ApiFailure): ApiError => {
  const { message, status } = reply(error)
  // Every status of an ApiFailure has its class; 400 only stands in for the type checker.
  const ErrorClass = errorClasses[status as keyof typeof errorClasses] ?? BadRequestError
  return new ErrorClass({ error: message })
}

/** An unexpected failure: logged with its cause, answered with a plain 500. */
export const defect = (cause: Cause.Cause<unknown>) =>
  Effect.logError("unexpected failure", cause).pipe(
    Effect.as(HttpServerResponse.unsafeJson({ error: "internal error in foreman (see its log)" }, { status: 500 }))
  )
