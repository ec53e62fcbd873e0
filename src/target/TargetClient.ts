/**
 * The target: the Ollama server foreman stands in front of. This service is the only code
 * that talks HTTP to it. Transport failures become `TargetUnreachable` (the laptop sleeps:
 * ADR-0002, normal and retried), non-2xx answers become `TargetError` carrying Ollama's own
 * status and error text, so callers see exactly what Ollama said.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type { HttpMethod } from "@effect/platform/HttpMethod"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeStream from "@effect/platform-node/NodeStream"
import type * as Undici from "@effect/platform-node/Undici"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type { Readable } from "node:stream"
import { ForemanConfig } from "../Config.ts"
import { describeCause, RequestTimeout, TargetError, TargetUnreachable } from "../Errors.ts"
import { readAll, readText } from "../streams/streams.ts"
import { withSpan } from "../tracing.ts"
import { ErrorBody, PsResponse, TagsResponse, VersionResponse } from "../ollama/schema.ts"

/** The four inference routes that become jobs. */
export type JobEndpoint = "/api/generate" | "/api/chat" | "/api/embed" | "/api/embeddings"

/** A body to pass through: bytes, or a stream (blob uploads can be gigabytes). */
export type RawBody = Uint8Array | {
  readonly stream: Stream.Stream<Uint8Array, unknown>
  readonly contentLength?: number
}

/** A response from the target whose body has not been read yet. */
export interface Upstream {
  readonly status: number
  readonly contentType: string | undefined
  /**
   * The body exactly as the target sends it, chunk by chunk, as a Node stream: piped
   * natively into the caller's response (an Effect `Stream` in between costs about half a
   * millisecond per request). Destroying it aborts the upstream request; a transport
   * failure mid-way is its `error` event.
   */
  readonly body: Readable
  /** The answer's headers as the target sent them (for a pass-through of a route foreman does not know). */
  readonly headers?: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
}

export interface TargetClientService {
  /** The target's base URL, without a trailing slash. */
  readonly url: string
  readonly tags: Effect.Effect<TagsResponse, TargetUnreachable | TargetError>
  readonly ps: Effect.Effect<PsResponse, TargetUnreachable | TargetError>
  readonly version: Effect.Effect<VersionResponse, TargetUnreachable | TargetError>
  /**
   * An inference call (`/api/chat`, `/v1/chat/completions`, ...). Succeeds once the target has sent its response headers (for
   * Ollama: with the first token, after any model load), with the body still to stream.
   * Interrupting the body stream aborts the upstream request.
   */
  readonly job: (
    path: string,
    body: Uint8Array,
    /** How long to wait for the target's first byte (a model load included), in milliseconds. */
    within?: number,
    options?: {
      /**
       * Whether `--stall-timeout` bounds the wait for the answer's start too (default: yes).
       * Not for an answer the target sends only once it is complete (`stream: false`): its
       * start comes after the whole generation. Chunks are bounded either way.
       */
      readonly startBounded?: boolean
      /** The body's content type (default `application/json`; a transcription sends its form). */
      readonly contentType?: string
    }
  ) => Effect.Effect<Upstream, TargetUnreachable | TargetError | RequestTimeout>
  /**
   * Any other route, passed through as is: non-2xx answers are returned, not failed. Bounded
   * by `--stall-timeout` (a `TargetError` 504 when the target says nothing for that long),
   * but for model management (`/api/pull`, `/api/push`, `/api/create`). `path` may carry a
   * query string. `headers` are sent as given (a body in bytes is `application/json` unless
   * they say otherwise).
   */
  readonly raw: (
    method: HttpMethod,
    path: string,
    body?: RawBody,
    headers?: Readonly<Record<string, string>>
  ) => Effect.Effect<Upstream, TargetUnreachable | TargetError>
}

/** The Ollama HTTP client to the target. */
export class TargetClient extends Context.Tag("foreman/TargetClient")<TargetClient, TargetClientService>() {}

/** Metadata calls (tags, ps, version) answer in milliseconds; a target that takes longer is not serving. */
const metadataTimeout = Duration.seconds(15)

/**
 * The most of a metadata answer foreman reads: a listing of hundreds of models is well under
 * a megabyte; a target that sends more is broken, and must not take foreman's memory with it.
 */
export const maxMetadataBytes = 16 * 2 ** 20

/** The most of an error answer read for its message. */
const maxErrorBytes = 64 * 2 ** 10

/**
 * Transport failures after the connection was made: the target took the request and closed
 * the connection without answering. Not "unreachable" (that is a target asleep, which jobs
 * wait for): an attempt that failed.
 */
