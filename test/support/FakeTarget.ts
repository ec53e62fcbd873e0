/**
 * A faithful fake Ollama server for tests and benchmarks.
 *
 * Plain `node:http`, no dependencies, listening on 127.0.0.1. It follows
 * `/work/shared/reference/ollama-api.md` (the wire facts of Ollama v0.33): paths, field order,
 * NDJSON streaming with headers held back until the first line, Go-decoder error texts,
 * model-name normalisation, residency (loads, eviction, keep-alive) and the OpenAI-compatible
 * `/v1` routes (see `FakeTargetOpenAI.ts`).
 *
 * Replies are deterministic from the request: generate answers `"echo: " + prompt`, chat answers
 * `"echo: " + <last user message>`, split into `chunks` pieces; embeddings are derived from a
 * SHA-256 of the text. So a direct call and a proxied call can be compared field by field
 * (everything except `created_at` and the measured durations).
 */
import { createHash } from "node:crypto"
import * as http from "node:http"
import { isIP, type Socket } from "node:net"
import { hostname, networkInterfaces } from "node:os"
import { handleAnthropic } from "./FakeTargetAnthropic.ts"
import { handleOpenAI } from "./FakeTargetOpenAI.ts"

// ---------------------------------------------------------------------------------------------
// Public API

export interface FakeModelSpec {
  /** e.g. "llama3.2", "llama3.2:latest", "hf.co/org/repo:Q4_K_M"; listed in display form. */
  readonly name: string
  /** Default `["completion"]`; embedding models: `["embedding"]`. */
  readonly capabilities?: ReadonlyArray<string>
  readonly family?: string
  /** Size on disk in bytes. */
  readonly size?: number
}

export interface FakeTargetOptions {
  /** Default: `["llama3.2", {name:"all-minilm", capabilities:["embedding"]}]`. */
  readonly models?: ReadonlyArray<string | FakeModelSpec>
  /** Default 0 (ephemeral). */
  readonly port?: number
  /** Time to load a model that is not resident (headers are held back until then). Default 0. */
  readonly loadDelayMs?: number
  /** Delay between streamed NDJSON lines. Default 0. */
  readonly tokenDelayMs?: number
  /** Number of content chunks a generate/chat stream produces. Default 4. */
  readonly chunks?: number
  /** How many models stay resident at once; loading another evicts the least recently used. Default 1. */
  readonly maxLoaded?: number
  /** How long a model stays resident after use (`expires_at` in /api/ps). Default 5 minutes. */
  readonly keepAliveMs?: number
  /** `/api/version`. Default "0.33.0". */
  readonly version?: string
  /**
   * Ollama's Host-header guard: a loopback-bound Ollama answers 403 with an empty body when the
   * `Host` header is not local. Default true (like the real server).
   */
  readonly checkHost?: boolean
}

export interface FakeCall {
  readonly method: string
  readonly path: string
  /** The parsed JSON body; the raw text when it is not JSON; undefined when empty. */
  readonly body: unknown
  readonly at: number
}

export type FakeFailure =
  | { readonly mode: "status"; readonly status: number; readonly message: string }
  | { readonly mode: "midstream"; readonly afterLines: number; readonly message: string }
  | { readonly mode: "reset"; readonly afterLines: number }

export interface FakeTarget {
  /** "http://127.0.0.1:PORT" (no trailing slash). */
  readonly url: string
  readonly port: number
  /** Every request received, in order. */
  readonly calls: ReadonlyArray<FakeCall>
  /** How many requests hit that path. */
  count(path: string): number
  /** Display names of the models loaded, in order (one entry per load = per swap). */
  readonly loads: ReadonlyArray<string>
  /** Display names currently resident. */
  readonly resident: ReadonlyArray<string>
  /** How many generation requests are currently held by `hold()`. */
  readonly held: number
  addModel(model: string | FakeModelSpec): void
  removeModel(name: string): void
  /** Stop accepting connections on the port (connections are refused, open sockets destroyed), like a sleeping laptop. */
  sleep(): Promise<void>
  /** Listen again on the same port. */
  wake(): Promise<void>
  /**
   * Make the next request to `path` fail: before headers with `status`+`{"error":message}` (mode
   * "status"), or after `afterLines` NDJSON lines with an `{"error":message}` line (mode
   * "midstream"), or by destroying the socket after `afterLines` lines (mode "reset").
   * Several calls queue up, one failure per request.
   */
  failNext(path: string, failure: FakeFailure): void
  /** Hold every generation request before its first byte until release() is called. */
  hold(): void
  /**
   * Pace generation streams: from now on each line after a stream's first waits (after
   * `tokenDelayMs`) for a `step()`, so a test knows what the target has sent when.
   */
  pace(): void
  /** Lets one paced line through: the one waiting, or else the next to come. */
  step(): void
  /** Lets held requests go and ends pacing. */
  release(): void
  close(): Promise<void>
}

// ---------------------------------------------------------------------------------------------
// Internal types shared with FakeTargetOpenAI.ts

export type Obj = Record<string, unknown>

/** What a handler produces; the writer turns it into bytes (and applies `failNext`). */
export type Item =
  /** One NDJSON line; `final` marks the `done:true` / `success` line. */
  | { readonly kind: "line"; readonly line: Obj; readonly final: boolean }
  /** An error: before the first line a status + `{"error"}`, after it an `{"error"}` line. */
  | { readonly kind: "error"; readonly status: number; readonly message: string; readonly charset: boolean }
  /** A single JSON reply (`null` body = empty body). */
  | { readonly kind: "json"; readonly status: number; readonly body: Obj | null; readonly charset: boolean }
  /** A plain reply with a given content type. */
  | { readonly kind: "raw"; readonly status: number; readonly contentType: string | undefined; readonly body: string }

export interface StreamOutcome {
  readonly kind: "stream"
  readonly items: AsyncGenerator<Item>
  /** false: collect the lines and answer with `merge(lines)` as one JSON object. */
  readonly stream: boolean
  readonly merge: (lines: ReadonlyArray<Obj>) => Obj
  /** Content type of the non-streamed reply and its errors: with `; charset=utf-8` or not. */
  readonly nonStreamCharset: boolean
  /** Streamed content type; default `application/x-ndjson`. */
  readonly contentType?: string
  /** How a line is framed; default `JSON + "\n"`. */
  readonly encode?: (line: Obj) => string
  /** The frame written for an error after the stream started; default `{"error":...}` line. */
  readonly errorFrame?: (message: string) => string
  /** The reply for an error before anything was written; default status + `{"error":...}`. */
  readonly errorReply?: (status: number, message: string) => Item
  /** Written after the last line of a complete stream (e.g. `data: [DONE]`). */
  readonly trailer?: string
}

export type Outcome = Item | StreamOutcome

export interface ModelInfo {
  readonly display: string
  readonly namespace: string
  readonly modifiedNs: bigint
}

/** What the /v1 layer needs from the native server. */
export interface Native {
  generation(kind: "generate" | "chat", req: Obj, signal: AbortSignal, startNs: bigint): AsyncGenerator<Item>
  embed(req: Obj, signal: AbortSignal, startNs: bigint): Promise<Item>
  models(): ReadonlyArray<ModelInfo>
  find(name: string): ModelInfo | undefined
  show(name: string): Item
}

