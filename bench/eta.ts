/**
 * How good the ETAs are (issue 16, item 6): a mixed workload through the real Scheduler (its
 * queue, policy, measurements and forecast) under a virtual clock, against a simulated
 * target whose models differ in job time and load time and whose job times vary. Each job's
 * estimate is taken the moment it is queued (what the 202 of an async job, or health for a
 * sync one, shows), and every queued job's again each minute; then compared to when the job
 * actually started and finished. Alongside, the estimate a simple queue would give: the jobs
 * ahead (by class and arrival) times the average job time so far. Then what a forecast costs
 * at 10 to 10 000 queued jobs.
 */
import { Clock, Deferred, Duration, Effect, Fiber, Logger, LogLevel, Option, TestClock, TestContext } from "effect"
import { Events } from "../src/events/Events.ts"
import * as ModelName from "../src/ollama/ModelName.ts"
import * as Eta from "../src/scheduler/eta.ts"
import { type Priority, swapAware, type Waiting } from "../src/scheduler/policy.ts"
import * as TestTarget from "../test/support/TestTarget.ts"
import { type Benchmark, type Check, checkList, logNormal, median, millis, percentile, pick, seconds, seededRandom, table } from "./lib.ts"

/** The simulated models: load time, mean job time, and how much job times vary (coefficient of variation). */
const MODELS = [
  { name: "llama3.2", loadMs: 3_000, meanMs: 6_000, cv: 0.6, share: 40 },
  { name: "qwen2.5-coder:7b", loadMs: 6_000, meanMs: 15_000, cv: 0.5, share: 20 },
  { name: "nomic-embed-text", loadMs: 800, meanMs: 300, cv: 0.3, share: 25 },
  { name: "qwen2.5:1.5b", loadMs: 1_500, meanMs: 2_000, cv: 0.5, share: 15 }
] as const
/** Callers (API keys) and their share of the jobs: fair share is at work. */
const CALLERS = [["alice", 60], ["bob", 30], ["ci", 10]] as const
/** Sync requests are interactive, async jobs batch. */
const INTERACTIVE_SHARE = 0.3
const JOBS = 300
/** A batch burst (a script submitting a folder) in the middle of the run. */
const BURST = { atJob: 150, jobs: 40, gapMs: 50 } as const
const KEEP_ALIVE_MS = 5 * 60_000
const MAX_WAIT_MS = 60_000
/** Every queued job's estimate is taken again this often. */
const SNAPSHOT_MS = 60_000

interface Scenario {
  readonly name: string
  readonly concurrency: number
  readonly maxLoaded: number
  /** Mean gap between arrivals outside the burst. */
  readonly meanGapMs: number
}

/** One GPU, one model at a time (Ollama's defaults); and two slots with two models loaded. */
const SCENARIOS: ReadonlyArray<Scenario> = [
  { name: "concurrency 1, 1 model loaded", concurrency: 1, maxLoaded: 1, meanGapMs: 8_000 },
  { name: "concurrency 2, 2 models loaded", concurrency: 2, maxLoaded: 2, meanGapMs: 4_500 }
]

interface SimJob {
  readonly n: number
  readonly model: string
  readonly key: string
  readonly priority: Priority
  readonly caller: string
  readonly arrivalMs: number
  /** Its time at the target once its model is loaded. */
  readonly workMs: number
}

const workload = (scenario: Scenario, seed: number): ReadonlyArray<SimJob> => {
  const random = seededRandom(seed)
  const jobs: Array<SimJob> = []
  let at = 0
  for (let n = 0; n < JOBS; n++) {
    const inBurst = n >= BURST.atJob && n < BURST.atJob + BURST.jobs
    at += inBurst ? BURST.gapMs : -Math.log(1 - random()) * scenario.meanGapMs
    const model = pick(random, MODELS.map((m) => [m, m.share] as const))
    jobs.push({
      n,
      model: model.name,
      key: Option.getOrThrow(ModelName.keyOf(model.name)),
      priority: !inBurst && random() < INTERACTIVE_SHARE ? "interactive" : "batch",
      caller: inBurst ? "ci" : pick(random, CALLERS),
      arrivalMs: Math.round(at),
      workMs: Math.round(logNormal(random, model.meanMs, model.cv))
    })
  }
  return jobs
}

