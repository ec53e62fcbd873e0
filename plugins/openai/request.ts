/**
 * The checks foreman makes on an OpenAI request before it queues it (shared reference §8):
 * the ones that decide whether there is a job at all and for which model. Everything else
 * (message parts, images, tool-call arguments, reasoning values, sampling options, encoding
 * formats) is the target's to judge: its 400 comes back in the same envelope, so the rules
 * stay where they live and cannot drift from the Ollama version behind foreman.
 *
 * The texts are Ollama's: its `/v1` middlewares decode with Go's `encoding/json` (keys match
 * case-insensitively, `null` leaves a field unset, the first type error in document order
 * is reported), then the native handler checks the model.
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { BadRequest, decodeJobRequest, type JobEndpoint, ModelName, ModelNotFound } from "../../src/index.ts"

/** The three job routes, with the Ollama route whose rules each follows. */
export const routes = {
  "/v1/chat/completions": { kind: "/api/chat", struct: "ChatCompletionRequest" },
  "/v1/completions": { kind: "/api/generate", struct: "CompletionRequest" },
  "/v1/embeddings": { kind: "/api/embed", struct: "EmbedRequest" }
} as const satisfies Record<string, { readonly kind: JobEndpoint; readonly struct: string }>

export type Route = keyof typeof routes

export interface OpenAiRequest {
  readonly route: Route
  /** Exactly as the client sent it. */
  readonly model: string
  /** The parsed top-level object (`{}` for a `null` body); unknown fields kept. */
  readonly body: Readonly<Record<string, unknown>>
}

type Invalid = BadRequest | ModelNotFound

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** The JSON type name Go's `UnmarshalTypeError` prints. */
const jsonType = (u: unknown): string =>
  typeof u === "string" ? "string" : typeof u === "number" ? "number" : typeof u === "boolean" ? "bool" : Array.isArray(u) ? "array" : "object"

/** What Go's `%T` prints for a value decoded into `any`. */
const goDynamicType = (u: unknown): string =>
  u === null
    ? "<nil>"
    : typeof u === "string"
    ? "string"
    : typeof u === "number"
    ? "float64"
    : typeof u === "boolean"
    ? "bool"
    : Array.isArray(u)
    ? "[]interface {}"
    : "map[string]interface {}"

/** A field the way Go fills it: any ASCII case of the key matches, the last occurrence wins. */
const field = (body: Readonly<Record<string, unknown>>, name: string): { readonly key: string; readonly value: unknown } | undefined => {
  let found: { key: string; value: unknown } | undefined
  for (const key of Object.keys(body)) {
    if (key.length === name.length && key.toLowerCase() === name) found = { key, value: body[key] }
  }
  return found
}

/** The position of a key in the document, for "first type error wins". */
const position = (body: Readonly<Record<string, unknown>>, key: string) => Object.keys(body).indexOf(key)

// Go keeps a BOM as an (invalid) character; JSON.parse must see it too.
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true })

const bad = (message: string) => Either.left(new BadRequest({ message }))

/**
 * Go's wording for a body that is not JSON. The core's decoder (a port of Go's scanner)
 * names syntax errors exactly; a body whose first value is fine but is followed by more
 * bytes (Go's decoder would ignore them) is refused here.
 */
const syntaxError = (bytes: Uint8Array): string => {
  const decoded = decodeJobRequest("/api/embed", bytes)
  if (Either.isLeft(decoded) && /^(invalid character|unexpected EOF)/.test(decoded.left.message)) return decoded.left.message
  return "invalid character after top-level value"
}

/** The body as a JSON object, or Go's decoder error. */
const parse = (struct: string, bytes: Uint8Array): Either.Either<Readonly<Record<string, unknown>>, Invalid> => {
  const text = utf8.decode(bytes)
  // gin's ShouldBindJSON hands back io.EOF for an empty body.
  if (text.trim() === "") return bad("EOF")
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return bad(syntaxError(bytes))
  }
  if (parsed === null) return Either.right({})
  if (!isRecord(parsed)) return bad(`json: cannot unmarshal ${jsonType(parsed)} into Go value of type openai.${struct}`)
  return Either.right(parsed)
}

