/**
 * The OpenAI-compatible `/v1` routes of the fake Ollama server (reference §8).
 *
 * Like Ollama's middleware, each route turns the OpenAI request into a native one, runs the
 * native handler (same lookup, residency, hold/failNext behaviour) and rewrites its output:
 * the OpenAI error envelope, `chat.completion(.chunk)` objects, SSE frames in the v0.32.10+
 * layout (role on the first chunk, a separate finish chunk, an optional usage chunk, `[DONE]`).
 */
import {
  decodeRequest,
  field,
  float32,
  goJSON,
  int,
  isObj,
  str,
  type Item,
  type Native,
  type Obj,
  type Outcome,
  type RequestContext,
  type FieldType,
  type Route,
  type Schema,
  type StreamOutcome
} from "./FakeTarget.ts"

const errorType = (status: number): string =>
  status === 400 ? "invalid_request_error" : status === 404 ? "not_found_error" : "api_error"

/** `{"error":{"message","type","param":null,"code":null}}` with the native status. */
export const openAIError = (status: number, message: string): Item => ({
  kind: "json",
  status,
  body: { error: { message, type: errorType(status), param: null, code: null } },
  charset: false
})

const ok = (body: Obj): Item => ({ kind: "json", status: 200, body, charset: false })

const unixOf = (rfc: unknown): number => {
  const ms = typeof rfc === "string" ? Date.parse(rfc) : NaN
  return Math.floor((Number.isNaN(ms) ? Date.now() : ms) / 1000)
}

const sse = (line: Obj): string => `data: ${goJSON(line)}\n\n`
const DONE = "data: [DONE]\n\n"

// (FakeTarget.ts imports this module, so nothing from it may be used at the top level here)
const S: FieldType = { t: "string" }
const B: FieldType = { t: "bool" }
const ANY: FieldType = { t: "any" }

const SCHEMA_CHAT: Schema = {
  name: "ChatCompletionRequest",
  pkg: "openai",
  fields: { model: S, stream: B, messages: { t: "array", go: "[]openai.Message" }, max_tokens: { t: "int" }, seed: { t: "int" }, stop: ANY }
}
const SCHEMA_COMPLETION: Schema = {
  name: "CompletionRequest",
  pkg: "openai",
  fields: { model: S, prompt: ANY, stream: B, max_tokens: { t: "int" }, seed: { t: "int" }, suffix: S, stop: ANY }
}
const SCHEMA_EMBED: Schema = {
  name: "EmbedRequest",
  pkg: "openai",
  fields: { model: S, input: ANY, dimensions: { t: "int" }, encoding_format: S }
}

const goTypeOf = (v: unknown): string =>
  v === null ? "<nil>" : typeof v === "number" ? "float64" : typeof v === "boolean" ? "bool" : Array.isArray(v) ? "[]interface {}" : typeof v === "string" ? "string" : "map[string]interface {}"

/** Sampling options shared by chat and completions. */
const samplingOptions = (req: Obj, topPZeroIsDefault: boolean): Obj => {
  const options: Obj = {}
  const maxTokens = field(req, "max_tokens")
  if (typeof maxTokens === "number") options["num_predict"] = maxTokens
  const temperature = field(req, "temperature")
  options["temperature"] = typeof temperature === "number" ? temperature : 1.0
  const topP = field(req, "top_p")
  options["top_p"] = typeof topP === "number" && !(topPZeroIsDefault && topP === 0) ? topP : 1.0
  for (const key of ["seed", "frequency_penalty", "presence_penalty"]) {
    const v = field(req, key)
    if (typeof v === "number") options[key] = v
  }
  return options
}

const includeUsage = (req: Obj): boolean => {
  const so = field(req, "stream_options")
  return isObj(so) && field(so, "include_usage") === true
}

const REASONING: Record<string, string | boolean> = {
  none: false,
  minimal: "low",
  low: "low",
  medium: "medium",
  high: "high",
  max: "max",
  xhigh: "max",
  ultra: "max"
}

type Converted = { ok: true; value: Obj } | { ok: false; message: string }

