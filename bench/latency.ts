/**
 * Added latency (issue 6, item 1): non-streaming `/api/generate` against the zero-delay fake,
 * one request at a time, straight to the fake and through foreman, in alternating rounds.
 * The figure is foreman minus direct per round, then the median over rounds, so drift of
 * the (shared, noisy) machine during the run cancels out.
 *
 * Every process is separate, as deployed: the fake (serve.ts), foreman (bin/foreman-effect.js, default
 * settings: concurrency 1, log level info) and this client. So "direct" already pays one
 * loopback hop each way and foreman's figure is what it adds on top: its second hop, its
 * HTTP parsing and the job machinery. `/api/tags` and `/api/show` are measured the same way
 * to take that apart (see PATHS).
 *
 * Generate is also sent through the minimal proxy (proxy.ts: node:http and undici, nothing
 * else), the least any proxy adds on this machine, so foreman's figure has a floor to be
 * read against.
 *
 * foreman is measured warm (`FOREMAN_WARMUP_JOBS`, lib.ts), and its CPU per job over the
 * warm-up, block by block, is reported.
 */
import { Pool } from "undici"
import { GENERATE_BODY } from "./bare.ts"
import { type Benchmark, type Check, FOREMAN_WARMUP_JOBS, targetsBlock, median, millis, percentile, table } from "./lib.ts"
import { cpuMillis, startForeman, startServer, untilHealthy } from "./processes.ts"

const ROUNDS = 12
const PER_ROUND = 250
/** Per path and server before the first round: connections open, the JIT settles. */
const WARMUP = 1000
/** The warm-up's CPU per job is read over blocks of this many jobs. */
const WARMUP_BLOCK = 2_500

const TARGET_P50_MS = 1
const TARGET_P99_MS = 3

/**
 * The job, and two requests that take it apart: `/api/tags` is foreman's HTTP layer alone
 * (answered from its cache), `/api/show` adds the upstream call and the copy of the reply
 * (passed through, no job), the job adds validation, queue, scheduling and bookkeeping.
 */
const PATHS = ["generate", "show", "tags"] as const
type PathName = (typeof PATHS)[number]

const requests: Record<PathName, { readonly method: "GET" | "POST"; readonly path: string; readonly body?: string }> = {
  generate: { method: "POST", path: "/api/generate", body: GENERATE_BODY },
  show: { method: "POST", path: "/api/show", body: JSON.stringify({ model: "llama3.2" }) },
  tags: { method: "GET", path: "/api/tags" }
}

/** One request, answered in full: milliseconds from send to the last byte. */
const once = async (pool: Pool, name: PathName): Promise<number> => {
  const { body, method, path } = requests[name]
  const start = performance.now()
  const response = await pool.request({
    method,
    path,
    ...(body === undefined ? {} : { body, headers: { "content-type": "application/json" } })
  })
  await response.body.dump()
  const elapsed = performance.now() - start
  if (response.statusCode !== 200) throw new Error(`${path}: HTTP ${response.statusCode}`)
  return elapsed
}

const block = async (pool: Pool, name: PathName, n: number): Promise<Array<number>> => {
  const out: Array<number> = []
  for (let i = 0; i < n; i++) out.push(await once(pool, name))
  return out
}

interface Round {
  readonly direct: { readonly p50: number; readonly p99: number }
  readonly foreman: { readonly p50: number; readonly p99: number }
  /** The minimal proxy, generate only. */
  readonly proxy?: { readonly p50: number; readonly p99: number }
}

interface Series {
  readonly rounds: ReadonlyArray<Round>
  readonly direct: { readonly p50: number; readonly p99: number }
  readonly foreman: { readonly p50: number; readonly p99: number }
  /** Median over rounds of (foreman − direct). */
  readonly addedP50: number
  readonly addedP99: number
}

const summary = (xs: ReadonlyArray<number>) => ({ p50: percentile(xs, 50), p99: percentile(xs, 99) })

const series = (rounds: ReadonlyArray<Round>): Series => ({
  rounds,
  direct: { p50: median(rounds.map((r) => r.direct.p50)), p99: median(rounds.map((r) => r.direct.p99)) },
  foreman: { p50: median(rounds.map((r) => r.foreman.p50)), p99: median(rounds.map((r) => r.foreman.p99)) },
  addedP50: median(rounds.map((r) => r.foreman.p50 - r.direct.p50)),
  addedP99: median(rounds.map((r) => r.foreman.p99 - r.direct.p99))
})

