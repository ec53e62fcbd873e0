/**
 * Wiring, in one place. `ForemanLive` is the whole broker: services, routes and the HTTP
 * server, needing only a config, an `HttpClient` and an `HttpServer` from the runtime.
 * The command line (`bin.ts`) and library users both start from here.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Undici from "@effect/platform-node/Undici"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { createServer } from "node:http"
import { KeysLive } from "./auth/KeysFile.ts"
import { ForemanConfig } from "./Config.ts"
import * as ForemanApi from "./http/api/ForemanApiLive.ts"
import * as OllamaRoutes from "./http/ollamaRoutes.ts"
import * as Server from "./http/server.ts"
import { Events } from "./events/Events.ts"
import * as Poller from "./target/Poller.ts"
import * as AsyncJobs from "./jobs/AsyncJobs.ts"
import * as Jobs from "./jobs/Jobs.ts"
import * as SqlJobStore from "./jobs/SqlJobStore.ts"
import * as ProcessLock from "./jobs/sqlite/ProcessLock.ts"
import * as SqliteClient from "./jobs/sqlite/SqliteClient.ts"
import * as Scheduler from "./scheduler/Scheduler.ts"
import * as Target from "./target/Target.ts"

/**
 * The job store on SQLite (`--db`; `:memory:` for a throwaway one), held by this process
 * alone: its lock is taken before the store opens the file and re-queues what it holds.
 */
export const StoreLive = Layer.unwrapEffect(
  Effect.map(ForemanConfig, (config) =>
    SqlJobStore.layer.pipe(
      Layer.provide(SqliteClient.layer({ filename: config.db })),
      Layer.provide(Layer.scopedDiscard(ProcessLock.acquire(config.db)))
    ))
)

/**
 * The services: the targets (each with its client, inventory and poller; the primary one's
 * client and inventory also as `TargetClient` and `Inventory`), scheduler, jobs, async jobs
 * and their store, and the event hub plugins follow.
 */
export const ServicesLive = AsyncJobs.layer.pipe(
  Layer.provideMerge(Layer.mergeAll(Jobs.layer, Poller.layer, StoreLive)),
  Layer.provideMerge(Layer.merge(Scheduler.layer, Target.primaryLayer)),
  Layer.provideMerge(Target.layer),
  Layer.provideMerge(Layer.merge(Events.layer, KeysLive))
)

/**
 * The HTTP surface. `plugins` are layers that add routes to the `ForemanRouter` (and may
 * use any service); they are built before the server reads the router.
 */
export const HttpLive = <E, R>(plugins: Layer.Layer<never, E, R>) =>
  Server.layer.pipe(
    Layer.provide(Layer.mergeAll(OllamaRoutes.layer, ForemanApi.layer, plugins))
  )

const logListening = Layer.effectDiscard(
  Effect.gen(function*() {
    const { all } = yield* Target.Targets
    yield* HttpServer.addressFormattedWith((address) =>
      Effect.logInfo("foreman listening").pipe(Effect.annotateLogs({ url: address, target: all.map((t) => t.url).join(",") }))
    )
  })
)

/** The whole broker. Needs `ForemanConfig`, an `HttpClient` and an `HttpServer`. */
export const ForemanLive = <E = never, R = never>(plugins: Layer.Layer<never, E, R> = Layer.empty as Layer.Layer<never, E, R>) =>
  // "foreman listening" once the server layer is up (it may refuse to serve: see guardExposure).
  logListening.pipe(Layer.provide(HttpLive(plugins)), Layer.provideMerge(ServicesLive))

/**
 * Node's HTTP server on `host:port` and an undici client to the target. Undici's own
 * header timeout is off: Ollama sends no header until the first token, and a model load
 * can take minutes. A sleeping laptop does not answer SYNs, hence the connect timeout.
 */
export const NodePlatformLive = Layer.unwrapEffect(
  Effect.map(ForemanConfig, (config) =>
    Layer.mergeAll(
      NodeHttpServer.layer(() => createServer(), { host: config.host, port: config.port }),
      // The dispatcher is also exposed: the target client sends jobs through it directly.
      NodeHttpClient.layerUndiciWithoutDispatcher.pipe(
        Layer.provideMerge(
          Layer.scoped(
            NodeHttpClient.Dispatcher,
            Effect.acquireRelease(
              Effect.sync(() =>
                new Undici.Agent({
                  connect: { timeout: Duration.toMillis(config.connectTimeout) },
                  headersTimeout: 0,
                  bodyTimeout: 0
                })
              ),
              (agent) => Effect.promise(() => agent.destroy())
            )
          )
        )
      )
    ))
)

/** For runtimes without undici (Deno): the platform's `fetch`. */
export const FetchPlatformLive = Layer.unwrapEffect(
  Effect.map(ForemanConfig, (config) =>
    Layer.mergeAll(
      NodeHttpServer.layer(() => createServer(), { host: config.host, port: config.port }),
      FetchHttpClient.layer
    ))
)
