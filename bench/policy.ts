/**
 * Scheduler cost (issue 6, item 4), in this process, no HTTP:
 *   (a) the decision alone: `swapAware` (src/scheduler/policy.ts) on queues of 1, 1 000 and
 *       10 000 waiting jobs, timed call by call;
 *   (b) the same decision through the real Scheduler service (its state, its dispatch, the
 *       Deferred that hands the slot over): from the moment the job holding the only slot
 *       releases it to the moment the next job holds it, with the queue kept at the same size.
 * Queues are seeded and realistic: normalised model keys as foreman holds them (8 models,
 * popularity skewed), priorities 10 % interactive / 30 % normal / 60 % batch, arrivals
 * spread over the last 50 s (under the default 60 s max-wait), 2 models resident, 1 running,
 * jobs from 4 callers (fair share's path: several callers in every class).
 */
import { Deferred, Duration, Effect, Logger, LogLevel, Option, Queue } from "effect"
import { anonymous, type Priority, type Served, swapAware, type Waiting } from "../src/scheduler/policy.ts"
import * as ModelName from "../src/ollama/ModelName.ts"
import * as TestTarget from "../test/support/TestTarget.ts"
import { type Benchmark, type Check, targetsBlock, median, micros, percentile, seededRandom, sleep, table } from "./lib.ts"

const SIZES = [1, 1_000, 10_000] as const
const TARGET_P99_US = 50
const TARGET_SIZE = 1_000
const ROUNDS = 7
/**
 * Between policy rounds: the machine is shared, and a slow second (another process on the
 * core) would otherwise fall on every round at once.
 */
const PAUSE_MS = 250
/** Timed calls per round of the bare policy: enough for a stable p99, ~0.1 s each. */
const POLICY_CALLS: Record<(typeof SIZES)[number], number> = { 1: 20_000, 1_000: 4_000, 10_000: 400 }
/** Slot hand-overs per round through the Scheduler (each needs a fresh job enqueued first). */
const SCHEDULER_HANDOVERS: Record<(typeof SIZES)[number], number> = { 1: 400, 1_000: 100, 10_000: 20 }
const MAX_WAIT_MS = 60_000

/** Display names as users type them; the queue holds their normalised keys. */
const MODELS = [
  "llama3.2",
  "qwen2.5-coder:7b",
  "mistral",
  "gemma2:9b",
  "hf.co/bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M",
  "deepseek-r1:14b",
  "nomic-embed-text",
  "llava:13b"
] as const
const POPULARITY = [30, 20, 15, 10, 10, 7, 5, 3]
const KEYS = MODELS.map((m) => Option.getOrThrow(ModelName.keyOf(m)))
const RESIDENT = [KEYS[1]!, KEYS[3]!]
const RUNNING = [KEYS[1]!]
/** API keys' names (and requests without a key), by share of the queue. */
const CALLERS = ["ci-nightly", anonymous, "alice", "bob"] as const
const CALLER_SHARE = [50, 30, 15, 5]
/** Who was served lately: every caller, at different distances, none due yet but the rarest. */
const SERVED: Served = { starts: 1_000, last: new Map([["ci-nightly", 1_000], [anonymous, 999], ["alice", 997], ["bob", 980]]) }

const pick = <A>(random: () => number, items: ReadonlyArray<A>, weights: ReadonlyArray<number>): A => {
  let x = random() * weights.reduce((a, b) => a + b, 0)
  for (let i = 0; i < items.length; i++) {
    x -= weights[i]!
    if (x < 0) return items[i]!
  }
  return items[items.length - 1]!
}

const priorityOf = (random: () => number): Priority => pick(random, ["interactive", "normal", "batch"] as const, [10, 30, 60])

/**
 * A fresh copy of the key: in foreman every job's model string comes from its own request
 * body, so lookups cannot count on one shared string object.
 */
const ownCopy = (key: string): string => [...key].join("")

const queue = (n: number, seed: number, now: number): Array<Waiting> => {
  const random = seededRandom(seed)
  return Array.from({ length: n }, (_, i): Waiting => ({
    id: `j${i + 1}`,
    seq: i + 1,
    model: ownCopy(pick(random, KEYS, POPULARITY)),
    priority: priorityOf(random),
    // Older arrivals first, spread over the last 50 s.
    enqueuedAt: now - 50_000 + Math.floor((50_000 * i) / Math.max(1, n)),
    attempts: 0,
    caller: ownCopy(pick(random, CALLERS, CALLER_SHARE))
  }))
}

