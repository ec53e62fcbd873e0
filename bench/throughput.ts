/**
 * Throughput at a latency bound (issue 6, item 3): the highest fixed arrival rate a server
 * sustains with p99 under 25 ms, for cached `/api/tags` and zero-delay non-streaming
 * `/api/generate`, through foreman and from a bare `node:http` server sending the same bytes
 * (bare.ts). The figure is foreman's rate as a ratio of the bare server's, per round, median
 * over rounds; the servers alternate so all see the same machine.
 *
 * For generate a third server is searched too: the minimal proxy (proxy.ts), `node:http`
 * and undici forwarding to the same fake and nothing else. It is what any proxy in Node pays
 * here (the second HTTP exchange and the upstream's own work, on the same two cores), so it
 * says how much of the gap to the bare server is foreman's and how much is being a proxy.
 *
 * The load generator (load.ts) is its own process: in the server's process it would take
 * half of the server's event loop, and the bare server, the cheaper one, would be distorted
 * the most. On 2 cores that gives the generator one core and the server the other; foreman's
 * generate path also needs the fake Ollama behind it (a third process), which is part of
 * what a proxy costs. Each step: 0.3 s at the rate (not measured), then 1 s measured.
 * Search: double from a start rate until a step fails, then bisect 3 times (within 1/8).
 */
import { Pool } from "undici"
import { GENERATE_BODY } from "./bare.ts"
import { type Benchmark, type Check, FOREMAN_WARMUP_JOBS, targetsBlock, median, millis, ratio, table, times } from "./lib.ts"
import type { LoadResult, LoadStep } from "./load.ts"
import { cpuMillis, type LoadGenerator, quiesce, startForeman, startLoadGenerator, startServer, untilHealthy } from "./processes.ts"

const BOUND_MS = 25
const ROUNDS = 3
const WARMUP_MS = 300
const MEASURE_MS = 1000
const GRACE_MS = 1000
const BISECTIONS = 3
/** First step of the first round; later rounds start from the previous round's result. */
const START_RATE = 250
const MIN_RATE = 10
/** Far above what one generator process can offer on this machine: a cap, not a goal. */
const MAX_RATE = 64_000
const TARGET_RATIO = 0.5
/** foreman's warm-up (lib.ts) is sent by this many clients, each one request after another. */
const FOREMAN_WARMUP_CLIENTS = 8
/** foreman's settings: the scheduler must not be the limit here. */
const FOREMAN_ARGS = ["--concurrency", "4096", "--max-queue", "1000000", "--db", ":memory:"]

type Endpoint = "tags" | "generate"
type Side = "bare" | "foreman" | "proxy"

interface Server {
  readonly url: string
  /** The processes that serve it: foreman's generate path includes the fake's. */
  readonly pids: ReadonlyArray<number>
}

const requestOf: Record<Endpoint, Pick<LoadStep, "method" | "path" | "body">> = {
  tags: { method: "GET", path: "/api/tags" },
  generate: { method: "POST", path: "/api/generate", body: GENERATE_BODY }
}

const passes = (r: LoadResult): boolean => !r.aborted && r.errors === 0 && r.p99Ms <= BOUND_MS

/** A step, with the CPU the serving processes used during it. */
type Step = LoadResult & { readonly cpuMsPerRequest: number; readonly cpuShare: number }

interface Search {
  /** Highest passing rate (requests/s); 0 if even MIN_RATE failed. */
  readonly rate: number
  readonly steps: ReadonlyArray<Step>
}

/**
 * Doubling until a step fails (halving if the first one does), then bisection. A rate fails
 * only if two steps at it fail: on a shared machine one hiccup of another process's making
 * would otherwise end a search early.
 */
const search = async (generator: LoadGenerator, server: Server, endpoint: Endpoint, start: number): Promise<Search> => {
  const steps: Array<Step> = []
  const attempt = async (rate: number): Promise<boolean> => {
    const cpuBefore = cpuMillis(server.pids[0]!)
    const started = performance.now()
    const result = await generator.step({
      url: server.url,
      ...requestOf[endpoint],
      rate,
      warmupMs: WARMUP_MS,
      durationMs: MEASURE_MS,
      graceMs: GRACE_MS,
      boundMs: BOUND_MS
    })
    // The first pid is the server itself (foreman, not the fake behind it).
    const cpu = cpuMillis(server.pids[0]!) - cpuBefore
    const sent = Math.round((rate * (WARMUP_MS + MEASURE_MS)) / 1000)
    steps.push({ ...result, cpuMsPerRequest: cpu / sent, cpuShare: cpu / (performance.now() - started) })
    // An overloaded server first works off what it still holds.
    if (!passes(result)) await quiesce(server.pids)
    return passes(result)
  }
  const step = async (rate: number): Promise<boolean> => (await attempt(rate)) || (await attempt(rate))
  let pass = 0
  let fail = Number.POSITIVE_INFINITY
  let rate = Math.round(start)
  if (await step(rate)) {
    pass = rate
    while (pass < MAX_RATE && (await step(pass * 2))) pass *= 2
    fail = pass * 2
  } else {
    fail = rate
    while (rate > MIN_RATE) {
      rate = Math.round(rate / 2)
      if (await step(rate)) {
        pass = rate
        break
      }
      fail = rate
    }
    if (pass === 0) return { rate: 0, steps }
  }
  for (let i = 0; i < BISECTIONS && pass < MAX_RATE; i++) {
    const mid = Math.round((pass + fail) / 2)
    if (await step(mid)) pass = mid
    else fail = mid
  }
  return { rate: pass, steps }
}

