/**
 * The metrics plugin: `GET /metrics` in the Prometheus text format.
 *
 * It renders Effect's metric registry as it is at the scrape (`Metric.snapshot`): the
 * `foreman_*` figures the core keeps, and every other Effect metric in the process, so one
 * scrape shows all of it: Effect's own `effect_fiber_*` (fibers started, active, failed,
 * their lifetimes: on by default, they show a fiber leak) and, when foreman is embedded,
 * the application's own metrics. `make({ filter })` narrows that.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import { ForemanRouter, Plugin, requireAdmin } from "../../src/index.ts"
import { contentType, render, type RenderOptions } from "./prometheus.ts"

export { contentType, render, type RenderOptions } from "./prometheus.ts"

/** The `/metrics` route; `options.filter` picks the metrics rendered (default: all). */
export const layer = (options: RenderOptions = {}) =>
  ForemanRouter.use((router) =>
    router.get(
      "/metrics",
      // With keys on, for admin keys only (the figures name every model and caller).
      requireAdmin(Metric.snapshot.pipe(
        Effect.map((snapshot) => HttpServerResponse.text(render(snapshot, options), { contentType })),
        Effect.withSpan("Metrics.scrape")
      ))
    )
  )

/** The plugin with a choice of metrics, e.g. `make({ filter: (key) => key.name.startsWith("foreman_") })`. */
export const make = (options: RenderOptions = {}) => Plugin.make("metrics", layer(options))

/** The plugin `--plugins metrics` loads: every metric in the registry. */
export const MetricsPlugin = make()