const convertChat = (req: Obj): Converted => {
  const rawMessages = field(req, "messages")
  const messages = Array.isArray(rawMessages) ? rawMessages : []
  if (messages.length === 0) return { ok: false, message: "[] is too short - 'messages'" }
  const nativeMessages: Obj[] = []
  const toolNames = new Map<string, string>()
  for (const m of messages) {
    if (!isObj(m)) continue
    const role = str(m, "role").toLowerCase()
    const content = field(m, "content")
    const extra: Obj = {}
    const reasoning = str(m, "reasoning")
    if (reasoning !== "") extra["thinking"] = reasoning
    const toolCalls = field(m, "tool_calls")
    if (Array.isArray(toolCalls) && toolCalls.length > 0) {
      const converted: Obj[] = []
      for (const [index, tc] of toolCalls.entries()) {
        if (!isObj(tc)) continue
        const fn = isObj(field(tc, "function")) ? (field(tc, "function") as Obj) : {}
        let args: unknown = {}
        const rawArgs = field(fn, "arguments")
        if (typeof rawArgs === "string" && rawArgs !== "") {
          try {
            args = JSON.parse(rawArgs) as unknown
          } catch {
            return { ok: false, message: "invalid tool call arguments" }
          }
        }
        const id = str(tc, "id")
        if (id !== "") toolNames.set(id, str(fn, "name"))
        converted.push({ ...(id === "" ? {} : { id }), function: { index, name: str(fn, "name"), arguments: args } })
      }
      extra["tool_calls"] = converted
    }
    if (role === "tool") {
      const name = str(m, "name") || toolNames.get(str(m, "tool_call_id")) || ""
      if (name !== "") extra["tool_name"] = name
      const callId = str(m, "tool_call_id")
      if (callId !== "") extra["tool_call_id"] = callId
    }
    if (typeof content === "string") nativeMessages.push({ role, content, ...extra })
    else if (Array.isArray(content)) {
      for (const part of content) {
        if (!isObj(part)) continue
        const type = str(part, "type")
        if (type === "text") nativeMessages.push({ role, content: str(part, "text"), ...extra })
        else if (type === "image_url") {
          const iu = field(part, "image_url")
          const url = typeof iu === "string" ? iu : isObj(iu) ? str(iu, "url") : ""
          if (/^https?:\/\//i.test(url)) return { ok: false, message: "image URLs are not currently supported, please use base64 encoded data instead" }
          const match = /^data:(?:image\/(?:jpeg|jpg|png|webp))?;base64,(.*)$/s.exec(url)
          if (match === null) return { ok: false, message: "invalid image input" }
          nativeMessages.push({ role, content: "", images: [match[1] ?? ""], ...extra })
        } else if (type === "input_audio") {
          const ia = field(part, "input_audio")
          nativeMessages.push({ role, content: "", images: [isObj(ia) ? str(ia, "data") : ""], ...extra })
        }
      }
    } else if ((content === undefined || content === null) && extra["tool_calls"] !== undefined) nativeMessages.push({ role, content: "", ...extra })
    else return { ok: false, message: "invalid message content type" }
  }

  const native: Obj = { model: str(req, "model"), messages: nativeMessages, stream: field(req, "stream") === true, options: samplingOptions(req, false) }
  const stop = field(req, "stop")
  if (typeof stop === "string") (native["options"] as Obj)["stop"] = [stop]
  else if (Array.isArray(stop)) (native["options"] as Obj)["stop"] = stop
  const rf = field(req, "response_format")
  if (isObj(rf)) {
    const type = str(rf, "type")
    if (type === "json_object") native["format"] = "json"
    else if (type === "json_schema") {
      const js = field(rf, "json_schema")
      const schema = isObj(js) ? field(js, "schema") : undefined
      if (isObj(schema)) native["format"] = schema
    }
  }
  const tools = field(req, "tools")
  if (Array.isArray(tools)) native["tools"] = tools
  const reasoningObj = field(req, "reasoning")
  const effort = isObj(reasoningObj) ? field(reasoningObj, "effort") : field(req, "reasoning_effort")
  if (typeof effort === "string" && effort !== "") {
    const think = REASONING[effort]
    if (think === undefined)
      return { ok: false, message: `invalid reasoning value: '${effort}' (must be "none", "minimal", "low", "medium", "high", "xhigh", "max")` }
    native["think"] = think
  }
  return { ok: true, value: native }
}

const toOpenAIToolCalls = (calls: ReadonlyArray<unknown>): Obj[] =>
  calls.filter(isObj).map((tc, index) => {
    const fn = isObj(tc["function"]) ? tc["function"] : {}
    return {
      id: typeof tc["id"] === "string" ? tc["id"] : `call_${index}`,
      index: typeof fn["index"] === "number" ? fn["index"] : index,
      type: "function",
      function: { name: typeof fn["name"] === "string" ? fn["name"] : "", arguments: JSON.stringify(fn["arguments"] ?? {}) }
    }
  })

const usageOf = (final: Obj | undefined): Obj => {
  const prompt = typeof final?.["prompt_eval_count"] === "number" ? final["prompt_eval_count"] : 0
  const completion = typeof final?.["eval_count"] === "number" ? final["eval_count"] : 0
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
}

const chatCompletions = (ctx: RequestContext, native: Native): Outcome => {
  const decoded = decodeRequest(ctx.body, SCHEMA_CHAT, "EOF")
  if (!decoded.ok) return openAIError(400, decoded.message)
  const req = decoded.value
  const converted = convertChat(req)
  if (!converted.ok) return openAIError(400, converted.message)
  const model = str(req, "model")
  const id = `chatcmpl-${Math.floor(Math.random() * 999)}`
  const items = native.generation("chat", converted.value, ctx.signal, ctx.startNs)
  const stream = field(req, "stream") === true

  if (!stream) {
    return {
      kind: "stream",
      items,
      stream: false,
      nonStreamCharset: false,
      errorReply: openAIError,
      merge: (lines) => {
        const final = lines[lines.length - 1]
        const msgs = lines.map((l) => (isObj(l["message"]) ? l["message"] : {}))
        const content = msgs.map((m) => (typeof m["content"] === "string" ? m["content"] : "")).join("")
        const reasoning = msgs.map((m) => (typeof m["thinking"] === "string" ? m["thinking"] : "")).join("")
        const toolCalls = msgs.flatMap((m) => (Array.isArray(m["tool_calls"]) ? m["tool_calls"] : []))
        const message: Obj = { role: "assistant", content }
        if (reasoning !== "") message["reasoning"] = reasoning
        if (toolCalls.length > 0) message["tool_calls"] = toOpenAIToolCalls(toolCalls)
        const reason = typeof final?.["done_reason"] === "string" && final["done_reason"] !== "" ? final["done_reason"] : null
        return {
          id,
          object: "chat.completion",
          created: unixOf(final?.["created_at"]),
          model,
          system_fingerprint: "fp_ollama",
          choices: [{ index: 0, message, finish_reason: reason === "stop" && toolCalls.length > 0 ? "tool_calls" : reason }],
          usage: usageOf(final)
        }
      }
    }
  }

  const usage = includeUsage(req)
  async function* chunks(): AsyncGenerator<Item> {
    let created: number | undefined
    let first = true
    let sawTools = false
    const chunk = (delta: Obj, finishReason: string | null): Obj => ({
      id,
      object: "chat.completion.chunk",
      created: created ?? Math.floor(Date.now() / 1000),
      model,
      system_fingerprint: "fp_ollama",
      choices: [{ index: 0, delta, finish_reason: finishReason }]
    })
    const withRole = (delta: Obj): Obj => {
      if (!first) return delta
      first = false
      return { role: "assistant", ...delta, content: typeof delta["content"] === "string" ? delta["content"] : "" }
    }
    for await (const item of items) {
      if (item.kind !== "line") {
        yield item
        return
      }
      const line = item.line
      created ??= unixOf(line["created_at"])
      const message = isObj(line["message"]) ? line["message"] : {}
      const content = typeof message["content"] === "string" ? message["content"] : ""
      const thinking = typeof message["thinking"] === "string" ? message["thinking"] : ""
      const toolCalls = Array.isArray(message["tool_calls"]) ? message["tool_calls"] : []
      if (line["done"] !== true) {
        if (thinking !== "") yield { kind: "line", line: chunk(withRole({ reasoning: thinking }), null), final: false }
        if (toolCalls.length > 0) {
          sawTools = true
          yield { kind: "line", line: chunk(withRole({ content, tool_calls: toOpenAIToolCalls(toolCalls) }), null), final: false }
        } else if (content !== "" || thinking === "") yield { kind: "line", line: chunk(withRole({ content }), null), final: false }
        continue
      }
      if (first) yield { kind: "line", line: chunk(withRole({ content }), null), final: false }
      const reason = typeof line["done_reason"] === "string" && line["done_reason"] !== "" ? line["done_reason"] : "stop"
      yield { kind: "line", line: chunk({}, reason === "stop" && sawTools ? "tool_calls" : reason), final: true }
      if (usage)
        yield {
          kind: "line",
          line: { id, object: "chat.completion.chunk", created, model, system_fingerprint: "fp_ollama", choices: [], usage: usageOf(line) },
          final: false
        }
    }
  }
  const outcome: StreamOutcome = {
    kind: "stream",
    items: chunks(),
    stream: true,
    nonStreamCharset: false,
    merge: () => ({}),
    contentType: "text/event-stream",
    encode: sse,
    errorReply: openAIError,
    // what Ollama's converter makes of a native {"error"} line: an empty chunk, then EOF without [DONE]
    errorFrame: () =>
      sse({
        id,
        object: "chat.completion.chunk",
        created: Math.floor(Date.now() / 1000),
        model: "",
        system_fingerprint: "fp_ollama",
        choices: [{ index: 0, delta: { content: "" }, finish_reason: null }]
      }),
    trailer: DONE
  }
  return outcome
}

const completions = (ctx: RequestContext, native: Native): Outcome => {
  const decoded = decodeRequest(ctx.body, SCHEMA_COMPLETION, "EOF")
  if (!decoded.ok) return openAIError(400, decoded.message)
  const req = decoded.value
  const prompt = field(req, "prompt")
  if (prompt !== undefined && prompt !== null && typeof prompt !== "string") return openAIError(400, "invalid type for 'prompt' field: " + goTypeOf(prompt))
  const options = samplingOptions(req, true)
  const stop = field(req, "stop")
  if (typeof stop === "string") options["stop"] = [stop]
  else if (Array.isArray(stop)) {
    const badStop = stop.find((s) => typeof s !== "string")
    if (badStop !== undefined) return openAIError(400, `invalid type for 'stop' field: ${goTypeOf(badStop)}`)
    options["stop"] = stop
  }
  const model = str(req, "model")
  const stream = field(req, "stream") === true
  const nativeReq: Obj = { model, prompt: typeof prompt === "string" ? prompt : "", stream, options }
  const suffix = str(req, "suffix")
  if (suffix !== "") nativeReq["suffix"] = suffix
  const id = `cmpl-${Math.floor(Math.random() * 999)}`
  const items = native.generation("generate", nativeReq, ctx.signal, ctx.startNs)

  if (!stream)
    return {
      kind: "stream",
      items,
      stream: false,
      nonStreamCharset: false,
      errorReply: openAIError,
      merge: (lines) => {
        const final = lines[lines.length - 1]
        const text = lines.map((l) => (typeof l["response"] === "string" ? l["response"] : "")).join("")
        const reason = typeof final?.["done_reason"] === "string" && final["done_reason"] !== "" ? final["done_reason"] : null
        return {
          id,
          object: "text_completion",
          created: unixOf(final?.["created_at"]),
          model,
          system_fingerprint: "fp_ollama",
          choices: [{ text, index: 0, finish_reason: reason }],
          usage: usageOf(final)
        }
      }
    }

  const usage = includeUsage(req)
  async function* frames(): AsyncGenerator<Item> {
    for await (const item of items) {
      if (item.kind !== "line") {
        yield item
        return
      }
      const line = item.line
      const done = line["done"] === true
      const reason = done ? (typeof line["done_reason"] === "string" && line["done_reason"] !== "" ? line["done_reason"] : "stop") : null
      const frame: Obj = {
        id,
        object: "text_completion",
        created: Math.floor(Date.now() / 1000),
        choices: [{ text: typeof line["response"] === "string" ? line["response"] : "", index: 0, finish_reason: reason }],
        model,
        system_fingerprint: "fp_ollama"
      }
      if (usage) frame["usage"] = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }
      yield { kind: "line", line: frame, final: done }
      if (done && usage)
        yield {
          kind: "line",
          line: { id, object: "text_completion", created: Math.floor(Date.now() / 1000), choices: [], model, system_fingerprint: "fp_ollama", usage: usageOf(line) },
          final: false
        }
    }
  }
  return {
    kind: "stream",
    items: frames(),
    stream: true,
    nonStreamCharset: false,
    merge: () => ({}),
    contentType: "text/event-stream",
    encode: sse,
    errorReply: openAIError,
    errorFrame: () =>
      sse({ id, object: "text_completion", created: Math.floor(Date.now() / 1000), choices: [{ text: "", index: 0, finish_reason: null }], model: "", system_fingerprint: "fp_ollama" }),
    trailer: DONE
  }
}