interface Round {
  readonly bare: Record<Endpoint, Search>
  readonly foreman: Record<Endpoint, Search>
  /** The minimal proxy: generate only (it has no cache to answer `/api/tags` from). */
  readonly proxy: Pick<Record<Endpoint, Search>, "generate">
}

/** Which servers are searched for a request. */
const sidesFor: Record<Endpoint, ReadonlyArray<Side>> = { tags: ["bare", "foreman"], generate: ["bare", "proxy", "foreman"] }

const serverName: Record<Side, string> = {
  foreman: "foreman",
  proxy: "minimal proxy (`bench/proxy.ts`)",
  bare: "bare `node:http`"
}

/**
 * foreman's generate path until V8 is done optimising it (`FOREMAN_WARMUP_JOBS`, lib.ts).
 * Closed loop, so it runs as fast as foreman answers: a cold foreman falls behind any fixed
 * rate worth sending, and would start the searches with a backlog.
 */
const warmForeman = async (url: string): Promise<void> => {
  const pool = new Pool(url, { connections: FOREMAN_WARMUP_CLIENTS })
  let sent = 0
  const client = async () => {
    while (sent < FOREMAN_WARMUP_JOBS) {
      sent++
      const response = await pool.request({ method: "POST", path: requestOf.generate.path, body: GENERATE_BODY, headers: { "content-type": "application/json" } })
      await response.body.dump()
      if (response.statusCode !== 200) throw new Error(`warm-up: HTTP ${response.statusCode}`)
    }
  }
  try {
    await Promise.all(Array.from({ length: FOREMAN_WARMUP_CLIENTS }, client))
  } finally {
    await pool.close()
  }
}

/** A round's search of a server for a request, if that server was searched for it. */
const searched = (round: Round, side: Side, endpoint: Endpoint): Search | undefined =>
  (round[side] as Partial<Record<Endpoint, Search>>)[endpoint]

/** The best passing step of a search: what the server cost per request at its limit. */
const atLimit = (search: Search): Step | undefined => search.steps.filter((s) => passes(s) && s.rate === search.rate).at(-1)