/**
 * The simulated target: a model not loaded (or past its keep-alive) loads first; with more
 * than `maxLoaded` the least recently used idle one is evicted; a job for a model still
 * loading waits for the load. Slots do not slow each other down.
 */
const simulatedTarget = (maxLoaded: number) => {
  const loaded = new Map<string, { readyAt: number; lastUsed: number; inUse: number }>()
  const loadOf = (model: string) => MODELS.find((m) => m.name === model)!.loadMs
  return {
    begin: (job: SimJob, now: number): { readonly durationMs: number; readonly load: boolean } => {
      for (const [model, entry] of loaded) {
        if (entry.inUse === 0 && entry.lastUsed + KEEP_ALIVE_MS <= now) loaded.delete(model)
      }
      let entry = loaded.get(job.model)
      const load = entry === undefined
      if (entry === undefined) {
        entry = { readyAt: now + loadOf(job.model), lastUsed: now, inUse: 0 }
        loaded.set(job.model, entry)
        while (loaded.size > maxLoaded) {
          const idle = [...loaded].filter(([m, e]) => e.inUse === 0 && m !== job.model).sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0]
          if (idle === undefined) break
          loaded.delete(idle[0])
        }
      }
      entry.inUse += 1
      return { durationMs: Math.max(0, entry.readyAt - now) + job.workMs, load }
    },
    end: (job: SimJob, now: number) => {
      const entry = loaded.get(job.model)
      if (entry === undefined) return
      entry.inUse -= 1
      entry.lastUsed = now
    }
  }
}

interface Estimated {
  readonly at: number
  /** Queued: its place; absent when it was given a slot on arrival. */
  readonly position?: number
  readonly startAt?: number
  readonly finishAt?: number
}

interface JobRecord {
  readonly job: SimJob
  /** foreman's estimate when the job was queued; none while nothing was measured. */
  enqueued?: Estimated
  /** The simple estimate: jobs ahead by class and arrival × the average job time so far. */
  naive?: { readonly startAt: number; readonly finishAt: number }
  /** Every queued job's estimate, each minute. */
  readonly snapshots: Array<Estimated>
  startMs?: number
  finishMs?: number
  load?: boolean
  /** Jobs that arrived after it and started before it. */
  overtakenBy?: number
  /** The queue gave it a slot (its runner may not have run yet). */
  granted?: boolean
}

