/**
 * API keys at the edge: which `Access` a request has (`src/auth/access.ts`), set for the
 * request's fiber before any route runs. Secure by default: with keys on, every route needs a
 * valid key except the public ones; a missing or wrong key is a 401 in the caller's dialect.
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Access from "../auth/access.ts"
import type { KeysService } from "../auth/Keys.ts"
import { Unauthorized } from "../Errors.ts"
import * as HttpErrors from "./errors.ts"

/** In the caller's dialect: OpenAI's envelope (`invalid_api_key`) under `/v1`, Ollama's elsewhere. */
const unauthorized = (request: HttpServerRequest.HttpServerRequest, message: string) => {
  const error = new Unauthorized({ message })
  return Effect.succeed(HttpErrors.forPath(request.url)(error))
}

export const authenticate = (options: {
  readonly keys: KeysService
  /** `--allow-unauthenticated`: with no keys, serve other machines anyway. */
  readonly allowUnauthenticated: boolean
  /** Whether the request came to a loopback address of this machine. */
  readonly fromThisMachine: (request: HttpServerRequest.HttpServerRequest) => boolean
}) =>
<E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.flatMap(options.keys.enabled, (enabled) => {
      if (!enabled) {
        // No keys: open, as on loopback without access control. Keys removed while foreman
        // serves other machines do not open it to them.
        return options.allowUnauthenticated || options.fromThisMachine(request)
          ? Effect.locally(app, Access.currentAccess, Access.open)
          : unauthorized(request, "unauthorized: foreman has no API keys to check (add one: foreman-effect keys add NAME)")
      }
      const key = Access.presentedKey(request.headers)
      if (key === undefined) {
        const path = request.url.split("?")[0] ?? "/"
        return Access.isPublic(request.method, path)
          ? Effect.locally(app, Access.currentAccess, Access.anonymous)
          : unauthorized(request, "unauthorized")
      }
      return Effect.flatMap(options.keys.verify(key), (caller) =>
        Option.isSome(caller)
          ? Effect.locally(app, Access.currentAccess, Access.withKey(caller.value))
          : unauthorized(request, "unauthorized"))
    }))
