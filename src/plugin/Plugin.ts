/**
 * The plugin contract. A plugin is a named Layer that may add HTTP routes (through
 * `ForemanRouter.use`) and may follow what happens to jobs and the target (through the
 * `Events` service). It can use any service foreman provides (`PluginServices`), and only
 * what `foreman-effect` exports: the core never imports a plugin.
 *
 * Third parties write one the same way; embedding users hand it to `ForemanLive`:
 *
 *   const Hello = Plugin.make("hello", ForemanRouter.use((router) =>
 *     router.get("/hello", Effect.succeed(HttpServerResponse.text("hi")))))
 *   ForemanLive(Hello.layer)
 */
import type * as Layer from "effect/Layer"
import type { ForemanConfig } from "../Config.ts"
import type { Inventory } from "../inventory/Inventory.ts"
import type { AsyncJobs } from "../jobs/AsyncJobs.ts"
import type { Jobs } from "../jobs/Jobs.ts"
import type { JobStore } from "../jobs/JobStore.ts"
import type { Scheduler } from "../scheduler/Scheduler.ts"
import type { Targets } from "../target/Target.ts"
import type { TargetClient } from "../target/TargetClient.ts"
import type { Events } from "../events/Events.ts"

/** The services a plugin's layer may require: everything foreman itself runs on. */
export type PluginServices =
  | ForemanConfig
  | Targets
  | TargetClient
  | Inventory
  | Scheduler
  | Jobs
  | AsyncJobs
  | JobStore
  | Events

export interface Plugin<E = never> {
  /** The name `--plugins` knows it by. */
  readonly name: string
  readonly layer: Layer.Layer<never, E, PluginServices>
}

export const make = <E = never>(name: string, layer: Layer.Layer<never, E, PluginServices>): Plugin<E> => ({ name, layer })
