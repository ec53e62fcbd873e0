/**
 * The Ollama surface (ADR-0003): the same paths, bodies, streaming and errors as Ollama.
 * Inference routes become jobs; `/api/tags` and `/api/ps` answer from the (primary) target's inventory cache
 * (so they work while the target sleeps); `/api/show` and model management are passed
 * through, and model management is followed by an inventory refresh.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import { requireAdmin } from "../auth/access.ts"
import { ForemanConfig } from "../Config.ts"
import type { VersionResponse } from "../ollama/schema.ts"
import { Targets } from "../target/Target.ts"
import type { JobEndpoint } from "../target/TargetClient.ts"
import { readBody } from "./body.ts"
import { makeJobRoute, streamed } from "./jobRoute.ts"
import { decodeJobRequest } from "../ollama/request.ts"
import { guard } from "../streams/streams.ts"
import { ForemanRouter } from "./Router.ts"

const contentType = "application/json; charset=utf-8"
const json = (body: unknown) => HttpServerResponse.unsafeJson(body, { contentType })

/**
 * `{"models": [...]}` of an inventory list, encoded once per list: chat UIs poll
 * `/api/tags` and `/api/ps` constantly, and the lists change only when the target's do.
 */
const encoded = new WeakMap<ReadonlyArray<unknown>, Uint8Array>()
const encoder = new TextEncoder()
const modelsJson = (models: ReadonlyArray<unknown>) => {
  let body = encoded.get(models)
  if (body === undefined) {
    body = encoder.encode(JSON.stringify({ models }))
    encoded.set(models, body)
  }
  return HttpServerResponse.uint8Array(body, { contentType })
}

export const layer = ForemanRouter.use((router) =>
  Effect.gen(function*() {
    const config = yield* ForemanConfig
    // One target today: what is not a job (the cache, pass-through calls) is the primary's.
    const { primary } = yield* Targets
    const { client: target, inventory } = primary
    const lastVersion = yield* Ref.make(Option.none<VersionResponse>())
    // The refresh after a model-management call is started from the stream's end: a fiber of
    // this layer's scope, interrupted at shutdown.
    const runFork = yield* FiberSet.makeRuntime<never>()

    const jobRoute = yield* makeJobRoute
    const job = (endpoint: JobEndpoint) =>
      jobRoute({ endpoint, kind: endpoint, decode: (bytes) => decodeJobRequest(endpoint, bytes) })

    /** Passes a model-management call through, then refreshes the inventory once it ends. */
    const manage = (method: "POST" | "DELETE", path: string) =>
      Effect.gen(function*() {
        const body = yield* readBody(config.maxBodySize)
        const upstream = yield* target.raw(method, path, body)
        return streamed({ ...upstream, body: guard(upstream.body, { onEnd: () => runFork(inventory.requestPoll) }) })
      })

    yield* router.get("/", Effect.succeed(HttpServerResponse.text("Ollama is running")))
    yield* router.get(
      "/api/version",
      target.version.pipe(
        Effect.tap((version) => Ref.set(lastVersion, Option.some(version))),
        // While the target sleeps, the last version it reported still describes it.
        Effect.catchTag("TargetUnreachable", (error) =>
          Ref.get(lastVersion).pipe(Effect.flatMap(Option.match({ onNone: () => Effect.fail(error), onSome: Effect.succeed })))),
        Effect.map(json)
      )
    )
    yield* router.get(
      "/api/tags",
      inventory.get.pipe(Effect.map((state) => modelsJson(state.models)))
    )
    yield* router.get(
      "/api/ps",
      inventory.get.pipe(Effect.map((state) => modelsJson(state.resident)))
    )
    yield* router.post("/api/generate", job("/api/generate"))
    yield* router.post("/api/chat", job("/api/chat"))
    yield* router.post("/api/embed", job("/api/embed"))
    yield* router.post("/api/embeddings", job("/api/embeddings"))
    yield* router.post(
      "/api/show",
      readBody(config.maxBodySize).pipe(Effect.flatMap((body) => target.raw("POST", "/api/show", body)), Effect.map(streamed))
    )
    // Newer routes of Ollama's that are not inference: passed through as they are (the
    // account's routes for admin keys only: they name the ollama.com account and sign it out).
    const passThrough = (method: "GET" | "POST", path: string) =>
      Effect.gen(function*() {
        const body = method === "GET" ? undefined : yield* readBody(config.maxBodySize)
        return streamed(yield* target.raw(method, path, body))
      })
    yield* router.get("/api/status", passThrough("GET", "/api/status"))
    yield* router.post("/api/me", requireAdmin(passThrough("POST", "/api/me")))
    yield* router.post("/api/signout", requireAdmin(passThrough("POST", "/api/signout")))
    yield* router.post("/api/experimental/web_search", passThrough("POST", "/api/experimental/web_search"))
    yield* router.post("/api/experimental/web_fetch", passThrough("POST", "/api/experimental/web_fetch"))
    yield* router.get("/api/experimental/model-recommendations", passThrough("GET", "/api/experimental/model-recommendations"))
    // Model management is for admin keys only.
    yield* router.post("/api/pull", requireAdmin(manage("POST", "/api/pull")))
    yield* router.post("/api/push", requireAdmin(manage("POST", "/api/push")))
    yield* router.post("/api/create", requireAdmin(manage("POST", "/api/create")))
    yield* router.post("/api/copy", requireAdmin(manage("POST", "/api/copy")))
    yield* router.del("/api/delete", requireAdmin(manage("DELETE", "/api/delete")))
    // Blobs can be gigabytes (GGUF files for /api/create): streamed, never buffered.
    const blob = (method: "HEAD" | "POST") =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const length = Number(request.headers["content-length"])
        const upstream = yield* target.raw(
          method,
          request.url,
          method === "POST"
            ? { stream: request.stream, ...(Number.isFinite(length) ? { contentLength: length } : {}) }
            : undefined
        )
        return streamed(upstream)
      })
    yield* router.head("/api/blobs/:digest", requireAdmin(blob("HEAD")))
    yield* router.post("/api/blobs/:digest", requireAdmin(blob("POST")))
  })
)
