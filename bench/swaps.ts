/**
 * Swap efficiency (issue 3, item 7; issue 6, item 6): the same jobs, with the same arrival
 * times, replayed against a fake Ollama that pays a load time per model swap and a token
 * rate per job,
 *   (a) FIFO straight to the target: one client-side slot sends the jobs in arrival order,
 *       the next only after the previous finished (Ollama's own queue with NUM_PARALLEL=1;
 *       the fake does not queue by itself, so this runner plays that part);
 *   (b) through foreman (concurrency 1): every job sent at its arrival time, concurrently,
 *       with its `X-Foreman-Priority`; foreman orders them.
 * Each run gets a fresh fake and a fresh foreman, so the fake's `loads` are that run's swaps.
 * A reload of one model for another `num_ctx` is a load too (the fake, like Ollama, reloads a
 * model for a job whose context differs from the one it was loaded with).
 * Then fair share (two callers): A's backlog of 100 batch jobs and B's 5, through the
 * Scheduler, with and without the callers on the tickets.
 */
import { Clock, Duration, Effect, Logger, LogLevel, Option, TestClock, TestContext } from "effect"
import * as ModelName from "../src/ollama/ModelName.ts"
import { fairShareSpan } from "../src/scheduler/policy.ts"
import { type FakeTarget, startFakeTarget } from "../test/support/FakeTarget.ts"
import { startForeman } from "../test/support/foreman.ts"
import * as TestTarget from "../test/support/TestTarget.ts"
import { type Benchmark, type Check, mean, percentile, ratio, seconds, seededRandom, table, times } from "./lib.ts"

/** The simulated GPU box: 1 s per model swap, one model held, 8 chunks × 25 ms ≈ 0.2 s per job. */
const SIM = { loadDelayMs: 1000, tokenDelayMs: 25, chunks: 8, maxLoaded: 1 } as const
/** foreman's default `--max-wait`: the runs are far shorter, so it is not lowered. */
const MAX_WAIT_MS = 60_000
/** Lets every arrival timer be armed before the first job is due. */
const LEAD_MS = 100
/** Safety net only: no request of these workloads comes near it. */
const REQUEST_TIMEOUT_MS = 180_000

type Priority = "interactive" | "batch"

interface Job {
  readonly id: number
  /** Unique: matches the fake's recorded call back to the job. */
  readonly prompt: string
  readonly model: string
  readonly priority: Priority
  /** Milliseconds after the run's start. */
  readonly arrivalMs: number
  /** `options.num_ctx` of the request, if any: another value makes the target reload the model. */
  readonly numCtx?: number
}

interface Workload {
  readonly name: string
  readonly description: string
  readonly jobs: ReadonlyArray<Job>
}

/** Every 5th job is interactive, the rest batch, so both classes have a latency worth reporting. */
const job = (id: number, model: string, arrivalMs: number): Job => ({
  id,
  prompt: `job ${id}`,
  model,
  priority: id % 5 === 0 ? "interactive" : "batch",
  arrivalMs
})

const interleaved = (): Workload => {
  const models = ["a", "b", "c"]
  return {
    name: "interleaved",
    description: "30 jobs over 3 models arriving a b c a b c …, 50 ms apart",
    jobs: Array.from({ length: 30 }, (_, i) => job(i, models[i % 3]!, i * 50))
  }
}

/**
 * Exponential gaps (mean 400 ms: faster than FIFO can serve with swaps, so a queue forms)
 * and exact popularity 24/12/4 in a seeded shuffle, so the rare model always has jobs.
 */
/**
 * One model asked for with two context sizes (its default and `num_ctx` 8192) and a second
 * model, interleaved: a reload is a swap (issue 16, item 4), which foreman used to miss.
 */
const numCtx = (): Workload => ({
  name: "num_ctx",
  description: "30 jobs arriving a, a with num_ctx 8192, b, a, a with num_ctx 8192, b …, 50 ms apart",
  jobs: Array.from({ length: 30 }, (_, i) => {
    const j = job(i, i % 3 === 2 ? "b" : "a", i * 50)
    return i % 3 === 1 ? { ...j, numCtx: 8192 } : j
  })
})