interface Percentiles {
  readonly p50: number
  readonly p99: number
}

/** Median over rounds of each round's p50 and p99. */
const combine = (rounds: ReadonlyArray<ReadonlyArray<number>>): Percentiles => ({
  p50: median(rounds.map((r) => percentile(r, 50))),
  p99: median(rounds.map((r) => percentile(r, 99)))
})

/** µs per `swapAware` call, timed one by one (the clock read, ~0.03 µs, included). */
const policyRound = (n: number, calls: number, round: number): Array<number> => {
  const now = Date.now()
  // A few different queues, so no single input gets special treatment from the JIT.
  const queues = [1, 2, 3, 4].map((k) => queue(n, 1000 * round + k, now))
  const out: Array<number> = []
  let sink = 0
  for (let i = 0; i < calls; i++) {
    const input = {
      waiting: queues[i % queues.length]!,
      running: RUNNING,
      resident: RESIDENT,
      freeSlots: 1,
      now: now + i,
      maxWait: MAX_WAIT_MS,
      maxLoaded: 2,
      served: SERVED
    }
    const start = process.hrtime.bigint()
    const job = swapAware(input)
    out.push(Number(process.hrtime.bigint() - start) / 1000)
    sink += job?.seq ?? 0
  }
  // Keeps the result live, so the call cannot be optimised away.
  if (sink < 0) throw new Error("unreachable")
  return out
}

/**
 * µs from releasing the only slot to the next job holding it, through the Scheduler with
 * `n` jobs waiting, `rounds` rounds of `handovers`. Before each hand-over a new job is
 * enqueued, so the queue stays at `n`. One Scheduler for all rounds: filling and tearing
 * down a queue of 10 000 costs more than the measurement.
 */
const schedulerRounds = (n: number, rounds: number, handovers: number, seed: number) =>
  Effect.scoped(
    Effect.gen(function*() {
      const { scheduler } = yield* TestTarget.scheduler(MODELS.map(String), { concurrency: 1, maxLoadedModels: 2, maxQueue: 1_000_000, maxWait: Duration.millis(MAX_WAIT_MS) })
      const random = seededRandom(seed)
      const started = yield* Queue.unbounded<{ readonly at: number; readonly release: Deferred.Deferred<void> }>()

      /** Enqueues a job that, once granted, reports when and holds the slot until released. */
      const submit = Effect.gen(function*() {
        const ticket = yield* scheduler.ticket(ownCopy(pick(random, KEYS, POPULARITY)), priorityOf(random), {
          caller: pick(random, CALLERS, CALLER_SHARE)
        })
        const release = yield* Deferred.make<void>()
        yield* Effect.scoped(
          Effect.gen(function*() {
            yield* scheduler.acquire(ticket)
            yield* Queue.offer(started, { at: performance.now(), release })
            yield* Deferred.await(release)
          })
        ).pipe(Effect.forkScoped)
        return ticket
      })
      /** Lets the job's fiber run until its ticket is in the queue (or holds the slot). */
      const queued = (id: string) =>
        Effect.gen(function*() {
          while (Option.isNone(yield* scheduler.position(id))) yield* Effect.yieldNow()
        })

      yield* submit
      let holder = yield* Queue.take(started)
      let last = ""
      for (let i = 0; i < n; i++) last = (yield* submit).id
      if (n > 0) yield* queued(last)

      const out: Array<Array<number>> = []
      for (let r = 0; r < rounds; r++) {
        const round: Array<number> = []
        for (let i = 0; i < handovers; i++) {
          const fresh = yield* submit
          yield* queued(fresh.id)
          const t0 = performance.now()
          yield* Deferred.succeed(holder.release, undefined)
          holder = yield* Queue.take(started)
          round.push((holder.at - t0) * 1000)
        }
        out.push(round)
      }
      yield* Deferred.succeed(holder.release, undefined)
      return out
    })
  ).pipe(Logger.withMinimumLogLevel(LogLevel.None))