const runScenario = (scenario: Scenario, seed: number) =>
  Effect.scoped(
    Effect.gen(function*() {
      const jobs = workload(scenario, seed)
      const { context, scheduler } = yield* TestTarget.scheduler(MODELS.map((m) => m.name), {
        pollInterval: Duration.hours(24),
        concurrency: scenario.concurrency,
        maxLoadedModels: scenario.maxLoaded,
        maxWait: Duration.millis(MAX_WAIT_MS)
      })
      const events = yield* Effect.provide(Events, context)
      const target = simulatedTarget(scenario.maxLoaded)
      const records: Array<JobRecord> = jobs.map((job) => ({ job, snapshots: [] }))
      const tickets = new Map<number, Waiting>()
      const finishedDurations: Array<number> = []
      let done = 0

      const take = (record: JobRecord, at: number) =>
        Effect.map(scheduler.estimate(tickets.get(record.job.n)!.id), Option.flatMap((e): Option.Option<Estimated> =>
          e._tag === "Queued"
            ? e.startAt === undefined ? Option.none() : Option.some({ at, position: e.position, startAt: e.startAt, finishAt: e.finishAt! })
            : e.finishAt === undefined ? Option.none() : Option.some({ at, startAt: e.startedAt, finishAt: e.finishAt })
        ))

      const arrive = (record: JobRecord) =>
        Effect.gen(function*() {
          const { job } = record
          yield* Effect.sleep(job.arrivalMs)
          const ticket = yield* scheduler.ticket(job.key, job.priority, { caller: job.caller })
          tickets.set(job.n, ticket)
          const granted = yield* Deferred.make<void>()
          const runner = yield* Effect.fork(Effect.gen(function*() {
            yield* Deferred.await(granted)
            const start = yield* Clock.currentTimeMillis
            record.startMs = start
            const { durationMs, load } = target.begin(job, start)
            record.load = load
            yield* Effect.sleep(durationMs)
            // As Jobs does it: the slot is freed, then the job is reported.
            yield* scheduler.release(ticket.id)
            const end = yield* Clock.currentTimeMillis
            target.end(job, end)
            record.finishMs = end
            finishedDurations.push(end - start)
            done += 1
            yield* events.publish({
              _tag: "JobFinished",
              job: { id: ticket.id, endpoint: "/api/generate", model: job.model, priority: job.priority, async: job.priority === "batch", caller: job.caller },
              at: end,
              status: 200,
              waitMs: start - ticket.enqueuedAt,
              durationMs: end - start,
              ttfbMs: 0
            })
          }))
          const now = yield* Clock.currentTimeMillis
          const holding = records.filter((r) => r.granted === true && r.finishMs === undefined).length
          yield* scheduler.enqueue(ticket, () =>
            Effect.suspend(() => {
              record.granted = true
              return Deferred.succeed(granted, undefined)
            }).pipe(Effect.asVoid))
          const estimate = yield* take(record, now)
          if (Option.isSome(estimate)) record.enqueued = estimate.value
          // The simple estimate, from the same moment.
          if (finishedDurations.length > 0) {
            const average = finishedDurations.reduce((a, b) => a + b, 0) / finishedDurations.length
            const waiting = records.filter((r) => tickets.has(r.job.n) && r.granted !== true).map((r) => tickets.get(r.job.n)!)
            const ahead = record.granted === true ? 0 : Eta.roughPosition(waiting, ticket) - 1 + holding
            const startAt = now + (ahead * average) / scenario.concurrency
            record.naive = { startAt, finishAt: startAt + average }
          }
          yield* Fiber.join(runner)
        })

      const snapshots = Effect.gen(function*() {
        while (done < jobs.length) {
          yield* Effect.sleep(SNAPSHOT_MS)
          const now = yield* Clock.currentTimeMillis
          for (const record of records) {
            if (!tickets.has(record.job.n) || record.granted === true) continue
            const estimate = yield* take(record, now)
            if (Option.isSome(estimate)) record.snapshots.push(estimate.value)
          }
        }
      })

      const fibers = yield* Effect.forEach(records, (r) => Effect.fork(arrive(r)))
      const sampler = yield* Effect.fork(snapshots)
      while (done < jobs.length) yield* TestClock.adjust(SNAPSHOT_MS)
      yield* Effect.forEach(fibers, Fiber.join)
      yield* Fiber.interrupt(sampler)
      for (const record of records) {
        record.overtakenBy = records.filter((r) => r.job.arrivalMs > record.job.arrivalMs && r.startMs! < record.startMs!).length
      }
      const stats = yield* scheduler.stats
      return { records, swaps: stats.swaps, estimates: stats.estimates }
    })
  ).pipe(Effect.provide(TestContext.TestContext), Logger.withMinimumLogLevel(LogLevel.None))

// ---------------------------------------------------------------------------------------------
// Figures

interface Errors {
  readonly n: number
  /** Seconds: median and p90 of |estimate − actual|, and the median of estimate − actual (< 0: too early). */
  readonly absP50Ms: number
  readonly absP90Ms: number
  readonly biasP50Ms: number
  /** |estimate − actual| over the time from the estimate to the actual event. */
  readonly relP50: number
  readonly relP90: number
}

