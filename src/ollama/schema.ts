/**
 * Wire shapes of the target's metadata routes. Only the fields foreman reads are modelled;
 * every other field survives decoding (the index signature) because foreman serves these
 * bodies back to clients from its cache and clients rely on fields we do not model.
 */
import * as Schema from "effect/Schema"

const Loose = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/** One entry of `GET /api/tags`. */
export const TagModel = Schema.Struct({ name: Schema.String, model: Schema.optional(Schema.String) }, Loose)
export type TagModel = typeof TagModel.Type

/** One entry of `GET /api/ps`. */
export const PsModel = Schema.Struct({
  name: Schema.String,
  model: Schema.optional(Schema.String),
  expires_at: Schema.optional(Schema.String)
}, Loose)
export type PsModel = typeof PsModel.Type

/** `models` may come back `null` from older servers; treat it as empty. */
const Models = <S extends Schema.Schema.Any>(item: S) =>
  Schema.transform(Schema.NullOr(Schema.Array(item)), Schema.typeSchema(Schema.Array(item)), {
    strict: false,
    decode: (models) => models ?? [],
    encode: (models) => models
  })

export const TagsResponse = Schema.Struct({ models: Models(TagModel) }, Loose)
export type TagsResponse = typeof TagsResponse.Type

export const PsResponse = Schema.Struct({ models: Models(PsModel) }, Loose)
export type PsResponse = typeof PsResponse.Type

export const VersionResponse = Schema.Struct({ version: Schema.String }, Loose)
export type VersionResponse = typeof VersionResponse.Type

/**
 * An error body: Ollama's `{"error": "..."}`, or the OpenAI envelope its `/v1` routes send,
 * `{"error": {"message": "...", ...}}`; either way, the text.
 */
export const ErrorBody = Schema.Struct({
  error: Schema.Union(Schema.String, Schema.Struct({ message: Schema.String }))
}).pipe(Schema.transform(Schema.String, {
  strict: false,
  decode: ({ error }) => (typeof error === "string" ? error : error.message),
  encode: (error) => ({ error })
}))
