/**
 * The CLI entry. The launch function is a placeholder until the server is wired in: it logs
 * the effective settings.
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { run } from "./cli.ts"

run(process.argv, (settings) => Effect.log("foreman-effect settings", settings)).pipe(
  Effect.provide(NodeContext.layer),
  // `run` has already reported every failure (one line for a bad flag or value).
  NodeRuntime.runMain({ disableErrorReporting: true })
)
