/**
 * The Anthropic surface: `POST /v1/messages` as a job through the scheduler, forwarded byte
 * for byte to the target's own `/v1/messages` (which does the Anthropic <-> Ollama
 * translation). A stream (`text/event-stream`, `event:` lines) goes back event by event as
 * the target sends it; one the target breaks off ends with Anthropic's `error` event. Every
 * expected failure answers in Anthropic's envelope.
 */
import * as Effect from "effect/Effect"
import { ForemanRouter, HttpErrors, makeJobRoute } from "../../src/index.ts"
import * as Request from "./request.ts"

/** Expected failures answer in Anthropic's envelope. */
const inAnthropicDialect = HttpErrors.inDialect("anthropic")

const encoder = new TextEncoder()

/**
 * The event a stream cut short ends with (Anthropic's `error` event, which its SDKs raise as
 * an API error), in place of the `message_stop` that will not come.
 */
export const streamError = (message: string) =>
  encoder.encode(`event: error\ndata: ${JSON.stringify(HttpErrors.anthropicBody(500, message))}\n\n`)

export const layer = ForemanRouter.use((router) =>
  Effect.gen(function*() {
    const jobRoute = yield* makeJobRoute
    yield* router.post(
      "/v1/messages",
      jobRoute({
        endpoint: "/v1/messages",
        kind: "/api/chat",
        decode: (bytes) =>
          Request.decode(bytes).pipe(
            Effect.map((decoded) => ({ model: decoded.model, body: Request.asyncBody(decoded.body), stream: decoded.stream }))
          ),
        streamError
      }).pipe(inAnthropicDialect)
    )
  })
)