const closedCodes = new Set(["UND_ERR_SOCKET", "ECONNRESET", "EPIPE", "UND_ERR_CLOSED"])

/**
 * Pass-through calls with no time bound: model management, which may run long in silence, and
 * blob uploads (gigabytes, answered once all of it is in).
 */
const patientPaths = /^\/api\/(pull|push|create|blobs\/.*)$/

/** The error text of a non-2xx answer: the body's `error` (either dialect), or the raw body (gin's plain-text 404/405). */
const errorText = (text: string): string => {
  try {
    return Schema.decodeUnknownSync(ErrorBody)(JSON.parse(text))
  } catch {
    return text.trim()
  }
}

/** The client to the target at `url` (its base URL, without a trailing slash). */
export const make = (url: string) => Effect.gen(function*() {
  const config = yield* ForemanConfig
  const http = yield* HttpClient.HttpClient
  const unreachable = (cause: unknown) => new TargetUnreachable({ url, message: describeCause(cause) })

  const send = (request: HttpClientRequest.HttpClientRequest) =>
    http.execute(request).pipe(
      Effect.mapError((error: HttpClientError.HttpClientError) => unreachable(error.cause ?? error))
    )

  const toUpstream = (
    response: HttpClientResponse.HttpClientResponse,
    stream: Stream.Stream<Uint8Array, unknown> = response.stream
  ) =>
    NodeStream.toReadable(stream).pipe(
      Effect.map((body): Upstream => ({
        status: response.status,
        contentType: response.headers["content-type"],
        body,
        // A platform `fetch` (Deno) has decoded a compressed body already: its encoding is gone.
        headers: { ...response.headers, "content-encoding": undefined }
      }))
    )

  const stall = Duration.toMillis(config.stallTimeout)
  const stalled = () =>
    new TargetError({
      status: 504,
      fault: "stalled",
      message: `the target stalled: it sent nothing for ${Duration.format(config.stallTimeout)} (--stall-timeout)`
    })
  const closed = (cause: unknown) =>
    new TargetError({
      status: 502,
      fault: "closed",
      message: `the target closed the connection before answering (${describeCause(cause)})`
    })
  /** A failure to get an answer's headers: the target stalled, closed on us, or is not reachable. */
  const transportFailure = (cause: unknown): TargetError | TargetUnreachable => {
    const code = (cause as { code?: unknown }).code
    if (code === "UND_ERR_HEADERS_TIMEOUT") return stalled()
    const closedOnUs = typeof code === "string"
      ? closedCodes.has(code)
      // The platform's fetch (Deno) names it only in its message.
      : /connection closed before message completed|connection reset/i.test(describeCause(cause))
    return closedOnUs ? closed(cause) : unreachable(cause)
  }
  /** The same for a job, where the caller's own time (`within`) may run out first. */
  const noHeaders = (cause: unknown, within: number | undefined, startBounded: boolean) =>
    (cause as { code?: unknown }).code === "UND_ERR_HEADERS_TIMEOUT" && within !== undefined &&
      (!startBounded || within <= stall)
      ? noAnswer(within)
      : transportFailure(cause)
  /** The wait for an answer's headers, in milliseconds (undefined: none). */
  const headersWait = (within: number | undefined, startBounded: boolean) =>
    startBounded ? (within === undefined ? stall : Math.min(within, stall)) : within

  const failNon2xx = (response: HttpClientResponse.HttpClientResponse) =>
    response.status >= 200 && response.status < 300
      ? Effect.succeed(response)
      : NodeStream.toReadable(response.stream.pipe(Stream.timeoutFail(bodyStalled, config.stallTimeout))).pipe(
        Effect.flatMap((body) => readText(body, maxErrorBytes)),
        Effect.orElseSucceed(() => ""),
        Effect.flatMap((text) => Effect.fail(new TargetError({ status: response.status, message: errorText(text) })))
      )

  /** undici, where the Node platform provides its dispatcher; else the generic `HttpClient`. */
  const undici = Option.getOrUndefined(
    Option.map(yield* Effect.serviceOption(NodeHttpClient.Dispatcher), (dispatcher) => undiciRequest(dispatcher, url))
  )
  /**
   * A pass-through call with a body in bytes (or none) through undici: any status is
   * returned. `stallMillis` bounds the wait for the headers and for each chunk (0: none).
   */
  const undiciRaw = undici && ((
    method: HttpMethod,
    path: string,
    body: Uint8Array | undefined,
    stallMillis = 0,
    headers?: Readonly<Record<string, string>>
  ) =>
    undici({ method, path, body, headers, headersTimeout: stallMillis, bodyTimeout: stallMillis }).pipe(
      Effect.mapError(transportFailure),
      Effect.map(upstreamOf)
    ))

  /**
   * A GET's status and whole body, through undici where there is one (a poll is two of
   * these); a body over `maxMetadataBytes` is not read on.
   */
  const getText = (
    path: string
  ): Effect.Effect<{ readonly status: number; readonly text: string }, TargetUnreachable | TargetError> =>
    (undiciRaw === undefined
      ? send(HttpClientRequest.get(url + path)).pipe(Effect.flatMap((response) => toUpstream(response)))
      : undiciRaw("GET", path, undefined).pipe(
        // A poll closed on is a target not there (an ssh tunnel to a box asleep does that).
        Effect.catchIf(
          (error) => error._tag === "TargetError" && error.fault !== undefined,
          (error) => Effect.fail(new TargetUnreachable({ url, message: error.message }))
        )
      )).pipe(
        Effect.flatMap((upstream) =>
          readAll(upstream.body, {
            limit: maxMetadataBytes,
            overflow: "destroy",
            onError: unreachable,
            tooLarge: () =>
              new TargetError({ status: 502, message: `the target's ${path} answer is larger than ${maxMetadataBytes / 2 ** 20} MiB` })
          }).pipe(Effect.map((bytes) => ({ status: upstream.status, text: new TextDecoder().decode(bytes) })))
        )
      )

  const getJson = <A, I>(path: string, schema: Schema.Schema<A, I>) =>
    getText(path).pipe(
      Effect.flatMap(({ status, text }) =>
        status < 200 || status >= 300
          ? Effect.fail(new TargetError({ status, message: errorText(text) }))
          : Effect.try({
            try: (): unknown => JSON.parse(text),
            catch: () => new TargetError({ status: 502, message: `unexpected ${path} body from the target: not JSON` })
          })
      ),
      Effect.flatMap((json) =>
        Schema.decodeUnknown(schema)(json).pipe(Effect.mapError((error) =>
          new TargetError({ status: 502, message: `unexpected ${path} body from the target: ${error.message}` })
        ))
      ),
      Effect.timeoutFail({ duration: metadataTimeout, onTimeout: () => unreachable(`no answer to ${path} within 15s`) })
    )

  const post = (path: string, body: Uint8Array, contentType = "application/json") =>
    HttpClientRequest.post(url + path).pipe(HttpClientRequest.bodyUint8Array(body, contentType))

  return TargetClient.of({
    url,
    tags: getJson("/api/tags", TagsResponse).pipe(withSpan("TargetClient.tags")),
    ps: getJson("/api/ps", PsResponse).pipe(withSpan("TargetClient.ps")),
    version: getJson("/api/version", VersionResponse).pipe(withSpan("TargetClient.version")),
    job: undici === undefined
      ? (path, body, within, options) => {
        // The platform's fetch (Deno) has no timers of its own: the wait for the answer's
        // headers and each wait for a chunk are bounded here.
        const startBounded = options?.startBounded ?? true
        const headers = headersWait(within, startBounded)
        const call = http.execute(post(path, body, options?.contentType)).pipe(
          Effect.mapError((error: HttpClientError.HttpClientError) => noHeaders(error.cause ?? error, within, startBounded))
        )
        return (headers === undefined ? call : call.pipe(
          Effect.timeoutFail({
            duration: Duration.millis(Math.max(0, headers)),
            onTimeout: () => (within !== undefined && (!startBounded || within <= stall) ? noAnswer(within) : stalled())
          })
        )).pipe(
          Effect.flatMap(failNon2xx),
          Effect.flatMap((response) =>
            toUpstream(response, response.stream.pipe(Stream.timeoutFail(bodyStalled, Duration.millis(stall))))
          )
        )
      }
      : (path, body, within, options) => {
        // undici's own timers bound the wait for the answer's headers (the caller's time left,
        // and --stall-timeout) and each wait for a chunk: no fiber raced per request.
        const startBounded = options?.startBounded ?? true
        const headers = headersWait(within, startBounded)
        return undici({
          method: "POST",
          path,
          body,
          ...(options?.contentType === undefined ? {} : { headers: { "content-type": options.contentType } }),
          headersTimeout: headers === undefined ? 0 : Math.max(1, headers),
          bodyTimeout: stall
        }).pipe(
          Effect.mapError((cause) => noHeaders(cause, within, startBounded)),
          Effect.flatMap((response) =>
            response.statusCode >= 200 && response.statusCode < 300
              ? Effect.succeed(upstreamOf(response))
              : readText(response.body, maxErrorBytes).pipe(
                Effect.flatMap((text) => Effect.fail(new TargetError({ status: response.statusCode, message: errorText(text) })))
              )
          )
        )
      },
    raw: (method, path, body, headers) => {
      // Model management may run long in silence (a pull with `stream: false` says nothing
      // until it is done); everything else answers promptly and is bounded like a job.
      const bounded = !patientPaths.test(path)
      // Bytes (or nothing) straight through undici where there is one; a streamed body
      // (a blob upload) through the generic client, which streams it.
      if (undiciRaw !== undefined && (body === undefined || body instanceof Uint8Array)) {
        return undiciRaw(method, path, body, bounded ? stall : 0, headers)
      }
      const request = HttpClientRequest.make(method)(url + path).pipe(HttpClientRequest.setHeaders(headers ?? {}))
      const withBody = body === undefined
        ? request
        : body instanceof Uint8Array
        ? request.pipe(HttpClientRequest.bodyUint8Array(body, headers?.["content-type"] ?? "application/json"))
        : request.pipe(HttpClientRequest.bodyStream(body.stream, {
          contentType: headers?.["content-type"] ?? "application/octet-stream",
          ...(body.contentLength === undefined ? {} : { contentLength: body.contentLength })
        }))
      if (!bounded) return send(withBody).pipe(Effect.flatMap((response) => toUpstream(response)))
      return http.execute(withBody).pipe(
        Effect.mapError((error: HttpClientError.HttpClientError) => transportFailure(error.cause ?? error)),
        Effect.timeoutFail({ duration: config.stallTimeout, onTimeout: stalled }),
        Effect.flatMap((response) =>
          toUpstream(response, response.stream.pipe(Stream.timeoutFail(bodyStalled, config.stallTimeout)))
        )
      )
    }
  })
})