const poisson = (): Workload => {
  const random = seededRandom(42)
  const models = [...Array<string>(24).fill("a"), ...Array<string>(12).fill("b"), ...Array<string>(4).fill("c")]
  for (let i = models.length - 1; i > 0; i--) {
    const k = Math.floor(random() * (i + 1))
    ;[models[i], models[k]] = [models[k]!, models[i]!]
  }
  let at = 0
  const jobs = models.map((model, i) => {
    const j = job(i, model, Math.round(at))
    at += -Math.log(1 - random()) * 400
    return j
  })
  return {
    name: "poisson",
    description: "40 jobs, exponential inter-arrival times (mean 400 ms, seed 42), models a/b/c at 60/30/10 %",
    jobs
  }
}

/** What the target loads for a job: its model, with its num_ctx if it sets one (`a@8192`). */
const unitOf = (job: Job): string => job.numCtx === undefined ? job.model : `${job.model}@${job.numCtx}`

// ---------------------------------------------------------------------------------------------
// Replaying a workload

interface Served {
  readonly id: number
  readonly model: string
  readonly priority: Priority
  readonly arrivalMs: number
  /** When the target received the job (the fake's record), relative to the run's start. */
  readonly startMs: number
  /** When the caller had the whole reply. */
  readonly endMs: number
}

interface Run {
  /** Models the fake loaded, in order: one entry per swap. */
  readonly loads: ReadonlyArray<string>
  readonly served: ReadonlyArray<Served>
  /** The swaps foreman counted itself (health), to cross-check the fake; null for FIFO. */
  readonly foremanSwaps: number | null
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))

const generate = async (url: string, job: Job, priority?: Priority): Promise<void> => {
  const response = await fetch(`${url}/api/generate`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(priority === undefined ? {} : { "x-foreman-priority": priority }) },
    body: JSON.stringify({
      model: job.model,
      prompt: job.prompt,
      stream: false,
      ...(job.numCtx === undefined ? {} : { options: { num_ctx: job.numCtx } })
    }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)
  })
  const body = await response.text()
  if (response.status !== 200) throw new Error(`${job.prompt}: HTTP ${response.status} ${body}`)
}

const withFake = async <A>(use: (fake: FakeTarget) => Promise<A>): Promise<A> => {
  const fake = await startFakeTarget({ models: ["a", "b", "c"], ...SIM })
  try {
    return await use(fake)
  } finally {
    await fake.close()
  }
}

const collect = (fake: FakeTarget, workload: Workload, t0: number, ends: ReadonlyMap<number, number>, foremanSwaps: number | null): Run => {
  // The first call per prompt: a retried job (none expected) started when the target first saw it.
  const received = new Map<string, number>()
  for (const call of fake.calls) {
    const prompt = (call.body as { prompt?: unknown } | undefined)?.prompt
    if (call.path === "/api/generate" && typeof prompt === "string" && !received.has(prompt)) received.set(prompt, call.at)
  }
  const served = workload.jobs.map((j): Served => ({
    id: j.id,
    model: unitOf(j),
    priority: j.priority,
    arrivalMs: j.arrivalMs,
    startMs: received.get(j.prompt)! - t0,
    endMs: ends.get(j.id)! - t0
  }))
  return { loads: [...fake.loads], served, foremanSwaps }
}

const fifo = (workload: Workload): Promise<Run> =>
  withFake(async (fake) => {
    const t0 = Date.now() + LEAD_MS
    const ends = new Map<number, number>()
    for (const j of workload.jobs) {
      await sleep(t0 + j.arrivalMs - Date.now())
      await generate(fake.url, j)
      ends.set(j.id, Date.now())
    }
    return collect(fake, workload, t0, ends, null)
  })