const errorsOf = (pairs: ReadonlyArray<{ readonly estimate: number; readonly actual: number; readonly from: number }>, minSpanMs = 0): Errors => {
  const abs = pairs.map((p) => Math.abs(p.estimate - p.actual))
  const rel = pairs.filter((p) => p.actual - p.from >= minSpanMs && p.actual > p.from).map((p) => Math.abs(p.estimate - p.actual) / (p.actual - p.from))
  return {
    n: pairs.length,
    absP50Ms: percentile(abs, 50),
    absP90Ms: percentile(abs, 90),
    biasP50Ms: median(pairs.map((p) => p.estimate - p.actual)),
    relP50: percentile(rel, 50),
    relP90: percentile(rel, 90)
  }
}

interface Summary {
  readonly jobs: number
  readonly swaps: number
  /** Jobs that had to queue (not given a slot on arrival). */
  readonly queued: number
  /** Of those, queued after the first job was measured, and of those with an ETA. */
  readonly queuedAfterFirstMeasurement: number
  readonly withEta: number
  readonly waitP50Ms: number
  readonly waitP90Ms: number
  /** At enqueue, queued jobs: start and finish; all jobs with an estimate: finish. */
  readonly start: Errors
  readonly finish: Errors
  readonly naiveStart: Errors
  readonly naiveFinish: Errors
  /** Finish errors at enqueue by position then. */
  readonly byPosition: ReadonlyArray<{ readonly positions: string; readonly finish: Errors }>
  /** Finish errors at enqueue of the jobs no later arrival went ahead of, and of the others. */
  readonly notOvertaken: Errors
  readonly overtaken: Errors
  /** Start errors of the minute snapshots by how far ahead the start was. */
  readonly byHorizon: ReadonlyArray<{ readonly horizon: string; readonly start: Errors }>
}

const summarise = (records: ReadonlyArray<JobRecord>, swaps: number): Summary => {
  const firstMeasured = Math.min(...records.map((r) => r.finishMs!))
  const queued = records.filter((r) => r.startMs! > r.job.arrivalMs)
  const estimated = records.filter((r) => r.enqueued !== undefined)
  const queuedEstimated = estimated.filter((r) => r.enqueued!.position !== undefined)
  const startPairs = (rs: ReadonlyArray<JobRecord>) => rs.map((r) => ({ estimate: r.enqueued!.startAt!, actual: r.startMs!, from: r.job.arrivalMs }))
  const finishPairs = (rs: ReadonlyArray<JobRecord>) => rs.map((r) => ({ estimate: r.enqueued!.finishAt!, actual: r.finishMs!, from: r.job.arrivalMs }))
  const naive = records.filter((r) => r.naive !== undefined && r.enqueued !== undefined)
  const buckets: ReadonlyArray<readonly [string, (p: number | undefined) => boolean]> = [
    ["given a slot at once", (p) => p === undefined],
    ["position 1", (p) => p === 1],
    ["position 2–5", (p) => p !== undefined && p >= 2 && p <= 5],
    ["position 6–20", (p) => p !== undefined && p >= 6 && p <= 20],
    ["position > 20", (p) => p !== undefined && p > 20]
  ]
  const snapshots = records.flatMap((r) => r.snapshots.map((s) => ({ estimate: s.startAt!, actual: r.startMs!, from: s.at })))
  const horizons: ReadonlyArray<readonly [string, number, number]> = [
    ["< 1 min", 0, 60_000],
    ["1–5 min", 60_000, 300_000],
    ["> 5 min", 300_000, Number.POSITIVE_INFINITY]
  ]
  const waits = records.map((r) => r.startMs! - r.job.arrivalMs)
  return {
    jobs: records.length,
    swaps,
    queued: queued.length,
    queuedAfterFirstMeasurement: queued.filter((r) => r.job.arrivalMs > firstMeasured).length,
    withEta: queued.filter((r) => r.job.arrivalMs > firstMeasured && r.enqueued !== undefined).length,
    waitP50Ms: percentile(waits, 50),
    waitP90Ms: percentile(waits, 90),
    start: errorsOf(startPairs(queuedEstimated), 1_000),
    finish: errorsOf(finishPairs(estimated)),
    naiveStart: errorsOf(naive.filter((r) => r.enqueued!.position !== undefined).map((r) => ({ estimate: r.naive!.startAt, actual: r.startMs!, from: r.job.arrivalMs })), 1_000),
    naiveFinish: errorsOf(naive.map((r) => ({ estimate: r.naive!.finishAt, actual: r.finishMs!, from: r.job.arrivalMs }))),
    byPosition: buckets.map(([positions, test]) => ({ positions, finish: errorsOf(finishPairs(estimated.filter((r) => test(r.enqueued!.position)))) })),
    notOvertaken: errorsOf(finishPairs(estimated.filter((r) => r.overtakenBy === 0))),
    overtaken: errorsOf(finishPairs(estimated.filter((r) => r.overtakenBy! > 0))),
    byHorizon: horizons.map(([horizon, lo, hi]) => ({
      horizon,
      start: errorsOf(snapshots.filter((s) => s.actual - s.from >= lo && s.actual - s.from < hi), 1_000)
    }))
  }
}