/**
 * Requests straight through undici when the Node platform provides its dispatcher: the hot
 * path, without the generic client's request and response wrapping. Fails with undici's
 * own error; interrupting it aborts the request.
 */
const undiciRequest = (dispatcher: Undici.Dispatcher, url: string) => {
  const target = new URL(url)
  // A target behind a path prefix keeps it.
  const base = target.pathname.replace(/\/$/, "")
  return (options: {
    readonly method: HttpMethod
    readonly path: string
    readonly body?: Uint8Array | undefined
    /** Headers to send (a body is `application/json` unless they name its type). */
    readonly headers?: Readonly<Record<string, string>> | undefined
    /** Milliseconds to wait for the response's headers (0: no limit). */
    readonly headersTimeout?: number
    /** Milliseconds to wait for each chunk of the body (0: no limit). */
    readonly bodyTimeout?: number
  }) =>
    Effect.async<Undici.Dispatcher.ResponseData, unknown>((resume, signal) => {
      dispatcher.request({
        origin: target.origin,
        path: base + options.path,
        method: options.method,
        signal,
        ...(options.body === undefined
          ? (options.headers === undefined ? {} : { headers: options.headers })
          : { body: options.body, headers: options.headers === undefined ? jsonHeaders : { ...jsonHeaders, ...options.headers } }),
        ...(options.headersTimeout === undefined ? {} : { headersTimeout: options.headersTimeout }),
        ...(options.bodyTimeout === undefined ? {} : { bodyTimeout: options.bodyTimeout })
      }).then(
        (response) => resume(Effect.succeed(response)),
        (cause) => resume(Effect.fail(cause))
      )
    })
}

const jsonHeaders = { "content-type": "application/json" }

/** An undici response as an `Upstream`: its status, content type and body, unread. */
const upstreamOf = (response: Undici.Dispatcher.ResponseData): Upstream => {
  const contentType = response.headers["content-type"]
  return {
    status: response.statusCode,
    contentType: Array.isArray(contentType) ? contentType[0] : contentType,
    body: response.body,
    headers: response.headers
  }
}

/** A chunk that did not come in time, as undici names it (so both platforms read the same). */
const bodyStalled = () => Object.assign(new Error("Body Timeout Error"), { code: "UND_ERR_BODY_TIMEOUT" })

/** The target took longer than the caller's time to send its first byte. */
const noAnswer = (within: number) =>
  new RequestTimeout({ waitedMillis: within, reason: "the target did not start answering in time" })
