/**
 * The OpenAI surface (reference §8): `/v1/models` from the inventory cache, and chat
 * completions, completions and embeddings as jobs through the scheduler, forwarded byte
 * for byte to the target's own `/v1` routes (which do the OpenAI <-> Ollama translation).
 * Whatever the target streams (SSE included, `data: [DONE]` and all) goes back chunk by
 * chunk. Every expected failure answers in OpenAI's error envelope.
 */
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import {
  accepted,
  AsyncJobs,
  type ForemanError,
  ForemanConfig,
  ForemanRouter,
  HttpErrors,
  Inventory,
  Jobs,
  prefersAsync,
  priorityHeader,
  priorityOf,
  readBody,
  streamed
} from "../../src/index.ts"
import * as Models from "./models.ts"
import * as Request from "./request.ts"

/** Answers a handler's expected failures in OpenAI's envelope (defects stay the server's 500). */
const inOpenAiDialect = <R>(handler: Effect.Effect<HttpServerResponse.HttpServerResponse, ForemanError, R>) =>
  handler.pipe(Effect.catchAll((error) => Effect.succeed(HttpErrors.openAi(error))))

export const layer = ForemanRouter.use((router) =>
  Effect.gen(function*() {
    const config = yield* ForemanConfig
    const inventory = yield* Inventory
    const jobs = yield* Jobs
    const asyncJobs = yield* AsyncJobs

    const job = (route: Request.Route) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const priority = yield* priorityOf(request, "interactive")
        const bytes = yield* readBody(config.maxBodySize)
        const decoded = yield* Request.decode(route, bytes)
        const { kind } = Request.routes[route]
        if (prefersAsync(request)) {
          // As on the Ollama routes: 202 now, the final body at the job's Location.
          const asyncPriority = request.headers[priorityHeader] === undefined ? "batch" : priority
          const view = yield* asyncJobs.submit({
            endpoint: route,
            kind,
            model: decoded.model,
            body: Request.asyncBody(decoded.body),
            priority: asyncPriority
          })
          return accepted(view)
        }
        return streamed(yield* jobs.run({ endpoint: route, kind, model: decoded.model, body: bytes, priority }))
      }).pipe(inOpenAiDialect)

    yield* router.get(
      "/v1/models",
      inventory.get.pipe(Effect.map((state) => HttpServerResponse.unsafeJson(Models.list(state.models))))
    )
    yield* router.get(
      "/v1/models/:model",
      Effect.gen(function*() {
        const params = yield* HttpRouter.params
        const state = yield* inventory.get
        const found = yield* Models.retrieve(state.models, params["model"] ?? "")
        return HttpServerResponse.unsafeJson(found)
      }).pipe(inOpenAiDialect)
    )
    yield* router.post("/v1/chat/completions", job("/v1/chat/completions"))
    yield* router.post("/v1/completions", job("/v1/completions"))
    yield* router.post("/v1/embeddings", job("/v1/embeddings"))
  })
)