const throughForeman = (workload: Workload): Promise<Run> =>
  withFake(async (fake) => {
    // `:memory:`: a benchmark must not leave a database in the user's data dir.
    const foreman = await startForeman({ target: fake.url, concurrency: 1, maxWait: Duration.millis(MAX_WAIT_MS), db: ":memory:" })
    try {
      // foreman must know the models (first poll) before jobs arrive, or they would wait for it.
      const ready = Date.now() + 10_000
      while ((await foreman.health()).status !== "ok") {
        if (Date.now() > ready) throw new Error("foreman did not reach the fake target within 10 s")
        await sleep(20)
      }
      const t0 = Date.now() + LEAD_MS
      const ends = new Map<number, number>()
      await Promise.all(workload.jobs.map(async (j) => {
        await sleep(t0 + j.arrivalMs - Date.now())
        await generate(foreman.url, j, j.priority)
        ends.set(j.id, Date.now())
      }))
      const swaps = (await foreman.health()).swaps
      return collect(fake, workload, t0, ends, typeof swaps === "number" ? swaps : null)
    } finally {
      await foreman.close()
    }
  })

// ---------------------------------------------------------------------------------------------
// Figures

interface Latency {
  readonly n: number
  readonly meanMs: number
  readonly p99Ms: number
}

interface Summary {
  readonly swaps: number
  /** First arrival to last completion. */
  readonly makespanMs: number
  readonly latency: { readonly all: Latency; readonly interactive: Latency; readonly batch: Latency }
  /** Wait (start − arrival) of the least popular model's jobs; tied models are pooled. */
  readonly rarest: { readonly models: ReadonlyArray<string>; readonly n: number; readonly longestWaitMs: number; readonly p99WaitMs: number }
}

const latencyOf = (served: ReadonlyArray<Served>): Latency => {
  const xs = served.map((s) => s.endMs - s.arrivalMs)
  return { n: xs.length, meanMs: mean(xs), p99Ms: percentile(xs, 99) }
}

/** The least popular model(s) of a workload (a model with a num_ctx counts as its own); all of them when they tie. */
const rarestModels = (workload: Workload): ReadonlyArray<string> => {
  const counts = new Map<string, number>()
  for (const j of workload.jobs) counts.set(unitOf(j), (counts.get(unitOf(j)) ?? 0) + 1)
  const fewest = Math.min(...counts.values())
  return [...counts].filter(([, n]) => n === fewest).map(([model]) => model).sort()
}

const summarise = (workload: Workload, run: Run): Summary => {
  const rare = rarestModels(workload)
  const waits = run.served.filter((s) => rare.includes(s.model)).map((s) => s.startMs - s.arrivalMs)
  return {
    swaps: run.loads.length,
    makespanMs: Math.max(...run.served.map((s) => s.endMs)) - Math.min(...run.served.map((s) => s.arrivalMs)),
    latency: {
      all: latencyOf(run.served),
      interactive: latencyOf(run.served.filter((s) => s.priority === "interactive")),
      batch: latencyOf(run.served.filter((s) => s.priority === "batch"))
    },
    rarest: { models: rare, n: waits.length, longestWaitMs: Math.max(...waits), p99WaitMs: percentile(waits, 99) }
  }
}

interface Measured {
  readonly workload: Workload
  readonly fifo: { readonly summary: Summary; readonly run: Run }
  readonly foreman: { readonly summary: Summary; readonly run: Run }
}

const rows: ReadonlyArray<readonly [string, (s: Summary) => number, (x: number) => string]> = [
  ["swaps (model loads)", (s) => s.swaps, String],
  ["makespan", (s) => s.makespanMs, seconds],
  ["mean latency, all jobs", (s) => s.latency.all.meanMs, seconds],
  ["p99 latency, all jobs", (s) => s.latency.all.p99Ms, seconds],
  ["mean latency, interactive", (s) => s.latency.interactive.meanMs, seconds],
  ["p99 latency, interactive", (s) => s.latency.interactive.p99Ms, seconds],
  ["mean latency, batch", (s) => s.latency.batch.meanMs, seconds],
  ["p99 latency, batch", (s) => s.latency.batch.p99Ms, seconds],
  ["longest wait, rarest model", (s) => s.rarest.longestWaitMs, seconds]
]

