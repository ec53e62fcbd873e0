/**
 * The one place that turns foreman's typed errors into HTTP responses: the status and text
 * are the Ollama dialect's (`src/ollama/errors.ts`); Ollama routes answer `{"error": "..."}`,
 * the OpenAI dialect wraps the same text in OpenAI's envelope (shared reference §8.1), the
 * Anthropic dialect (`/v1/messages`) in Anthropic's, as Ollama's own middlewares do.
 * Anything unexpected is a 500 whose cause is logged, never leaked.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import { currentAccess, isAdmin } from "../auth/access.ts"
import type { BadRequest, BodyTooLarge, ForemanError, JobConflict, JobNotFound, ModelNotFound } from "../Errors.ts"
import { BadRequestError, type ConflictError, errorClasses, type NotFoundError, type PayloadTooLargeError } from "./api/ForemanApi.ts"
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

/** Anthropic's error type for a status, as Ollama's `anthropic.NewError` names it. */
const anthropicType = (status: number) =>
  status === 400
    ? "invalid_request_error"
    : status === 401
    ? "authentication_error"
    : status === 403
    ? "permission_error"
    : status === 404
    ? "not_found_error"
    : status === 413
    ? "request_too_large"
    : status === 429
    ? "rate_limit_error"
    : status === 503 || status === 529
    ? "overloaded_error"
    : "api_error"

/** An id for an error body, in the shape Ollama's Anthropic middleware gives it (`req_` and 24 hex digits). */
const requestId = () => {
  const bytes = crypto.getRandomValues(new Uint8Array(12))
  return "req_" + Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")
}

/** Anthropic's envelope: `{"type": "error", "error": {"type", "message"}, "request_id"}`. */
export const anthropicBody = (status: number, message: string) => ({
  type: "error",
  error: { type: anthropicType(status), message },
  request_id: requestId()
})

/** Anthropic's dialect, for `/v1/messages`. */
export const anthropic = (error: ForemanError, options?: ReplyOptions) => {
  const { headers, message, status } = reply(error, options)
  return HttpServerResponse.unsafeJson(anthropicBody(status, message), { status, ...(headers ? { headers } : {}) })
}

/** The dialects Ollama speaks, each with its error envelope. */
export type Dialect = "ollama" | "openai" | "anthropic"

/**
 * The dialect of a request path, for answers given before any route runs (a missing key, a
 * refused origin): Anthropic's on `/v1/messages`, OpenAI's elsewhere under `/v1`, Ollama's
 * everywhere else.
 */
export const dialectOf = (url: string): Dialect => {
  const path = url.split("?")[0] ?? "/"
  return path === "/v1/messages" || path.startsWith("/v1/messages/")
    ? "anthropic"
    : path.startsWith("/v1/")
    ? "openai"
    : "ollama"
}

/** An error in the dialect of the request's path (`dialectOf`). */
export const inDialectOf = (url: string, error: ForemanError, options?: ReplyOptions) => {
  switch (dialectOf(url)) {
    case "anthropic":
      return anthropic(error, options)
    case "openai":
      return openAi(error, options)
    case "ollama":
      return ollama(error, options)
  }
}

/**
 * A route's expected failures answered in a dialect (a plugin's routes: `inDialect("openai")`);
 * defects stay the server's 500.
 */
export const inDialect = (dialect: Dialect) =>
<R>(handler: Effect.Effect<HttpServerResponse.HttpServerResponse, ForemanError, R>) =>
  handler.pipe(Effect.catchAll((error) => Effect.map(replyOptions, (options) => renderers[dialect](error, options))))

const renderers: Record<Dialect, (error: ForemanError, options?: ReplyOptions) => HttpServerResponse.HttpServerResponse> = {
  ollama: (error, options) => ollama(error, options),
  openai: (error, options) => openAi(error, options),
  anthropic: (error, options) => anthropic(error, options)
}

/** The failures foreman's own API (`/foreman/v1/jobs*`) answers with. */
export type ApiFailure = BadRequest | BodyTooLarge | ModelNotFound | JobNotFound | JobConflict

/** The API's error class for each failure (what each route lists in the OpenAPI document). */
export type ApiErrorOf<E extends ApiFailure> =
  | (E extends BadRequest ? BadRequestError : never)
  | (E extends BodyTooLarge ? PayloadTooLargeError : never)
  | (E extends ModelNotFound | JobNotFound ? NotFoundError : never)
  | (E extends JobConflict ? ConflictError : never)

/** foreman's own API: the same `{"error": "..."}` and status, as the API's error class for it. */
export const api = <E extends ApiFailure>(error: E): ApiErrorOf<E> => {
  const { message, status } = reply(error)
  // Every status of an ApiFailure has its class; 400 only stands in for the type checker.
  const ErrorClass = errorClasses[status as keyof typeof errorClasses] ?? BadRequestError
  return new ErrorClass({ error: message }) as ApiErrorOf<E>
}

/** An unexpected failure: logged with its cause, answered with a plain 500. */
export const defect = (cause: Cause.Cause<unknown>) =>
  Effect.logError("unexpected failure", cause).pipe(
    Effect.as(HttpServerResponse.unsafeJson({ error: "internal error in foreman (see its log)" }, { status: 500 }))
  )
