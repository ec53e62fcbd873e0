/**
 * The rest passes through (issue 16): a path neither foreman nor a plugin serves goes to the
 * target as it is (the one `X-Foreman-Target` names, else the only one: with several and no
 * name, a 400 that lists them, since foreman cannot know what the route does to a target), and its answer comes back as it is, so a route the next Ollama
 * release adds works through foreman without a foreman release (and the target's own 404
 * `404 page not found` answers a path it does not know either). Such a call is not a job: no
 * model check, no queue, no priority, no async; and with keys on it is for admin keys only,
 * since foreman cannot know what an unknown route does. The router's not-found handler
 * (`server.ts`) is the one place that calls it.
 */
import * as HttpMethod from "@effect/platform/HttpMethod"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import { requireAdmin } from "../auth/access.ts"
import { ForemanConfig } from "../Config.ts"
import { Targets, type Target } from "../target/Target.ts"
import type { Upstream } from "../target/TargetClient.ts"
import { readBody } from "./body.ts"
import * as TargetChoice from "./targetChoice.ts"

/**
 * Whether a path foreman has no route for goes to the target: not under `/foreman` (foreman's
 * own namespace, whose 404 stays foreman's), and not with a method outside HTTP's usual set
 * (Ollama's router has routes for those only, so its answer would be a 404 anyway).
 */
export const forwards = (method: string, path: string): boolean =>
  HttpMethod.isHttpMethod(method) && path !== "/foreman" && !path.startsWith("/foreman/")

/**
 * The caller's headers that say what its body is and what answer it takes. Nothing else: not
 * its key (`Authorization`, `x-api-key` are foreman's), `Host` (the target's own authority),
 * `Origin` (checked by foreman already), foreman's own (`X-Foreman-*`, `Prefer`), hop-by-hop.
 */
const requestHeaders = ["content-type", "content-encoding", "accept"] as const

/**
 * The target's headers that do not go back: hop-by-hop ones and those the connection to the
 * caller sets itself (length and framing of a body that is streamed, the date), and CORS,
 * which foreman answers for itself.
 */
const notForwarded = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "content-length",
  "content-type",
  "date"
])

const answerHeaders = (headers: Upstream["headers"]): Record<string, string | ReadonlyArray<string>> => {
  const kept: Record<string, string | ReadonlyArray<string>> = {}
  if (headers === undefined) return kept
  const named = String(headers["connection"] ?? "").toLowerCase().split(",").map((name) => name.trim())
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase()
    if (value === undefined || notForwarded.has(lower) || named.includes(lower) || lower.startsWith("access-control-")) continue
    kept[lower] = value
  }
  return kept
}

/** Passes the request being served to `target`: method, path and query, body, and the headers above. */
export const forward = (target: Target, maxBodySize: number) =>
  requireAdmin(Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const method = request.method
    const headers: Record<string, string> = {}
    for (const name of requestHeaders) {
      const value = request.headers[name]
      if (value !== undefined) headers[name] = value
    }
    // Within --max-body-size, as the other pass-through routes (Ollama's only upload that
    // can be larger, blobs, has its route).
    const body = yield* readBody(maxBodySize)
    const upstream = yield* target.client.raw(method, request.url, body.byteLength === 0 ? undefined : body, headers)
    return HttpServerResponse.raw(upstream.body, {
      status: upstream.status,
      headers: answerHeaders(upstream.headers),
      ...(upstream.contentType === undefined ? {} : { contentType: upstream.contentType })
    })
  }))

/** `forward` to the request's target (`X-Foreman-Target`, else the only one). */
export const make = Effect.gen(function*() {
  const config = yield* ForemanConfig
  const targets = yield* Targets
  return requireAdmin(Effect.gen(function*() {
    const target = yield* TargetChoice.required(targets, yield* HttpServerRequest.HttpServerRequest)
    return yield* forward(target, config.maxBodySize)
  }))
})