/** The workloads side by side: FIFO, foreman and their ratio for each. */
const tableOf = (results: ReadonlyArray<Measured>): string => {
  const header = ["", ...results.flatMap((r) => [`${r.workload.name}: FIFO`, "foreman", "foreman/FIFO"])]
  const body = rows.map(([label, get, format]) => [
    label,
    ...results.flatMap((r) => {
      const a = get(r.fifo.summary)
      const b = get(r.foreman.summary)
      return [format(a), format(b), times(ratio(b, a))]
    })
  ])
  return table(header, body)
}

const notesOf = (results: ReadonlyArray<Measured>): ReadonlyArray<string> => {
  const count = (w: Workload, p: Priority) => w.jobs.filter((j) => j.priority === p).length
  return results.map((r) => {
    const rare = r.fifo.summary.rarest
    const counted = r.foreman.run.foremanSwaps
    return `- **${r.workload.name}**: ${r.workload.description}; ${count(r.workload, "interactive")} interactive ` +
      `(every 5th), ${count(r.workload, "batch")} batch. Rarest model: ${rare.models.join(", ")} (${rare.n} jobs` +
      `${rare.models.length > 1 ? ", tied models pooled" : ""}). foreman counted ${counted ?? "?"} swaps itself ` +
      `(the fake loaded ${r.foreman.summary.swaps}).`
  })
}

const render = (results: ReadonlyArray<Measured>, checks: ReadonlyArray<Check>): string => {
  // Say so when aging could not fire: the max-wait target is then met by the run's length alone.
  const agingNote = results.every((r) => r.foreman.summary.makespanMs < MAX_WAIT_MS)
    ? ["", `Every foreman run here is shorter than max-wait, so max-wait aging never fired: the max-wait target below ` +
      "holds by the runs' length; the starvation bound itself is tested in `test/Scheduler.test.ts`."]
    : []
  return [
    `Simulated target: ${SIM.loadDelayMs / 1000} s per model swap, ${SIM.maxLoaded} model resident, ` +
    `${SIM.chunks} chunks × ${SIM.tokenDelayMs} ms ≈ ${(SIM.chunks * SIM.tokenDelayMs / 1000).toFixed(1)} s per job. ` +
    `foreman: \`--concurrency 1\`, \`--max-wait ${MAX_WAIT_MS / 1000}s\` (the default) for both workloads.`,
    "",
    tableOf(results),
    "",
    ...notesOf(results),
    "",
    "Latency: completion − scheduled arrival (open loop: a late send counts against the system). Wait: " +
    "the target receiving the job − arrival. p99 is nearest-rank, so with fewer than 100 jobs it is the maximum.",
    ...agingNote,
    "",
    "Targets (issue 3, interleaved workload):",
    "",
    ...checks.map((c) => `- **${c.pass ? "PASS" : "FAIL"}** ${c.target}: ${c.measured}`)
  ].join("\n")
}

const checksFor = (m: Measured): ReadonlyArray<Check> => {
  const a = m.fifo.summary
  const b = m.foreman.summary
  const swapRatio = ratio(b.swaps, a.swaps)
  const meanRatio = ratio(b.latency.all.meanMs, a.latency.all.meanMs)
  return [
    {
      target: "swaps through foreman <= 0.2x FIFO",
      measured: `${b.swaps} vs ${a.swaps} (${times(swapRatio)})`,
      pass: swapRatio <= 0.2
    },
    {
      target: "mean latency through foreman <= 0.7x FIFO",
      measured: `${seconds(b.latency.all.meanMs)} vs ${seconds(a.latency.all.meanMs)} (${times(meanRatio)})`,
      pass: meanRatio <= 0.7
    },
    {
      target: `p99 wait of the rarest model through foreman <= max-wait (${MAX_WAIT_MS / 1000} s)`,
      measured: `${seconds(b.rarest.p99WaitMs)} (model ${b.rarest.models.join(", ")})`,
      pass: b.rarest.p99WaitMs <= MAX_WAIT_MS
    }
  ]
}

