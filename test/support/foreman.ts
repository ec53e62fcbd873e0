/**
 * Starts the real foreman (HTTP server, poller, scheduler) in-process on an ephemeral
 * port of 127.0.0.1, as integration tests need it.
 */
import { HttpServer } from "@effect/platform"
import { Duration, Effect, Layer, Logger, LogLevel, ManagedRuntime } from "effect"
import { ForemanConfig, type ForemanSettings } from "../../src/Config.ts"
import { ForemanLive, NodePlatformLive } from "../../src/Foreman.ts"
import type { PluginServices } from "../../src/plugin/Plugin.ts"

export interface RunningForeman {
  readonly url: string
  readonly runtime: ManagedRuntime.ManagedRuntime<unknown, unknown>
  readonly health: () => Promise<Record<string, unknown>>
  readonly close: () => Promise<void>
}

export const startForeman = async (
  settings: Partial<ForemanSettings> & { readonly target: string },
  options: { readonly plugins?: Layer.Layer<never, unknown, PluginServices> } = {}
): Promise<RunningForeman> => {
  const config = ForemanConfig.make({
    host: "127.0.0.1",
    port: 0,
    pollInterval: Duration.hours(1),
    db: ":memory:",
    ...settings
  })
  const layer = ForemanLive(options.plugins ?? Layer.empty).pipe(
    Layer.provideMerge(NodePlatformLive),
    Layer.provideMerge(config),
    Layer.provide(Logger.minimumLogLevel(process.env.FOREMAN_TEST_LOGS ? LogLevel.All : LogLevel.None))
  )
  const runtime = ManagedRuntime.make(layer)
  const address = await runtime.runPromise(HttpServer.HttpServer.pipe(Effect.map((server) => server.address)))
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  const url = `http://127.0.0.1:${address.port}`
  return {
    url,
    runtime: runtime as ManagedRuntime.ManagedRuntime<unknown, unknown>,
    health: async () => (await (await fetch(`${url}/foreman/health`)).json()) as Record<string, unknown>,
    close: () => runtime.dispose()
  }
}