export interface RequestContext {
  readonly method: string
  readonly path: string
  readonly body: Buffer
  readonly signal: AbortSignal
  readonly startNs: bigint
  /** The request's `Content-Type` (a multipart form needs its boundary). */
  readonly contentType?: string | undefined
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** A streamed chat's lines as Ollama merges them: the last line, and every line's text, thinking and tool calls. */
export const chatParts = (lines: ReadonlyArray<Obj>) => {
  const msgs = lines.map((l) => (isObj(l["message"]) ? l["message"] : {}))
  return {
    final: lines[lines.length - 1] ?? {},
    content: msgs.map((m) => (typeof m["content"] === "string" ? m["content"] : "")).join(""),
    thinking: msgs.map((m) => (typeof m["thinking"] === "string" ? m["thinking"] : "")).join(""),
    toolCalls: msgs.flatMap((m) => (Array.isArray(m["tool_calls"]) ? m["tool_calls"] : [])) as Array<unknown>
  }
}

const originNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint()
/** Wall-clock time in nanoseconds (with sub-millisecond digits). */
export const nowNs = (): bigint => originNs + process.hrtime.bigint()

const pad = (n: number, width = 2): string => String(n).padStart(width, "0")

/** RFC 3339 with nanoseconds, trailing zeros dropped, like Go's `time.RFC3339Nano`. */
export const rfc3339 = (ns: bigint, local: boolean): string => {
  const ms = Number(ns / 1_000_000n)
  const fracNs = Number(ns % 1_000_000_000n)
  const d = new Date(ms)
  const [y, mo, da, h, mi, s, off] = local
    ? [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), -d.getTimezoneOffset()]
    : [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), 0]
  const frac = fracNs === 0 ? "" : "." + String(fracNs).padStart(9, "0").replace(/0+$/, "")
  const abs = Math.abs(off)
  const zone = off === 0 ? "Z" : `${off > 0 ? "+" : "-"}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  return `${pad(y, 4)}-${pad(mo)}-${pad(da)}T${pad(h)}:${pad(mi)}:${pad(s)}${frac}${zone}`
}

export const createdAt = (): string => rfc3339(nowNs(), false)

/** `json.Marshal`: like JSON.stringify, but `<`, `>`, `&`, U+2028 and U+2029 are escaped as Go does. */
export const goJSON = (value: unknown): string =>
  JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => "\\u" + (c.codePointAt(0) ?? 0).toString(16).padStart(4, "0"))

const sha256Hex = (text: string | Uint8Array): string => createHash("sha256").update(text).digest("hex")

const isPrintRune = (cp: number): boolean => {
  if (cp >= 0x20 && cp < 0x7f) return true
  if (cp < 0xa1 || cp === 0xad) return false
  return /[\p{L}\p{M}\p{N}\p{P}\p{S}]/u.test(String.fromCodePoint(cp))
}

const escapeRune = (cp: number, quote: number): string => {
  if (cp === 0x5c) return "\\\\"
  if (cp === quote) return "\\" + String.fromCharCode(quote)
  switch (cp) {
    case 0x07:
      return "\\a"
    case 0x08:
      return "\\b"
    case 0x0c:
      return "\\f"
    case 0x0a:
      return "\\n"
    case 0x0d:
      return "\\r"
    case 0x09:
      return "\\t"
    case 0x0b:
      return "\\v"
  }
  if (cp < 0x20 || cp === 0x7f) return "\\x" + cp.toString(16).padStart(2, "0")
  if (isPrintRune(cp)) return String.fromCodePoint(cp)
  return cp < 0x10000 ? "\\u" + cp.toString(16).padStart(4, "0") : "\\U" + cp.toString(16).padStart(8, "0")
}

/** Go's `%q` / `strconv.Quote`. */
export const goQuote = (s: string): string => {
  let out = '"'
  for (const ch of s) out += escapeRune(ch.codePointAt(0) ?? 0, 0x22)
  return out + '"'
}

/** Go encoding/json's `quoteChar` for a byte in a syntax error. */
const quoteChar = (c: number): string => {
  if (c === 0x27) return "'\\''"
  if (c === 0x22) return "'\"'"
  return "'" + escapeRune(c, 0x22) + "'"
}

/** Wait at least `ms` (timers may fire a little early; re-arm until the time really passed), or until aborted. */
const sleepMs = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve()
    const until = process.hrtime.bigint() + BigInt(Math.ceil(ms * 1e6))
    let timer = setTimeout(tick, ms)
    function tick(): void {
      const left = Number(until - process.hrtime.bigint()) / 1e6
      if (left > 0) timer = setTimeout(tick, Math.ceil(left))
      else done()
    }
    function done(): void {
      clearTimeout(timer)
      signal?.removeEventListener("abort", done)
      resolve()
    }
    signal?.addEventListener("abort", done, { once: true })
  })

export const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v)

/** Go's case-insensitive field matching: the last key that folds to `name` wins. */
export const field = (obj: Obj, name: string): unknown => {
  let found: unknown = undefined
  for (const key of Object.keys(obj)) if (key.toLowerCase() === name) found = obj[key]
  return found
}
export const str = (obj: Obj, name: string): string => {
  const v = field(obj, name)
  return typeof v === "string" ? v : ""
}
export const bool = (obj: Obj, name: string): boolean | undefined => {
  const v = field(obj, name)
  return typeof v === "boolean" ? v : undefined
}
export const int = (obj: Obj, name: string): number => {
  const v = field(obj, name)
  return typeof v === "number" ? Math.trunc(v) : 0
}

/** ~4 bytes per token, at least 1. */
const tokenCount = (text: string): number => Math.max(1, Math.ceil(Buffer.byteLength(text) / 4))

/** Shortest decimal that round-trips through float32 (how Go prints a float32). */
export const float32 = (x: number): number => {
  const f = Math.fround(x)
  for (let p = 1; p <= 9; p++) {
    const candidate = Number(f.toPrecision(p))
    if (Math.fround(candidate) === f) return candidate
  }
  return f
}

// ---------------------------------------------------------------------------------------------
// Go encoding/json decoding (first value only, Go's error texts)

type Decoded = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly eof: boolean; readonly message: string }

const scanFirstValue = (b: Uint8Array): { end: number } | { error: string } | "eof" => {
  const n = b.length
  let i = 0
  const isWs = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d
  const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39
  const isHex = (c: number): boolean => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
  const skip = (): void => {
    while (i < n && isWs(b[i]!)) i++
  }
  const fail = (message: string): never => {
    throw new SyntaxError(message)
  }
  const bad = (c: number, where: string): never => fail(`invalid character ${quoteChar(c)} ${where}`)
  const at = (): number => (i < n ? b[i]! : fail("unexpected EOF"))

  const literal = (word: string): void => {
    i++
    for (let k = 1; k < word.length; k++) {
      const c = at()
      if (c !== word.charCodeAt(k)) bad(c, `in literal ${word} (expecting ${quoteChar(word.charCodeAt(k))})`)
      i++
    }
  }
  const string = (): void => {
    i++
    for (;;) {
      const c = at()
      if (c === 0x22) {
        i++
        return
      }
      if (c === 0x5c) {
        i++
        const e = at()
        if (e === 0x75) {
          i++
          for (let k = 0; k < 4; k++) {
            const h = at()
            if (!isHex(h)) bad(h, "in \\u hexadecimal character escape")
            i++
          }
        } else if ('"\\/bfnrt'.includes(String.fromCharCode(e))) i++
        else bad(e, "in string escape code")
      } else if (c < 0x20) bad(c, "in string literal")
      else i++
    }
  }
  const number = (): void => {
    if (b[i] === 0x2d) {
      i++
      const c = at()
      if (!isDigit(c)) bad(c, "in numeric literal")
    }
    if (b[i] === 0x30) i++
    else while (i < n && isDigit(b[i]!)) i++
    if (i < n && b[i] === 0x2e) {
      i++
      const c = at()
      if (!isDigit(c)) bad(c, "after decimal point in numeric literal")
      while (i < n && isDigit(b[i]!)) i++
    }
    if (i < n && (b[i] === 0x65 || b[i] === 0x45)) {
      i++
      let c = at()
      if (c === 0x2b || c === 0x2d) {
        i++
        c = at()
      }
      if (!isDigit(c)) bad(c, "in exponent of numeric literal")
      while (i < n && isDigit(b[i]!)) i++
    }
  }
  const value = (): void => {
    const c = at()
    if (c === 0x7b) {
      i++
      skip()
      if (at() === 0x7d) {
        i++
        return
      }
      for (;;) {
        const k = at()
        if (k !== 0x22) bad(k, "looking for beginning of object key string")
        string()
        skip()
        const colon = at()
        if (colon !== 0x3a) bad(colon, "after object key")
        i++
        skip()
        value()
        skip()
        const sep = at()
        if (sep === 0x2c) {
          i++
          skip()
          continue
        }
        if (sep === 0x7d) {
          i++
          return
        }
        bad(sep, "after object key:value pair")
      }
    }
    if (c === 0x5b) {
      i++
      skip()
      if (at() === 0x5d) {
        i++
        return
      }
      for (;;) {
        value()
        skip()
        const sep = at()
        if (sep === 0x2c) {
          i++
          skip()
          continue
        }
        if (sep === 0x5d) {
          i++
          return
        }
        bad(sep, "after array element")
      }
    }
    if (c === 0x22) return string()
    if (c === 0x2d || isDigit(c)) return number()
    if (c === 0x74) return literal("true")
    if (c === 0x66) return literal("false")
    if (c === 0x6e) return literal("null")
    bad(c, "looking for beginning of value")
  }

  skip()
  if (i >= n) return "eof"
  try {
    value()
    return { end: i }
  } catch (e) {
    if (e instanceof SyntaxError) return { error: e.message }
    throw e
  }
}

/** Decode like `json.NewDecoder(body).Decode(&v)`: only the first value, Go's messages. */
export const goDecode = (body: Uint8Array): Decoded => {
  const scanned = scanFirstValue(body)
  if (scanned === "eof") return { ok: false, eof: true, message: "EOF" }
  if ("error" in scanned) return { ok: false, eof: false, message: scanned.error }
  const text = Buffer.from(body.buffer, body.byteOffset, scanned.end).toString("utf8")
  return { ok: true, value: JSON.parse(text) as unknown }
}

const jsonKind = (v: unknown): string =>
  v === null ? "null" : Array.isArray(v) ? "array" : typeof v === "boolean" ? "bool" : typeof v === "number" ? "number" : typeof v === "string" ? "string" : "object"

export type FieldType =
  | { readonly t: "string" | "bool" | "any" }
  | { readonly t: "int"; readonly go?: string }
  | { readonly t: "array"; readonly go: string; readonly items?: FieldType; readonly struct?: Schema }
  | { readonly t: "map"; readonly go: string }
  | { readonly t: "custom"; readonly check: (v: unknown) => string | undefined }

export interface Schema {
  readonly name: string
  /** Go package of the struct, for top-level errors; default "api". */
  readonly pkg?: string
  readonly fields: Readonly<Record<string, FieldType>>
}

const S: FieldType = { t: "string" }
const B: FieldType = { t: "bool" }
const I: FieldType = { t: "int" }
const ANY: FieldType = { t: "any" }
const MAP: FieldType = { t: "map", go: "map[string]interface {}" }

/** Go's `time.ParseDuration`; returns nanoseconds or an error text. */
export const parseGoDuration = (orig: string): number | { error: string } => {
  let s = orig
  let neg = false
  if (s.startsWith("-") || s.startsWith("+")) {
    neg = s[0] === "-"
    s = s.slice(1)
  }
  if (s === "0") return 0
  const invalid = { error: `time: invalid duration ${goQuote(orig)}` }
  if (s === "") return invalid
  const units: Record<string, number> = { ns: 1, us: 1e3, "\u00b5s": 1e3, "\u03bcs": 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 }
  let total = 0
  while (s !== "") {
    const m = /^(\d*)(?:\.(\d*))?/.exec(s)
    const whole = m?.[1] ?? ""
    const frac = m?.[2]
    if (whole === "" && (frac === undefined || frac === "")) return invalid
    s = s.slice(m?.[0].length ?? 0)
    const u = /^[^\d.]*/.exec(s)?.[0] ?? ""
    if (u === "") return { error: `time: missing unit in duration ${goQuote(orig)}` }
    const scale = units[u]
    if (scale === undefined) return { error: `time: unknown unit ${goQuote(u)} in duration ${goQuote(orig)}` }
    s = s.slice(u.length)
    total += Number(`${whole || "0"}.${frac ?? "0"}`) * scale
  }
  return neg ? -total : total
}

const FOREVER_MS = 9_223_372_036_854

/** `keep_alive` → milliseconds (FOREVER_MS for negative), undefined when absent/null, or an error. */
export const parseKeepAlive = (v: unknown): number | undefined | { error: string } => {
  if (v === undefined || v === null) return undefined
  if (typeof v === "number") return v < 0 ? FOREVER_MS : (v * 1e9) / 1e6
  if (typeof v === "string") {
    const ns = parseGoDuration(v)
    if (typeof ns !== "number") return ns
    return ns < 0 ? FOREVER_MS : ns / 1e6
  }
  const goType = typeof v === "boolean" ? "bool" : Array.isArray(v) ? "[]interface {}" : "map[string]interface {}"
  return { error: `Unsupported type: '${goType}'` }
}

const THINK_LEVELS = ["high", "medium", "low", "max"]
const checkThink = (v: unknown): string | undefined => {
  if (v === null || typeof v === "boolean") return undefined
  if (typeof v === "string")
    return THINK_LEVELS.includes(v) ? undefined : `invalid think value: ${goQuote(v)} (must be "high", "medium", "low", "max", true, or false)`
  return `think must be a boolean or string ("high", "medium", "low", "max", true, or false)`
}
const checkKeepAlive = (v: unknown): string | undefined => {
  const r = parseKeepAlive(v)
  return typeof r === "object" ? r.error : undefined
}

const KEEP_ALIVE: FieldType = { t: "custom", check: checkKeepAlive }
const THINK: FieldType = { t: "custom", check: checkThink }

const MESSAGE: Schema = {
  name: "Message",
  fields: {
    role: S,
    content: S,
    thinking: S,
    images: { t: "array", go: "[]api.ImageData", items: { t: "string" } },
    tool_calls: { t: "array", go: "[]api.ToolCall" },
    tool_name: S,
    tool_call_id: S
  }
}

export const SCHEMAS = {
  generate: {
    name: "GenerateRequest",
    fields: {
      model: S,
      prompt: S,
      suffix: S,
      system: S,
      template: S,
      context: { t: "array", go: "[]int", items: I },
      stream: B,
      raw: B,
      format: ANY,
      keep_alive: KEEP_ALIVE,
      images: { t: "array", go: "[]api.ImageData", items: S },
      options: MAP,
      think: THINK,
      truncate: B,
      shift: B,
      logprobs: B,
      top_logprobs: I
    }
  },
  chat: {
    name: "ChatRequest",
    fields: {
      model: S,
      messages: { t: "array", go: "[]api.Message", struct: MESSAGE },
      stream: B,
      format: ANY,
      keep_alive: KEEP_ALIVE,
      tools: { t: "array", go: "api.Tools" },
      options: MAP,
      think: THINK,
      truncate: B,
      shift: B,
      logprobs: B,
      top_logprobs: I
    }
  },
  embed: {
    name: "EmbedRequest",
    fields: { model: S, input: ANY, keep_alive: KEEP_ALIVE, truncate: B, dimensions: I, options: MAP }
  },
  embeddings: { name: "EmbeddingRequest", fields: { model: S, prompt: S, keep_alive: KEEP_ALIVE, options: MAP } },
  show: { name: "ShowRequest", fields: { model: S, name: S, system: S, template: S, verbose: B, options: MAP } },
  pull: { name: "PullRequest", fields: { model: S, name: S, insecure: B, stream: B, username: S, password: S } },
  push: { name: "PushRequest", fields: { model: S, name: S, insecure: B, stream: B, username: S, password: S } },
  create: {
    name: "CreateRequest",
    fields: {
      model: S,
      name: S,
      from: S,
      files: { t: "map", go: "map[string]string" },
      adapters: { t: "map", go: "map[string]string" },
      template: S,
      license: ANY,
      system: S,
      parameters: MAP,
      messages: { t: "array", go: "[]api.Message", struct: MESSAGE },
      quantize: S,
      quantization: S,
      stream: B
    }
  },
  copy: { name: "CopyRequest", fields: { source: S, destination: S } },
  delete: { name: "DeleteRequest", fields: { model: S, name: S } }
} satisfies Record<string, Schema>

/** The first type error Go would report for `value` decoded into the struct (or undefined). */
const typeCheck = (value: Obj, schema: Schema, path: string): { message: string; custom: boolean } | undefined => {
  let first: { message: string; custom: boolean } | undefined
  const mismatch = (v: unknown, struct: string, name: string, goType: string): void => {
    if (first !== undefined) return
    const kind = goType === "int" && typeof v === "number" ? `number ${String(v)}` : jsonKind(v)
    first = { message: `json: cannot unmarshal ${kind} into Go struct field ${struct}.${name} of type ${goType}`, custom: false }
  }
  for (const key of Object.keys(value)) {
    const lower = key.toLowerCase()
    const ft = schema.fields[lower]
    const v = value[key]
    if (ft === undefined || v === null) continue
    const name = path === "" ? lower : `${path}.${lower}`
    switch (ft.t) {
      case "any":
        break
      case "string":
        if (typeof v !== "string") mismatch(v, schema.name, name, "string")
        break
      case "bool":
        if (typeof v !== "boolean") mismatch(v, schema.name, name, "bool")
        break
      case "int":
        if (typeof v !== "number" || !Number.isInteger(v)) mismatch(v, schema.name, name, ft.go ?? "int")
        break
      case "map":
        if (!isObj(v)) mismatch(v, schema.name, name, ft.go)
        break
      case "custom": {
        const err = ft.check(v)
        if (err !== undefined) return { message: err, custom: true }
        break
      }
      case "array": {
        if (!Array.isArray(v)) {
          mismatch(v, schema.name, name, ft.go)
          break
        }
        for (const item of v) {
          if (item === null) continue
          if (ft.struct !== undefined) {
            if (!isObj(item)) mismatch(item, schema.name, name, ft.go.replace(/^\[\]/, ""))
            else {
              const inner = typeCheck(item, ft.struct, name)
              if (inner?.custom) return inner
              if (inner && first === undefined) first = inner
            }
          } else if (ft.items?.t === "string" && typeof item !== "string") mismatch(item, schema.name, name, ft.go.replace(/^\[\]/, ""))
          else if (ft.items?.t === "int" && (typeof item !== "number" || !Number.isInteger(item))) mismatch(item, schema.name, name, "int")
        }
        break
      }
    }
  }
  return first
}

/** Decode a request body into a struct like gin's ShouldBindJSON, with Ollama's handling of EOF. */
export const decodeRequest = (
  body: Uint8Array,
  schema: Schema,
  eofMessage = "missing request body"
): { ok: true; value: Obj } | { ok: false; message: string } => {
  const decoded = goDecode(body)
  if (!decoded.ok) return { ok: false, message: decoded.eof ? eofMessage : decoded.message }
  const v = decoded.value
  if (v === null) return { ok: true, value: {} }
  if (!isObj(v)) return { ok: false, message: `json: cannot unmarshal ${jsonKind(v)} into Go value of type ${schema.pkg ?? "api"}.${schema.name}` }
  const err = typeCheck(v, schema, "")
  return err === undefined ? { ok: true, value: v } : { ok: false, message: err.message }
}

// ---------------------------------------------------------------------------------------------
// Model names (reference §7)

export interface ParsedName {
  readonly host: string
  readonly namespace: string
  readonly model: string
  readonly tag: string
}

const DEFAULT_HOST = "registry.ollama.ai"
const DEFAULT_NAMESPACE = "library"

const partOk = (s: string, extra: string, max: number): boolean =>
  s.length > 0 && s.length <= max && /^[A-Za-z0-9_]/.test(s) && [...s].every((ch) => /[A-Za-z0-9_]/.test(ch) || extra.includes(ch))

export const parseName = (raw: string): ParsedName | undefined => {
  let s = raw.trim()
  const scheme = s.indexOf("://")
  if (scheme >= 0) s = s.slice(scheme + 3)
  let tag = "latest"
  const slash = s.lastIndexOf("/")
  const colon = s.lastIndexOf(":")
  if (colon > slash) {
    tag = s.slice(colon + 1)
    s = s.slice(0, colon)
  }
  const parts = s.split("/")
  if (parts.length > 3) return undefined
  const model = parts[parts.length - 1] ?? ""
  const namespace = parts.length >= 2 ? (parts[parts.length - 2] ?? "") : DEFAULT_NAMESPACE
  const host = parts.length === 3 ? (parts[0] ?? "") : DEFAULT_HOST
  if (!partOk(host, "-_.:", 350) || !partOk(namespace, "-_", 80) || !partOk(model, "-_.", 80) || !partOk(tag, "-_.", 80)) return undefined
  return { host, namespace, model, tag }
}

export const fullName = (n: ParsedName): string => `${n.host}/${n.namespace}/${n.model}:${n.tag}`

export const displayName = (n: ParsedName): string => {
  if (n.host.toLowerCase() !== DEFAULT_HOST) return `${n.host}/${n.namespace}/${n.model}:${n.tag}`
  if (n.namespace.toLowerCase() !== DEFAULT_NAMESPACE) return `${n.namespace}/${n.model}:${n.tag}`
  return `${n.model}:${n.tag}`
}

const nameKey = (n: ParsedName): string => fullName(n).toLowerCase()

// ---------------------------------------------------------------------------------------------
// Inventory and residency

interface ModelEntry {
  readonly key: string
  readonly name: ParsedName
  readonly full: string
  readonly display: string
  readonly spec: FakeModelSpec
  readonly capabilities: ReadonlyArray<string>
  readonly family: string
  readonly size: number
  readonly digest: string
  readonly modifiedNs: bigint
  readonly parameterSize: string
  readonly quantization: string
  readonly contextLength: number
  readonly embeddingLength: number
}

interface Runner {
  readonly entry: ModelEntry
  readonly numCtx: number
  keepAliveMs: number
  expiresAt: number
  active: number
  /** When it was last used, as a count of uses: two uses within one millisecond stay ordered. */
  lastUsed: number
}

const DEFAULT_NUM_CTX = 4096

const makeEntry = (spec: FakeModelSpec, modifiedNs: bigint): ModelEntry => {
  const name = parseName(spec.name)
  if (name === undefined) throw new Error(`FakeTarget: invalid model name ${JSON.stringify(spec.name)}`)
  const capabilities = spec.capabilities ?? ["completion"]
  const embedding = capabilities.includes("embedding") && !capabilities.includes("completion")
  const digest = sha256Hex(nameKey(name))
  const seed = parseInt(digest.slice(0, 8), 16)
  const family = spec.family ?? (embedding ? "bert" : (/^[a-z]+/i.exec(name.model)?.[0]?.toLowerCase() ?? "llama"))
  return {
    key: nameKey(name),
    name,
    full: fullName(name),
    display: displayName(name),
    spec,
    capabilities,
    family,
    size: spec.size ?? (embedding ? 30_000_000 + (seed % 70_000_000) : 1_000_000_000 + (seed % 3_000_000_000)),
    digest,
    modifiedNs,
    parameterSize: embedding ? "23M" : "3.2B",
    quantization: embedding ? "F16" : "Q4_K_M",
    contextLength: embedding ? 512 : 131072,
    embeddingLength: embedding ? 384 : 3072
  }
}

const guessSpec = (name: string): FakeModelSpec =>
  /embed|minilm|bge|e5-/i.test(name) ? { name, capabilities: ["embedding"] } : { name }

const toSpec = (m: string | FakeModelSpec): FakeModelSpec => (typeof m === "string" ? { name: m } : m)

const baseDetails = (e: ModelEntry): Obj => ({
  parent_model: "",
  format: "gguf",
  family: e.family,
  families: [e.family],
  parameter_size: e.parameterSize,
  quantization_level: e.quantization
})

// ---------------------------------------------------------------------------------------------
// Embeddings

const rawVector = (text: string): number[] => {
  const h = createHash("sha256").update(text).digest()
  const out: number[] = []
  for (let k = 0; k < 8; k++) out.push(Math.fround(h.readInt16BE(k * 2) / 32768))
  return out
}

const normalize = (vec: ReadonlyArray<number>): number[] => {
  let sum = 0
  for (const v of vec) sum = Math.fround(sum + Math.fround(v * v))
  const norm = Math.fround(1 / Math.max(Math.sqrt(sum), 1e-12))
  return vec.map((v) => Math.fround(v * norm))
}

// ---------------------------------------------------------------------------------------------
// Host-header guard

const isPrivateOrLocalIp = (ip: string): boolean => {
  const v = isIP(ip)
  if (v === 4) {
    const [a = 0, b = 0] = ip.split(".").map(Number)
    return a === 127 || a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || ip === "0.0.0.0"
  }
  if (v === 6) {
    const lower = ip.toLowerCase()
    if (lower === "::1" || lower === "::") return true
    if (/^f[cd]/.test(lower)) return true
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower)
    return mapped?.[1] !== undefined && isPrivateOrLocalIp(mapped[1])
  }
  return false
}

const ownAddresses = (): Set<string> => {
  const out = new Set<string>()
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address.toLowerCase())
  return out
}

const machineName = hostname().toLowerCase()

const isLocalHost = (hostHeader: string | undefined): boolean => {
  let h = (hostHeader ?? "").trim().toLowerCase()
  if (h === "") return true
  if (h.startsWith("[")) h = h.slice(1, h.indexOf("]") >= 0 ? h.indexOf("]") : undefined)
  else if (h.split(":").length === 2) h = h.slice(0, h.indexOf(":"))
  if (h === "" || h === "localhost" || h === machineName) return true
  if (h.endsWith(".localhost") || h.endsWith(".local") || h.endsWith(".internal")) return true
  if (isIP(h) !== 0) return isPrivateOrLocalIp(h) || ownAddresses().has(h)
  return false
}

// ---------------------------------------------------------------------------------------------
// Routes

export type Route = "/" | "/api/version" | "/api/tags" | "/api/ps" | "/api/generate" | "/api/chat" | "/api/embed" | "/api/embeddings" | "/api/show" | "/api/pull" | "/api/push" | "/api/create" | "/api/copy" | "/api/delete" | "/api/blobs/:digest" | "/api/status" | "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings" | "/v1/models" | "/v1/models/:model" | "/v1/responses" | "/v1/audio/transcriptions" | "/v1/messages"

const ROUTES: ReadonlyArray<readonly [Route, ReadonlyArray<string>]> = [
  ["/", ["GET", "HEAD"]],
  ["/api/version", ["GET", "HEAD"]],
  ["/api/tags", ["GET", "HEAD"]],
  ["/api/ps", ["GET"]],
  ["/api/generate", ["POST"]],
  ["/api/chat", ["POST"]],
  ["/api/embed", ["POST"]],
  ["/api/embeddings", ["POST"]],
  ["/api/show", ["POST"]],
  ["/api/pull", ["POST"]],
  ["/api/push", ["POST"]],
  ["/api/create", ["POST"]],
  ["/api/copy", ["POST"]],
  ["/api/delete", ["DELETE"]],
  ["/api/blobs/:digest", ["HEAD", "POST"]],
  ["/api/status", ["GET"]],
  ["/v1/chat/completions", ["POST"]],
  ["/v1/completions", ["POST"]],
  ["/v1/embeddings", ["POST"]],
  ["/v1/models", ["GET"]],
  ["/v1/models/:model", ["GET"]],
  ["/v1/responses", ["POST"]],
  ["/v1/audio/transcriptions", ["POST"]],
  ["/v1/messages", ["POST"]]
]

const matchRoute = (path: string): { route: Route; methods: ReadonlyArray<string>; param: string } | undefined => {
  for (const [route, methods] of ROUTES) {
    const colon = route.indexOf(":")
    if (colon < 0) {
      if (route === path) return { route, methods, param: "" }
    } else {
      const prefix = route.slice(0, colon)
      const rest = path.slice(prefix.length)
      if (path.startsWith(prefix) && rest !== "" && !rest.includes("/")) return { route, methods, param: rest }
    }
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// The server

export const startFakeTarget = async (options: FakeTargetOptions = {}): Promise<FakeTarget> => {
  const loadDelayMs = options.loadDelayMs ?? 0
  const tokenDelayMs = options.tokenDelayMs ?? 0
  const chunks = Math.max(1, Math.floor(options.chunks ?? 4))
  const maxLoaded = Math.max(1, options.maxLoaded ?? 1)
  const defaultKeepAliveMs = options.keepAliveMs ?? 5 * 60_000
  const version = options.version ?? "0.33.0"
  const checkHost = options.checkHost ?? true

  const calls: FakeCall[] = []
  const loads: string[] = []
  const inventory = new Map<string, ModelEntry>()
  const remembered = new Map<string, FakeModelSpec>()
  const runners = new Map<string, Runner>()
  const loading = new Map<string, { promise: Promise<Runner>; waiters: number }>()
  const failures = new Map<string, FakeFailure[]>()
  const blobs = new Set<string>()
  const heldWaiters = new Set<() => void>()
  let holding = false
  const stepWaiters: Array<() => void> = []
  let pacing = false
  let steps = 0

  // --- inventory -------------------------------------------------------------------------------
  const startNs = nowNs()
  const initial = options.models ?? ["llama3.2", { name: "all-minilm", capabilities: ["embedding"] }]
  initial.forEach((m, index) => {
    // the first model is the newest, so /api/tags lists them in the given order
    const e = makeEntry(toSpec(m), startNs - BigInt(index) * 1_000_000_000n - 3_600_000_000_000n)
    inventory.set(e.key, e)
  })

  const addEntry = (spec: FakeModelSpec): ModelEntry => {
    const e = makeEntry(spec, nowNs())
    inventory.set(e.key, e)
    remembered.set(e.key, spec)
    return e
  }
  const find = (raw: string, caseSensitive = false): ModelEntry | undefined => {
    const parsed = parseName(raw)
    if (parsed === undefined) return undefined
    const e = inventory.get(nameKey(parsed))
    if (e !== undefined && caseSensitive && e.full !== fullName(parsed)) return undefined
    return e
  }

  // --- residency -------------------------------------------------------------------------------
  const expire = (): void => {
    const now = Date.now()
    for (const [key, r] of runners) if (r.active === 0 && r.expiresAt <= now) runners.delete(key)
  }
  let uses = 0
  const evict = (keep: Runner): void => {
    while (runners.size > maxLoaded) {
      const others = [...runners.values()].filter((r) => r !== keep)
      const idle = others.filter((r) => r.active === 0)
      const pool = (idle.length > 0 ? idle : others).sort((a, b) => a.lastUsed - b.lastUsed)
      const victim = pool[0]
      if (victim === undefined) return
      runners.delete(victim.entry.key)
    }
  }
  const load = (entry: ModelEntry, numCtx: number, keepAliveMs: number | undefined): { promise: Promise<Runner>; waiters: number } => {
    loads.push(entry.display)
    const finish = (): Runner => {
      const now = Date.now()
      const ka = keepAliveMs ?? defaultKeepAliveMs
      const runner: Runner = { entry, numCtx, keepAliveMs: ka, expiresAt: now + Math.min(ka, FOREVER_MS), active: record.waiters, lastUsed: ++uses }
      runners.delete(entry.key)
      runners.set(entry.key, runner)
      loading.delete(entry.key)
      evict(runner)
      return runner
    }
    const record = { promise: sleepMs(loadDelayMs).then(finish), waiters: 0 }
    loading.set(entry.key, record)
    return record
  }
  /** Attach a request to a runner for `entry`, loading it first if it is not resident. */
  const acquire = async (entry: ModelEntry, numCtx: number, keepAliveMs: number | undefined): Promise<Runner> => {
    for (;;) {
      expire()
      const pending = loading.get(entry.key)
      if (pending !== undefined) {
        pending.waiters++
        const runner = await pending.promise
        if (runner.numCtx === numCtx) {
          if (keepAliveMs !== undefined) runner.keepAliveMs = keepAliveMs
          return runner
        }
        release(runner)
        continue
      }
      const current = runners.get(entry.key)
      if (current !== undefined && current.numCtx === numCtx) {
        current.active++
        current.lastUsed = ++uses
        if (keepAliveMs !== undefined) current.keepAliveMs = keepAliveMs
        return current
      }
      if (current !== undefined && current.active === 0) runners.delete(entry.key)
      const record = load(entry, numCtx, keepAliveMs)
      record.waiters++
      return await record.promise
    }
  }
  const release = (r: Runner): void => {
    r.active = Math.max(0, r.active - 1)
    r.lastUsed = ++uses
    if (r.active > 0) return
    if (r.keepAliveMs <= 0) {
      if (runners.get(r.entry.key) === r) runners.delete(r.entry.key)
    } else r.expiresAt = Date.now() + Math.min(r.keepAliveMs, FOREVER_MS)
  }
  const unload = (entry: ModelEntry): void => {
    const r = runners.get(entry.key)
    if (r === undefined) return
    r.keepAliveMs = 0
    if (r.active === 0) runners.delete(entry.key)
    else r.expiresAt = Date.now()
  }

  // --- hold --------------------------------------------------------------------------------------
  const waitHold = (signal: AbortSignal): Promise<void> =>
    holding && !signal.aborted
      ? new Promise<void>((resolve) => {
          const done = (): void => {
            heldWaiters.delete(done)
            signal.removeEventListener("abort", done)
            resolve()
          }
          heldWaiters.add(done)
          signal.addEventListener("abort", done, { once: true })
        })
      : Promise.resolve()

  // --- pace ---------------------------------------------------------------------------------------
  const waitStep = (signal: AbortSignal): Promise<void> => {
    if (!pacing || signal.aborted) return Promise.resolve()
    if (steps > 0) {
      steps--
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => {
      const done = (): void => {
        const index = stepWaiters.indexOf(done)
        if (index >= 0) stepWaiters.splice(index, 1)
        signal.removeEventListener("abort", done)
        resolve()
      }
      stepWaiters.push(done)
      signal.addEventListener("abort", done, { once: true })
    })
  }
  const endPacing = (): void => {
    pacing = false
    steps = 0
    for (const resume of [...stepWaiters]) resume()
  }
  /** Between two lines of a generation stream: the token delay, then the pace. */
  const betweenLines = async (signal: AbortSignal): Promise<void> => {
    await sleepMs(tokenDelayMs, signal)
    await waitStep(signal)
  }

  // --- replies -------------------------------------------------------------------------------
  const jsonItem = (status: number, body: Obj | null, charset = true): Item => ({ kind: "json", status, body, charset })
  const errorItem = (status: number, message: string, charset = true): Item => ({ kind: "error", status, message, charset })

  // --- generation (generate and chat) -------------------------------------------------------
  const OPTION_TYPES: Record<string, "int" | "float" | "bool" | "strings"> = {
    num_keep: "int", seed: "int", num_predict: "int", top_k: "int", repeat_last_n: "int", num_ctx: "int", num_batch: "int",
    num_gpu: "int", main_gpu: "int", num_thread: "int", draft_num_predict: "int",
    top_p: "float", min_p: "float", typical_p: "float", temperature: "float", repeat_penalty: "float", presence_penalty: "float", frequency_penalty: "float",
    use_mmap: "bool", stop: "strings"
  }
  const checkOptions = (opts: Obj): string | undefined => {
    for (const [key, v] of Object.entries(opts)) {
      const t = OPTION_TYPES[key]
      if (t === undefined || v === null) continue
      if (t === "int" && typeof v !== "number") return `option ${goQuote(key)} must be of type integer`
      if (t === "float" && typeof v !== "number") return `option ${goQuote(key)} must be of type float32`
      if (t === "bool" && typeof v !== "boolean") return `option ${goQuote(key)} must be of type boolean`
      if (t === "strings") {
        if (!Array.isArray(v)) return `option ${goQuote(key)} must be of type array`
        if (v.some((s) => typeof s !== "string")) return `option ${goQuote(key)} must be of an array of strings`
      }
    }
    return undefined
  }

  const split = (text: string, n: number): string[] => {
    const cps = [...text]
    while (cps.length < n) cps.push(".")
    const out: string[] = []
    for (let k = 0; k < n; k++) out.push(cps.slice(Math.floor((k * cps.length) / n), Math.floor(((k + 1) * cps.length) / n)).join(""))
    return out
  }

  async function* generation(kind: "generate" | "chat", req: Obj, signal: AbortSignal, t0: bigint): AsyncGenerator<Item> {
    const model = str(req, "model")
    const chat = kind === "chat"
    const topLogprobs = int(req, "top_logprobs")
    if (topLogprobs < 0 || topLogprobs > 20) return yield errorItem(400, "top_logprobs must be between 0 and 20")
    if (chat && model.trim() === "") return yield errorItem(400, "model is required")
    if (model.trim() === "") return yield errorItem(404, `model '${model}' not found`)
    if (parseName(model) === undefined) return yield errorItem(400, "invalid model name")
    const entry = find(model)
    if (entry === undefined) return yield errorItem(404, `model '${model}' not found`)

    const keepAlive = parseKeepAlive(field(req, "keep_alive"))
    const keepAliveMs = typeof keepAlive === "number" ? keepAlive : undefined
    const prompt = str(req, "prompt")
    const rawMessages = field(req, "messages")
    const messages = (Array.isArray(rawMessages) ? rawMessages : []).filter(isObj)
    const empty = chat ? messages.length === 0 : prompt === ""
    const doneObj = (reason: string): Obj =>
      chat
        ? { model, created_at: createdAt(), message: { role: "assistant", content: "" }, done: true, done_reason: reason }
        : { model, created_at: createdAt(), response: "", done: true, done_reason: reason }

    if (empty && keepAliveMs === 0) {
      unload(entry)
      return yield jsonItem(200, doneObj("unload"))
    }
    if (entry.capabilities.includes("image")) return yield errorItem(400, "image generation models are not currently supported")
    if (!chat && bool(req, "raw") === true && (str(req, "template") !== "" || str(req, "system") !== "" || Array.isArray(field(req, "context"))))
      return yield errorItem(400, "raw mode does not support template, system, or context")

    const think = field(req, "think")
    let thinking = false
    if (entry.capabilities.includes("thinking")) thinking = think === undefined || think === null || (think !== false && think !== "")
    else if (think === true || (typeof think === "string" && think !== "")) return yield errorItem(400, `${goQuote(model)} does not support thinking`)

    const suffix = str(req, "suffix")
    const tools = field(req, "tools")
    const toolList = Array.isArray(tools) ? tools.filter(isObj) : []
    if (!entry.capabilities.includes("completion")) return yield errorItem(400, `${goQuote(model)} does not support ${chat ? "chat" : "generate"}`)
    if (!chat && suffix !== "" && !entry.capabilities.includes("insert")) return yield errorItem(400, `${entry.full} does not support insert`)
    if (chat && toolList.length > 0 && !entry.capabilities.includes("tools")) return yield errorItem(400, `${entry.full} does not support tools`)

    const opts = field(req, "options")
    const optsObj = isObj(opts) ? opts : {}
    const optionError = checkOptions(optsObj)
    if (optionError !== undefined) return yield errorItem(500, optionError)
    const requestedCtx = typeof optsObj["num_ctx"] === "number" && optsObj["num_ctx"] > 0 ? Math.trunc(optsObj["num_ctx"]) : DEFAULT_NUM_CTX
    const numCtx = Math.min(requestedCtx, entry.contextLength)

    const runner = await acquire(entry, numCtx, keepAliveMs)
    try {
      if (signal.aborted) return
      const tLoaded = nowNs()
      if (empty) return yield jsonItem(200, doneObj("load"))

      const format = field(req, "format")
      if (format !== undefined && format !== null && format !== "" && format !== "json" && !isObj(format))
        return yield errorItem(500, `invalid format: ${JSON.stringify(format)}; expected "json" or a valid JSON Schema object`, false)

      await waitHold(signal)
      if (signal.aborted) return

      // the deterministic reply
      const lastUser = [...messages].reverse().find((m) => str(m, "role").toLowerCase() === "user")
      const input = chat ? (lastUser === undefined ? "" : str(lastUser, "content")) : prompt
      const structured = format === "json" || isObj(format)
      const text = structured ? JSON.stringify({ echo: input }) : "echo: " + input
      const promptTokens = chat ? messages.reduce((n, m) => n + tokenCount(str(m, "content")) + 4, 0) : tokenCount(prompt) + 8

      const call = chat ? /^call (\S+)(?:\s+(\{.*\}))?\s*$/s.exec(input) : null
      const tool = call === null ? undefined : toolList.find((t) => isObj(t["function"]) && (t["function"] as Obj)["name"] === call[1])
      let toolCall: Obj | undefined
      if (call !== null && tool !== undefined) {
        let args: unknown = {}
        try {
          args = call[2] === undefined ? {} : (JSON.parse(call[2]) as unknown)
        } catch {
          args = {}
        }
        const id = "call_" + sha256Hex(input).replace(/[^a-z0-9]/g, "").slice(0, 8)
        toolCall = { id, function: { index: 0, name: call[1], arguments: args } }
      }

      let pieces = toolCall === undefined ? split(text, chunks) : []
      let doneReason = "stop"
      const numPredict = typeof optsObj["num_predict"] === "number" ? optsObj["num_predict"] : -1
      if (numPredict > 0 && numPredict < pieces.length) {
        pieces = pieces.slice(0, numPredict)
        doneReason = "length"
      }

      const contentLine = (content: string, extra: Obj = {}): Obj =>
        chat
          ? { model, created_at: createdAt(), message: { role: "assistant", content, ...extra }, done: false }
          : { model, created_at: createdAt(), response: content, ...extra, done: false }
      const lines: Obj[] = []
      if (thinking) lines.push(contentLine("", { thinking: "Thinking about: " + input }))
      for (const p of pieces) lines.push(contentLine(p))
      if (toolCall !== undefined) lines.push(contentLine("", { tool_calls: [toolCall] }))

      const tPromptDone = nowNs()
      let first = true
      for (const line of lines) {
        if (!first) await betweenLines(signal)
        first = false
        if (signal.aborted) return
        line["created_at"] = createdAt()
        yield { kind: "line", line, final: false }
      }
      if (!first) await betweenLines(signal)
      if (signal.aborted) return
      const tEnd = nowNs()
      const evalCount = lines.length
      const metrics: Obj = {
        total_duration: Number(tEnd - t0) || 1,
        load_duration: Number(tLoaded - t0) || 1,
        prompt_eval_count: promptTokens,
        prompt_eval_duration: Number(tPromptDone - tLoaded) || 1,
        eval_count: evalCount,
        eval_duration: Number(tEnd - tPromptDone) || 1
      }
      const final: Obj = chat
        ? { model, created_at: createdAt(), message: { role: "assistant", content: "" }, done: true, done_reason: doneReason, ...metrics }
        : {
            model,
            created_at: createdAt(),
            response: "",
            done: true,
            done_reason: doneReason,
            ...(bool(req, "raw") === true ? {} : { context: Array.from({ length: promptTokens + evalCount }, (_, k) => 100 + ((k * 7919) % 32000)) }),
            ...metrics
          }
      yield { kind: "line", line: final, final: true }
    } finally {
      release(runner)
    }
  }

  const mergeGenerate = (lines: ReadonlyArray<Obj>): Obj => {
    const last = lines[lines.length - 1] ?? {}
    const response = lines.map((l) => (typeof l["response"] === "string" ? l["response"] : "")).join("")
    const thinking = lines.map((l) => (typeof l["thinking"] === "string" ? l["thinking"] : "")).join("")
    const out: Obj = {}
    for (const [k, v] of Object.entries(last)) {
      if (k === "thinking") continue
      out[k] = k === "response" ? response : v
      if (k === "response" && thinking !== "") out["thinking"] = thinking
    }
    return out
  }
  const mergeChat = (lines: ReadonlyArray<Obj>): Obj => {
    const { content, final: last, thinking, toolCalls } = chatParts(lines)
    const message: Obj = { role: "assistant", content }
    if (thinking !== "") message["thinking"] = thinking
    if (toolCalls.length > 0) message["tool_calls"] = toolCalls
    const out: Obj = {}
    for (const [k, v] of Object.entries(last)) out[k] = k === "message" ? message : v
    return out
  }
  const mergeLast = (lines: ReadonlyArray<Obj>): Obj => lines[lines.length - 1] ?? {}

  // --- embeddings -------------------------------------------------------------------------------
  const embed = async (req: Obj, signal: AbortSignal, t0: bigint): Promise<Item> => {
    const model = str(req, "model")
    if (model.trim() === "") return errorItem(404, `model '${model}' not found`)
    if (parseName(model) === undefined) return errorItem(400, "invalid model name")
    const rawInput = field(req, "input")
    let input: string[] = []
    if (typeof rawInput === "string") input = rawInput === "" ? [] : [rawInput]
    else if (Array.isArray(rawInput)) {
      if (rawInput.some((v) => typeof v !== "string")) return errorItem(400, "invalid input type")
      input = rawInput as string[]
    } else if (rawInput !== undefined && rawInput !== null) return errorItem(400, "invalid input type")
    const entry = find(model)
    if (entry === undefined) return errorItem(404, `model ${goQuote(model)} not found, try pulling it first`)
    const optsObj = isObj(field(req, "options")) ? (field(req, "options") as Obj) : {}
    const optionError = checkOptions(optsObj)
    if (optionError !== undefined) return errorItem(500, optionError)
    const keepAlive = parseKeepAlive(field(req, "keep_alive"))
    const requestedCtx = typeof optsObj["num_ctx"] === "number" && optsObj["num_ctx"] > 0 ? Math.trunc(optsObj["num_ctx"]) : DEFAULT_NUM_CTX
    const runner = await acquire(entry, Math.min(requestedCtx, entry.contextLength), typeof keepAlive === "number" ? keepAlive : undefined)
    try {
      const tLoaded = nowNs()
      if (input.length === 0) return jsonItem(200, { model, embeddings: [] })
      const dims = int(req, "dimensions")
      const embeddings = input.map((text) => {
        let v = normalize(rawVector(text))
        if (dims > 0 && dims < v.length) v = normalize(v.slice(0, dims))
        return v.map(float32)
      })
      void signal
      return jsonItem(200, {
        model,
        embeddings,
        total_duration: Number(nowNs() - t0) || 1,
        load_duration: Number(tLoaded - t0) || 1,
        prompt_eval_count: input.reduce((n, t) => n + tokenCount(t), 0)
      })
    } finally {
      release(runner)
    }
  }

  const embeddingsLegacy = async (req: Obj): Promise<Item> => {
    const model = str(req, "model")
    if (model.trim() === "" || parseName(model) === undefined) return errorItem(400, "model is required")
    const entry = find(model, true)
    if (entry === undefined) return errorItem(404, `model ${goQuote(model)} not found, try pulling it first`)
    const optsObj = isObj(field(req, "options")) ? (field(req, "options") as Obj) : {}
    const optionError = checkOptions(optsObj)
    if (optionError !== undefined) return errorItem(500, optionError)
    const keepAlive = parseKeepAlive(field(req, "keep_alive"))
    const requestedCtx = typeof optsObj["num_ctx"] === "number" && optsObj["num_ctx"] > 0 ? Math.trunc(optsObj["num_ctx"]) : DEFAULT_NUM_CTX
    const runner = await acquire(entry, Math.min(requestedCtx, entry.contextLength), typeof keepAlive === "number" ? keepAlive : undefined)
    try {
      const prompt = str(req, "prompt")
      if (prompt === "") return jsonItem(200, { embedding: [] })
      return jsonItem(200, { embedding: rawVector(prompt) })
    } finally {
      release(runner)
    }
  }

  // --- listing ----------------------------------------------------------------------------------
  const sortedEntries = (): ModelEntry[] =>
    [...inventory.values()].sort((a, b) => (a.modifiedNs === b.modifiedNs ? 0 : a.modifiedNs > b.modifiedNs ? -1 : 1))

  const tags = (): Obj => ({
    models: sortedEntries().map((e) => ({
      name: e.display,
      model: e.display,
      modified_at: rfc3339(e.modifiedNs, true),
      size: e.size,
      digest: e.digest,
      details: { ...baseDetails(e), context_length: e.contextLength, embedding_length: e.embeddingLength },
      capabilities: [...e.capabilities]
    }))
  })

  const ps = (): Obj => {
    expire()
    const list = [...runners.values()].sort((a, b) => b.expiresAt - a.expiresAt)
    return {
      models: list.map((r) => {
        const memory = r.entry.size + r.numCtx * 32_768
        return {
          name: r.entry.display,
          model: r.entry.display,
          size: memory,
          digest: r.entry.digest,
          details: baseDetails(r.entry),
          expires_at: rfc3339(BigInt(Math.round(r.expiresAt)) * 1_000_000n, true),
          size_vram: memory,
          context_length: r.numCtx
        }
      })
    }
  }

  const showBody = (e: ModelEntry): Obj => {
    const completion = e.capabilities.includes("completion")
    const modelfile =
      `# Modelfile generated by "ollama show"\n# To build a new Modelfile based on this, replace FROM with:\n# FROM ${e.display}\n\n` +
      `FROM /usr/share/ollama/.ollama/models/blobs/sha256-${sha256Hex("blob:" + e.key)}\n` +
      (completion ? `TEMPLATE "{{ .Prompt }}"\nPARAMETER stop <|eot_id|>\n` : "")
    const body: Obj = { modelfile }
    if (completion) {
      body["parameters"] = 'stop                           "<|eot_id|>"'
      body["template"] = "{{ .Prompt }}"
    }
    body["details"] = baseDetails(e)
    body["model_info"] = {
      "general.architecture": e.family,
      "general.file_type": 15,
      "general.parameter_count": e.size * 2,
      "general.quantization_version": 2,
      [`${e.family}.context_length`]: e.contextLength,
      [`${e.family}.embedding_length`]: e.embeddingLength
    }
    body["capabilities"] = [...e.capabilities]
    body["modified_at"] = rfc3339(e.modifiedNs, true)
    return body
  }

  const show = (raw: string): Item => {
    const parsed = parseName(raw)
    if (parsed === undefined) return errorItem(400, "invalid model name")
    const e = find(raw)
    if (e === undefined) return errorItem(404, `model '${displayName(parsed)}' not found`)
    return jsonItem(200, showBody(e))
  }

  // --- model management -----------------------------------------------------------------------
  const progressLines = (lines: ReadonlyArray<Obj>, onBeforeLast: () => void, signal: AbortSignal): AsyncGenerator<Item> =>
    (async function* () {
      for (let k = 0; k < lines.length; k++) {
        if (k > 0) await sleepMs(tokenDelayMs, signal)
        if (signal.aborted) return
        if (k === lines.length - 1) onBeforeLast()
        yield { kind: "line", line: lines[k] ?? {}, final: k === lines.length - 1 } as Item
      }
    })()

  const layerLines = (verb: string, seed: string, total: number): Obj[] => {
    const digest = sha256Hex(seed)
    return [
      { status: `${verb} ${digest.slice(0, 12)}`, digest: `sha256:${digest}`, total, completed: 0 },
      { status: `${verb} ${digest.slice(0, 12)}`, digest: `sha256:${digest}`, total, completed: Math.floor(total / 2) },
      { status: `${verb} ${digest.slice(0, 12)}`, digest: `sha256:${digest}`, total, completed: total }
    ]
  }

  const streamOf = (req: Obj, items: AsyncGenerator<Item>, merge: (lines: ReadonlyArray<Obj>) => Obj, nonStreamCharset: boolean): StreamOutcome => ({
    kind: "stream",
    items,
    stream: bool(req, "stream") !== false,
    merge,
    nonStreamCharset
  })

  const pull = (req: Obj, signal: AbortSignal): Outcome => {
    const raw = str(req, "model") || str(req, "name")
    const parsed = parseName(raw)
    if (raw.trim() === "" || parsed === undefined) return errorItem(400, "invalid model name")
    const existing = find(raw)
    const spec = existing?.spec ?? remembered.get(nameKey(parsed)) ?? guessSpec(displayName(parsed))
    const size = makeEntry(spec, 0n).size
    const lines: Obj[] = [
      { status: "pulling manifest" },
      ...layerLines("pulling", "model:" + nameKey(parsed), size),
      ...layerLines("pulling", "template:" + nameKey(parsed), 1_429),
      { status: "verifying sha256 digest" },
      { status: "writing manifest" },
      { status: "success" }
    ]
    return streamOf(req, progressLines(lines, () => addEntry({ ...spec, name: existing?.spec.name ?? displayName(parsed) }), signal), mergeLast, false)
  }

  const push = (req: Obj, signal: AbortSignal): Outcome => {
    const raw = str(req, "model") || str(req, "name")
    if (raw === "") return errorItem(400, "model is required")
    const e = find(raw)
    if (e === undefined) {
      const parsed = parseName(raw)
      const path = parsed === undefined ? raw : `${parsed.host}/${parsed.namespace}/${parsed.model}/${parsed.tag}`
      const items = (async function* (): AsyncGenerator<Item> {
        yield errorItem(500, `open /usr/share/ollama/.ollama/models/manifests/${path}: no such file or directory`, false)
      })()
      return streamOf(req, items, mergeLast, false)
    }
    const lines: Obj[] = [
      { status: "retrieving manifest" },
      { status: "starting upload", digest: `sha256:${e.digest}`, total: e.size },
      ...layerLines("pushing", "model:" + e.key, e.size),
      { status: "pushing manifest" },
      { status: "success" }
    ]
    return streamOf(req, progressLines(lines, () => undefined, signal), mergeLast, false)
  }

  const create = (req: Obj, signal: AbortSignal): Outcome => {
    const raw = str(req, "model") || str(req, "name")
    const parsed = parseName(raw)
    if (raw.trim() === "" || parsed === undefined) return errorItem(400, "invalid model name")
    const from = str(req, "from")
    const files = field(req, "files")
    const hasFiles = isObj(files) && Object.keys(files).length > 0
    if (from === "" && !hasFiles) {
      const items = (async function* (): AsyncGenerator<Item> {
        yield errorItem(400, "neither 'from' or 'files' was specified", false)
      })()
      return streamOf(req, items, mergeLast, false)
    }
    const source = from === "" ? undefined : find(from)
    const spec: FakeModelSpec = { ...(source?.spec ?? (from === "" ? {} : guessSpec(from))), name: displayName(parsed) }
    const lines: Obj[] = [
      ...(hasFiles ? [{ status: "parsing GGUF" }] : []),
      { status: `using existing layer sha256:${sha256Hex("model:" + (source?.key ?? from))}` },
      { status: `using existing layer sha256:${sha256Hex("template:" + (source?.key ?? from))}` },
      { status: `writing manifest` },
      { status: "success" }
    ]
    return streamOf(req, progressLines(lines, () => addEntry(spec), signal), mergeLast, false)
  }

  const copy = (req: Obj): Item => {
    const source = str(req, "source")
    const destination = str(req, "destination")
    const src = parseName(source)
    if (source === "" || src === undefined) return errorItem(400, `source ${goQuote(source)} is invalid`)
    const dst = parseName(destination)
    if (destination === "" || dst === undefined) return errorItem(400, `destination ${goQuote(destination)} is invalid`)
    const e = find(source)
    if (e === undefined) return errorItem(404, `model ${goQuote(source)} not found`)
    const spec: FakeModelSpec = { ...e.spec, name: destination }
    const copied = makeEntry(spec, nowNs())
    inventory.set(copied.key, { ...copied, digest: e.digest, size: e.size })
    remembered.set(copied.key, spec)
    return jsonItem(200, null)
  }

  const del = (req: Obj): Item => {
    const raw = str(req, "model") || str(req, "name")
    if (raw === "") return errorItem(400, "model is required")
    if (parseName(raw) === undefined) return errorItem(400, `name ${goQuote(raw)} is invalid`)
    const e = find(raw)
    if (e === undefined) return errorItem(404, `model '${raw}' not found`)
    inventory.delete(e.key)
    return jsonItem(200, null)
  }

  const native: Native = {
    generation,
    embed,
    models: () => sortedEntries().map((e) => ({ display: e.display, namespace: e.name.namespace, modifiedNs: e.modifiedNs })),
    find: (name) => {
      const e = find(name)
      return e === undefined ? undefined : { display: e.display, namespace: e.name.namespace, modifiedNs: e.modifiedNs }
    },
    show
  }

  // --- dispatch ------------------------------------------------------------------------------------
  const SCHEMA_OF: Partial<Record<Route, Schema>> = {
    "/api/generate": SCHEMAS.generate,
    "/api/chat": SCHEMAS.chat,
    "/api/embed": SCHEMAS.embed,
    "/api/embeddings": SCHEMAS.embeddings,
    "/api/show": SCHEMAS.show,
    "/api/pull": SCHEMAS.pull,
    "/api/push": SCHEMAS.push,
    "/api/create": SCHEMAS.create,
    "/api/copy": SCHEMAS.copy,
    "/api/delete": SCHEMAS.delete
  }

  const dispatch = async (route: Route, param: string, ctx: RequestContext): Promise<Outcome> => {
    switch (route) {
      case "/":
        return { kind: "raw", status: 200, contentType: "text/plain; charset=utf-8", body: "Ollama is running" }
      case "/api/version":
        return jsonItem(200, { version })
      case "/api/tags":
        return jsonItem(200, tags())
      case "/api/ps":
        return jsonItem(200, ps())
      case "/api/status":
        return jsonItem(200, { cloud: { disabled: false, source: "default" } })
      case "/api/blobs/:digest": {
        if (ctx.method === "HEAD") return { kind: "raw", status: blobs.has(param) ? 200 : 404, contentType: undefined, body: "" }
        const actual = `sha256:${sha256Hex(ctx.body)}`
        if (actual !== param) return errorItem(400, `digest mismatch, expected ${goQuote(param)}, got ${goQuote(actual)}`)
        const existed = blobs.has(param)
        blobs.add(param)
        return { kind: "raw", status: existed ? 200 : 201, contentType: undefined, body: "" }
      }
      case "/v1/chat/completions":
      case "/v1/completions":
      case "/v1/embeddings":
      case "/v1/models":
      case "/v1/models/:model":
      case "/v1/responses":
      case "/v1/audio/transcriptions":
        return handleOpenAI(route, param, ctx, native)
      case "/v1/messages":
        return handleAnthropic(ctx, native)
      default:
        break
    }
    const schema = SCHEMA_OF[route]
    if (schema === undefined) return { kind: "raw", status: 404, contentType: "text/plain", body: "404 page not found" }
    const decoded = decodeRequest(ctx.body, schema)
    if (!decoded.ok) return errorItem(400, decoded.message)
    const req = decoded.value
    switch (route) {
      case "/api/generate":
        return streamOf(req, generation("generate", req, ctx.signal, ctx.startNs), mergeGenerate, true)
      case "/api/chat":
        return streamOf(req, generation("chat", req, ctx.signal, ctx.startNs), mergeChat, true)
      case "/api/embed":
        return embed(req, ctx.signal, ctx.startNs)
      case "/api/embeddings":
        return embeddingsLegacy(req)
      case "/api/show": {
        const name = str(req, "model") || str(req, "name")
        return name === "" ? errorItem(400, "model is required") : show(name)
      }
      case "/api/pull":
        return pull(req, ctx.signal)
      case "/api/push":
        return push(req, ctx.signal)
      case "/api/create":
        return create(req, ctx.signal)
      case "/api/copy":
        return copy(req)
      case "/api/delete":
        return del(req)
      default:
        return { kind: "raw", status: 404, contentType: "text/plain", body: "404 page not found" }
    }
  }

  // --- writing -----------------------------------------------------------------------------------
  const sendJSON = (res: http.ServerResponse, status: number, body: Obj | null, charset: boolean): void => {
    if (res.destroyed) return
    if (body === null) {
      res.writeHead(status, { "Content-Length": "0" })
      res.end()
      return
    }
    const text = goJSON(body)
    res.writeHead(status, {
      "Content-Type": charset ? "application/json; charset=utf-8" : "application/json",
      "Content-Length": String(Buffer.byteLength(text))
    })
    res.end(text)
  }
  const sendRaw = (res: http.ServerResponse, status: number, contentType: string | undefined, body: string): void => {
    if (res.destroyed) return
    const headers: Record<string, string> = { "Content-Length": String(Buffer.byteLength(body)) }
    if (contentType !== undefined) headers["Content-Type"] = contentType
    res.writeHead(status, headers)
    res.end(body)
  }
  const destroyAfterFlush = async (res: http.ServerResponse): Promise<void> => {
    const socket = res.socket
    if (socket === null || socket.destroyed) return
    // chunked writes are corked until the next tick; let them reach the kernel first
    await new Promise<void>((resolve) => setImmediate(resolve))
    if (socket.writableLength > 0 && !socket.destroyed)
      await new Promise<void>((resolve) => {
        socket.once("drain", resolve)
        socket.once("close", resolve)
      })
    socket.destroy()
  }

  const writeSingle = async (res: http.ServerResponse, item: Item, failure: FakeFailure | undefined): Promise<void> => {
    if (item.kind === "error") return sendJSON(res, item.status, { error: item.message }, item.charset)
    if (failure?.mode === "reset") return void res.socket?.destroy()
    if (failure?.mode === "midstream") return sendJSON(res, 500, { error: failure.message }, true)
    if (item.kind === "json") return sendJSON(res, item.status, item.body, item.charset)
    if (item.kind === "raw") return sendRaw(res, item.status, item.contentType, item.body)
    return sendJSON(res, 200, item.line, true)
  }

  const writeStream = async (res: http.ServerResponse, outcome: StreamOutcome, failure: FakeFailure | undefined, signal: AbortSignal): Promise<void> => {
    let started = false
    let count = 0
    const collected: Obj[] = []
    const encode = outcome.encode ?? ((line: Obj) => goJSON(line) + "\n")
    const errorFrame = outcome.errorFrame ?? ((message: string) => goJSON({ error: message }) + "\n")
    const fail = (status: number, message: string, charset: boolean): Promise<void> => {
      if (started) {
        res.write(errorFrame(message))
        res.end()
        return Promise.resolve()
      }
      if (outcome.errorReply !== undefined) return writeSingle(res, outcome.errorReply(status, message), undefined)
      sendJSON(res, status, { error: message }, outcome.stream ? charset : outcome.nonStreamCharset)
      return Promise.resolve()
    }
    for await (const item of outcome.items) {
      if (signal.aborted || res.destroyed) return
      if (item.kind === "error") return fail(item.status, item.message, item.charset)
      if (item.kind !== "line") return writeSingle(res, item, failure)
      if (failure !== undefined && failure.mode !== "status" && (count >= failure.afterLines || item.final)) {
        if (failure.mode === "midstream") return fail(500, failure.message, false)
        if (started) await destroyAfterFlush(res)
        else res.socket?.destroy()
        return
      }
      if (outcome.stream) {
        if (!started) {
          res.writeHead(200, { "Content-Type": outcome.contentType ?? "application/x-ndjson" })
          started = true
        }
        res.write(encode(item.line))
      } else collected.push(item.line)
      count++
    }
    if (signal.aborted || res.destroyed) return
    if (outcome.stream) {
      if (!started) res.writeHead(200, { "Content-Type": outcome.contentType ?? "application/x-ndjson" })
      res.end(outcome.trailer ?? "")
    } else sendJSON(res, 200, outcome.merge(collected), outcome.nonStreamCharset)
  }

  // --- HTTP server -------------------------------------------------------------------------------
  const sockets = new Set<Socket>()
  const controllers = new Set<AbortController>()

  const readBody = (req: http.IncomingMessage): Promise<Buffer> =>
    new Promise((resolve) => {
      const parts: Buffer[] = []
      req.on("data", (c: Buffer) => parts.push(c))
      req.on("end", () => resolve(Buffer.concat(parts)))
      req.on("error", () => resolve(Buffer.concat(parts)))
      req.on("close", () => resolve(Buffer.concat(parts)))
    })

  const pathOf = (url: string): string => {
    let raw = url
    if (!raw.startsWith("/")) {
      try {
        raw = new URL(raw).pathname
      } catch {
        raw = "/" + raw
      }
    }
    const q = raw.search(/[?#]/)
    if (q >= 0) raw = raw.slice(0, q)
    try {
      return decodeURIComponent(raw)
    } catch {
      return raw
    }
  }

  const onRequest = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const t0 = nowNs()
    const controller = new AbortController()
    controllers.add(controller)
    res.on("close", () => {
      controllers.delete(controller)
      if (!res.writableFinished) controller.abort()
    })
    const method = (req.method ?? "GET").toUpperCase()
    const path = pathOf(req.url ?? "/")
    const body = await readBody(req)
    let recorded: unknown = undefined
    if (body.length > 0) {
      const d = goDecode(body)
      recorded = d.ok ? d.value : body.toString("utf8")
    }
    calls.push({ method, path, body: recorded, at: Date.now() })
    if (res.destroyed) return

    if (checkHost && !isLocalHost(req.headers.host)) return sendRaw(res, 403, undefined, "")
    if (method === "OPTIONS") return sendRaw(res, 204, undefined, "")

    const queue = failures.get(path)
    const failure = queue?.shift()
    if (queue !== undefined && queue.length === 0) failures.delete(path)
    if (failure?.mode === "status") return sendJSON(res, failure.status, { error: failure.message }, true)

    const match = matchRoute(path)
    if (match === undefined) {
      const trimmed = path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : undefined
      if (trimmed !== undefined && matchRoute(trimmed) !== undefined) {
        const status = method === "GET" ? 301 : 307
        const html = method === "GET" || method === "HEAD" ? `<a href="${trimmed}">${status === 301 ? "Moved Permanently" : "Temporary Redirect"}</a>.\n\n` : ""
        res.setHeader("Location", trimmed)
        return sendRaw(res, status, html === "" ? undefined : "text/html; charset=utf-8", html)
      }
      if (failure?.mode === "reset") return void res.socket?.destroy()
      return sendRaw(res, 404, "text/plain", "404 page not found")
    }
    if (!match.methods.includes(method)) return sendRaw(res, 405, "text/plain", "405 method not allowed")

    const ctx: RequestContext = { method, path, body, signal: controller.signal, startNs: t0, contentType: req.headers["content-type"] }
    const outcome = await dispatch(match.route, match.param, ctx)
    if (controller.signal.aborted || res.destroyed) {
      if (outcome.kind === "stream") await outcome.items.return(undefined)
      return
    }
    if (outcome.kind === "stream") await writeStream(res, outcome, failure, controller.signal)
    else await writeSingle(res, outcome, failure)
  }

  const server = http.createServer((req, res) => {
    onRequest(req, res).catch(() => {
      if (!res.headersSent && !res.destroyed) sendJSON(res, 500, { error: "fake target internal error" }, true)
      else res.destroy()
    })
  })
  // Go's net/http keeps idle connections open without a timeout
  server.keepAliveTimeout = 0
  server.on("connection", (socket: Socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })

  let port = options.port ?? 0
  let listening = false
  let closed = false

  const listen = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        server.off("listening", onListening)
        reject(err)
      }
      const onListening = (): void => {
        server.off("error", onError)
        const address = server.address()
        if (address !== null && typeof address === "object") port = address.port
        listening = true
        resolve()
      }
      server.once("error", onError)
      server.once("listening", onListening)
      server.listen({ port, host: "127.0.0.1", exclusive: true })
    })

  const stop = async (): Promise<void> => {
    if (!listening) return
    listening = false
    const done = new Promise<void>((resolve) => server.close(() => resolve()))
    for (const c of [...controllers]) c.abort()
    for (const s of [...sockets]) s.destroy()
    await done
  }

  await listen()

  const target: FakeTarget = {
    get url() {
      return `http://127.0.0.1:${port}`
    },
    get port() {
      return port
    },
    calls,
    count: (path) => calls.filter((c) => c.path === path).length,
    loads,
    get resident() {
      expire()
      return [...runners.values()].map((r) => r.entry.display)
    },
    get held() {
      return heldWaiters.size
    },
    addModel: (model) => {
      addEntry(toSpec(model))
    },
    removeModel: (name) => {
      const e = find(name)
      if (e !== undefined) inventory.delete(e.key)
    },
    sleep: stop,
    wake: async () => {
      if (closed) throw new Error("FakeTarget: wake() after close()")
      if (!listening) await listen()
    },
    failNext: (path, failure) => {
      const queue = failures.get(path) ?? []
      queue.push(failure)
      failures.set(path, queue)
    },
    hold: () => {
      holding = true
    },
    pace: () => {
      pacing = true
    },
    step: () => {
      const resume = stepWaiters[0]
      if (resume === undefined) steps++
      else resume()
    },
    release: () => {
      holding = false
      for (const resume of [...heldWaiters]) resume()
      endPacing()
    },
    close: async () => {
      closed = true
      holding = false
      for (const resume of [...heldWaiters]) resume()
      endPacing()
      await stop()
    }
  }
  return target
}
