/**
 * Which target a request that is not a job goes to (model management, blobs, `/api/show`, a
 * forwarded path): the one `X-Foreman-Target` names, else the only one. With several targets
 * and no header, model management is refused (400, naming the targets): pulling or deleting
 * on a target picked for the caller is not something to guess.
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import { currentAccess, isAdmin } from "../auth/access.ts"
import { BadRequest } from "../Errors.ts"
import { hasModel } from "../inventory/Inventory.ts"
import * as ModelName from "../ollama/ModelName.ts"
import type { Target, TargetsService } from "../target/Target.ts"

/**
 * The request header that names the target a request is for: it pins a job there, and says
 * which target a model-management request (`/api/pull`, ...) or a forwarded path goes to.
 */
export const targetHeader = "x-foreman-target"

/**
 * The targets' names as the caller may read them: an admin their names, anyone else their
 * public names (a name taken from a URL's host is an address).
 */
const names = (targets: TargetsService) =>
  Effect.map(
    FiberRef.get(currentAccess),
    (access) => targets.all.map((target) => (isAdmin(access) ? target.name : target.publicName)).join(", ")
  )

/** The target of that name (or public name), or a 400 that lists the targets; `where` says where the name came from. */
export const byName = (targets: TargetsService, name: string, where: string): Effect.Effect<Target, BadRequest> =>
  Option.match(targets.byName(name), {
    onSome: Effect.succeed,
    onNone: () =>
      Effect.flatMap(names(targets), (listed) =>
        Effect.fail(new BadRequest({ message: `unknown target ${JSON.stringify(name)} in ${where}: the targets are ${listed}` })))
  })

/** The target the request's `X-Foreman-Target` names (none without one); a name no target has is a 400. */
export const named = (
  targets: TargetsService,
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<Option.Option<Target>, BadRequest> => {
  const header = request.headers[targetHeader]?.trim()
  if (header === undefined || header === "") return Effect.succeed(Option.none())
  return Effect.map(byName(targets, header, "X-Foreman-Target"), Option.some)
}

/** The named target, else the only one; with several and no name, a 400 that lists them. */
export const required = (
  targets: TargetsService,
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<Target, BadRequest> =>
  Effect.flatMap(named(targets, request), Option.match({
    onSome: Effect.succeed,
    onNone: () =>
      targets.all.length === 1
        ? Effect.succeed(targets.primary)
        : Effect.flatMap(names(targets), (listed) =>
          Effect.fail(new BadRequest({ message: `foreman has several targets: name one with the X-Foreman-Target header (${listed})` })))
  }))

/**
 * The named target, else the first whose inventory has `model` (by Ollama's name
 * normalisation), else the primary (whose answer is then Ollama's own for a model it lacks).
 */
export const forModel = (
  targets: TargetsService,
  request: HttpServerRequest.HttpServerRequest,
  model: string | undefined
): Effect.Effect<Target, BadRequest> =>
  Effect.flatMap(named(targets, request), Option.match({
    onSome: Effect.succeed,
    onNone: () => {
      const key = model === undefined ? Option.none() : ModelName.keyOf(model)
      if (targets.all.length === 1 || Option.isNone(key)) return Effect.succeed(targets.primary)
      return Effect.map(
        Effect.findFirst(targets.all, (target) => Effect.map(target.inventory.get, (state) => hasModel(state, key.value))),
        Option.getOrElse(() => targets.primary)
      )
    }
  }))
