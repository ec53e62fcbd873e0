/**
 * The command line: flags -> settings -> the whole broker, on Node or Deno. This is the
 * composition root, the one place that maps `--plugins` names to plugin layers.
 */
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { run, StartupError } from "./cli.ts"
import { ForemanConfig, type ForemanSettings } from "./Config.ts"
import { FetchPlatformLive, ForemanLive, NodePlatformLive } from "./Foreman.ts"
import { KeysLive } from "./auth/KeysFile.ts"
import { guardExposure } from "./http/server.ts"
import type { Plugin } from "./plugin/Plugin.ts"
import { AnthropicPlugin } from "../plugins/anthropic/index.ts"
import { MetricsPlugin } from "../plugins/metrics/index.ts"
import { OpenAiPlugin } from "../plugins/openai/index.ts"

/** The plugins `--plugins` can name. The command line is the one place that knows them. */
const plugins: Record<string, Plugin> = Object.fromEntries([OpenAiPlugin, AnthropicPlugin, MetricsPlugin].map((p) => [p.name, p]))

const launch = (settings: ForemanSettings) =>
  Effect.gen(function*() {
    const unknown = settings.plugins.filter((name) => !(name in plugins))
    if (unknown.length > 0) {
      return yield* new StartupError({
        message: `Invalid --plugins (FOREMAN_PLUGINS): unknown plugin ${unknown.map((n) => `"${n}"`).join(", ")}; known: ${
          Object.keys(plugins).join(", ")
        }, or none`
      })
    }
    const selected = settings.plugins.map((name) => plugins[name]!.layer)
    // Deno has no undici: there the platform's fetch talks to the target.
    const platform = "Deno" in globalThis ? FetchPlatformLive : NodePlatformLive
    const config = ForemanConfig.make(settings)
    const foreman = ForemanLive(Layer.mergeAll(Layer.empty, ...selected)).pipe(
      Layer.provide(platform),
      Layer.provide(config),
      // The command line has no tracer to export spans to: they would only cost time, in
      // foreman and in the HTTP server's own per-request span (URL parse, header
      // redaction). An application embedding foreman keeps Effect's defaults and its tracer.
      Layer.provide(Layer.setTracerEnabled(false)),
      HttpMiddleware.withTracerDisabledWhen(() => true)
    )
    // Refused before the port is bound (the server would refuse it after).
    const exposure = guardExposure.pipe(Effect.provide(KeysLive), Effect.provide(config), Effect.scoped)
    return yield* Effect.zipRight(exposure, Layer.launch(foreman)).pipe(
      Effect.catchTag("DatabaseInUse", (error) =>
        new StartupError({
          message: `Cannot use --db ${error.path}: ${error.message} (one process per database: give this one its own --db)`
        })),
      Effect.catchTag("TargetsFileInvalid", (error) =>
        new StartupError({ message: `Cannot use --targets-file ${error.path}: ${error.message}` })),
      Effect.catchTag("Unprotected", (error) =>
        new StartupError({
          message: `Refusing to serve --host ${error.host} without API keys: add one (foreman-effect keys add NAME) or pass --allow-unauthenticated to serve everyone who can reach it`
        }))
    )
  })

run(process.argv, launch).pipe(
  Effect.provide(NodeContext.layer),
  // `run` has already reported every failure (one line for a bad flag or value).
  NodeRuntime.runMain({ disableErrorReporting: true })
)