// ---------------------------------------------------------------------------------------------
// What a forecast costs

const COST_SIZES = [10, 100, 1_000, 10_000] as const
/** Timed calls per round; rounds `COST_PAUSE_MS` apart, as the policy benchmark does (the machine is shared). */
const COST_CALLS: Record<(typeof COST_SIZES)[number], number> = { 10: 2_000, 100: 300, 1_000: 50, 10_000: 5 }
const COST_ROUNDS = 7
const COST_PAUSE_MS = 250

interface CostRow {
  readonly queued: number
  readonly calls: number
  /** Median over the rounds of each round's percentile. */
  readonly p50Ms: number
  readonly p99Ms: number
  /** Jobs the real policy placed (the rest approximated). */
  readonly simulated: number
}

const forecastCost = async (): Promise<ReadonlyArray<CostRow>> => {
  const keys = MODELS.map((m) => Option.getOrThrow(ModelName.keyOf(m.name)))
  const measured = new Map(keys.map((key, i) => [key, { warm: { mean: MODELS[i]!.meanMs, samples: 10 }, cold: { mean: MODELS[i]!.meanMs + MODELS[i]!.loadMs, samples: 3 } }]))
  const cost = Eta.costModel(measured)!
  const inputs = COST_SIZES.map((n): Eta.ForecastInput => {
    const random = seededRandom(n)
    const waiting = Array.from({ length: n }, (_, i): Waiting => ({
      id: `j${i + 1}`,
      seq: i + 1,
      model: keys[Math.floor(random() * keys.length)]!,
      priority: random() < 0.3 ? "interactive" : "batch",
      enqueuedAt: i,
      attempts: 0,
      caller: CALLERS[Math.floor(random() * CALLERS.length)]![0]
    }))
    return {
      policy: swapAware,
      waiting,
      targets: [{ reachable: true, slots: 1, running: [{ id: "r", model: keys[0]!, startedAt: n, load: false }], resident: [keys[0]!], maxLoaded: 1, maxWait: MAX_WAIT_MS, servingSince: 0 }],
      now: n + 1,
      served: { starts: 0, last: new Map() },
      cost
    }
  })
  const rounds = COST_SIZES.map(() => ({ p50: [] as Array<number>, p99: [] as Array<number>, simulated: 0 }))
  // One untimed round first: the forecast is measured warm, as foreman runs it.
  for (let round = -1; round < COST_ROUNDS; round++) {
    for (const [i, n] of COST_SIZES.entries()) {
      const times: Array<number> = []
      for (let call = 0; call < COST_CALLS[n]; call++) {
        const t0 = performance.now()
        rounds[i]!.simulated = Eta.forecast(inputs[i]!).simulated
        times.push(performance.now() - t0)
      }
      if (round >= 0) {
        rounds[i]!.p50.push(percentile(times, 50))
        rounds[i]!.p99.push(percentile(times, 99))
      }
    }
    await new Promise((resolve) => setTimeout(resolve, COST_PAUSE_MS))
  }
  return COST_SIZES.map((n, i) => ({
    queued: n,
    calls: COST_CALLS[n] * COST_ROUNDS,
    p50Ms: median(rounds[i]!.p50),
    p99Ms: median(rounds[i]!.p99),
    simulated: rounds[i]!.simulated
  }))
}