const embeddings = async (ctx: RequestContext, native: Native): Promise<Outcome> => {
  const decoded = decodeRequest(ctx.body, SCHEMA_EMBED, "EOF")
  if (!decoded.ok) return openAIError(400, decoded.message)
  const req = decoded.value
  const input = field(req, "input")
  let texts: string[]
  if (typeof input === "string") texts = [input]
  else if (Array.isArray(input) && input.length > 0) {
    if (input.some((v) => typeof v !== "string")) return openAIError(400, "invalid input type")
    texts = input as string[]
  } else if (input === undefined || input === null || Array.isArray(input)) return openAIError(400, "invalid input")
  else return openAIError(400, "invalid input type")
  const format = str(req, "encoding_format")
  if (format !== "" && format !== "float" && format !== "base64")
    return openAIError(400, `Invalid value for 'encoding_format' = ${format}. Supported values: ['float', 'base64'].`)
  const model = str(req, "model")
  const nativeReq: Obj = { model, input: texts }
  const dims = int(req, "dimensions")
  if (dims > 0) nativeReq["dimensions"] = dims
  const result = await native.embed(nativeReq, ctx.signal, ctx.startNs)
  if (result.kind === "error") return openAIError(result.status, result.message)
  if (result.kind !== "json" || result.body === null) return openAIError(500, "unexpected response")
  const vectors = Array.isArray(result.body["embeddings"]) ? (result.body["embeddings"] as number[][]) : []
  const tokens = typeof result.body["prompt_eval_count"] === "number" ? result.body["prompt_eval_count"] : 0
  return ok({
    object: "list",
    data: vectors.map((v, index) => ({
      object: "embedding",
      embedding: format === "base64" ? toBase64(v) : v.map(float32),
      index
    })),
    model,
    usage: { prompt_tokens: tokens, total_tokens: tokens }
  })
}

