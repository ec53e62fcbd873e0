/** Reading request bodies whole, within the configured size limit. */
import { HttpServerRequest } from "@effect/platform"
import { Effect, Stream } from "effect"
import { BadRequest, BodyTooLarge } from "../Errors.ts"

/**
 * The request body as bytes. Refuses a declared `Content-Length` over the limit before
 * reading anything, and stops reading as soon as the limit is passed. Chunks are joined
 * once at the end (bodies of base64 images run to tens of MiB).
 */
export const readBody = (limit: number) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const declared = Number(request.headers["content-length"])
    if (Number.isFinite(declared) && declared > limit) return yield* new BodyTooLarge({ limit })
    const chunks: Array<Uint8Array> = []
    let size = 0
    yield* request.stream.pipe(
      Stream.mapError((error) => new BadRequest({ message: `could not read the request body: ${error.message}` })),
      Stream.runForEach((chunk) => {
        size += chunk.byteLength
        if (size > limit) return Effect.fail(new BodyTooLarge({ limit }))
        chunks.push(chunk)
        return Effect.void
      })
    )
    if (chunks.length === 1) return chunks[0]!
    const body = new Uint8Array(size)
    let offset = 0
    for (const chunk of chunks) {
      body.set(chunk, offset)
      offset += chunk.byteLength
    }
    return body
  })