export const policy: Benchmark = {
  name: "policy",
  title: "Scheduler cost: the swap-aware decision with 1, 1 000 and 10 000 jobs queued",
  run: async () => {
    // Warm-up, not measured: the JIT compiles swapAware and the Scheduler's paths.
    for (const n of SIZES) policyRound(n, POLICY_CALLS[n], 99)
    await Effect.runPromise(schedulerRounds(1_000, 1, 50, 99))

    const bare: Record<number, Array<Array<number>>> = {}
    // Rounds interleave the sizes, so a noisy moment of the machine hits all of them alike.
    for (let r = 0; r < ROUNDS; r++) {
      for (const n of SIZES) (bare[n] ??= []).push(policyRound(n, POLICY_CALLS[n], r))
      await sleep(PAUSE_MS)
    }
    const through: Record<number, Array<Array<number>>> = {}
    for (const n of SIZES) through[n] = await Effect.runPromise(schedulerRounds(n, ROUNDS, SCHEDULER_HANDOVERS[n], n))
    const policyFigures = SIZES.map((n) => ({ queued: n, ...combine(bare[n]!) }))
    const schedulerFigures = SIZES.map((n) => ({ queued: n, ...combine(through[n]!) }))
    const atTarget = policyFigures.find((f) => f.queued === TARGET_SIZE)!
    const checks: ReadonlyArray<Check> = [
      {
        target: `policy decision p99 <= ${TARGET_P99_US} µs at ${TARGET_SIZE.toLocaleString("en")} queued`,
        measured: `${micros(atTarget.p99)} (p50 ${micros(atTarget.p50)})`,
        pass: atTarget.p99 <= TARGET_P99_US
      }
    ]
    const markdown = [
      `Policy: \`swapAware\` called directly, ${ROUNDS} rounds ${PAUSE_MS} ms apart of ` +
      `${Object.values(POLICY_CALLS).join(" / ")} timed calls (1 / 1 000 / 10 000 queued), each call timed alone ` +
      "with `process.hrtime.bigint()` (the clock reads, a few hundredths of a µs, included). " +
      `Scheduler: the real \`Scheduler\` layer (with \`Inventory\` over the in-memory test target, \`--concurrency 1\`, ` +
      `\`--max-loaded-models 2\`), ${ROUNDS} rounds of ${Object.values(SCHEDULER_HANDOVERS).join(" / ")} slot ` +
      "hand-overs: the job holding the slot releases it, the Scheduler runs the policy over the queue, updates its " +
      "state and completes the next job's Deferred, and that job's fiber resumes. The queue is topped up " +
      "before each hand-over, so it stays at its size. Cells: median over rounds of each round's percentile.",
      "",
      `Queues: ${MODELS.length} models (${MODELS.map((m) => `\`${m}\``).join(", ")}) at ${POPULARITY.join("/")} %, ` +
      "priorities 10 % interactive / 30 % normal / 60 % batch, arrivals over the last 50 s (max-wait 60 s: none " +
      "overdue), 2 models resident, 1 running, 1 free slot; jobs from " +
      `${CALLERS.length} callers at ${CALLER_SHARE.join("/")} %, so fair share weighs callers in every class. ` +
      "Seeded, so every run decides on the same queues.",
      "",
      table(
        ["queued jobs", "policy p50", "policy p99", "Scheduler hand-over p50", "Scheduler hand-over p99"],
        SIZES.map((n, i) => [
          n.toLocaleString("en"),
          micros(policyFigures[i]!.p50),
          micros(policyFigures[i]!.p99),
          micros(schedulerFigures[i]!.p50),
          micros(schedulerFigures[i]!.p99)
        ])
      ),
      "",
      ...targetsBlock(checks, () => [
        "Why: the decision is one pass over the queue, so its cost grows with the queue " +
        `(${micros(atTarget.p50)} at p50 for ${TARGET_SIZE.toLocaleString("en")} jobs here). The p99 is the p50 plus whatever ` +
        "stopped this process meanwhile (a garbage collection, another process on the shared core); the same rounds " +
        `timed a decision over 1 queued job at p99 ${micros(policyFigures[0]!.p99)}, so compare it with other runs' ` +
        "figure to tell a slow moment of the machine from a slower policy."
      ])
    ].join("\n")
    return { data: { rounds: ROUNDS, models: MODELS, policy: policyFigures, scheduler: schedulerFigures }, markdown, checks }
  }
}
