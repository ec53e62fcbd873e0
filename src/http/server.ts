/**
 * The HTTP app: every route registered on the ForemanRouter, with the one error mapping
 * (`errors.ts`) at the edge. A known path with the wrong method answers 405, with Ollama's
 * text (as a JSON error body, so every client can read it); any other path no route serves
 * passes through to the target (`forward.ts`), but foreman's own `/foreman/*`, whose unknown
 * paths answer 404 with Ollama's text.
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
import * as Schema from "effect/Schema"
import { ForemanConfig, type ForemanSettings } from "../Config.ts"
import { Keys, type KeysService } from "../auth/Keys.ts"
import { BadRequest, ForemanError, Forbidden, Unprotected } from "../Errors.ts"
import { authenticate } from "./authenticate.ts"
import * as ForemanApi from "./api/ForemanApi.ts"
import * as HttpErrors from "./errors.ts"
import * as Forward from "./forward.ts"
import * as Origins from "./origins.ts"
import { ForemanRouter } from "./Router.ts"

const isForemanError = Schema.is(ForemanError)

/** A matcher for "is this path served by some route, with any method". */
const knownPaths = <E, R>(router: HttpRouter.HttpRouter<E, R>) => {
  const paths = [...Chunk.toReadonlyArray(router.routes).map((route) => route.path), ...ForemanApi.paths]
  const patterns = paths.map((path) =>
    new RegExp("^" + path.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\/:[^/]+/g, "/[^/]+").replace(/\*/g, ".*") + "$")
  )
  return (path: string) => patterns.some((pattern) => pattern.test(path))
}

/**
 * Secure by default: serving other machines needs keys to check, or saying otherwise. The
 * server checks it; the command line checks it first too, before the port is bound.
 */
export const guardExposure: Effect.Effect<void, Unprotected, ForemanConfig | Keys> = Effect.gen(function*() {
  const config = yield* ForemanConfig
  if (Origins.isLoopback(config.host) || config.allowUnauthenticated) return
  if (!(yield* (yield* Keys).enabled)) return yield* new Unprotected({ host: config.host })
})

export const app = <E, R>(router: HttpRouter.HttpRouter<E, R>) =>
  Effect.gen(function*() {
    const config = yield* ForemanConfig
    const keys = yield* Keys
    yield* guardExposure
    const routed = yield* HttpRouter.toHttpApp(router)
    const isKnown = knownPaths(router)
    const forward = yield* Forward.make
    return routed.pipe(
      Effect.catchAllCause((cause) =>
        Effect.gen(function*() {
          const failure = Cause.failureOption(cause)
          if (Option.isNone(failure)) {
            if (Cause.isInterruptedOnly(cause)) return yield* Effect.failCause(cause)
            return yield* HttpErrors.defect(cause)
          }
          const error = failure.value
          if (isForemanError(error)) return HttpErrors.ollama(error, yield* HttpErrors.replyOptions)
          if (typeof error === "object" && error !== null && "_tag" in error && error._tag === "RouteNotFound") {
            const request = yield* HttpServerRequest.HttpServerRequest
            const path = request.url.split("?")[0] ?? "/"
            if (isKnown(path)) return HttpServerResponse.unsafeJson({ error: "405 method not allowed" }, { status: 405 })
            if (!Forward.forwards(request.method, path)) {
              return HttpServerResponse.unsafeJson({ error: "404 page not found" }, { status: 404 })
            }
            // No route here answers for it, so its failures are answered in the path's dialect.
            return yield* forward.pipe(
              Effect.catchIf(isForemanError, (error) =>
                Effect.map(HttpErrors.replyOptions, (options) => HttpErrors.inDialectOf(request.url, error, options)))
            )
          }
          return yield* HttpErrors.defect(cause)
        })
      ),
      guard(config, keys)
    )
  })

/**
 * Ollama's origin and host rules before anything else (`origins.ts`), then CORS for browsers
 * only: a request without an `Origin` header (every non-browser client) gets no CORS headers
 * from the middleware anyway, so it skips it and its per-request response hook.
 */
const guard = (config: ForemanSettings, keys: KeysService) => <E, R>(routes: HttpApp.Default<E, R>): HttpApp.Default<E, R> => {
  const allowed = Origins.originMatcher([...Origins.defaultOrigins, ...config.origins])
  const loopbackListener = Origins.isLoopback(config.host)
  /**
   * The Host rule holds for connections that arrived on a loopback address: on a loopback
   * listener that is all of them, on `0.0.0.0` those from this machine (a page's name that
   * rebinds to 127.0.0.1 comes that way). Where the server says nothing of its socket, the
   * listener decides.
   */
  const arrivedOnLoopback = (request: HttpServerRequest.HttpServerRequest) => {
    const local = (request.source as { readonly socket?: { readonly localAddress?: string } } | undefined)?.socket?.localAddress
    return local === undefined ? loopbackListener : Origins.isLoopback(local)
  }
  // Then the key (`authenticate.ts`), inside CORS so that a page may read its 401.
  const app = authenticate({ keys, allowUnauthenticated: config.allowUnauthenticated, fromThisMachine: arrivedOnLoopback })(routes)
  // A page may read why it was refused, when to come back, and where its async job is.
  const withCors = HttpMiddleware.cors({ allowedOrigins: allowed, exposedHeaders: ["www-authenticate", "retry-after", "location"] })(app)
  return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    // An absolute-form target (`POST http://x/api/chat`) would route by its path while the
    // Host rule reads the header: refused, as the caller's error.
    if (!request.url.startsWith("/")) {
      const target = request.url.length > 200 ? `${request.url.slice(0, 200)}...` : request.url
      return Effect.succeed(HttpErrors.ollama(
        new BadRequest({ message: `the request target must be a path such as /api/chat, not ${JSON.stringify(target)}` })
      ))
    }
    const origin = request.headers["origin"]
    const host = request.headers["host"]
    if (origin !== undefined && !Origins.isSameOrigin(origin, host) && !allowed(origin)) {
      return forbidden(request, `origin ${JSON.stringify(origin)} is not allowed (--origins allows more)`)
    }
    if (arrivedOnLoopback(request) && !Origins.isLocalHost(host)) {
      return forbidden(request, `host ${JSON.stringify(host)} is not local (a request to foreman on a loopback address must name a local host)`)
    }
    return request.method === "OPTIONS" || origin !== undefined ? withCors : app
  })
}

/** In the caller's dialect (`HttpErrors.dialectOf`). */
const forbidden = (request: HttpServerRequest.HttpServerRequest, reason: string) =>
  Effect.succeed(HttpErrors.inDialectOf(request.url, new Forbidden({ message: `forbidden: ${reason}` })))

/** Serves the ForemanRouter's routes on the HttpServer the runtime provides. */
export const layer = ForemanRouter.unwrap((router) =>
  Layer.unwrapEffect(Effect.map(app(router), (httpApp) => HttpServer.serve(httpApp)))
)
