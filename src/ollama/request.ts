/**
 * The checks Ollama makes on a job request body, so foreman refuses bad input before queueing
 * with Ollama's status and text (reference §0, §3, §5.2): Go's decoding into the request
 * struct (`GoJson.ts`), then the handler's own checks. The bytes themselves are forwarded
 * untouched elsewhere; this module only looks at them.
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { BadRequest, ModelNotFound } from "../Errors.ts"
import * as GoJson from "./GoJson.ts"
import { loadKey } from "./loadOptions.ts"
import * as ModelName from "./ModelName.ts"

export type JobEndpoint = "/api/generate" | "/api/chat" | "/api/embed" | "/api/embeddings"

export interface JobRequest {
  readonly endpoint: JobEndpoint
  /** Exactly as the client sent it (`""` when absent). */
  readonly model: string
  /** generate/chat stream unless `stream` is an explicit `false`; embed/embeddings never stream. */
  readonly stream: boolean
  /** The parsed top-level object (`{}` for a `null` body). */
  readonly body: Record<string, unknown>
  /** The options that make the target load the model again (`loadOptions.ts`); `""`: none set. */
  readonly load: string
}

// The fields foreman checks, as Go declares them; `options` and `shift` are read, not checked
// (the target will): they are the request's load (`loadOptions.ts`).

const options = GoJson.unchecked("map[string]interface {}")
const shift = GoJson.unchecked("*bool")

/**
 * `api.Message` decodes through its own `UnmarshalJSON` (it lower-cases `role`) via a local
 * `type Alias Message`, so a message that is not an object is reported as `api.Alias`.
 */
const Message = GoJson.struct("api.Alias", { role: GoJson.string, content: GoJson.string }, { unmarshaler: true })

const GenerateRequest = GoJson.struct("api.GenerateRequest", {
  model: GoJson.string,
  prompt: GoJson.string,
  suffix: GoJson.string,
  system: GoJson.string,
  template: GoJson.string,
  stream: GoJson.boolPointer,
  options,
  shift
})

const ChatRequest = GoJson.struct("api.ChatRequest", {
  model: GoJson.string,
  messages: GoJson.slice(Message, "[]api.Message"),
  stream: GoJson.boolPointer,
  options,
  shift
})

const EmbedRequest = GoJson.struct("api.EmbedRequest", { model: GoJson.string, input: GoJson.any, options })

const EmbeddingRequest = GoJson.struct("api.EmbeddingRequest", { model: GoJson.string, prompt: GoJson.string, options })

/** What the handlers go on to use, common to the four request types. */
interface Checked {
  readonly model?: string
  readonly stream?: boolean
  readonly input?: unknown
  readonly options?: unknown
  readonly shift?: unknown
}

const decoders: Record<JobEndpoint, GoJson.Decoder<Checked>> = {
  "/api/generate": GoJson.decoder(GenerateRequest),
  "/api/chat": GoJson.decoder(ChatRequest),
  "/api/embed": GoJson.decoder(EmbedRequest),
  "/api/embeddings": GoJson.decoder(EmbeddingRequest)
}

const badRequest = (message: string) => Either.left(new BadRequest({ message }))

/** `/api/embed`'s `input`: absent, a string, or an array of strings. */
const isValidInput = (input: unknown): boolean =>
  input === undefined || typeof input === "string" ||
  (Array.isArray(input) && input.every((item) => typeof item === "string"))

/**
 * The handlers' checks of the requested model, in the wording of the Ollama route whose rules
 * apply: a missing or blank one (generate and embed answer 404 `model '' not found`, chat and
 * embeddings 400 `model is required`), both source suffixes, a name that does not parse. The
 * model comes back as sent; whether the target has it is the job's own check.
 */
export const checkModel = (endpoint: JobEndpoint, model: string): Either.Either<string, BadRequest | ModelNotFound> => {
  if (ModelName.trimSpace(model) === "") {
    return endpoint === "/api/generate" || endpoint === "/api/embed"
      ? Either.left(new ModelNotFound({ model, message: `model '${model}' not found` }))
      : badRequest("model is required")
  }
  const source = ModelName.source(model)
  if (Either.isLeft(source)) return badRequest(source.left)
  if (Option.isNone(ModelName.parseUntrimmed(source.right.name))) return badRequest("invalid model name")
  return Either.right(model)
}

/**
 * Decodes a job request body as Ollama would, failing with Ollama's text: `BadRequest` (400)
 * or, where Ollama answers 404 for a missing model, `ModelNotFound`.
 */
export const decodeJobRequest = (
  endpoint: JobEndpoint,
  bytes: Uint8Array
): Either.Either<JobRequest, BadRequest | ModelNotFound> => {
  const decoded = decoders[endpoint](bytes)
  // gin hands Go's io.EOF to the handler, which answers this.
  if (Either.isLeft(decoded)) return badRequest(decoded.left === GoJson.EOF ? "missing request body" : decoded.left)
  const { body, fields } = decoded.right

  if (endpoint === "/api/embed" && !isValidInput(fields.input)) return badRequest("invalid input type")

  const streams = endpoint === "/api/generate" || endpoint === "/api/chat"
  return Either.map(checkModel(endpoint, fields.model ?? ""), (model) => ({
    endpoint,
    model,
    stream: streams && fields.stream !== false,
    body,
    load: loadKey(fields)
  }))
}

const isJobEndpoint = (endpoint: string): endpoint is JobEndpoint => Object.hasOwn(decoders, endpoint)

/**
 * The load of a stored job's body (an async job restored after a restart), read as
 * `decodeJobRequest` reads it when the job arrives. `""` for an endpoint that is not one of
 * Ollama's native job routes: Ollama's `/v1` routes map no field to a load option.
 */
export const loadOf = (endpoint: string, bytes: Uint8Array): string => {
  if (!isJobEndpoint(endpoint)) return ""
  const decoded = decoders[endpoint](bytes)
  return Either.isLeft(decoded) ? "" : loadKey(decoded.right.fields)
}
