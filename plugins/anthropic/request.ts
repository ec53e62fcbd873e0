/**
 * The checks foreman makes on an Anthropic Messages request before it queues it: the ones
 * that decide whether there is a job at all and for which model. Everything else (content
 * blocks, images, tool schemas, thinking, sampling) is the target's to judge: its 400 comes
 * back in Anthropic's envelope, so the rules stay where they live.
 *
 * The texts are Ollama's (`middleware/anthropic.go`, `AnthropicMessagesMiddleware`): the body
 * is bound with Go's `encoding/json` (the core's `GoJson`), then `model`, `max_tokens` and
 * `messages` are checked in that order, then the native chat handler checks the model (the
 * core's `checkModel` with `/api/chat`'s rules, whose 404 reads `model 'x' not found`).
 */
import * as Either from "effect/Either"
import { BadRequest, checkModel, GoJson, type ModelNotFound } from "../../src/index.ts"

// Ollama's `anthropic.MessagesRequest`, with the fields foreman reads. `max_tokens` is a Go
// `int` and `stream` a `bool`: their types are the target's to check (a float or a string
// `max_tokens` is its 400); foreman reads a number that is not positive, as Ollama does.
const MessagesRequest = GoJson.struct("anthropic.MessagesRequest", {
  model: GoJson.string,
  max_tokens: GoJson.unchecked("int"),
  messages: GoJson.slice(GoJson.unchecked("anthropic.MessageParam"), "[]anthropic.MessageParam"),
  stream: GoJson.unchecked("bool")
})

const decodeMessages = GoJson.decoder(MessagesRequest)

export interface MessagesRequest {
  /** Exactly as the client sent it. */
  readonly model: string
  /** Whether the caller asked for a stream of events (Anthropic's default is one message). */
  readonly stream: boolean
  /** The parsed top-level object; unknown fields kept. */
  readonly body: Readonly<Record<string, unknown>>
}

const bad = (message: string) => Either.left(new BadRequest({ message }))

/**
 * Decodes a `/v1/messages` body the way Ollama's middleware would, as far as foreman needs:
 * a `BadRequest` (400) in Ollama's words, or the model's own check. Whether the target has
 * the model is the job's check (`Jobs`), with the grace re-check.
 */
export const decode = (bytes: Uint8Array): Either.Either<MessagesRequest, BadRequest | ModelNotFound> => {
  const decoded = decodeMessages(bytes)
  if (Either.isLeft(decoded)) return bad(decoded.left)
  const { body, fields } = decoded.right
  if ((fields.model ?? "") === "") return bad("model is required")
  const maxTokens = fields.max_tokens
  if (maxTokens === undefined || maxTokens === null || (typeof maxTokens === "number" && maxTokens <= 0)) {
    return bad("max_tokens is required and must be positive")
  }
  if (fields.messages === undefined || fields.messages.length === 0) return bad("messages is required")
  return Either.map(checkModel("/api/chat", fields.model ?? ""), (model) => ({ model, stream: fields.stream === true, body }))
}

/**
 * The body of the same request as an async job: never streamed, since the stored result is
 * the final message.
 */
export const asyncBody = (body: Readonly<Record<string, unknown>>): Record<string, unknown> => GoJson.setField(body, "stream", false)
