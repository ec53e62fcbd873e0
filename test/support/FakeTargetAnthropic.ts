/**
 * The Anthropic-compatible `/v1/messages` route of the fake Ollama server, as Ollama's
 * `middleware/anthropic.go` and `anthropic/anthropic.go` do it: the Messages request turned
 * into a native chat (system, content blocks, tool_use/tool_result, tools, thinking,
 * `max_tokens` as `num_predict`), run by the native handler (same lookup, residency,
 * hold/failNext behaviour), and its output rewritten: one `message` object, or SSE events
 * with `event:` lines (`message_start`, `content_block_start/delta/stop`, `message_delta`,
 * `message_stop`); errors in Anthropic's envelope.
 */
import { randomBytes } from "node:crypto"
import {
  decodeRequest,
  field,
  goJSON,
  isObj,
  str,
  type FieldType,
  type Item,
  type Native,
  type Obj,
  type Outcome,
  type RequestContext,
  type Schema
} from "./FakeTarget.ts"

const errorType = (status: number): string =>
  status === 400
    ? "invalid_request_error"
    : status === 401
    ? "authentication_error"
    : status === 403
    ? "permission_error"
    : status === 404
    ? "not_found_error"
    : status === 429
    ? "rate_limit_error"
    : status === 503 || status === 529
    ? "overloaded_error"
    : "api_error"

const hexId = (prefix: string): string => `${prefix}_${randomBytes(12).toString("hex")}`

/** `anthropic.NewError`: `{"type":"error","error":{"type","message"},"request_id"}`. */
export const anthropicError = (status: number, message: string): Item => ({
  kind: "json",
  status,
  body: { type: "error", error: { type: errorType(status), message }, request_id: hexId("req") },
  charset: false
})

// (FakeTarget.ts imports this module, so nothing from it may be used at the top level here)
const S: FieldType = { t: "string" }
const B: FieldType = { t: "bool" }
const ANY: FieldType = { t: "any" }

const SCHEMA_MESSAGES: Schema = {
  name: "MessagesRequest",
  pkg: "anthropic",
  fields: {
    model: S,
    max_tokens: { t: "int" },
    messages: { t: "array", go: "[]anthropic.MessageParam" },
    system: ANY,
    stream: B,
    stop_sequences: { t: "array", go: "[]string" },
    tools: { t: "array", go: "[]anthropic.Tool" }
  }
}

type Converted = { ok: true; value: Obj } | { ok: false; message: string }

/** A message's content: a string is one text block. */
const blocksOf = (content: unknown): ReadonlyArray<Obj> =>
  typeof content === "string" ? [{ type: "text", text: content }] : Array.isArray(content) ? content.filter(isObj) : []

const toolResultText = (content: unknown): string =>
  typeof content === "string"
    ? content
    : Array.isArray(content)
    ? content.filter(isObj).filter((b) => str(b, "type") === "text").map((b) => str(b, "text")).join("")
    : ""

/** `convertMessage`: one Anthropic message as native messages. */
const convertMessage = (message: Obj): { ok: true; value: Array<Obj> } | { ok: false; message: string } => {
  const role = str(message, "role").toLowerCase()
  let text = ""
  let thinking = ""
  const images: Array<string> = []
  const toolCalls: Array<Obj> = []
  const toolResults: Array<Obj> = []
  for (const block of blocksOf(field(message, "content"))) {
    switch (str(block, "type")) {
      case "text":
        text += str(block, "text")
        break
      case "image": {
        const source = field(block, "source")
        if (!isObj(source)) return { ok: false, message: "invalid image source" }
        if (str(source, "type") !== "base64")
          return { ok: false, message: `invalid image source type: ${str(source, "type")}. Only base64 images are supported.` }
        images.push(str(source, "data"))
        break
      }
      case "tool_use":
        if (str(block, "id") === "") return { ok: false, message: "tool_use block missing required 'id' field" }
        if (str(block, "name") === "") return { ok: false, message: "tool_use block missing required 'name' field" }
        toolCalls.push({ id: str(block, "id"), function: { name: str(block, "name"), arguments: isObj(field(block, "input")) ? field(block, "input") : {} } })
        break
      case "tool_result":
        toolResults.push({ role: "tool", content: toolResultText(field(block, "content")), tool_call_id: str(block, "tool_use_id") })
        break
      case "thinking":
        thinking = str(block, "thinking")
        break
    }
  }
  const out: Array<Obj> = []
  if (role === "user") out.push(...toolResults)
  if (text !== "" || images.length > 0 || toolCalls.length > 0 || thinking !== "") {
    out.push({
      role,
      content: text,
      ...(images.length > 0 ? { images } : {}),
      ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
      ...(thinking !== "" ? { thinking } : {})
    })
  }
  if (role !== "user") out.push(...toolResults)
  return { ok: true, value: out }
}