/** Reloads (issue 16, item 4): the num_ctx workload's table, notes and targets. */
const renderReloads = (m: Measured, checks: ReadonlyArray<Check>): ReadonlyArray<string> => [
  "## Reloads: one model with two num_ctx",
  "",
  "Ollama loads a model again for a job whose load options (`num_ctx`, `num_gpu`, ...) differ from those it " +
  "was loaded with, which costs as much as a swap; the fake target does the same for `num_ctx`. foreman " +
  "schedules by model and load options, so jobs with equal options run together and a reload counts as a swap. " +
  "Same simulated target and foreman settings as above.",
  "",
  tableOf([m]),
  "",
  ...notesOf([m]),
  "",
  "Targets (issue 16, item 4, num_ctx workload):",
  "",
  ...checks.map((c) => `- **${c.pass ? "PASS" : "FAIL"}** ${c.target}: ${c.measured}`)
]

const reloadChecks = (m: Measured): ReadonlyArray<Check> => {
  const a = m.fifo.summary
  const b = m.foreman.summary
  const swapRatio = ratio(b.swaps, a.swaps)
  const counted = m.foreman.run.foremanSwaps
  return [
    {
      target: "num_ctx workload: swaps (loads and reloads) through foreman <= 0.2x FIFO",
      measured: `${b.swaps} vs ${a.swaps} (${times(swapRatio)})`,
      pass: swapRatio <= 0.2
    },
    {
      target: "num_ctx workload: foreman counts every load the target made, reloads included",
      measured: `foreman ${counted ?? "?"}, the target ${b.swaps}`,
      pass: counted === b.swaps
    }
  ]
}

// ---------------------------------------------------------------------------------------------
// Two callers: fair share
//
// Requests do not carry a caller over HTTP until API keys reach the routes, so this workload
// runs through the real Scheduler service (its queue, its policy, its bookkeeping of who was
// served) in this process, under a virtual clock, with the simulated target's costs: a job
// takes the chunks' time, plus the load time when its model is not the one loaded.

const CALLER_A = "team-a"
const CALLER_B = "team-b"
/** B's jobs arrive once A's backlog is queued and its first model is running. */
const B_ARRIVAL_MS = 2_000
const B_MODEL = "c"
/** The virtual clock's step: every arrival and duration here is a multiple of it. */
const STEP_MS = 10

interface CallerJob {
  readonly id: number
  readonly caller: string
  readonly model: string
  readonly arrivalMs: number
}

/** A holds 100 batch jobs over 3 models (queued 10 ms apart); B sends 5 batch jobs for one model later. */
const twoCallers = (): ReadonlyArray<CallerJob> => [
  ...Array.from({ length: 100 }, (_, i): CallerJob => ({ id: i, caller: CALLER_A, model: "abc"[i % 3]!, arrivalMs: i * 10 })),
  ...Array.from({ length: 5 }, (_, i): CallerJob => ({ id: 100 + i, caller: CALLER_B, model: B_MODEL, arrivalMs: B_ARRIVAL_MS + i * 50 }))
]

interface CallerRun {
  /** Jobs in the order they started, with when (virtual ms since the run's start). */
  readonly order: ReadonlyArray<CallerJob & { readonly startMs: number }>
  /** Models loaded, in order: one per swap. */
  readonly loads: ReadonlyArray<string>
  /** The swaps the Scheduler counted itself, to cross-check. */
  readonly schedulerSwaps: number
}

