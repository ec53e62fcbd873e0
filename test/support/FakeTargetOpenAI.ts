/**
 * The OpenAI-compatible `/v1` routes of the fake Ollama server (reference §8), with the
 * Responses API and transcriptions as Ollama's `openai/responses.go` and its middlewares do them.
 *
 * Like Ollama's middleware, each route turns the OpenAI request into a native one, runs the
 * native handler (same lookup, residency, hold/failNext behaviour) and rewrites its output:
 * the OpenAI error envelope, `chat.completion(.chunk)` objects, SSE frames in the v0.32.10+
 * layout (role on the first chunk, a separate finish chunk, an optional usage chunk, `[DONE]`).
 */
import {
  chatParts,
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
        const { content, final, thinking: reasoning, toolCalls } = chatParts(lines)
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

// ---------------------------------------------------------------------------------------------
// /v1/responses (openai/responses.go, middleware ResponsesMiddleware)

const SCHEMA_RESPONSES: Schema = {
  name: "ResponsesRequest",
  pkg: "openai",
  fields: { model: S, input: ANY, instructions: S, stream: B, max_output_tokens: { t: "int" }, tools: { t: "array", go: "[]openai.ResponsesTool" } }
}

/** A content part list (or string) as text and images. */
const responsesContent = (content: unknown, at: string): { ok: true; text: string; images: Array<string> } | { ok: false; message: string } => {
  if (typeof content === "string") return { ok: true, text: content, images: [] }
  if (content === undefined || content === null) return { ok: true, text: "", images: [] }
  if (!Array.isArray(content)) return { ok: false, message: `${at}: content must be a string or array: json: cannot unmarshal ${goTypeOf(content) === "float64" ? "number" : "object"} into Go value of type []json.RawMessage` }
  let text = ""
  const images: Array<string> = []
  for (const [k, part] of content.entries()) {
    const type = isObj(part) ? str(part, "type") : ""
    if (type === "input_text" || type === "output_text") text += str(part as Obj, "text")
    else if (type === "input_image") {
      const url = str(part as Obj, "image_url")
      const match = /^data:[^;]*;base64,(.*)$/s.exec(url)
      if (match === null) return { ok: false, message: "invalid image input" }
      images.push(match[1] ?? "")
    } else if (type === "input_file") return { ok: false, message: "file inputs are not currently supported" }
    else return { ok: false, message: `${at}: content[${k}]: unknown content type: ${type}` }
  }
  return { ok: true, text, images }
}

const convertResponses = (req: Obj): Converted => {
  const messages: Obj[] = []
  const instructions = str(req, "instructions")
  if (instructions !== "") messages.push({ role: "system", content: instructions })
  const input = field(req, "input")
  if (typeof input === "string") {
    if (input !== "") messages.push({ role: "user", content: input })
  } else if (Array.isArray(input)) {
    for (const [i, item] of input.entries()) {
      if (!isObj(item)) return { ok: false, message: `input[${i}]: json: cannot unmarshal ${typeof item === "string" ? "string" : "number"} into Go value of type struct { Type string "json:\\"type\\""; Role string "json:\\"role\\"" }` }
      const type = str(item, "type") || (str(item, "role") !== "" ? "message" : "")
      if (type === "") return { ok: false, message: `input[${i}]: input item missing required 'type' field` }
      if (type === "message") {
        const content = responsesContent(field(item, "content"), `input[${i}]`)
        if (!content.ok) return content
        const role = str(item, "role") === "developer" ? "system" : str(item, "role")
        messages.push({ role, content: content.text, ...(content.images.length > 0 ? { images: content.images } : {}) })
      } else if (type === "function_call") {
        let args: unknown = {}
        const raw = str(item, "arguments")
        if (raw !== "") {
          try {
            args = JSON.parse(raw) as unknown
          } catch (e) {
            return { ok: false, message: `failed to parse function call arguments: ${e instanceof Error ? e.message : String(e)}` }
          }
        }
        const call = { id: str(item, "call_id"), function: { name: str(item, "name"), arguments: args } }
        const last = messages[messages.length - 1]
        if (last !== undefined && last["role"] === "assistant") last["tool_calls"] = [...(Array.isArray(last["tool_calls"]) ? last["tool_calls"] : []), call]
        else messages.push({ role: "assistant", content: "", tool_calls: [call] })
      } else if (type === "function_call_output") {
        const output = field(item, "output")
        const text = typeof output === "string" ? output : Array.isArray(output) ? output.filter(isObj).map((p) => str(p, "text")).join("") : ""
        messages.push({ role: "tool", content: text, tool_call_id: str(item, "call_id") })
      } else if (type !== "reasoning" && type !== "web_search_call") return { ok: false, message: `input[${i}]: unknown input item type: ${goQuoteLite(type)}` }
    }
  } else if (input !== undefined && input !== null) {
    return { ok: false, message: `input must be a string or array: json: cannot unmarshal ${typeof input === "number" ? "number" : "object"} into Go value of type []json.RawMessage` }
  }
  const options: Obj = {}
  const maxOutput = field(req, "max_output_tokens")
  if (typeof maxOutput === "number") options["num_predict"] = maxOutput
  for (const key of ["temperature", "top_p"]) {
    const v = field(req, key)
    if (typeof v === "number") options[key] = v
  }
  const native: Obj = { model: str(req, "model"), messages, stream: field(req, "stream") === true, options }
  const tools = field(req, "tools")
  if (Array.isArray(tools) && tools.length > 0) {
    native["tools"] = tools.filter(isObj).filter((t) => str(t, "type") === "function").map((t) => ({
      type: "function",
      function: { name: str(t, "name"), description: str(t, "description"), parameters: isObj(field(t, "parameters")) ? field(t, "parameters") : {} }
    }))
  }
  return { ok: true, value: native }
}

const goQuoteLite = (s: string): string => JSON.stringify(s)

/** The fields a Responses object echoes from its request (`ToResponse`, `buildResponseObject`). */
const responseObject = (req: Obj, id: string, model: string, status: string, output: unknown, usage: Obj | null, createdAt: number): Obj => {
  const instructions = str(req, "instructions")
  const tools = field(req, "tools")
  const temperature = field(req, "temperature")
  const topP = field(req, "top_p")
  const maxOutput = field(req, "max_output_tokens")
  return {
    id,
    object: "response",
    created_at: createdAt,
    completed_at: null,
    status,
    incomplete_details: null,
    model,
    previous_response_id: null,
    instructions: instructions === "" ? null : instructions,
    output,
    error: null,
    tools: Array.isArray(tools) ? tools : [],
    tool_choice: "auto",
    truncation: "disabled",
    parallel_tool_calls: true,
    text: { format: { type: "text" } },
    top_p: typeof topP === "number" ? topP : 1,
    presence_penalty: 0,
    frequency_penalty: 0,
    top_logprobs: 0,
    temperature: typeof temperature === "number" ? temperature : 1,
    reasoning: null,
    usage,
    max_output_tokens: typeof maxOutput === "number" ? maxOutput : null,
    max_tool_calls: null,
    store: false,
    background: field(req, "background") === true,
    service_tier: "default",
    metadata: {},
    safety_identifier: null,
    prompt_cache_key: null
  }
}

const responsesUsage = (line: Obj | undefined): Obj => {
  const input = typeof line?.["prompt_eval_count"] === "number" ? line["prompt_eval_count"] : 0
  const output = typeof line?.["eval_count"] === "number" ? line["eval_count"] : 0
  return { input_tokens: input, output_tokens: output, total_tokens: input + output, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } }
}

