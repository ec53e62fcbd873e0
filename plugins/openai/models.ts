/**
 * `GET /v1/models` and `GET /v1/models/{model}` from the cached inventories (ADR-0007,
 * reference §8.5/§8.6), so they answer while targets sleep; over several targets, each model
 * once (the routes pass the union).
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { BadRequest, ModelName, ModelNotFound, type TagModel } from "../../src/index.ts"

/** OpenAI's model object. */
export interface Model {
  readonly id: string
  readonly object: "model"
  readonly created: number
  readonly owned_by: string
}

/** `{"object":"list","data":[...]}`; Ollama answers `data: null` when it has no model. */
export interface ModelList {
  readonly object: "list"
  readonly data: ReadonlyArray<Model> | null
}

const nameOf = (entry: TagModel): string => entry.model ?? entry.name

/** `modified_at` as Unix seconds (0 when the target sent none). */
const createdOf = (entry: TagModel): number => {
  const modified = entry["modified_at"]
  const ms = typeof modified === "string" ? Date.parse(modified) : Number.NaN
  return Number.isNaN(ms) ? 0 : Math.floor(ms / 1000)
}

/** The namespace of a name, as Ollama's `model.ParseName` fills it in (`library` by default). */
const namespaceOf = (name: string): string =>
  Option.match(ModelName.parse(name), { onNone: () => ModelName.defaultNamespace, onSome: (parsed) => parsed.namespace })

const model = (id: string, entry: TagModel): Model => ({
  id,
  object: "model",
  created: createdOf(entry),
  owned_by: namespaceOf(id)
})

/** The list, in the order of `/api/tags`. */
export const list = (models: ReadonlyArray<TagModel>): ModelList => ({
  object: "list",
  data: models.length === 0 ? null : models.map((entry) => model(nameOf(entry), entry))
})

/**
 * One model, its `id` the name as the caller gave it. A name that does not parse is 400
 * `invalid model name`; a missing one 404 with the normalised name (`model 'x:latest' not found`).
 */
export const retrieve = (models: ReadonlyArray<TagModel>, id: string): Either.Either<Model, BadRequest | ModelNotFound> => {
  const parsed = ModelName.parse(id)
  if (Option.isNone(parsed)) return Either.left(new BadRequest({ message: "invalid model name" }))
  const key = ModelName.key(parsed.value)
  const entry = models.find((entry) => Option.contains(ModelName.keyOf(nameOf(entry)), key))
  return entry === undefined
    ? Either.left(new ModelNotFound({ model: id, message: `model '${ModelName.display(parsed.value)}' not found` }))
    : Either.right(model(id, entry))
}