/** Replays the jobs through the Scheduler; `caller` maps each job to the caller its ticket names. */
const throughScheduler = (jobs: ReadonlyArray<CallerJob>, caller: (job: CallerJob) => string | undefined) =>
  Effect.scoped(
    Effect.gen(function*() {
      const { scheduler } = yield* TestTarget.scheduler(["a:latest", "b:latest", "c:latest"], {
            pollInterval: Duration.hours(1),
            concurrency: 1,
            maxLoadedModels: SIM.maxLoaded,
            maxWait: Duration.millis(MAX_WAIT_MS)
          })
      const order: Array<CallerJob & { readonly startMs: number }> = []
      const loads: Array<string> = []
      const fibers = yield* Effect.forEach(jobs, (job) =>
        Effect.sleep(job.arrivalMs).pipe(
          Effect.zipRight(Effect.suspend(() => {
            const name = caller(job)
            return scheduler.ticket(Option.getOrThrow(ModelName.keyOf(job.model)), "batch", name === undefined ? undefined : { caller: name })
          })),
          Effect.flatMap((ticket) =>
            Effect.scoped(Effect.gen(function*() {
              yield* scheduler.acquire(ticket)
              order.push({ ...job, startMs: yield* Clock.currentTimeMillis })
              const load = loads.at(-1) !== job.model
              if (load) loads.push(job.model)
              yield* Effect.sleep((load ? SIM.loadDelayMs : 0) + SIM.chunks * SIM.tokenDelayMs)
            }))
          ),
          Effect.fork
        ))
      while (order.length < jobs.length || !(yield* Effect.every(fibers, (f) => Effect.map(f.poll, Option.isSome)))) {
        yield* TestClock.adjust(STEP_MS)
      }
      return { order, loads, schedulerSwaps: (yield* scheduler.stats).swaps } satisfies CallerRun
    })
  ).pipe(Effect.provide(TestContext.TestContext), Logger.withMinimumLogLevel(LogLevel.None))

interface CallerWaits {
  readonly n: number
  readonly p50Ms: number
  readonly maxMs: number
}

interface CallerSummary {
  readonly swaps: number
  readonly makespanMs: number
  readonly a: CallerWaits
  readonly b: CallerWaits
  /** The most of A's jobs that started after one of B's arrived and before it started. */
  readonly bBehindA: number
}

const waitsOf = (run: CallerRun, caller: string): CallerWaits => {
  const xs = run.order.filter((j) => j.caller === caller).map((j) => j.startMs - j.arrivalMs)
  return { n: xs.length, p50Ms: percentile(xs, 50), maxMs: Math.max(...xs) }
}

const summariseCallers = (run: CallerRun): CallerSummary => ({
  swaps: run.loads.length,
  makespanMs: Math.max(...run.order.map((j) => j.startMs)) + SIM.chunks * SIM.tokenDelayMs,
  a: waitsOf(run, CALLER_A),
  b: waitsOf(run, CALLER_B),
  bBehindA: Math.max(...run.order.map((j, i) =>
    j.caller !== CALLER_B ? 0 : run.order.slice(0, i).filter((o) => o.caller === CALLER_A && o.startMs >= j.arrivalMs).length
  ))
})

interface FairShare {
  readonly oneCaller: { readonly summary: CallerSummary; readonly run: CallerRun }
  readonly twoCallers: { readonly summary: CallerSummary; readonly run: CallerRun }
}

const fairShareRun = async (): Promise<FairShare> => {
  const jobs = twoCallers()
  // The same jobs with no caller on their tickets (all anonymous), and with A's and B's.
  const one = await Effect.runPromise(throughScheduler(jobs, () => undefined))
  const two = await Effect.runPromise(throughScheduler(jobs, (j) => j.caller))
  return {
    oneCaller: { summary: summariseCallers(one), run: one },
    twoCallers: { summary: summariseCallers(two), run: two }
  }
}

