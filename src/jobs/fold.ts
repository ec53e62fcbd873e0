/**
 * An Ollama answer stream folded into the one object Ollama answers with `stream: false`.
 * Async generate and chat jobs ask the target for the stream, so that a target that goes
 * silent mid-generation is noticed within `--stall-timeout` (with `stream: false` Ollama sends
 * nothing until the whole answer is done), and store what the non-streamed call would have
 * returned. The fold is Ollama's own (`server/routes.go`, the `!*req.Stream` branches of the
 * generate and chat handlers): the last chunk is the base; `response` (chat: `message.content`)
 * and `thinking` are the concatenations of every chunk's; `logprobs` are all chunks'; chat
 * `tool_calls` are all chunks' when the request had tools.
 */
import * as Either from "effect/Either"

type Json = Record<string, unknown>

const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * Why a stream folds into no answer: the target's own `{"error": ...}` line (its way to fail
 * mid-stream), or (`broken`) a line that is not a JSON object or an end before `done`.
 */
export interface Unfolded {
  readonly message: string
  readonly broken: boolean
}

/** The folded answer, or why there is none. */
export const fold = (
  endpoint: "/api/generate" | "/api/chat",
  ndjson: string,
  request: { readonly tools?: unknown }
): Either.Either<Json, Unfolded> => {
  const broken = (message: string) => Either.left({ message, broken: true })
  let last: Json | undefined
  let content = ""
  let thinking = ""
  const logprobs: Array<unknown> = []
  const toolCalls: Array<unknown> = []
  const withTools = Array.isArray(request.tools) && request.tools.length > 0
  for (const line of ndjson.split("\n")) {
    if (line.trim() === "") continue
    let chunk: unknown
    try {
      chunk = JSON.parse(line)
    } catch {
      return broken(`the target's answer is not NDJSON: ${JSON.stringify(line.slice(0, 200))}`)
    }
    if (!isObject(chunk)) return broken(`the target's answer is not NDJSON: ${JSON.stringify(line.slice(0, 200))}`)
    if (typeof chunk["error"] === "string") return Either.left({ message: chunk["error"], broken: false })
    const part = endpoint === "/api/chat" ? (isObject(chunk["message"]) ? chunk["message"] : {}) : chunk
    if (typeof (endpoint === "/api/chat" ? part["content"] : part["response"]) === "string") {
      content += endpoint === "/api/chat" ? part["content"] : part["response"]
    }
    if (typeof part["thinking"] === "string") thinking += part["thinking"]
    if (Array.isArray(chunk["logprobs"])) logprobs.push(...chunk["logprobs"])
    if (withTools && Array.isArray(part["tool_calls"])) toolCalls.push(...part["tool_calls"])
    last = chunk
  }
  if (last === undefined) return broken("the target's answer is empty")
  if (last["done"] !== true) return broken("the target's answer ended before it was done")

  // Go's `omitempty`: an empty thinking or logprobs is left out; the text is always there.
  const texts = (base: Json, text: string): Json => {
    const out: Json = { ...base, [endpoint === "/api/chat" ? "content" : "response"]: text }
    if (thinking === "") delete out["thinking"]
    else out["thinking"] = thinking
    return out
  }
  const answer: Json = endpoint === "/api/chat"
    ? (() => {
      const message = texts(isObject(last["message"]) ? last["message"] : { role: "assistant" }, content)
      if (withTools && toolCalls.length > 0) message["tool_calls"] = toolCalls
      return { ...last, message }
    })()
    : texts(last, content)
  if (logprobs.length > 0) answer["logprobs"] = logprobs
  else delete answer["logprobs"]
  return Either.right(answer)
}
