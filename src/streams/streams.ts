/**
 * Node streams on the hot path: upstream bodies are piped natively into responses, and
 * what foreman must do when a body ends (free the job's slot, report it, add Ollama's error
 * line) hangs on the stream's events instead of an Effect `Stream` per request.
 */
import * as Effect from "effect/Effect"
import { PassThrough, type Readable } from "node:stream"
import { describeCause } from "../Errors.ts"

/** How a passed-through body ended. */
export type Ending =
  | { readonly _tag: "Done" }
  | { readonly _tag: "Failed"; readonly message: string }
  | { readonly _tag: "Cancelled" }

/**
 * `source`, piped into a new stream for the caller's response. `onEnd` is called exactly
 * once: `Done` when the source ended, `Failed` when it broke off (the output then ends with
 * `lastWords(message)` if given, e.g. Ollama's `{"error": ...}` NDJSON line, or is destroyed
 * so the caller sees the failure), `Cancelled` when the caller went away first (the source
 * is destroyed, which aborts the upstream request).
 */
export const guard = (
  source: Readable,
  options: {
    readonly onEnd: (ending: Ending) => void
    readonly lastWords?: ((message: string) => Uint8Array) | undefined
  }
): Readable => {
  const out = new PassThrough()
  let ended = false
  const end = (ending: Ending) => {
    if (ended) return
    ended = true
    options.onEnd(ending)
  }
  source.once("end", () => end({ _tag: "Done" }))
  source.once("error", (error) => {
    source.unpipe(out)
    const message = describeCause(error)
    end({ _tag: "Failed", message })
    if (options.lastWords === undefined) out.destroy(error)
    else out.end(options.lastWords(message))
  })
  out.once("close", () => {
    if (ended) return
    end({ _tag: "Cancelled" })
    source.destroy()
  })
  source.pipe(out)
  return out
}

/**
 * Destroys a stream nobody reads any more. An upstream body reports its own destruction as an
 * error ("Request aborted"), which must not go unheard.
 */
const discard = (source: Readable) => {
  source.on("error", () => {})
  source.destroy()
}

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

/**
 * A whole stream as bytes, failing with `tooLarge()` as soon as it passes `limit`: the rest
 * is drained and dropped (a client's body, so that it can still read the answer), or with
 * `overflow: "destroy"` the stream is destroyed (a target's body, which may never end).
 * Interrupting it stops reading and destroys the stream.
 */
export const readAll = <E, L = never>(
  source: Readable,
  options: {
    readonly limit?: number
    readonly onError: (error: Error) => E
    readonly tooLarge?: () => L
    readonly overflow?: "drain" | "destroy"
  }
) =>
  Effect.async<Uint8Array, E | L>((resume) => {
    const chunks: Array<Uint8Array> = []
    let size = 0
    let done = false
    const cleanup = () => {
      done = true
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onError)
    }
    const onData = (chunk: Uint8Array) => {
      size += chunk.byteLength
      if (options.limit !== undefined && size > options.limit) {
        cleanup()
        if (options.overflow === "destroy") discard(source)
        else source.resume()
        resume(Effect.fail(options.tooLarge!()))
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
      resume(Effect.fail(options.onError(error)))
    }
    source.on("data", onData)
    source.on("end", onEnd)
    source.on("error", onError)
    return Effect.sync(() => {
      if (done) return
      cleanup()
      discard(source)
    })
  })

/**
 * At most `limit` bytes of a stream as text (an error body, read for its message): reading
 * stops there and the stream is destroyed. Never fails: a broken stream gives what came.
 */
export const readText = (source: Readable, limit: number) =>
  Effect.async<string>((resume) => {
    const chunks: Array<Uint8Array> = []
    let size = 0
    let done = false
    const finish = () => {
      if (done) return
      done = true
      source.off("data", onData)
      source.off("end", finish)
      source.off("error", finish)
      if (size >= limit) discard(source)
      resume(Effect.succeed(new TextDecoder().decode(join(chunks, size).subarray(0, limit))))
    }
    const onData = (chunk: Uint8Array) => {
      chunks.push(chunk)
      size += chunk.byteLength
      if (size >= limit) finish()
    }
    source.on("data", onData)
    source.once("end", finish)
    source.once("error", finish)
    return Effect.sync(() => {
      if (done) return
      done = true
      discard(source)
    })
  })
