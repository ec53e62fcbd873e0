/**
 * The Anthropic plugin: foreman's `/v1/messages` for Anthropic clients (Claude Code, the
 * Anthropic SDKs) pointed at foreman as they would be at Ollama.
 *
 *   POST /v1/messages    a job, passed to the target's own /v1/messages
 *
 * Jobs get what the Ollama routes get: the model checked before queueing (404 at once for a
 * missing one), `X-Foreman-Priority`, the queue, waiting through the target's naps, and
 * `Prefer: respond-async`. Errors answer in Anthropic's envelope.
 */
import { Plugin } from "../../src/index.ts"
import * as Routes from "./routes.ts"

export const AnthropicPlugin = Plugin.make("anthropic", Routes.layer)
