/**
 * The open-loop load generator of the throughput benchmark, in its own process (see
 * throughput.ts for why). It reads one step per stdin line (a `LoadStep` as JSON), sends
 * requests at a fixed rate whatever the server does, and writes one `LoadResult` line.
 *
 * Open loop: request i is due at `start + i / rate` and its latency runs from that due
 * time, not from when it was actually sent, so a stalled server (or a late generator)
 * shows up in the latency instead of silently lowering the offered rate.
 */
import { createInterface } from "node:readline"
import { Pool } from "undici"

export interface LoadStep {
  readonly url: string
  readonly method: "GET" | "POST"
  readonly path: string
  readonly body?: string
  /** Requests per second. */
  readonly rate: number
  /** Sent at the same rate first, not measured: connections open, JIT settles. */
  readonly warmupMs: number
  readonly durationMs: number
  /** Requests still unanswered this long after the last due time count as infinitely late. */
  readonly graceMs: number
  /**
   * Stop as soon as more than 1 % of the measured requests are known to be slower than this
   * (the step has failed whatever follows), and abort what is in flight: an overloaded
   * server would otherwise carry its backlog into the next step.
   */
  readonly boundMs: number
}

export interface LoadResult {
  readonly rate: number
  /** Measured requests (after warm-up). */
  readonly measured: number
  readonly completed: number
  /** Non-2xx answers and failed requests, warm-up included. */
  readonly errors: number
  readonly firstError?: string
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  /** Stopped early: over 1 % of the measured requests were already past `boundMs`. */
  readonly aborted: boolean
  /** p99 of (actual send − due time): how far behind the generator itself fell. */
  readonly sendLagP99Ms: number
}

/**
 * More connections than requests in flight at any rate that passes (rate × 25 ms); past
 * that, undici queues requests client-side and the latency still counts from the due time.
 */
const CONNECTIONS = 512

const pools = new Map<string, Pool>()
const pool = (url: string): Pool => {
  let p = pools.get(url)
  if (p === undefined) {
    p = new Pool(url, { connections: CONNECTIONS, pipelining: 1 })
    pools.set(url, p)
  }
  return p
}

const percentile = (sorted: Float64Array, p: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!

const run = (step: LoadStep): Promise<LoadResult> =>
  new Promise((resolve) => {
    const target = pool(step.url)
    const interval = 1000 / step.rate
    const warm = Math.round((step.rate * step.warmupMs) / 1000)
    const total = warm + Math.round((step.rate * step.durationMs) / 1000)
    // Infinity until answered: an unanswered request is a miss, never a fast one.
    const latencies = new Float64Array(total - warm).fill(Number.POSITIVE_INFINITY)
    const lags = new Float64Array(total - warm)
    const headers = step.body === undefined ? {} : { "content-type": "application/json" }
    let errors = 0
    let firstError: string | undefined
    let completed = 0
    let next = 0
    /** Measured requests answered within the bound. */
    let inBound = 0
    let aborted = false
    const abort = new AbortController()
    const start = performance.now() + 5
    const measuredStart = start + warm * interval

    const fire = (i: number, due: number): void => {
      if (i >= warm) lags[i - warm] = performance.now() - due
      target.request({
        path: step.path,
        method: step.method,
        headers,
        signal: abort.signal,
        ...(step.body === undefined ? {} : { body: step.body })
      })
        .then(async (response) => {
          await response.body.dump()
          if (response.statusCode < 200 || response.statusCode >= 300) throw new Error(`HTTP ${response.statusCode}`)
          if (i >= warm) {
            const latency = performance.now() - due
            latencies[i - warm] = latency
            if (latency <= step.boundMs) inBound += 1
          }
        })
        .catch((error: unknown) => {
          if (aborted) return
          errors += 1
          firstError ??= error instanceof Error ? error.message : String(error)
        })
        .finally(() => {
          completed += 1
        })
    }

    /** Measured requests due over `boundMs` ago and not answered within it: failed, whatever happens next. */
    const knownLate = (now: number): number => {
      const due = Math.min(total - warm, Math.max(0, Math.floor((now - step.boundMs - measuredStart) / interval) + 1))
      return due - inBound
    }
    const failedAlready = (now: number): boolean => knownLate(now) > 0.01 * (total - warm)

    // A 1 ms timer rather than a busy loop: the generator shares 2 cores with the server.
    const tick = (): void => {
      const now = performance.now()
      if (failedAlready(now)) return stop()
      while (next < total && start + next * interval <= now) {
        fire(next, start + next * interval)
        next += 1
      }
      if (next < total) setTimeout(tick, 1)
      else finish(start + total * interval + step.graceMs)
    }
    const stop = (): void => {
      aborted = true
      abort.abort()
      finish(performance.now() + step.graceMs)
    }
    const finish = (deadline: number): void => {
      const now = performance.now()
      if (!aborted && completed < next && failedAlready(now)) return stop()
      if (completed < next && now < deadline) {
        setTimeout(() => finish(deadline), 5)
        return
      }
      // Whatever is still out past the grace is a miss already; it must not run into the next step.
      if (completed < next) abort.abort()
      const sorted = latencies.slice().sort()
      resolve({
        rate: step.rate,
        measured: total - warm,
        completed: latencies.filter(Number.isFinite).length,
        errors,
        ...(firstError === undefined ? {} : { firstError }),
        p50Ms: percentile(sorted, 50),
        p99Ms: percentile(sorted, 99),
        maxMs: sorted[sorted.length - 1] ?? Number.NaN,
        aborted,
        sendLagP99Ms: percentile(lags.slice().sort(), 99)
      })
    }
    setTimeout(tick, 5)
  })

// Steps run one after another, in the order they arrive.
let queue = Promise.resolve()
createInterface({ input: process.stdin })
  .on("line", (line) => {
    queue = queue.then(async () => {
      const result = await run(JSON.parse(line) as LoadStep)
      // JSON has no Infinity: an unanswered p99 goes over as null.
      process.stdout.write(JSON.stringify(result) + "\n")
    })
  })
  .on("close", async () => {
    await queue
    await Promise.all([...pools.values()].map((p) => p.destroy()))
    process.exit(0)
  })
process.stdout.write("ready\n")