// ---------------------------------------------------------------------------------------------
// The report

const TARGET_REL_P50 = 0.25
const TARGET_COST_MS = 5

const ratio = (x: number): string => (Number.isFinite(x) ? `${Math.round(x * 100)} %` : "–")

const errorCells = (e: Errors): ReadonlyArray<string> => [
  String(e.n),
  seconds(e.absP50Ms),
  seconds(e.absP90Ms),
  ratio(e.relP50),
  ratio(e.relP90),
  `${e.biasP50Ms >= 0 ? "+" : ""}${seconds(e.biasP50Ms)}`
]
const errorHeader = ["jobs", "abs. error p50", "abs. error p90", "rel. error p50", "rel. error p90", "signed p50"]

interface Measured {
  readonly scenario: Scenario
  readonly summary: Summary
  readonly estimates: unknown
  readonly records: ReadonlyArray<JobRecord>
}

const render = (results: ReadonlyArray<Measured>, cost: ReadonlyArray<CostRow>, checks: ReadonlyArray<Check>): string => {
  const lines: Array<string> = [
    `Workload: ${JOBS} jobs, exponential gaps (seeded), ${Math.round(INTERACTIVE_SHARE * 100)} % interactive (sync requests), the rest batch (async jobs), ` +
    `from 3 callers (${CALLERS.map(([c, s]) => `${c} ${s} %`).join(", ")}), plus a burst of ${BURST.jobs} batch jobs from \`ci\` ${BURST.gapMs} ms apart ` +
    `at job ${BURST.atJob}. Simulated models (load, mean job time, variation of job times, share):`,
    "",
    table(["model", "load", "mean job", "cv", "share"], MODELS.map((m) => [m.name, seconds(m.loadMs), seconds(m.meanMs), String(m.cv), `${m.share} %`])),
    "",
    "Job times are log-normal; a model loads when it is not loaded (or its 5 min keep-alive ran out), a job for a model still loading waits for the load, " +
    "slots do not slow each other down. The jobs run through the real Scheduler (`TestTarget.scheduler`) under a virtual clock and are reported " +
    "as Jobs reports them (a `JobFinished` event with the time at the target), which is what foreman measures. `--max-wait 60s`.",
    "",
    "Error: estimate − actual. Relative: |error| over the time from the estimate to the actual event (for start, only jobs that waited ≥ 1 s). " +
    "\"Signed p50\" < 0: the estimate was too early. The simple estimate: (jobs ahead by class and arrival + jobs running) × the average " +
    "time of the jobs finished so far ÷ slots."
  ]
  for (const { scenario, summary: s } of results) {
    lines.push(
      "",
      `## ${scenario.name} (mean gap ${seconds(scenario.meanGapMs)})`,
      "",
      `${s.jobs} jobs, ${s.swaps} model loads; ${s.queued} had to queue (wait p50 ${seconds(s.waitP50Ms)}, p90 ${seconds(s.waitP90Ms)}); ` +
      `${s.withEta} of the ${s.queuedAfterFirstMeasurement} that queued after the first job was measured had an ETA.`,
      "",
      "At the moment each job was queued:",
      "",
      table(["estimate", ...errorHeader], [
        ["start (queued jobs)", ...errorCells(s.start)],
        ["finish (all jobs)", ...errorCells(s.finish)],
        ["simple: start", ...errorCells(s.naiveStart)],
        ["simple: finish", ...errorCells(s.naiveFinish)]
      ]),
      "",
      "Finish, by position when queued, and by whether a later arrival went ahead:",
      "",
      table(["when queued", ...errorHeader], [
        ...s.byPosition.map((b) => [b.positions, ...errorCells(b.finish)]),
        ["no later arrival went ahead", ...errorCells(s.notOvertaken)],
        ["a later arrival went ahead", ...errorCells(s.overtaken)]
      ]),
      "",
      "Start, re-estimated every minute while queued, by how far ahead the start was:",
      "",
      table(["start was", ...errorHeader], s.byHorizon.map((h) => [h.horizon, ...errorCells(h.start)]))
    )
  }
  lines.push(
    "",
    "## What a forecast costs",
    "",
    `\`Eta.forecast\` alone on a seeded queue (4 models, 30 % interactive, 3 callers, one job running), timed call by call, ` +
    `${COST_ROUNDS} rounds ${COST_PAUSE_MS} ms apart after an untimed one; cells: the median over rounds of each round's percentile. ` +
    `The real policy places jobs for up to ${Eta.defaultBudget.toLocaleString("en")} job visits, the rest are approximated; ` +
    "the Scheduler keeps a forecast until the queue changes (and, from 1 000 queued jobs, makes it at most once per ten times its cost).",
    "",
    table(["queued jobs", "calls in all", "p50", "p99", "placed by the policy"], cost.map((c) => [c.queued.toLocaleString("en"), String(c.calls), millis(c.p50Ms), millis(c.p99Ms), c.simulated.toLocaleString("en")])),
    "",
    "Targets (ours, set before the first run):",
    "",
    checkList(checks)
  )
  return lines.join("\n")
}

