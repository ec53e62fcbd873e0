/**
 * The OpenAI plugin: foreman's `/v1` surface for OpenAI clients.
 *
 *   GET  /v1/models              the targets' models (each once), from the inventory caches
 *   GET  /v1/models/{model}      one of them
 *   POST /v1/chat/completions    a job, passed to the target's own /v1 route
 *   POST /v1/completions         a job
 *   POST /v1/embeddings          a job
 *   POST /v1/responses           a job (OpenAI's Responses API)
 *   POST /v1/audio/transcriptions  a job, in the request (a multipart form)
 *
 * Jobs get what the Ollama routes get: the model checked before queueing (404 at once for a
 * missing one), `X-Foreman-Priority`, the queue, waiting through the target's naps, and
 * `Prefer: respond-async`. Errors answer in OpenAI's envelope.
 */
import { Plugin } from "../../src/index.ts"
import * as Routes from "./routes.ts"

export const OpenAiPlugin = Plugin.make("openai", Routes.layer)
