/**
 * The OpenAI surface (reference §8): `/v1/models` from the targets' inventory caches (each
 * model once, over every target: `TargetInventories`), and chat
 * completions, completions, embeddings, responses and transcriptions as jobs through the
 * scheduler, forwarded byte for byte to the target's own `/v1` routes (which do the
 * OpenAI <-> Ollama translation).
 * Whatever the target streams (SSE included, `data: [DONE]` and all) goes back chunk by
 * chunk. Every expected failure answers in OpenAI's error envelope.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import { ForemanRouter, HttpErrors, makeJobRoute, TargetInventories, Targets } from "../../src/index.ts"
import * as Models from "./models.ts"
import * as Request from "./request.ts"

/** Expected failures answer in OpenAI's envelope. */
const inOpenAiDialect = HttpErrors.inDialect("openai")

export const layer = ForemanRouter.use((router) =>
  Effect.gen(function*() {
    const inventories = TargetInventories.of(yield* Targets)
    const jobRoute = yield* makeJobRoute

    const job = (route: Request.Route) =>
      jobRoute({
        endpoint: route,
        kind: Request.routes[route].kind,
        decode: (bytes) =>
          Request.decode(route, bytes).pipe(
            Effect.map((decoded) => ({
              model: decoded.model,
              body: Request.asyncBody(decoded.body),
              stream: decoded.stream
            }))
          )
      }).pipe(inOpenAiDialect)

    yield* router.get(
      "/v1/models",
      inventories.models.pipe(Effect.map((models) => HttpServerResponse.unsafeJson(Models.list(models))))
    )
    yield* router.get(
      "/v1/models/:model",
      Effect.gen(function*() {
        const params = yield* HttpRouter.params
        const found = yield* Models.retrieve(yield* inventories.models, params["model"] ?? "")
        return HttpServerResponse.unsafeJson(found)
      }).pipe(inOpenAiDialect)
    )
    yield* router.post("/v1/chat/completions", job("/v1/chat/completions"))
    yield* router.post("/v1/completions", job("/v1/completions"))
    yield* router.post("/v1/embeddings", job("/v1/embeddings"))
    yield* router.post("/v1/responses", job("/v1/responses"))
    yield* router.post(
      "/v1/audio/transcriptions",
      jobRoute({
        endpoint: "/v1/audio/transcriptions",
        kind: "/api/chat",
        // The target answers once the whole transcription is done.
        decode: (bytes, request) =>
          Effect.map(Request.decodeTranscription(bytes, request.headers["content-type"]), ({ model }) => ({ model, body: {}, stream: false })),
        // A form cannot be stored as an async job's JSON body: answered in the request.
        async: false
      }).pipe(inOpenAiDialect)
    )
  })
)