/** `FromMessagesRequest`. */
const convert = (req: Obj): Converted => {
  const messages: Array<Obj> = []
  const system = field(req, "system")
  if (typeof system === "string" && system !== "") messages.push({ role: "system", content: system })
  else if (Array.isArray(system)) {
    const text = system.filter(isObj).filter((b) => b["type"] === "text" && typeof b["text"] === "string").map((b) => b["text"] as string).join("")
    if (text !== "") messages.push({ role: "system", content: text })
  }
  const raw = field(req, "messages")
  for (const message of Array.isArray(raw) ? raw.filter(isObj) : []) {
    const converted = convertMessage(message)
    if (!converted.ok) return converted
    messages.push(...converted.value)
  }
  const options: Obj = { num_predict: field(req, "max_tokens") }
  for (const [from, to] of [["temperature", "temperature"], ["top_p", "top_p"], ["top_k", "top_k"]] as const) {
    const value = field(req, from)
    if (typeof value === "number") options[to] = value
  }
  const stop = field(req, "stop_sequences")
  if (Array.isArray(stop) && stop.length > 0) options["stop"] = stop
  const tools = field(req, "tools")
  const native: Obj = { model: str(req, "model"), messages, options, stream: field(req, "stream") === true }
  if (Array.isArray(tools) && tools.length > 0) {
    native["tools"] = tools.filter(isObj).map((tool) => ({
      type: "function",
      function: {
        name: str(tool, "name"),
        description: str(tool, "description"),
        parameters: isObj(field(tool, "input_schema")) ? field(tool, "input_schema") : {}
      }
    }))
  }
  const thinking = field(req, "thinking")
  if (isObj(thinking) && str(thinking, "type") === "enabled") native["think"] = true
  if (isObj(thinking) && str(thinking, "type") === "disabled") native["think"] = false
  return { ok: true, value: native }
}

const stopReason = (reason: string, hasToolCalls: boolean): string =>
  hasToolCalls ? "tool_use" : reason === "stop" ? "end_turn" : reason === "length" ? "max_tokens" : reason !== "" ? "stop_sequence" : ""

const countOf = (line: Obj | undefined, name: string): number => (typeof line?.[name] === "number" ? (line[name] as number) : 0)

/** Rough input tokens from the request (`EstimateInputTokens`: characters / 4). */
const estimateInputTokens = (req: Obj): number => Math.floor(JSON.stringify(field(req, "messages") ?? []).length / 4)

/** `ToMessagesResponse` of the merged native answer. */
const toMessage = (id: string, model: string, lines: ReadonlyArray<Obj>): Obj => {
  const final = lines[lines.length - 1]
  const messages = lines.map((l) => (isObj(l["message"]) ? l["message"] : {}))
  const thinking = messages.map((m) => (typeof m["thinking"] === "string" ? m["thinking"] : "")).join("")
  const text = messages.map((m) => (typeof m["content"] === "string" ? m["content"] : "")).join("")
  const toolCalls = messages.flatMap((m) => (Array.isArray(m["tool_calls"]) ? m["tool_calls"].filter(isObj) : []))
  const content: Array<Obj> = []
  if (thinking !== "") content.push({ type: "thinking", thinking })
  if (text !== "") content.push({ type: "text", text })
  for (const call of toolCalls) {
    const fn = isObj(call["function"]) ? call["function"] : {}
    content.push({ type: "tool_use", id: str(call, "id"), name: str(fn, "name"), input: isObj(fn["arguments"]) ? fn["arguments"] : {} })
  }
  const reason = stopReason(typeof final?.["done_reason"] === "string" ? final["done_reason"] : "", toolCalls.length > 0)
  return {
    id,
    type: "message",
    role: "assistant",
    model: typeof final?.["model"] === "string" ? final["model"] : model,
    content: content.length === 0 ? null : content,
    ...(reason === "" ? {} : { stop_reason: reason }),
    usage: { input_tokens: countOf(final, "prompt_eval_count"), output_tokens: countOf(final, "eval_count") }
  }
}

/** One SSE event as the writer frames it: `{event, data}`. */
const event = (name: string, data: Obj): Obj => ({ event: name, data })
const sse = (line: Obj): string => `event: ${String(line["event"])}\ndata: ${goJSON(line["data"])}\n\n`

