/**
 * The targets' inventories as one, for the routes that list models (`/api/tags`, `/api/ps`,
 * `/v1/models`) and health. Each is answered from the targets' caches, so they work while
 * targets sleep.
 *
 * - Models: the union, each model once by Ollama's name normalisation (`ModelName.keyOf`), the
 *   first target's entry (in the configuration's order) as that target sent it.
 * - Resident models: every target's, in the targets' order; a model loaded on two targets is
 *   listed twice, since it is loaded twice (two runners, each with its own memory and expiry).
 *
 * With one target, the lists are that target's own (the same arrays, so the bodies are
 * byte-identical to a foreman of one target). With several, a union is made again only when a
 * target's list has changed (chat UIs poll these routes constantly).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { InventoryState } from "../inventory/Inventory.ts"
import * as ModelName from "../ollama/ModelName.ts"
import type { PsModel, TagModel } from "../ollama/schema.ts"
import type { TargetsService } from "./Target.ts"

/** A model's identity in a list: its normalised key, or the name as sent if it does not parse. */
const identity = (entry: TagModel): string => {
  const name = entry.model ?? entry.name
  return Option.getOrElse(ModelName.keyOf(name), () => name)
}

/** Each model once, the first list's entry first. */
export const unionOf = (lists: ReadonlyArray<ReadonlyArray<TagModel>>): ReadonlyArray<TagModel> => {
  if (lists.length === 1) return lists[0]!
  const seen = new Set<string>()
  const union: Array<TagModel> = []
  for (const list of lists) {
    for (const entry of list) {
      const id = identity(entry)
      if (seen.has(id)) continue
      seen.add(id)
      union.push(entry)
    }
  }
  return union
}

/** Every list's entries, in order. */
export const concatOf = <A>(lists: ReadonlyArray<ReadonlyArray<A>>): ReadonlyArray<A> =>
  lists.length === 1 ? lists[0]! : lists.flat()

/** `combine` of the lists, made again only when one of them is not the array it was last time. */
const memo = <A, B>(combine: (lists: ReadonlyArray<ReadonlyArray<A>>) => ReadonlyArray<B>) => {
  let inputs: ReadonlyArray<ReadonlyArray<A>> = []
  let output: ReadonlyArray<B> = []
  return (lists: ReadonlyArray<ReadonlyArray<A>>): ReadonlyArray<B> => {
    if (lists.length !== inputs.length || lists.some((list, i) => list !== inputs[i])) {
      inputs = lists
      output = combine(lists)
    }
    return output
  }
}

export interface Inventories {
  /** Every target's inventory state, in the targets' order. */
  readonly states: Effect.Effect<ReadonlyArray<InventoryState>>
  /** What `/api/tags` lists: each model once. */
  readonly models: Effect.Effect<ReadonlyArray<TagModel>>
  /** What `/api/ps` lists: each target's resident models. */
  readonly resident: Effect.Effect<ReadonlyArray<PsModel>>
}

const views = new WeakMap<TargetsService, Inventories>()

/** The view of `targets` (one per `Targets` service, shared by its routes). */
export const of = (targets: TargetsService): Inventories => {
  let view = views.get(targets)
  if (view === undefined) {
    const states = Effect.forEach(targets.all, (target) => target.inventory.get)
    const union = memo(unionOf)
    const concat = memo<PsModel, PsModel>(concatOf)
    view = {
      states,
      models: Effect.map(states, (all) => union(all.map((state) => state.models))),
      resident: Effect.map(states, (all) => concat(all.map((state) => state.resident)))
    }
    views.set(targets, view)
  }
  return view
}