const checksFor = (results: ReadonlyArray<Measured>, cost: ReadonlyArray<CostRow>): ReadonlyArray<Check> => {
  const one = results[0]!.summary
  const thousand = cost.find((c) => c.queued === 1_000)!
  return [
    ...results.map((r): Check => ({
      target: `${r.scenario.name}: every job queued after the first measurement has an ETA`,
      measured: `${r.summary.withEta} of ${r.summary.queuedAfterFirstMeasurement}`,
      pass: r.summary.withEta === r.summary.queuedAfterFirstMeasurement
    })),
    {
      target: `${results[0]!.scenario.name}: median relative error of the finish estimate at enqueue <= ${ratio(TARGET_REL_P50)}`,
      measured: `${ratio(one.finish.relP50)} (p90 ${ratio(one.finish.relP90)}; ${seconds(one.finish.absP50Ms)} / ${seconds(one.finish.absP90Ms)})`,
      pass: one.finish.relP50 <= TARGET_REL_P50
    },
    ...results.map((r): Check => ({
      target: `${r.scenario.name}: the finish estimate's median absolute error <= the simple estimate's`,
      measured: `${seconds(r.summary.finish.absP50Ms)} vs ${seconds(r.summary.naiveFinish.absP50Ms)}`,
      pass: r.summary.finish.absP50Ms <= r.summary.naiveFinish.absP50Ms
    })),
    {
      target: `a forecast at 1,000 queued jobs p99 <= ${TARGET_COST_MS} ms`,
      measured: `${millis(thousand.p99Ms)} (p50 ${millis(thousand.p50Ms)})`,
      pass: thousand.p99Ms <= TARGET_COST_MS
    }
  ]
}

export const eta: Benchmark = {
  name: "eta",
  title: "ETAs: estimated start and finish of queued jobs against what happened",
  run: async () => {
    const results: Array<Measured> = []
    for (const [i, scenario] of SCENARIOS.entries()) {
      const { estimates, records, swaps } = await Effect.runPromise(runScenario(scenario, 16 + i))
      results.push({ scenario, summary: summarise(records, swaps), estimates, records })
    }
    const cost = await forecastCost()
    const checks = checksFor(results, cost)
    return {
      data: {
        models: MODELS,
        jobs: JOBS,
        burst: BURST,
        maxWaitMs: MAX_WAIT_MS,
        scenarios: results.map((r) => ({
          scenario: r.scenario,
          summary: r.summary,
          // The per-job records are left out (600 jobs): the workload is seeded, a run re-creates them.
          measured: r.estimates
        })),
        forecastCost: cost
      },
      markdown: render(results, cost, checks),
      checks
    }
  }
}