export const throughput: Benchmark = {
  name: "throughput",
  title: "Throughput at p99 < 25 ms: foreman vs a bare node:http server (and a minimal proxy)",
  run: async () => {
    const bare = await startServer("bare")
    const fake = await startServer("fake")
    const foreman = await startForeman(fake.url, FOREMAN_ARGS)
    const proxy = await startServer("proxy", { target: fake.url })
    const generator = await startLoadGenerator()
    try {
      await untilHealthy(foreman.url)
      // Warm-up at modest rates, not measured: the generator's JIT, connections, foreman's JIT.
      const warm = (url: string, endpoint: Endpoint, rate: number) =>
        generator.step({ url, ...requestOf[endpoint], rate, warmupMs: 0, durationMs: 1000, graceMs: GRACE_MS, boundMs: 1e9 })
      for (const endpoint of ["tags", "generate"] as const) {
        await warm(bare.url, endpoint, 1000)
        await warm(foreman.url, endpoint, 100)
      }
      await warmForeman(foreman.url)
      await quiesce([foreman.pid, fake.pid])
      await warm(proxy.url, "generate", 500)
      await warm(fake.url, "generate", 100)

      const servers: Record<Side, Server> = {
        bare: { url: bare.url, pids: [bare.pid] },
        foreman: { url: foreman.url, pids: [foreman.pid, fake.pid] },
        proxy: { url: proxy.url, pids: [proxy.pid, fake.pid] }
      }
      const rounds: Array<Round> = []
      for (let r = 0; r < ROUNDS; r++) {
        const previous = rounds[r - 1]
        const found: Record<Side, Partial<Record<Endpoint, Search>>> = { bare: {}, foreman: {}, proxy: {} }
        for (const endpoint of ["tags", "generate"] as const) {
          // Alternate the order each round.
          const sides = r % 2 === 0 ? sidesFor[endpoint] : [...sidesFor[endpoint]].reverse()
          for (const side of sides) {
            const before = previous === undefined ? undefined : searched(previous, side, endpoint)
            const start = before === undefined ? START_RATE : Math.max(MIN_RATE, before.rate)
            found[side][endpoint] = await search(generator, servers[side], endpoint, start)
          }
        }
        rounds.push({
          bare: found.bare as Record<Endpoint, Search>,
          foreman: found.foreman as Record<Endpoint, Search>,
          proxy: { generate: found.proxy.generate! }
        })
      }

      const figure = (endpoint: Endpoint) => ({
        bare: median(rounds.map((r) => r.bare[endpoint].rate)),
        foreman: median(rounds.map((r) => r.foreman[endpoint].rate)),
        ratio: median(rounds.map((r) => ratio(r.foreman[endpoint].rate, r.bare[endpoint].rate)))
      })
      const tags = figure("tags")
      const generate = figure("generate")
      const minimal = {
        rate: median(rounds.map((r) => r.proxy.generate.rate)),
        ratio: median(rounds.map((r) => ratio(r.proxy.generate.rate, r.bare.generate.rate))),
        /** foreman's rate as a share of the minimal proxy's, same round. */
        foremanShare: median(rounds.map((r) => ratio(r.foreman.generate.rate, r.proxy.generate.rate)))
      }
      // Is the fake Ollama behind foreman what limits it? One step of it alone at 4× foreman's rate says.
      const fakeRate = Math.max(MIN_RATE, 4 * generate.foreman)
      const fakeStep = await generator.step({
        url: fake.url,
        ...requestOf.generate,
        rate: fakeRate,
        warmupMs: WARMUP_MS,
        durationMs: MEASURE_MS,
        graceMs: GRACE_MS,
        boundMs: BOUND_MS
      })
      const lagP99 = Math.max(...rounds.flatMap((r) => [...r.bare.tags.steps, ...r.bare.generate.steps]).filter(passes).map((s) => s.sendLagP99Ms))

      /** Per endpoint and server, the passing step at the median round's rate. */
      const limits = (["tags", "generate"] as const).flatMap((endpoint) =>
        sidesFor[endpoint].flatMap((side) => {
          const rate = side === "proxy" ? minimal.rate : endpoint === "tags" ? tags[side] : generate[side]
          const step = rounds.map((r) => {
            const s = searched(r, side, endpoint)
            return s === undefined ? undefined : atLimit(s)
          }).find((s) => s?.rate === rate)
          return step === undefined ? [] : [{ endpoint: `\`${requestOf[endpoint].path}\``, side, rate, cpuMsPerRequest: step.cpuMsPerRequest, cpuShare: step.cpuShare }]
        })
      )
      const foremanErrors = rounds.flatMap((r) => r.foreman.generate.steps).find((s) => s.errors > 0)?.firstError
      const foremanGenerate = limits.find((l) => l.side === "foreman" && l.endpoint.includes("generate"))
      const bareGenerate = limits.find((l) => l.side === "bare" && l.endpoint.includes("generate"))
      const minimalGenerate = limits.find((l) => l.side === "proxy")
      const checks: ReadonlyArray<Check> = [
        {
          target: `throughput on zero-delay generate >= ${TARGET_RATIO}x the bare node:http baseline (p99 < ${BOUND_MS} ms)`,
          measured: `${times(generate.ratio)} (foreman ${generate.foreman} req/s, bare ${generate.bare} req/s)`,
          pass: generate.ratio >= TARGET_RATIO
        }
      ]
      const perRound = (side: Side, endpoint: Endpoint) => rounds.map((r) => searched(r, side, endpoint)?.rate).join(", ")
      const markdown = [
        `Open loop: requests due at a fixed rate, latency from the due time. A step passes with p99 ≤ ${BOUND_MS} ms ` +
        `and no errors; it is cut short (failed) once over 1 % of its requests are known to be late. Steps: ` +
        `${WARMUP_MS / 1000} s at the rate unmeasured, then ${MEASURE_MS / 1000} s measured. Search: doubling from ` +
        `${START_RATE} req/s (later rounds: from the previous round's result), then ${BISECTIONS} bisections; a rate ` +
        "fails only when two steps at it fail (the machine is shared; after a failed step the servers are left to go " +
        "idle first). " +
        `${ROUNDS} rounds; in each, every server is searched for each request, the order reversing each round.`,
        "",
        `foreman: \`${FOREMAN_ARGS.join(" ")} --log-format json\` (log level info: one line per job, to a file), ` +
        `in front of the zero-delay fake Ollama, warmed with ${FOREMAN_WARMUP_JOBS} generate jobs ` +
        `(${FOREMAN_WARMUP_CLIENTS} clients one request after another, not measured; V8 optimises its hot path over about ` +
        "that many, see `latency.md`). " +
        "Bare: `bench/bare.ts`, a `node:http` server answering the fake's " +
        "bytes. Minimal proxy: `bench/proxy.ts`, `node:http` reading and parsing the body, then forwarding it over " +
        "undici to the same fake and answering its reply; nothing else (no queue, no checks, no log). The load generator (`bench/load.ts`, undici, up to 512 connections) is a separate process.",
        "",
        table(["request", "server", "rate", "÷ bare node:http", "per round"], [
          ["`GET /api/tags`", "foreman (from its cache)", `${tags.foreman} req/s`, `**${times(tags.ratio)}**`, perRound("foreman", "tags")],
          ["`GET /api/tags`", serverName.bare, `${tags.bare} req/s`, "1×", perRound("bare", "tags")],
          ["`POST /api/generate` (`stream: false`, zero-delay)", "foreman", `${generate.foreman} req/s`, `**${times(generate.ratio)}**`, perRound("foreman", "generate")],
          ["`POST /api/generate`", serverName.proxy, `${minimal.rate} req/s`, `**${times(minimal.ratio)}**`, perRound("proxy", "generate")],
          ["`POST /api/generate`", serverName.bare, `${generate.bare} req/s`, "1×", perRound("bare", "generate")]
        ]),
        "",
        `On generate foreman reaches **${times(minimal.foremanShare)}** the minimal proxy's rate (median over rounds of ` +
        "the same round's ratio); the minimal proxy, which only forwards, reaches " +
        `${times(minimal.ratio)} the bare server's. That part of the gap is being a proxy at all: a second HTTP ` +
        "exchange per request and the upstream server's own work, on the same two cores.",
        "",
        `The fake Ollama alone (foreman's upstream here), offered ${fakeRate} req/s of the same generate request (4× ` +
        `foreman's rate): p99 ${millis(fakeStep.p99Ms)}, ${passes(fakeStep) ? "within" : "over"} the bound` +
        `${passes(fakeStep) ? ", so it is not what limits foreman" : ""}. ` +
        `The generator fell behind its own schedule by at most ${millis(lagP99)} (p99 send lag) in the passing bare ` +
        "steps: near the bare server's limit both share the machine, so the bare figure is a floor and the ratios " +
        "flatter foreman, if anything.",
        "",
        "At each server's highest passing rate (median over rounds), its own process's CPU:",
        "",
        table(["request", "server", "rate", "CPU per request", "CPU, share of one core"], limits.map((l) => [
          l.endpoint,
          serverName[l.side],
          `${l.rate} req/s`,
          millis(l.cpuMsPerRequest),
          `${Math.round(l.cpuShare * 100)} %`
        ])),
        "",
        ...targetsBlock(checks, () =>
          foremanErrors !== undefined ? [
            `Why: foreman answered generate requests with errors (first: ${foremanErrors}), and a step with errors fails.`
          ] : [
          `Why: ${minimal.ratio < TARGET_RATIO ? "no proxy reaches it on this machine" : "mostly foreman's own cost"}: ` +
          `the minimal proxy, which does nothing but forward, sustains ${times(minimal.ratio)} the bare server's rate. ` +
          `On top of that, at its limit foreman spends ${millis(foremanGenerate?.cpuMsPerRequest ?? Number.NaN)} of CPU ` +
          `per generate request against ${millis(minimalGenerate?.cpuMsPerRequest ?? Number.NaN)} for the minimal proxy ` +
          `and ${millis(bareGenerate?.cpuMsPerRequest ?? Number.NaN)} for the bare server, and one Node ` +
          "process runs JavaScript on one core: the rate at which p99 stays under the bound is set by that per-request " +
          "cost (plus the garbage-collection pauses it brings), long before the core is nominally full. Where the time " +
          "goes per request is taken apart in `latency.md`."
        ])
      ].join("\n")
      return {
        data: { boundMs: BOUND_MS, foremanArgs: FOREMAN_ARGS, tags, generate, minimalProxy: minimal, limits, fakeAlone: fakeStep, rounds },
        markdown,
        checks
      }
    } finally {
      await generator.stop()
      await foreman.stop()
      await Promise.all([fake.stop(), bare.stop(), proxy.stop()])
    }
  }
}
