/** Reading request bodies whole, within the configured size limit. */
import { HttpServerRequest } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Effect, Stream } from "effect"
import type { IncomingMessage } from "node:http"
import { BadRequest, BodyTooLarge } from "../Errors.ts"

const join = (chunks: ReadonlyArray<Uint8Array>, size: number): Uint8Array => {
  if (chunks.length === 1) return chunks[0]!
  const body = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    body.set(chunk, offset)
    offset += chunk.byteLength
  }
  return body
}

const isIncomingMessage = (source: unknown): source is IncomingMessage =>
  typeof source === "object" && source !== null && "resume" in source && "on" in source && "headers" in source

/**
 * On Node's server (Node and Deno alike) the body is read from the IncomingMessage itself:
 * one callback per chunk, where the platform's generic stream costs several fibers per
 * request on the hot path.
 */
const fromIncomingMessage = (source: IncomingMessage, limit: number) =>
  Effect.async<Uint8Array, BadRequest | BodyTooLarge>((resume) => {
    const chunks: Array<Uint8Array> = []
    let size = 0
    const cleanup = () => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onError)
    }
    const onData = (chunk: Uint8Array) => {
      size += chunk.byteLength
      if (size > limit) {
        cleanup()
        source.resume() // drain and discard the rest
        resume(Effect.fail(new BodyTooLarge({ limit })))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.succeed(join(chunks, size)))
    }
    const onError = (error: Error) => {
      cleanup()
      resume(Effect.fail(new BadRequest({ message: `could not read the request body: ${error.message}` })))
    }
    source.on("data", onData)
    source.on("end", onEnd)
    source.on("error", onError)
    return Effect.sync(cleanup)
  })

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
    if (isIncomingMessage(source)) return yield* fromIncomingMessage(source, limit)
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
    return join(chunks, size)
  })