const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`

export const latency: Benchmark = {
  name: "latency",
  title: "Added latency: non-streaming /api/generate, one request at a time",
  run: async () => {
    const fake = await startServer("fake")
    const foreman = await startForeman(fake.url, ["--db", ":memory:"])
    const proxy = await startServer("proxy", { target: fake.url })
    // One keep-alive connection per server: one request at a time, no connect in the figures.
    const direct = new Pool(fake.url, { connections: 1 })
    const proxied = new Pool(foreman.url, { connections: 1 })
    const minimal = new Pool(proxy.url, { connections: 1 })
    try {
      await untilHealthy(foreman.url)
      // Cold: the first jobs foreman serves after it started (the fake's first requests, direct, before them).
      const cold = { direct: summary(await block(direct, "generate", PER_ROUND)), foreman: summary(await block(proxied, "generate", PER_ROUND)) }
      // foreman's CPU per job over the warm-up, block by block.
      const warmupCpu: Array<number> = []
      for (let done = 0; done < FOREMAN_WARMUP_JOBS; done += WARMUP_BLOCK) {
        const before = cpuMillis(foreman.pid)
        await block(proxied, "generate", WARMUP_BLOCK)
        warmupCpu.push((cpuMillis(foreman.pid) - before) / WARMUP_BLOCK)
      }
      for (const name of PATHS) {
        await block(direct, name, WARMUP)
        if (name !== "generate") await block(proxied, name, WARMUP)
      }
      await block(minimal, "generate", WARMUP)
      const rounds: Record<PathName, Array<Round>> = { generate: [], show: [], tags: [] }
      // CPU foreman burns per request (its own process, from /proc): where the added time goes.
      const cpu: Record<PathName, number> = { generate: 0, show: 0, tags: 0 }
      const timed = async (pool: Pool, name: PathName) => {
        if (pool === direct) return block(pool, name, PER_ROUND)
        const before = cpuMillis(foreman.pid)
        const samples = await block(pool, name, PER_ROUND)
        cpu[name] += cpuMillis(foreman.pid) - before
        return samples
      }
      for (let r = 0; r < ROUNDS; r++) {
        for (const name of PATHS) {
          // Alternate the order, so no server always follows another's garbage.
          const pools = name === "generate" ? [direct, minimal, proxied] : [direct, proxied]
          const samples = new Map<Pool, Array<number>>()
          for (const pool of r % 2 === 0 ? pools : pools.reverse()) samples.set(pool, await timed(pool, name))
          rounds[name].push({
            direct: summary(samples.get(direct)!),
            foreman: summary(samples.get(proxied)!),
            ...(samples.has(minimal) ? { proxy: summary(samples.get(minimal)!) } : {})
          })
        }
      }
      const generate = series(rounds.generate)
      const show = series(rounds.show)
      const tags = series(rounds.tags)
      const minimalAdded = {
        p50: median(rounds.generate.map((r) => r.proxy!.p50 - r.direct.p50)),
        p99: median(rounds.generate.map((r) => r.proxy!.p99 - r.direct.p99))
      }
      const perRequest = (name: PathName) => cpu[name] / (ROUNDS * PER_ROUND)
      const cpuPerRequest = { generate: perRequest("generate"), show: perRequest("show"), tags: perRequest("tags") }
      const checks: ReadonlyArray<Check> = [
        {
          target: `added p50, non-streaming generate <= ${TARGET_P50_MS} ms`,
          measured: `${millis(generate.addedP50)} (direct ${millis(generate.direct.p50)}, foreman ${millis(generate.foreman.p50)})`,
          pass: generate.addedP50 <= TARGET_P50_MS
        },
        {
          target: `added p99, non-streaming generate <= ${TARGET_P99_MS} ms`,
          measured: `${millis(generate.addedP99)} (direct ${millis(generate.direct.p99)}, foreman ${millis(generate.foreman.p99)})`,
          pass: generate.addedP99 <= TARGET_P99_MS
        }
      ]
      const row = (label: string, s: Series) => [
        label,
        millis(s.direct.p50),
        millis(s.foreman.p50),
        `**${millis(s.addedP50)}**`,
        millis(s.direct.p99),
        millis(s.foreman.p99),
        `**${millis(s.addedP99)}**`
      ]
      const markdown = [
        `${ROUNDS} rounds × ${PER_ROUND} sequential requests per server and path (after the warm-up below), ` +
        "the servers taking turns within each round, the order reversing between rounds. " +
        "One keep-alive connection per server (undici `Pool`, `connections: 1`). The fake Ollama (zero delay), " +
        "foreman and the client are three processes. foreman: `--db :memory: --log-format json`, " +
        "everything else default (`--concurrency 1`, log level info: one log line per job).",
        "",
        "Each cell is the median over rounds of that round's percentile; *added* is the median over rounds of " +
        "(foreman − direct) in the same round. Percentiles are nearest-rank (p99 of 250 = the 3rd slowest).",
        "",
        table(
          ["request", "direct p50", "foreman p50", "added p50", "direct p99", "foreman p99", "added p99"],
          [
            row("`POST /api/generate` (`stream: false`), a job", generate),
            row("`POST /api/show`, passed through (no job)", show),
            row("`GET /api/tags`, from foreman's cache", tags)
          ]
        ),
        "",
        "For scale, the same generate request through the minimal proxy (`bench/proxy.ts`: `node:http` and undici, " +
        "forwarding and nothing else), measured in the same rounds: it adds " +
        `**${millis(minimalAdded.p50)}** at p50 and **${millis(minimalAdded.p99)}** at p99. That much is the second ` +
        "hop on this machine, whatever the proxy does.",
        "",
        `Cold and warm, in this run (\`npm run bench -- latency\`): foreman's first ${PER_ROUND} generate jobs after it ` +
        `started answered at p50 ${millis(cold.foreman.p50)} and p99 ${millis(cold.foreman.p99)} ` +
        `(${ratio(cold.foreman.p50, cold.direct.p50)} and ${ratio(cold.foreman.p99, cold.direct.p99)} the direct ones, ` +
        `${millis(cold.direct.p50)} and ${millis(cold.direct.p99)}, measured just before them); warm (the table) ` +
        `${ratio(generate.foreman.p50, generate.direct.p50)} and ${ratio(generate.foreman.p99, generate.direct.p99)}. ` +
        `Cold is ${ratio(cold.foreman.p50, generate.foreman.p50)} warm at p50 and ${ratio(cold.foreman.p99, generate.foreman.p99)} at p99.`,
        "",
        `foreman is measured warm: before the rounds it ran ${FOREMAN_WARMUP_JOBS} generate jobs (and ${WARMUP} of each ` +
        `other request; every other server ${WARMUP} per request). Its CPU per job over that warm-up, by blocks of ` +
        `${WARMUP_BLOCK}: ${warmupCpu.map(millis).join(", ")}. V8 goes on optimising the hot path for about that ` +
        "many jobs: a foreman that has just started is that much slower until then.",
        "",
        "foreman's own CPU time (user + system, `/proc/<pid>/stat`) per request over the measured rounds:",
        "",
        table(["request", "foreman CPU per request", "what it adds"], [
          ["`GET /api/tags`", millis(cpuPerRequest.tags), "the HTTP layer: parse, route, answer"],
          [
            "`POST /api/show`",
            millis(cpuPerRequest.show),
            `${millis(cpuPerRequest.show - cpuPerRequest.tags)} over tags: the upstream call (undici) and the copy of its reply`
          ],
          [
            "`POST /api/generate`",
            millis(cpuPerRequest.generate),
            `${millis(cpuPerRequest.generate - cpuPerRequest.show)} over show: validation, queue, scheduling and bookkeeping of a job`
          ]
        ]),
        "",
        ...targetsBlock(checks, () => [
          `Why: with one request in flight, the ${millis(cpuPerRequest.generate)} of CPU foreman spends per job is spent ` +
          "on that request's path or right after it (where it delays the next): it is most of the added p50 " +
          `(${millis(generate.addedP50)}). Per the table above, the job's own machinery and the upstream call each ` +
          "cost more than the whole HTTP layer. A CPU profile (`BENCH_CPU_PROF=<dir> npm run bench -- latency`, then " +
          "`node bench/profile.ts <file>`), taken when this benchmark was written, put most of it in the Effect runtime " +
          "(fiber run loop, fiber refs, context comparisons, metric keys) and garbage collection (the sampling heap " +
          "profiler counts about 370 KB allocated per job, nearly all of it in Effect's run loop and fiber-ref maps) " +
          "rather than in any one function of foreman's. The p99 is that plus young-generation collections: at that " +
          "allocation rate V8's young generation fills every few dozen jobs, and the request that meets a collection " +
          "pays it (foreman runs with Node's defaults; docs/decisions.md has what other V8 settings measured)."
        ])
      ].join("\n")
      return {
        data: {
          rounds: ROUNDS,
          perRound: PER_ROUND,
          warmup: WARMUP,
          foremanWarmup: FOREMAN_WARMUP_JOBS,
          foremanWarmupCpuMsPerJob: warmupCpu,
          cold,
          generate,
          show,
          tags,
          minimalProxyAdded: minimalAdded,
          foremanCpuMsPerRequest: cpuPerRequest
        },
        markdown,
        checks
      }
    } finally {
      await Promise.all([direct.close(), proxied.close(), minimal.close()])
      await foreman.stop()
      await Promise.all([fake.stop(), proxy.stop()])
    }
  }
}
