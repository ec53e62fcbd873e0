/** Reading request bodies whole, within the configured size limit. */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { IncomingMessage } from "node:http"
import { BadRequest, BodyTooLarge } from "../Errors.ts"
import { readAll } from "../streams/streams.ts"

const isIncomingMessage = (source: unknown): source is IncomingMessage =>
  typeof source === "object" && source !== null && "resume" in source && "on" in source && "headers" in source

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
    const source = NodeHttpServerRequest.toIncomingMessage(request) as unknown
    // On Node's server (Node and Deno alike) the body is read from the IncomingMessage
    // itself: one callback per chunk, where the generic stream costs several fibers.
    if (isIncomingMessage(source)) {
      return yield* readAll(source, {
        limit,
        tooLarge: () => new BodyTooLarge({ limit }),
        onError: (error) => new BadRequest({ message: `could not read the request body: ${error.message}` })
      })
    }
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
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)
  })