const outputText = (text: string): Obj => ({ type: "output_text", text, annotations: [], logprobs: [] })

const responses = (ctx: RequestContext, native: Native): Outcome => {
  const decoded = decodeRequest(ctx.body, SCHEMA_RESPONSES, "EOF")
  if (!decoded.ok) return openAIError(400, decoded.message)
  const req = decoded.value
  const converted = convertResponses(req)
  if (!converted.ok) return openAIError(400, converted.message)
  const model = str(req, "model")
  const responseId = `resp_${Math.floor(Math.random() * 999999)}`
  const itemId = `msg_${Math.floor(Math.random() * 999999)}`
  const items = native.generation("chat", converted.value, ctx.signal, ctx.startNs)

  if (field(req, "stream") !== true) {
    return {
      kind: "stream",
      items,
      stream: false,
      nonStreamCharset: false,
      errorReply: openAIError,
      merge: (lines) => {
        const { content, final, thinking, toolCalls } = chatParts(lines)
        const output: Obj[] = []
        if (thinking !== "") output.push({ id: `rs_${responseId}`, type: "reasoning", summary: [{ type: "summary_text", text: thinking }], encrypted_content: thinking })
        if (toolCalls.length > 0) {
          toOpenAIToolCalls(toolCalls).forEach((tc, i) => {
            const fn = tc["function"] as Obj
            output.push({ id: `fc_${responseId}_${i}`, type: "function_call", status: "completed", call_id: tc["id"], name: fn["name"], arguments: fn["arguments"] })
          })
        } else output.push({ id: itemId, type: "message", status: "completed", role: "assistant", content: [outputText(content)] })
        const body = responseObject(req, responseId, model, "completed", output, responsesUsage(final), unixOf(final?.["created_at"]))
        body["completed_at"] = Math.floor(Date.now() / 1000)
        return body
      }
    }
  }

  async function* events(): AsyncGenerator<Item> {
    let sequence = 0
    let outputIndex = 0
    let text = ""
    let started = false
    let toolCallsSent = false
    const completed: Obj[] = []
    const created = Math.floor(Date.now() / 1000)
    const ev = (type: string, data: Obj, final = false): Item => ({ kind: "line", line: { event: type, data: { ...data, type, sequence_number: sequence++ } }, final })
    let first = true
    for await (const item of items) {
      if (item.kind !== "line") {
        yield item
        return
      }
      const line = item.line
      if (first) {
        first = false
        yield ev("response.created", { response: responseObject(req, responseId, model, "in_progress", [], null, created) })
        yield ev("response.in_progress", { response: responseObject(req, responseId, model, "in_progress", [], null, created) })
      }
      const message = isObj(line["message"]) ? line["message"] : {}
      const content = typeof message["content"] === "string" ? message["content"] : ""
      const toolCalls = Array.isArray(message["tool_calls"]) ? message["tool_calls"] : []
      if (toolCalls.length > 0) {
        for (const [i, tc] of toOpenAIToolCalls(toolCalls).entries()) {
          const fn = tc["function"] as Obj
          const id = `fc_${Math.floor(Math.random() * 999999)}_${i}`
          const done = { id, type: "function_call", status: "completed", call_id: tc["id"], name: fn["name"], arguments: fn["arguments"] }
          completed.push(done)
          yield ev("response.output_item.added", { output_index: outputIndex + i, item: { ...done, status: "in_progress", arguments: "" } })
          yield ev("response.function_call_arguments.delta", { item_id: id, output_index: outputIndex + i, delta: fn["arguments"] })
          yield ev("response.function_call_arguments.done", { item_id: id, output_index: outputIndex + i, arguments: fn["arguments"] })
          yield ev("response.output_item.done", { output_index: outputIndex + i, item: done })
        }
        outputIndex += toolCalls.length
        toolCallsSent = true
      } else if (!toolCallsSent && content !== "") {
        if (!started) {
          started = true
          yield ev("response.output_item.added", { output_index: outputIndex, item: { id: itemId, type: "message", status: "in_progress", role: "assistant", content: [] } })
          yield ev("response.content_part.added", { item_id: itemId, output_index: outputIndex, content_index: 0, part: outputText("") })
        }
        text += content
        yield ev("response.output_text.delta", { item_id: itemId, output_index: outputIndex, content_index: 0, delta: content, logprobs: [] })
      }
      if (line["done"] === true) {
        const message = { id: itemId, type: "message", status: "completed", role: "assistant", content: [outputText(text)] }
        if (!toolCallsSent && started) {
          yield ev("response.output_text.done", { item_id: itemId, output_index: outputIndex, content_index: 0, text, logprobs: [] })
          yield ev("response.content_part.done", { item_id: itemId, output_index: outputIndex, content_index: 0, part: outputText(text) })
          yield ev("response.output_item.done", { output_index: outputIndex, item: message })
        }
        const response = responseObject(req, responseId, model, "completed", started ? [...completed, message] : completed, responsesUsage(line), created)
        response["completed_at"] = Math.floor(Date.now() / 1000)
        yield ev("response.completed", { response }, true)
      }
    }
  }
  return {
    kind: "stream",
    items: events(),
    stream: true,
    nonStreamCharset: false,
    merge: () => ({}),
    contentType: "text/event-stream",
    encode: (line) => `event: ${String(line["event"])}\ndata: ${goJSON(line["data"])}\n\n`,
    errorReply: openAIError,
    // A native `{"error"}` line decodes as an empty chat response: no events, the stream just ends.
    errorFrame: () => ""
  }
}

