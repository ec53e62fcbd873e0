/**
 * What a request may do, by the key it presented (`Keys`). The HTTP edge (`src/http/server.ts`)
 * decides `Access` once per request and sets it for the request's fiber; routes that need
 * more than a user key say so (`requireAdmin`), and the async jobs API shows a user key its
 * own jobs only (`owner`, `viewer`).
 */
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import { Forbidden } from "../Errors.ts"
import { type Caller, ownerOf } from "./Keys.ts"

/**
 * `Open`: keys are off (no key in the file): everything is allowed, as without access
 * control. `Public`: keys are on and the request presented none: only the public routes.
 * `Key`: a valid key's caller.
 */
export type Access =
  | { readonly _tag: "Open" }
  | { readonly _tag: "Public" }
  | { readonly _tag: "Key"; readonly caller: Caller }

export const open: Access = { _tag: "Open" }
export const anonymous: Access = { _tag: "Public" }
export const withKey = (caller: Caller): Access => ({ _tag: "Key", caller })

/** The access of the request being served (the edge sets it; `Public` outside a request). */
export const currentAccess = FiberRef.unsafeMake<Access>(anonymous)

/** The key a request presents: `Authorization: Bearer KEY` (OpenAI, ollama-js, curl) or `x-api-key: KEY` (Anthropic). */
export const presentedKey = (headers: Readonly<Record<string, string | undefined>>): string | undefined => {
  const authorization = headers["authorization"]
  if (authorization !== undefined) {
    const match = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization)
    if (match !== null) return match[1]
  }
  const apiKey = headers["x-api-key"]?.trim()
  return apiKey === undefined || apiKey === "" ? undefined : apiKey
}

/**
 * Routes anyone may call while keys are on: `GET`/`HEAD /` (clients probe it to see the server
 * is up) and `/foreman/health` (then only its `status`), and CORS preflights (a browser sends
 * them without credentials).
 */
export const isPublic = (method: string, path: string): boolean =>
  method === "OPTIONS" || ((method === "GET" || method === "HEAD") && (path === "/" || path === "/foreman/health"))

/** Whether `access` may do what only an admin may: with keys off, anyone. */
export const isAdmin = (access: Access): boolean => access._tag === "Open" || (access._tag === "Key" && access.caller.role === "admin")

/** A route for admin keys only (model management, metrics): a user key gets 403. */
export const requireAdmin = <A, E, R>(handler: Effect.Effect<A, E, R>): Effect.Effect<A, E | Forbidden, R> =>
  Effect.flatMap(FiberRef.get(currentAccess), (access): Effect.Effect<A, E | Forbidden, R> =>
    isAdmin(access)
      ? handler
      : Effect.fail(new Forbidden({ message: "forbidden: this route needs an admin key" })))

/** Who a job submitted now belongs to: the key (`ownerOf`), or nobody (keys off: admin's). */
export const owner = (access: Access): string | undefined => (access._tag === "Key" ? ownerOf(access.caller) : undefined)

/** Whose jobs `access` may see: a user key its own; an admin (or keys off) all. */
export const viewer = (access: Access): { readonly owner?: string } =>
  access._tag === "Key" && access.caller.role !== "admin" ? { owner: ownerOf(access.caller) } : {}

/** The caller's name for logs and metrics (`""` with keys off). */
export const callerName = (access: Access): string => (access._tag === "Key" ? access.caller.name : "")