const toBase64 = (v: ReadonlyArray<number>): string => {
  const buf = Buffer.alloc(v.length * 4)
  v.forEach((x, k) => buf.writeFloatLE(x, k * 4))
  return buf.toString("base64")
}

export const handleOpenAI = async (route: Route, param: string, ctx: RequestContext, native: Native): Promise<Outcome> => {
  switch (route) {
    case "/v1/chat/completions":
      return chatCompletions(ctx, native)
    case "/v1/completions":
      return completions(ctx, native)
    case "/v1/embeddings":
      return embeddings(ctx, native)
    case "/v1/models": {
      const models = native.models()
      return ok({
        object: "list",
        data:
          models.length === 0
            ? null
            : models.map((m) => ({ id: m.display, object: "model", created: Number(m.modifiedNs / 1_000_000_000n), owned_by: m.namespace }))
      })
    }
    case "/v1/models/:model": {
      const shown = native.show(param)
      if (shown.kind === "error") return openAIError(shown.status, shown.message)
      const m = native.find(param)
      if (m === undefined) return openAIError(404, `model '${param}' not found`)
      return ok({ id: param, object: "model", created: Number(m.modifiedNs / 1_000_000_000n), owned_by: m.namespace })
    }
    default:
      return { kind: "raw", status: 404, contentType: "text/plain", body: "404 page not found" }
  }
}