interface Checked {
  readonly key: string
  readonly message: string
}

/** Type errors of the fields foreman reads, the first in document order as Go reports it. */
const typeError = (route: Route, body: Readonly<Record<string, unknown>>): string | undefined => {
  const { struct } = routes[route]
  const errors: Array<Checked> = []
  const expect = (name: string, goType: string, ok: (value: unknown) => boolean) => {
    const found = field(body, name)
    if (found === undefined || found.value === null || ok(found.value)) return
    errors.push({
      key: found.key,
      message: `json: cannot unmarshal ${jsonType(found.value)} into Go struct field ${struct}.${name} of type ${goType}`
    })
  }
  expect("model", "string", (value) => typeof value === "string")
  if (route === "/v1/chat/completions") expect("messages", "[]openai.Message", Array.isArray)
  errors.sort((a, b) => position(body, a.key) - position(body, b.key))
  return errors[0]?.message
}

/** The middleware's own checks, which come before the model's (reference §8.2–§8.4). */
const contentError = (route: Route, body: Readonly<Record<string, unknown>>): string | undefined => {
  switch (route) {
    case "/v1/chat/completions": {
      const messages = field(body, "messages")?.value
      return Array.isArray(messages) && messages.length > 0 ? undefined : "[] is too short - 'messages'"
    }
    case "/v1/completions": {
      const prompt = field(body, "prompt")?.value
      return prompt === undefined || prompt === null || typeof prompt === "string"
        ? undefined
        : `invalid type for 'prompt' field: ${goDynamicType(prompt)}`
    }
    case "/v1/embeddings": {
      const input = field(body, "input")?.value
      if (input === undefined || input === null || (Array.isArray(input) && input.length === 0)) return "invalid input"
      const valid = typeof input === "string" || (Array.isArray(input) && input.every((item) => typeof item === "string"))
      return valid ? undefined : "invalid input type"
    }
  }
}

/**
 * Decodes an OpenAI job request the way Ollama's `/v1` routes would, as far as foreman needs
 * to: a `BadRequest` (400) or, where Ollama answers 404 for a missing model (completions and
 * embeddings, whose native handlers do), `ModelNotFound`. Whether the model exists is the
 * job's own check (`Jobs`), with the grace re-check.
 */
export const decode = (route: Route, bytes: Uint8Array): Either.Either<OpenAiRequest, Invalid> => {
  const { kind, struct } = routes[route]
  const parsed = parse(struct, bytes)
  if (Either.isLeft(parsed)) return Either.left(parsed.left)
  const body = parsed.right
  const typeMessage = typeError(route, body)
  if (typeMessage !== undefined) return bad(typeMessage)
  const contentMessage = contentError(route, body)
  if (contentMessage !== undefined) return bad(contentMessage)

  const raw = field(body, "model")?.value
  const model = typeof raw === "string" ? raw : ""
  if (ModelName.trimSpace(model) === "") {
    return kind === "/api/chat"
      ? bad("model is required")
      : Either.left(new ModelNotFound({ model, message: `model '${model}' not found` }))
  }
  const source = ModelName.source(model)
  if (Either.isLeft(source)) return bad(source.left)
  if (Option.isNone(ModelName.parseUntrimmed(source.right.name))) return bad("invalid model name")
  return Either.right({ route, model, body })
}

/** Whether the caller asked for a streamed answer (OpenAI's default is one JSON body). */
export const streams = (body: Readonly<Record<string, unknown>>): boolean => field(body, "stream")?.value === true

/**
 * The body of the same request as an async job: never streamed, since the stored result is
 * the final body. Any spelling of `stream` goes (Go would let the last one win).
 */
export const asyncBody = (body: Readonly<Record<string, unknown>>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(body)) {
    if (key.toLowerCase() !== "stream") out[key] = value
  }
  out["stream"] = false
  return out
}
