/**
 * Memory given back after a burst. V8 collects the old generation lazily: with gigabytes of
 * memory on the machine it lets garbage (and the buffers it holds outside the heap) pile
 * up, and a broker at rest allocates too little to make it collect. So the RSS after
 * start-up, after 10 000 submissions or after a drained queue would stay tens of MB above
 * what foreman uses. Here foreman runs one memory-reducing collection itself: once when it
 * has started (module compilation leaves ~60 MB of garbage), then whenever its RSS is a
 * fifth above its resting level (the least a collection has left it at) and has grown
 * since the last collection, while nothing has run at the target and foreman has been
 * quiet (under 5 % of a core) for two checks in a row. Measured from the resting level, not
 * only from the last collection: one taken while 10 000 jobs sat queued leaves RSS high,
 * and what their run leaves behind would otherwise stay. The growth since the last one keeps
 * a large live set (a long queue) from being collected again and again for nothing. A
 * collection takes ~0.1 s: never while a job runs, requests keep foreman busy, or in a
 * short lull between bursts.
 *
 * Needs `gc`, which Node exposes with `--expose-gc` (`NODE_OPTIONS=--expose-gc npx
 * foreman-effect`). The command line passes no Node flags of its own, so by default, as in
 * an embedding application or under Deno, this does nothing.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Metrics from "./Metrics.ts"

export type Collect = (options: { type: "major"; execution: "sync"; flavor: "last-resort" }) => unknown

/** RSS over the resting level (the least a collection has left) that makes a collection worth it. */
const overRest = 1.2
/** RSS growth since the last collection without which another one would free nothing new. */
const sinceLast = 1.05
/** The share of one core below which foreman counts as quiet (a poll now and then). */
const quietShare = 0.05
/**
 * How many checks in a row must find it quiet: a lull of a second between bursts is when the
 * next burst starts, and a collection then would stall its first requests.
 */
const quietChecks = 2

export interface Options {
  readonly checkEvery?: Duration.DurationInput
  /** The collector; default: the global `gc` (`--expose-gc`). */
  readonly gc?: Collect | undefined
  /** The process's RSS and CPU time so far (ms); default: from `process`. */
  readonly sample?: () => { readonly rss: number; readonly cpuMillis: number }
}

const processSample = () => {
  const cpu = process.cpuUsage()
  return { rss: process.memoryUsage.rss(), cpuMillis: (cpu.user + cpu.system) / 1000 }
}

export const layer = (options: Options = {}) =>
  Layer.scopedDiscard(Effect.gen(function*() {
    const gc = "gc" in options ? options.gc : (globalThis as { gc?: Collect }).gc
    if (typeof gc !== "function") return
    const sample = options.sample ?? processSample
    const every = Duration.toMillis(options.checkEvery ?? Duration.seconds(1))
    const collect = () => {
      gc({ type: "major", execution: "sync", flavor: "last-resort" })
      return sample()
    }
    let { cpuMillis: lastCpu, rss: afterLast } = collect()
    let rest = afterLast
    let quietFor = 0
    yield* Effect.sync(() => {
      const { cpuMillis, rss } = sample()
      const idle = Metrics.jobsRunning.unsafeValue([]).value === 0
      quietFor = idle && cpuMillis - lastCpu < quietShare * every ? quietFor + 1 : 0
      lastCpu = cpuMillis
      afterLast = Math.min(afterLast, rss)
      rest = Math.min(rest, rss)
      if (quietFor >= quietChecks && rss > rest * overRest && rss > afterLast * sinceLast) {
        const after = collect()
        lastCpu = after.cpuMillis
        afterLast = after.rss
        rest = Math.min(rest, after.rss)
        quietFor = 0
      }
    }).pipe(Effect.repeat(Schedule.spaced(every)), Effect.forkScoped)
  }))
