/**
 * The command line: flags -> settings -> the whole broker, on Node or Deno. This is the
 * composition root, the one place that maps `--plugins` names to plugin layers.
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { run } from "./cli.ts"
import { ForemanConfig, type ForemanSettings } from "./Config.ts"
import { FetchPlatformLive, ForemanLive, NodePlatformLive } from "./Foreman.ts"

/** Plugins this build knows; the OpenAI surface and metrics arrive with their own issue. */
const plugins: Record<string, Layer.Layer<never> | undefined> = {
  openai: undefined,
  metrics: undefined
}

const launch = (settings: ForemanSettings) =>
  Effect.gen(function*() {
    const unknown = settings.plugins.filter((name) => !(name in plugins))
    if (unknown.length > 0) {
      return yield* Effect.fail(
        new Error(`Invalid --plugins (FOREMAN_PLUGINS): unknown plugin ${unknown.map((n) => `"${n}"`).join(", ")}; known: ${Object.keys(plugins).join(", ")}, or none`)
      )
    }
    for (const name of settings.plugins) {
      if (plugins[name] === undefined) yield* Effect.logWarning(`plugin "${name}" is not part of this build yet; ignored`)
    }
    const selected = settings.plugins.flatMap((name) => plugins[name] ?? [])
    // Deno has no undici: there the platform's fetch talks to the target.
    const platform = "Deno" in globalThis ? FetchPlatformLive : NodePlatformLive
    return yield* Layer.launch(
      ForemanLive(Layer.mergeAll(Layer.empty, ...selected)).pipe(
        Layer.provide(platform),
        Layer.provide(ForemanConfig.make(settings))
      )
    )
  })

run(process.argv, launch).pipe(
  Effect.provide(NodeContext.layer),
  // `run` has already reported every failure (one line for a bad flag or value).
  NodeRuntime.runMain({ disableErrorReporting: true })
)