const renderFairShare = (fair: FairShare, checks: ReadonlyArray<Check>): ReadonlyArray<string> => {
  const one = fair.oneCaller.summary
  const two = fair.twoCallers.summary
  const rowsOf: ReadonlyArray<readonly [string, (s: CallerSummary) => string]> = [
    ["swaps (model loads)", (s) => String(s.swaps)],
    ["makespan", (s) => seconds(s.makespanMs)],
    ["A's wait p50 / max", (s) => `${seconds(s.a.p50Ms)} / ${seconds(s.a.maxMs)}`],
    ["B's wait p50 / max", (s) => `${seconds(s.b.p50Ms)} / ${seconds(s.b.maxMs)}`],
    ["B's jobs waited behind at most N of A's", (s) => String(s.bBehindA)]
  ]
  return [
    "## Two callers: fair share",
    "",
    `A holds 100 batch jobs over models a/b/c (a b c a b c …, queued 10 ms apart from 0 s); B sends 5 batch jobs ` +
    `for model ${B_MODEL} from ${B_ARRIVAL_MS / 1000} s (50 ms apart). Same simulated target and foreman settings; ` +
    "the jobs run through the real Scheduler in process under a virtual clock (the caller set on each ticket as " +
    "foreman sets it from the request's API key). \"One caller\": the same jobs with no caller on their tickets (one key, or keys off); \"two callers\": " +
    "A's and B's. Wait: start − arrival. \"Behind\": A's jobs started after one of B's arrived and before it started.",
    "",
    table(["", "one caller", "two callers"], rowsOf.map(([label, get]) => [label, get(one), get(two)])),
    "",
    `The Scheduler counted ${fair.oneCaller.run.schedulerSwaps} and ${fair.twoCallers.run.schedulerSwaps} swaps itself. ` +
    `Loads: one caller ${fair.oneCaller.run.loads.join(" ")}; two callers ${fair.twoCallers.run.loads.join(" ")}. ` +
    `B's model is not resident when its jobs arrive, so serving them early loads it early and the model it ` +
    "interrupted once more: one load over the one-caller figure, the price of not making B wait for A's backlog.",
    "",
    "Targets (fair share):",
    "",
    ...checks.map((c) => `- **${c.pass ? "PASS" : "FAIL"}** ${c.target}: ${c.measured}`)
  ]
}

const fairShareChecks = (fair: FairShare): ReadonlyArray<Check> => {
  const one = fair.oneCaller.summary
  const two = fair.twoCallers.summary
  return [
    {
      target: `with two callers, B's jobs wait behind at most ${fairShareSpan} of A's (fair share's span)`,
      measured: `${two.bBehindA} (one caller: ${one.bBehindA})`,
      pass: two.bBehindA <= fairShareSpan
    },
    {
      target: "with two callers, swaps <= the one-caller figure + 1 (B's model loaded early, once)",
      measured: `${two.swaps} vs ${one.swaps}`,
      pass: two.swaps <= one.swaps + 1
    }
  ]
}

export const swaps: Benchmark = {
  name: "swaps",
  title: "Model swaps: FIFO straight to the target vs through foreman",
  run: async () => {
    const measure = async (workload: Workload): Promise<Measured> => {
      const direct = await fifo(workload)
      const brokered = await throughForeman(workload)
      return {
        workload,
        fifo: { summary: summarise(workload, direct), run: direct },
        foreman: { summary: summarise(workload, brokered), run: brokered }
      }
    }
    const results: Array<Measured> = []
    for (const workload of [interleaved(), poisson()]) results.push(await measure(workload))
    const checks = checksFor(results[0]!)
    const reloads = await measure(numCtx())
    const reloadTargets = reloadChecks(reloads)
    const fair = await fairShareRun()
    const fairChecks = fairShareChecks(fair)
    return {
      data: { simulatedTarget: SIM, maxWaitMs: MAX_WAIT_MS, workloads: results, reloads, fairShare: fair },
      markdown: [render(results, checks), "", ...renderReloads(reloads, reloadTargets), "", ...renderFairShare(fair, fairChecks)].join("\n"),
      checks: [...checks, ...reloadTargets, ...fairChecks]
    }
  }
}
