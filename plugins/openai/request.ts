/**
 * The checks foreman makes on an OpenAI request before it queues it (shared reference §8):
 * the ones that decide whether there is a job at all and for which model. Everything else
 * (message parts, images, tool-call arguments, reasoning values, sampling options, encoding
 * formats) is the target's to judge: its 400 comes back in the same envelope, so the rules
 * stay where they live and cannot drift from the Ollama version behind foreman.
 *
 * The texts are Ollama's: its `/v1` middlewares decode with Go's `encoding/json` (the core's
 * `GoJson`, as the native routes do), then the native handler checks the model (the core's
 * `checkModel`, with the rules of the native route each one feeds).
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { BadRequest, checkModel, GoJson, isError, type JobEndpoint, type ModelNotFound } from "../../src/index.ts"

// Ollama's `openai` request structs, with the fields foreman reads. `stream` is a plain Go
// `bool`: a `null` leaves an earlier value alone, and its type is the target's to check.

const ChatCompletionRequest = GoJson.struct("openai.ChatCompletionRequest", {
  model: GoJson.string,
  messages: GoJson.slice(GoJson.unchecked("openai.Message"), "[]openai.Message"),
  stream: GoJson.unchecked("bool")
})

const CompletionRequest = GoJson.struct("openai.CompletionRequest", {
  model: GoJson.string,
  prompt: GoJson.any,
  stream: GoJson.unchecked("bool")
})

const EmbedRequest = GoJson.struct("openai.EmbedRequest", { model: GoJson.string, input: GoJson.any })

// `stream` is a `*bool` here; `input` (a string or items) decodes through its own
// `UnmarshalJSON`, whose rules are the target's.
const ResponsesRequest = GoJson.struct("openai.ResponsesRequest", {
  model: GoJson.string,
  input: GoJson.unchecked("openai.ResponsesInput"),
  stream: GoJson.boolPointer
})

/** What foreman reads, common to the three request types. */
interface Checked {
  readonly model?: string
  readonly messages?: ReadonlyArray<unknown>
  readonly prompt?: unknown
  readonly stream?: unknown
  readonly input?: unknown
}

/**
 * The transcription route's own checks (Ollama's `TranscriptionMiddleware`): a multipart form
 * with a `model` and a non-empty `file`, then the chat handler's check of the model. The form
 * is forwarded as it came; only its model is read here.
 */
export const decodeTranscription = (
  bytes: Uint8Array,
  contentType: string | undefined
): Effect.Effect<{ readonly model: string }, BadRequest | ModelNotFound> =>
  Effect.gen(function*() {
    const notForm = new BadRequest({ message: "failed to parse multipart form: request Content-Type isn't multipart/form-data" })
    if (contentType === undefined || !/^\s*multipart\/form-data\s*;/i.test(contentType)) return yield* notForm
    const form = yield* Effect.tryPromise({
      try: () => new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { "content-type": contentType } }).formData(),
      catch: (cause) =>
        new BadRequest({ message: `failed to parse multipart form: ${isError(cause) ? cause.message : String(cause)}` })
    })
    const model = form.get("model")
    if (typeof model !== "string" || model === "") return yield* new BadRequest({ message: "model is required" })
    const file = form.get("file")
    if (file === null || typeof file === "string") return yield* new BadRequest({ message: "file is required: http: no such file" })
    if (file.size === 0) return yield* new BadRequest({ message: "audio file is empty" })
    return { model: yield* checkModel("/api/chat", model) }
  })

/** The JSON job routes, with the Ollama route whose rules each follows (the native handler behind its middleware). */
export const routes = {
  "/v1/chat/completions": { kind: "/api/chat" },
  "/v1/completions": { kind: "/api/generate" },
  "/v1/embeddings": { kind: "/api/embed" },
  "/v1/responses": { kind: "/api/chat" }
} as const satisfies Record<string, { readonly kind: JobEndpoint }>

export type Route = keyof typeof routes

const decoders: Record<Route, GoJson.Decoder<Checked>> = {
  "/v1/chat/completions": GoJson.decoder(ChatCompletionRequest),
  "/v1/completions": GoJson.decoder(CompletionRequest),
  "/v1/embeddings": GoJson.decoder(EmbedRequest),
  "/v1/responses": GoJson.decoder(ResponsesRequest)
}

export interface OpenAiRequest {
  readonly route: Route
  /** Exactly as the client sent it. */
  readonly model: string
  /** Whether the caller asked for a streamed answer (OpenAI's default is one JSON body). */
  readonly stream: boolean
  /** The parsed top-level object (`{}` for a `null` body); unknown fields kept. */
  readonly body: Readonly<Record<string, unknown>>
}

const bad = (message: string) => Either.left(new BadRequest({ message }))

/** The middleware's own checks, which come before the model's (reference §8.2–§8.4). */
const contentError = (route: Route, fields: Checked): string | undefined => {
  switch (route) {
    case "/v1/chat/completions":
      return fields.messages !== undefined && fields.messages.length > 0 ? undefined : "[] is too short - 'messages'"
    case "/v1/completions":
      return fields.prompt === undefined || typeof fields.prompt === "string"
        ? undefined
        : `invalid type for 'prompt' field: ${GoJson.dynamicType(fields.prompt)}`
    case "/v1/embeddings": {
      const { input } = fields
      if (input === undefined || (Array.isArray(input) && input.length === 0)) return "invalid input"
      const valid = typeof input === "string" || (Array.isArray(input) && input.every((item) => typeof item === "string"))
      return valid ? undefined : "invalid input type"
    }
    case "/v1/responses":
      // Its conversion's errors (input items, content types, tools) are the target's.
      return undefined
  }
}

/**
 * Decodes an OpenAI job request the way Ollama's `/v1` routes would, as far as foreman needs
 * to: a `BadRequest` (400) or, where Ollama answers 404 for a missing model (completions and
 * embeddings, whose native handlers do), `ModelNotFound`. Whether the model exists is the
 * job's own check (`Jobs`), with the grace re-check.
 */
export const decode = (route: Route, bytes: Uint8Array): Either.Either<OpenAiRequest, BadRequest | ModelNotFound> => {
  // gin's ShouldBindJSON hands back io.EOF for an empty body, and the middleware says so.
  const decoded = decoders[route](bytes)
  if (Either.isLeft(decoded)) return bad(decoded.left)
  const { body, fields } = decoded.right
  const contentMessage = contentError(route, fields)
  if (contentMessage !== undefined) return bad(contentMessage)
  return Either.map(checkModel(routes[route].kind, fields.model ?? ""), (model) => ({ route, model, stream: fields.stream === true, body }))
}

/**
 * The body of the same request as an async job: never streamed, since the stored result is
 * the final body.
 */
export const asyncBody = (body: Readonly<Record<string, unknown>>): Record<string, unknown> => GoJson.setField(body, "stream", false)
