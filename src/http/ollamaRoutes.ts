/**
 * The Ollama surface (ADR-0003): the same paths, bodies, streaming and errors as Ollama.
 * Inference routes become jobs; `/api/tags` and `/api/ps` answer from the targets' inventory
 * caches (so they work while targets sleep: `inventories.ts` says how several are one list);
 * `/api/show` and model management are passed through to one target (`targetChoice.ts`), and
 * model management is followed by a refresh of that target's inventory.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import { requireAdmin } from "../auth/access.ts"
import { ForemanConfig } from "../Config.ts"
import type { BadRequest } from "../Errors.ts"
import * as GoJson from "../ollama/GoJson.ts"
import type { VersionResponse } from "../ollama/schema.ts"
import * as Inventories from "../target/inventories.ts"
import { type Target, Targets } from "../target/Target.ts"
import type { JobEndpoint } from "../target/TargetClient.ts"
import { readBody } from "./body.ts"
import * as TargetChoice from "./targetChoice.ts"
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

/** The model a `/api/show` body names (`name`, the older field, wins as in Ollama), if it says. */
// `api.ShowRequest`'s names of the model, read as Go reads them (any case, the last one
// wins); their types are the target's to check.
const decodeShow = GoJson.decoder(GoJson.struct("api.ShowRequest", { model: GoJson.unchecked("string"), name: GoJson.unchecked("string") }))

/** The model a `/api/show` body names (`name`, the older field, first), to pick a target that has it. */
const modelOfBody = (body: Uint8Array): string | undefined => {
  const decoded = decodeShow(body)
  if (Either.isLeft(decoded)) return undefined
  const { model, name } = decoded.right.fields
  if (typeof name === "string" && name !== "") return name
  return typeof model === "string" ? model : undefined
}

export const layer = ForemanRouter.use((router) =>
  Effect.gen(function*() {
    const config = yield* ForemanConfig
    const targets = yield* Targets
    const inventories = Inventories.of(targets)
    /** Each target's last `/api/version`, for while it sleeps. */
    const lastVersions = yield* Effect.forEach(targets.all, () => Ref.make(Option.none<VersionResponse>()))
    /** The target a request that needs one goes to (`X-Foreman-Target`, else the only one). */
    const chosen = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => TargetChoice.required(targets, request))
    /** The same, else the primary (calls any target answers alike). */
    const chosenOrPrimary = Effect.flatMap(
      HttpServerRequest.HttpServerRequest,
      (request) => Effect.map(TargetChoice.named(targets, request), Option.getOrElse(() => targets.primary))
    )
    // The refresh after a model-management call is started from the stream's end: a fiber of
    // this layer's scope, interrupted at shutdown.
    const runFork = yield* FiberSet.makeRuntime<never>()

    const jobRoute = yield* makeJobRoute
    const job = (endpoint: JobEndpoint) =>
      jobRoute({ endpoint, kind: endpoint, decode: (bytes) => decodeJobRequest(endpoint, bytes) })

    /**
     * Passes a model-management call through to the chosen target, then refreshes that
     * target's inventory once it ends.
     */
    const manage = (method: "POST" | "DELETE", path: string) =>
      Effect.gen(function*() {
        const target = yield* chosen
        const body = yield* readBody(config.maxBodySize)
        const upstream = yield* target.client.raw(method, path, body)
        return streamed({ ...upstream, body: guard(upstream.body, { onEnd: () => runFork(target.inventory.requestPoll) }) })
      })

    /** A target's version: asked now, else (while it sleeps) the last one it reported. */
    const versionOf = (target: Target, index: number) =>
      target.client.version.pipe(
        Effect.tap((version) => Ref.set(lastVersions[index]!, Option.some(version))),
        Effect.catchTag("TargetUnreachable", (error) =>
          Ref.get(lastVersions[index]!).pipe(Effect.flatMap(Option.match({ onNone: () => Effect.fail(error), onSome: Effect.succeed }))))
      )

    yield* router.get("/", Effect.succeed(HttpServerResponse.text("Ollama is running")))
    yield* router.get(
      "/api/version",
      // The primary's; if it has never answered and sleeps, the first other target's that can tell.
      versionOf(targets.primary, 0).pipe(
        Effect.catchTag("TargetUnreachable", (error) =>
          Effect.firstSuccessOf([
            ...targets.all.slice(1).map((target, i) => versionOf(target, i + 1)),
            Effect.fail(error)
          ])),
        Effect.map(json)
      )
    )
    yield* router.get("/api/tags", Effect.map(inventories.models, modelsJson))
    yield* router.get("/api/ps", Effect.map(inventories.resident, modelsJson))
    yield* router.post("/api/generate", job("/api/generate"))
    yield* router.post("/api/chat", job("/api/chat"))
    yield* router.post("/api/embed", job("/api/embed"))
    yield* router.post("/api/embeddings", job("/api/embeddings"))
    yield* router.post(
      "/api/show",
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const body = yield* readBody(config.maxBodySize)
        // The named target, else the first that has the model.
        const target = yield* TargetChoice.forModel(targets, request, modelOfBody(body))
        return streamed(yield* target.client.raw("POST", "/api/show", body))
      })
    )
    // Newer routes of Ollama's that are not inference: passed through as they are (the
    // account's routes for admin keys only: they name the ollama.com account and sign it out).
    // The account is each target's own, so its routes need a target as model management
    // does; the others are answered alike by any target: the named one, else the primary.
    const passThrough = (method: "GET" | "POST", path: string, choose: Effect.Effect<Target, BadRequest, HttpServerRequest.HttpServerRequest>) =>
      Effect.gen(function*() {
        const target = yield* choose
        const body = method === "GET" ? undefined : yield* readBody(config.maxBodySize)
        return streamed(yield* target.client.raw(method, path, body))
      })
    yield* router.get("/api/status", passThrough("GET", "/api/status", chosenOrPrimary))
    yield* router.post("/api/me", requireAdmin(passThrough("POST", "/api/me", chosen)))
    yield* router.post("/api/signout", requireAdmin(passThrough("POST", "/api/signout", chosen)))
    yield* router.post("/api/experimental/web_search", passThrough("POST", "/api/experimental/web_search", chosenOrPrimary))
    yield* router.post("/api/experimental/web_fetch", passThrough("POST", "/api/experimental/web_fetch", chosenOrPrimary))
    yield* router.get(
      "/api/experimental/model-recommendations",
      passThrough("GET", "/api/experimental/model-recommendations", chosenOrPrimary)
    )
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
        const target = yield* chosen
        const length = Number(request.headers["content-length"])
        const upstream = yield* target.client.raw(
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