/** `StreamConverter.Process`, for the events of each native line. */
const streamConverter = (id: string, model: string, estimatedInputTokens: number) => {
  let first = true
  let index = 0
  let thinkingStarted = false
  let thinkingDone = false
  let textStarted = false
  const toolCallsSent = new Set<string>()
  const stop = (): Obj => event("content_block_stop", { type: "content_block_stop", index })
  return (line: Obj): Array<Obj> => {
    const events: Array<Obj> = []
    const message = isObj(line["message"]) ? line["message"] : {}
    const thinking = typeof message["thinking"] === "string" ? message["thinking"] : ""
    const content = typeof message["content"] === "string" ? message["content"] : ""
    const toolCalls = Array.isArray(message["tool_calls"]) ? message["tool_calls"].filter(isObj) : []
    if (first) {
      first = false
      const input = countOf(line, "prompt_eval_count") || estimatedInputTokens
      events.push(event("message_start", {
        type: "message_start",
        message: { id, type: "message", role: "assistant", model, content: [], usage: { input_tokens: input, output_tokens: 0 } }
      }))
    }
    if (thinking !== "" && !thinkingDone) {
      if (textStarted) {
        events.push(stop())
        index++
        textStarted = false
      }
      if (!thinkingStarted) {
        thinkingStarted = true
        events.push(event("content_block_start", { type: "content_block_start", index, content_block: { type: "thinking", thinking: "" } }))
      }
      events.push(event("content_block_delta", { type: "content_block_delta", index, delta: { type: "thinking_delta", thinking } }))
    }
    if (content !== "") {
      if (thinkingStarted && !thinkingDone) {
        thinkingDone = true
        events.push(stop())
        index++
      }
      if (!textStarted) {
        textStarted = true
        events.push(event("content_block_start", { type: "content_block_start", index, content_block: { type: "text", text: "" } }))
      }
      events.push(event("content_block_delta", { type: "content_block_delta", index, delta: { type: "text_delta", text: content } }))
    }
    for (const call of toolCalls) {
      const callId = str(call, "id")
      if (toolCallsSent.has(callId)) continue
      if (thinkingStarted && !thinkingDone) {
        thinkingDone = true
        events.push(stop())
        index++
      }
      if (textStarted) {
        events.push(stop())
        index++
        textStarted = false
      }
      const fn = isObj(call["function"]) ? call["function"] : {}
      events.push(
        event("content_block_start", { type: "content_block_start", index, content_block: { type: "tool_use", id: callId, name: str(fn, "name"), input: {} } }),
        event("content_block_delta", { type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: goJSON(fn["arguments"] ?? {}) } }),
        stop()
      )
      toolCallsSent.add(callId)
      index++
    }
    if (line["done"] === true) {
      if (textStarted || (thinkingStarted && !thinkingDone)) events.push(stop())
      const reason = stopReason(typeof line["done_reason"] === "string" ? line["done_reason"] : "", toolCallsSent.size > 0)
      events.push(
        event("message_delta", {
          type: "message_delta",
          delta: reason === "" ? {} : { stop_reason: reason },
          usage: { input_tokens: countOf(line, "prompt_eval_count"), output_tokens: countOf(line, "eval_count") }
        }),
        event("message_stop", { type: "message_stop" })
      )
    }
    return events
  }
}

export const handleAnthropic = (ctx: RequestContext, native: Native): Outcome => {
  const decoded = decodeRequest(ctx.body, SCHEMA_MESSAGES, "EOF")
  if (!decoded.ok) return anthropicError(400, decoded.message)
  const req = decoded.value
  if (str(req, "model") === "") return anthropicError(400, "model is required")
  const maxTokens = field(req, "max_tokens")
  if (typeof maxTokens !== "number" || maxTokens <= 0) return anthropicError(400, "max_tokens is required and must be positive")
  const messages = field(req, "messages")
  if (!Array.isArray(messages) || messages.length === 0) return anthropicError(400, "messages is required")
  const converted = convert(req)
  if (!converted.ok) return anthropicError(400, converted.message)
  const model = str(req, "model")
  const id = hexId("msg")
  const items = native.generation("chat", converted.value, ctx.signal, ctx.startNs)

  if (field(req, "stream") !== true) {
    return { kind: "stream", items, stream: false, nonStreamCharset: false, errorReply: anthropicError, merge: (lines) => toMessage(id, model, lines) }
  }
  const process = streamConverter(id, model, estimateInputTokens(req))
  async function* events(): AsyncGenerator<Item> {
    for await (const item of items) {
      if (item.kind !== "line") {
        yield item
        return
      }
      const converted = process(item.line)
      for (const [k, line] of converted.entries()) yield { kind: "line", line, final: item.final && k === converted.length - 1 }
    }
  }
  return {
    kind: "stream",
    items: events(),
    stream: true,
    nonStreamCharset: false,
    merge: () => ({}),
    contentType: "text/event-stream",
    encode: sse,
    errorReply: anthropicError,
    // A native `{"error"}` line decodes as an empty chat response: no events, the stream just ends.
    errorFrame: () => ""
  }
}