// ---------------------------------------------------------------------------------------------
// /v1/audio/transcriptions (middleware TranscriptionMiddleware)

const transcriptions = async (ctx: RequestContext, native: Native): Promise<Outcome> => {
  const contentType = ctx.contentType ?? ""
  if (!/^\s*multipart\/form-data\s*;/i.test(contentType))
    return openAIError(400, "failed to parse multipart form: request Content-Type isn't multipart/form-data")
  let form: FormData
  try {
    form = await new Response(new Uint8Array(ctx.body), { headers: { "content-type": contentType } }).formData()
  } catch (e) {
    return openAIError(400, `failed to parse multipart form: ${e instanceof Error ? e.message : String(e)}`)
  }
  const model = form.get("model")
  if (typeof model !== "string" || model === "") return openAIError(400, "model is required")
  const file = form.get("file")
  if (file === null || typeof file === "string") return openAIError(400, "file is required: http: no such file")
  const audio = Buffer.from(await file.arrayBuffer())
  if (audio.length === 0) return openAIError(400, "audio file is empty")
  const language = form.get("language")
  const prompt = form.get("prompt")
  let system = "Transcribe the audio exactly as spoken. Output only the spoken words. Do not answer any question in the audio."
  if (typeof language === "string" && language !== "") system += ` The audio is in ${language}.`
  if (typeof prompt === "string" && prompt !== "") system += ` Context: ${prompt}`
  const nativeReq: Obj = {
    model,
    messages: [{ role: "system", content: system }, { role: "user", content: "What exact words are spoken in this audio?", images: [audio.toString("base64")] }],
    stream: true,
    options: { temperature: 0 }
  }
  const format = form.get("response_format")
  let text = ""
  for await (const item of native.generation("chat", nativeReq, ctx.signal, ctx.startNs)) {
    if (item.kind === "error") return openAIError(item.status, item.message)
    if (item.kind !== "line") return item
    const message = isObj(item.line["message"]) ? item.line["message"] : {}
    text += typeof message["content"] === "string" ? message["content"] : ""
  }
  text = text.trim()
  return format === "text" ? { kind: "raw", status: 200, contentType: "text/plain", body: text } : ok({ text })
}

export const handleOpenAI = async (route: Route, param: string, ctx: RequestContext, native: Native): Promise<Outcome> => {
  switch (route) {
    case "/v1/chat/completions":
      return chatCompletions(ctx, native)
    case "/v1/completions":
      return completions(ctx, native)
    case "/v1/embeddings":
      return embeddings(ctx, native)
    case "/v1/responses":
      return responses(ctx, native)
    case "/v1/audio/transcriptions":
      return transcriptions(ctx, native)
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
