/**
 * Starts the real foreman (HTTP server, poller, scheduler) in-process on an ephemeral
 * port of 127.0.0.1, as integration tests need it.
 */
import { HttpServer } from "@effect/platform"
import { Duration, Effect, Layer, Logger, LogLevel, ManagedRuntime, TestClock, TestContext } from "effect"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ForemanConfig, type ForemanSettings } from "../../src/Config.ts"
import { ForemanLive, NodePlatformLive } from "../../src/Foreman.ts"
import type { Job } from "../../src/http/api/ForemanApi.ts"
import type { PluginServices } from "../../src/plugin/Plugin.ts"

export interface RunningForeman {
  readonly url: string
  readonly runtime: ManagedRuntime.ManagedRuntime<unknown, unknown>
  readonly health: () => Promise<Record<string, unknown>>
  /**
   * Moves foreman's clock on by `duration`, running what was due by then (its poll, its
   * probes and backoffs, max-wait, request timeouts, `?wait=`). Only with `testClock`.
   */
  readonly adjust: (duration: Duration.DurationInput) => Promise<void>
  readonly close: () => Promise<void>
}

export interface ForemanOptions {
  readonly plugins?: Layer.Layer<never, unknown, PluginServices>
  /**
   * Run foreman on Effect's TestClock: its time stands still (at 1970) until the test calls
   * `adjust`, so a test of anything timed says when time passes instead of waiting for it.
   * Sockets and the fake targets keep real time.
   */
  readonly testClock?: boolean
  /** Where foreman's log lines go, every level, as their message and annotations (else: none). */
  readonly logs?: Array<LogLine>
}

export interface LogLine {
  readonly message: unknown
  readonly level: string
  readonly annotations: Readonly<Record<string, unknown>>
}

const collect = (lines: Array<LogLine>) =>
  Logger.make(({ annotations, logLevel, message }) => {
    lines.push({
      message: Array.isArray(message) && message.length === 1 ? message[0] : message,
      level: logLevel.label,
      annotations: Object.fromEntries(annotations)
    })
  })

export const startForeman = async (
  settings: Partial<ForemanSettings> & { readonly target: string },
  options: ForemanOptions = {}
): Promise<RunningForeman> => {
  const config = ForemanConfig.make({
    host: "127.0.0.1",
    port: 0,
    pollInterval: Duration.hours(1),
    // Never the user's own keys file: keys are off unless a test gives one.
    keysFile: join(tmpdir(), `foreman-test-no-keys-${process.pid}-${Math.random().toString(36).slice(2)}.json`),
    db: ":memory:",
    ...settings
  })
  const layer = ForemanLive(options.plugins ?? Layer.empty).pipe(
    Layer.provideMerge(NodePlatformLive),
    Layer.provideMerge(config),
    Layer.provide(
      options.logs === undefined
        ? Logger.minimumLogLevel(process.env.FOREMAN_TEST_LOGS ? LogLevel.All : LogLevel.None)
        : Layer.merge(Logger.minimumLogLevel(LogLevel.All), Logger.replace(Logger.defaultLogger, collect(options.logs)))
    ),
    // Built first, so every fiber foreman starts (the poller among them) sees the TestClock.
    Layer.provide(options.testClock ? TestContext.TestContext : Layer.empty)
  )
  const runtime = ManagedRuntime.make(layer)
  const address = await runtime.runPromise(HttpServer.HttpServer.pipe(Effect.map((server) => server.address)))
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  const url = `http://127.0.0.1:${address.port}`
  return {
    url,
    runtime: runtime as ManagedRuntime.ManagedRuntime<unknown, unknown>,
    health: async () => (await (await fetch(`${url}/foreman/health`)).json()) as Record<string, unknown>,
    adjust: (duration) => {
      if (!options.testClock) return Promise.reject(new Error("adjust needs startForeman(..., { testClock: true })"))
      return runtime.runPromise(TestClock.adjust(duration))
    },
    close: () => runtime.dispose()
  }
}

/** The async job at `location` (a 202's `Location`) once it has finished, or as it is after 30 s. */
export const finishedJob = async (url: string, location: string): Promise<typeof Job.Encoded> =>
  (await (await fetch(`${url}${location}?wait=30s`)).json()) as typeof Job.Encoded
