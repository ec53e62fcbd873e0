/**
 * The HTTP app: every route registered on the ForemanRouter, with the one error mapping
 * (`errors.ts`) at the edge. Unknown paths answer 404 and known paths with the wrong method
 * 405, with Ollama's texts (as JSON error bodies, so every client can read them).
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { ForemanError } from "../Errors.ts"
import * as HttpErrors from "./errors.ts"
import { ForemanRouter } from "./Router.ts"

const foremanErrors = new Set<string>([
  "TargetUnreachable",
  "TargetError",
  "ModelNotFound",
  "BadRequest",
  "BodyTooLarge",
  "QueueFull",
  "RequestTimeout",
  "JobNotFound",
  "JobConflict"
])

const isForemanError = (error: unknown): error is ForemanError =>
  typeof error === "object" && error !== null && "_tag" in error && foremanErrors.has(String(error._tag))

/**
 * The browser origins Ollama allows by default (reference §0): local web apps, desktop and
 * editor webviews. Browser-based chat UIs that talk to Ollama directly keep working.
 */
export const isAllowedOrigin = (origin: string): boolean =>
  /^https?:\/\/(localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])(:\d+)?$/.test(origin) ||
  /^(app|file|tauri|vscode-webview|vscode-file):\/\//.test(origin)

/** A matcher for "is this path served by some route, with any method". */
const knownPaths = <E, R>(router: HttpRouter.HttpRouter<E, R>) => {
  const patterns = Chunk.toReadonlyArray(router.routes).map((route) =>
    new RegExp("^" + route.path.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\/:[^/]+/g, "/[^/]+").replace(/\*/g, ".*") + "$")
  )
  return (path: string) => patterns.some((pattern) => pattern.test(path))
}

export const app = <E, R>(router: HttpRouter.HttpRouter<E, R>) =>
  Effect.gen(function*() {
    const routed = yield* HttpRouter.toHttpApp(router)
    const isKnown = knownPaths(router)
    return routed.pipe(
      Effect.catchAllCause((cause) =>
        Effect.gen(function*() {
          const failure = Cause.failureOption(cause)
          if (Option.isNone(failure)) {
            if (Cause.isInterruptedOnly(cause)) return yield* Effect.failCause(cause)
            return yield* HttpErrors.defect(cause)
          }
          const error = failure.value
          if (isForemanError(error)) return HttpErrors.ollama(error)
          if (typeof error === "object" && error !== null && "_tag" in error && error._tag === "RouteNotFound") {
            const request = yield* HttpServerRequest.HttpServerRequest
            const path = request.url.split("?")[0] ?? "/"
            return isKnown(path)
              ? HttpServerResponse.unsafeJson({ error: "405 method not allowed" }, { status: 405 })
              : HttpServerResponse.unsafeJson({ error: "404 page not found" }, { status: 404 })
          }
          return yield* HttpErrors.defect(cause)
        })
      ),
      corsForBrowsers
    )
  })

const cors = HttpMiddleware.cors({ allowedOrigins: isAllowedOrigin })

/**
 * CORS for browsers only: a request without an `Origin` header (every non-browser client)
 * gets no CORS headers from the middleware anyway, so it skips it and its per-request
 * response hook.
 */
const corsForBrowsers = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> => {
  const withCors = cors(app)
  return Effect.flatMap(
    HttpServerRequest.HttpServerRequest,
    (request) => (request.method === "OPTIONS" || request.headers["origin"] !== undefined ? withCors : app)
  )
}

/** Serves the ForemanRouter's routes on the HttpServer the runtime provides. */
export const layer = ForemanRouter.unwrap((router) =>
  Layer.unwrapEffect(Effect.map(app(router), (httpApp) => HttpServer.serve(httpApp)))
)
