/**
 * Routing across targets (issue 17, item 6): the same jobs, with the same arrival times, over
 * two simulated Ollama boxes that hold different models (a desktop with two models loaded and
 * two slots, a laptop with one slot and one model loaded), placed four ways:
 *   (1) foreman's routing, the real policy (`place(swapAware)` over a `TargetState` per box
 *       with `name` and `has`) in a discrete-event simulation on a virtual clock, the policy
 *       seeing what the boxes really hold;
 *   (1') the same through the real Scheduler service under TestClock (two in-memory targets,
 *       `test/support/TestTarget.ts`): foreman's own view of residency (`/api/ps`, read again
 *       after each job as Jobs does and every 30 s as the Poller does, plus what it ran last),
 *       its queue, its dispatch;
 *   (2) round-robin: each job, at arrival, to the next target in turn among those that have
 *       its model, queued FIFO there (Ollama's own queue);
 *   (3) least-connections: at arrival, to the target with the fewest jobs in flight + queued
 *       among those that have its model (ties: the first configured), FIFO there.
 * A box runs a job on a loaded model at once (a job for a model still loading waits for the
 * load); otherwise it loads the model (its load time) and evicts the least recently used
 * idle one when it holds `maxLoaded`; an idle model goes after Ollama's 5 min keep-alive.
 * Slots do not slow each other down, and a job takes as long on either box.
 */
import type * as Arr from "effect/Array"
import { Clock, Deferred, Duration, Effect, Fiber, Layer, Logger, LogLevel, Option, Queue, TestClock, TestContext } from "effect"
import { ForemanConfig } from "../src/Config.ts"
import { Events } from "../src/events/Events.ts"
import * as ModelName from "../src/ollama/ModelName.ts"
import type { PsResponse } from "../src/ollama/schema.ts"
import { anonymous, place, type Priority, swapAware, type TargetState, type Waiting } from "../src/scheduler/policy.ts"
import * as Scheduler from "../src/scheduler/Scheduler.ts"
import * as Target from "../src/target/Target.ts"
import type * as TargetClient from "../src/target/TargetClient.ts"
import * as TestTarget from "../test/support/TestTarget.ts"
import { type Benchmark, type Check, checkList, logNormal, mean, median, percentile, pick, seconds, seededRandom, table } from "./lib.ts"

// ---------------------------------------------------------------------------------------------
// The workload (set before the first run, not moved after)

/** The models: load time, mean job time once loaded, share of the jobs. */
const MODELS = [
  { name: "a", loadMs: 8_000, meanMs: 3_000, share: 30 },
  { name: "b", loadMs: 2_000, meanMs: 1_000, share: 30 },
  { name: "c", loadMs: 4_000, meanMs: 2_500, share: 25 },
  { name: "d", loadMs: 3_000, meanMs: 1_500, share: 15 }
] as const
/** Job times: log-normal around the model's mean with this coefficient of variation, within these bounds. */
const JOB_CV = 0.5
const JOB_MIN_MS = 500
const JOB_MAX_MS = 5_000

interface TargetSpec {
  readonly name: string
  readonly models: ReadonlyArray<string>
  readonly concurrency: number
  readonly maxLoaded: number
}

/** In the configuration's order: foreman offers the desktop a job first. */
const TARGETS: ReadonlyArray<TargetSpec> = [
  { name: "desk", models: ["a", "b", "c"], concurrency: 2, maxLoaded: 2 },
  { name: "laptop", models: ["b", "c", "d"], concurrency: 1, maxLoaded: 1 }
]

const JOBS = 300
/**
 * Mean gap of the Poisson arrivals. The jobs' own work (no loads) is ~49 % of the three slots
 * (2.05 s of mean work every 1.4 s); a, b and c all on the desk would be 65 % of its two slots,
 * d 11 % of the laptop's one. With the loads on top both boxes are busy, and the work alone
 * overloads neither.
 */
const MEAN_GAP_MS = 1_400
const INTERACTIVE_SHARE = 0.3
/** The seed of the checked run (issue 17); `SEEDS`, the workloads of the spread. */
const SEED = 17
const SEEDS = Array.from({ length: 20 }, (_, i) => i + 1)
const KEEP_ALIVE_MS = 5 * 60_000
/** foreman's default `--max-wait`. */
const MAX_WAIT_MS = 60_000
/** The p99 wait's bound: max-wait, plus one job (the longest job time the workload draws) ahead of the overdue one. */
const WAIT_BOUND_MS = MAX_WAIT_MS + JOB_MAX_MS
/** foreman's default `--poll-interval`. */
const POLL_INTERVAL = Duration.seconds(30)
/** The virtual clock's step through the real Scheduler. */
const CLOCK_STEP_MS = 10_000

interface Job {
  readonly n: number
  /** The model's short name (`a`). */
  readonly model: string
  /** Its key (`ModelName.keyOf`), as the Scheduler and the inventory name it. */
  readonly key: string
  readonly priority: Priority
  readonly arrivalMs: number
  /** Its time at the target once its model is loaded. */
  readonly workMs: number
}

const keyOf = (name: string): string => Option.getOrThrow(ModelName.keyOf(name))
const modelByKey = new Map<string, (typeof MODELS)[number]>(MODELS.map((m) => [keyOf(m.name), m]))

const workload = (seed: number): ReadonlyArray<Job> => {
  const random = seededRandom(seed)
  const jobs: Array<Job> = []
  let at = 0
  for (let n = 0; n < JOBS; n++) {
    at += -Math.log(1 - random()) * MEAN_GAP_MS
    const model = pick(random, MODELS.map((m) => [m, m.share] as const))
    jobs.push({
      n,
      model: model.name,
      key: keyOf(model.name),
      priority: random() < INTERACTIVE_SHARE ? "interactive" : "batch",
      arrivalMs: Math.round(at),
      workMs: Math.round(Math.min(JOB_MAX_MS, Math.max(JOB_MIN_MS, logNormal(random, model.meanMs, JOB_CV))))
    })
  }
  return jobs
}

// ---------------------------------------------------------------------------------------------
// A simulated Ollama box

interface Loaded {
  readyAt: number
  /** For the LRU eviction: its latest start or end. */
  lastUsed: number
  inUse: number
  /** Until when it stays once idle: keep-alive from its load and from each job's end, as Ollama sets it (`/api/ps`'s `expires_at`). */
  expiresAt: number
}

class Box {
  readonly spec: TargetSpec
  readonly keys: ReadonlySet<string>
  readonly loaded = new Map<string, Loaded>()
  /** The model (key) of each job in flight, one entry per job. */
  readonly running: Array<string> = []
  loads = 0
  jobs = 0
  /** Slot-milliseconds held by jobs, their loads included. */
  busyMs = 0
  /** Of which spent loading models (by the job that made the load). */
  loadingMs = 0
  /** Starts that found every loaded model in use with `maxLoaded` held: a box would queue them (none expected). */
  overcommits = 0

  constructor(spec: TargetSpec) {
    this.spec = spec
    this.keys = new Set(spec.models.map(keyOf))
  }

  get freeSlots(): number {
    return this.spec.concurrency - this.running.length
  }

  private prune(now: number): void {
    for (const [key, entry] of this.loaded) if (entry.inUse === 0 && entry.expiresAt <= now) this.loaded.delete(key)
  }

  private idleLru(): string | undefined {
    let oldest: [string, Loaded] | undefined
    for (const entry of this.loaded) if (entry[1].inUse === 0 && (oldest === undefined || entry[1].lastUsed < oldest[1].lastUsed)) oldest = entry
    return oldest?.[0]
  }

  /** Whether the box would take this job now (Ollama's queue: a slot, and its model loaded or loadable). */
  canStart(key: string, now: number): boolean {
    this.prune(now)
    return this.freeSlots > 0 && (this.loaded.has(key) || this.loaded.size < this.spec.maxLoaded || this.idleLru() !== undefined)
  }

  begin(job: Job, now: number): { readonly durationMs: number; readonly load: boolean } {
    this.prune(now)
    let entry = this.loaded.get(job.key)
    const load = entry === undefined
    if (entry === undefined) {
      if (this.loaded.size >= this.spec.maxLoaded) {
        const evict = this.idleLru()
        if (evict === undefined) this.overcommits += 1
        else this.loaded.delete(evict)
      }
      const loadMs = modelByKey.get(job.key)!.loadMs
      entry = { readyAt: now + loadMs, lastUsed: now, inUse: 0, expiresAt: now + KEEP_ALIVE_MS }
      this.loaded.set(job.key, entry)
      this.loads += 1
      this.loadingMs += loadMs
    }
    entry.inUse += 1
    entry.lastUsed = now
    this.running.push(job.key)
    this.jobs += 1
    const durationMs = Math.max(0, entry.readyAt - now) + job.workMs
    this.busyMs += durationMs
    return { durationMs, load }
  }

  end(job: Job, now: number): void {
    const entry = this.loaded.get(job.key)
    if (entry !== undefined) {
      entry.inUse -= 1
      entry.lastUsed = now
      entry.expiresAt = now + KEEP_ALIVE_MS
    }
    this.running.splice(this.running.indexOf(job.key), 1)
  }

  /** The models it holds now (keys), the latest expiry first, as `/api/ps` lists them. */
  resident(now: number): ReadonlyArray<string> {
    this.prune(now)
    return [...this.loaded].sort((a, b) => b[1].expiresAt - a[1].expiresAt).map(([key]) => key)
  }

  /** Its `/api/ps` answer now. */
  ps(now: number): PsResponse {
    return {
      models: this.resident(now).map((key) => {
        const name = modelByKey.get(key)!.name
        return { name, model: name, expires_at: new Date(this.loaded.get(key)!.expiresAt).toISOString() }
      })
    }
  }
}

const makeBoxes = (): ReadonlyArray<Box> => TARGETS.map((spec) => new Box(spec))

// ---------------------------------------------------------------------------------------------
// The discrete-event simulation: arrivals and job ends on a virtual clock

interface Outcome {
  readonly target: number
  readonly startMs: number
  readonly endMs: number
  readonly load: boolean
}

/** How jobs are placed: told of each arrival, asked for the next start until it has none. */
interface Strategy {
  readonly arrive: (job: Job, now: number) => void
  readonly next: (now: number) => { readonly job: Job; readonly target: number } | undefined
}

const simulate = (jobs: ReadonlyArray<Job>, boxes: ReadonlyArray<Box>, strategy: Strategy): ReadonlyArray<Outcome> => {
  const outcomes: Array<Outcome | undefined> = jobs.map(() => undefined)
  const ends: Array<{ readonly at: number; readonly job: Job; readonly target: number }> = []
  let arrived = 0
  while (arrived < jobs.length || ends.length > 0) {
    const nextEnd = ends.reduce((t, e) => Math.min(t, e.at), Number.POSITIVE_INFINITY)
    const now = Math.min(nextEnd, jobs[arrived]?.arrivalMs ?? Number.POSITIVE_INFINITY)
    // Ends first: a slot freed at the instant a job arrives is free for it.
    for (let i = ends.length - 1; i >= 0; i--) {
      const e = ends[i]!
      if (e.at > now) continue
      ends.splice(i, 1)
      boxes[e.target]!.end(e.job, now)
    }
    while (arrived < jobs.length && jobs[arrived]!.arrivalMs <= now) strategy.arrive(jobs[arrived++]!, now)
    for (;;) {
      const start = strategy.next(now)
      if (start === undefined) break
      const { durationMs, load } = boxes[start.target]!.begin(start.job, now)
      outcomes[start.job.n] = { target: start.target, startMs: now, endMs: now + durationMs, load }
      ends.push({ at: now + durationMs, job: start.job, target: start.target })
    }
  }
  return outcomes.map((o, i) => {
    if (o === undefined) throw new Error(`job ${i} never started`)
    return o
  })
}

const waitingOf = (job: Job): Waiting => ({
  id: String(job.n),
  seq: job.n + 1,
  model: job.key,
  priority: job.priority,
  enqueuedAt: job.arrivalMs,
  attempts: 0,
  caller: anonymous
})

/** A box as the Scheduler shows it to the policy (`stateOf`), here with what the box really holds. */
const stateOf = (box: Box, now: number): TargetState => ({
  name: box.spec.name,
  has: (model) => box.keys.has(model),
  reachable: true,
  running: [...box.running],
  resident: box.resident(now),
  freeSlots: box.freeSlots,
  // As the Scheduler does it: the boxes have served since 0, and nothing is overdue before max-wait.
  maxWait: now > MAX_WAIT_MS ? MAX_WAIT_MS : Number.POSITIVE_INFINITY,
  maxLoaded: box.spec.maxLoaded
})

/** foreman's routing: every job in one queue, `place(swapAware)` picks the next start and its box. */
const foremanPolicy = (jobs: ReadonlyArray<Job>, boxes: ReadonlyArray<Box>): Strategy => {
  const waiting: Array<Waiting> = []
  const last = new Map<string, number>()
  let starts = 0
  const decide = place(swapAware)
  return {
    arrive: (job) => void waiting.push(waitingOf(job)),
    next: (now) => {
      const placed = decide({ waiting, targets: boxes.map((box) => stateOf(box, now)), now, served: { starts, last } })
      if (placed === undefined) return undefined
      waiting.splice(waiting.indexOf(placed.job), 1)
      last.set(placed.job.caller, ++starts)
      return { job: jobs[Number(placed.job.id)]!, target: placed.target }
    }
  }
}

/** Each box's own FIFO queue (Ollama's): its head starts when the box would take it. */
const fifoAtTargets = (boxes: ReadonlyArray<Box>, route: (job: Job, queues: ReadonlyArray<ReadonlyArray<Job>>) => number): Strategy => {
  const queues: Array<Array<Job>> = boxes.map(() => [])
  return {
    arrive: (job) => void queues[route(job, queues)]!.push(job),
    next: (now) => {
      for (const [target, queue] of queues.entries()) {
        const head = queue[0]
        if (head !== undefined && boxes[target]!.canStart(head.key, now)) {
          queue.shift()
          return { job: head, target }
        }
      }
      return undefined
    }
  }
}

const holders = (boxes: ReadonlyArray<Box>, job: Job): ReadonlyArray<number> => {
  const found = boxes.flatMap((box, i) => (box.keys.has(job.key) ? [i] : []))
  if (found.length === 0) throw new Error(`no target has ${job.model}`)
  return found
}

/** The next box in turn (one pointer over the boxes) that has the job's model. */
const roundRobin = (boxes: ReadonlyArray<Box>): Strategy => {
  let turn = 0
  return fifoAtTargets(boxes, (job) => {
    for (let k = 0; k < boxes.length; k++) {
      const target = (turn + k) % boxes.length
      if (boxes[target]!.keys.has(job.key)) {
        turn = (target + 1) % boxes.length
        return target
      }
    }
    return holders(boxes, job)[0]!
  })
}

/** The box with the model and the fewest jobs in flight + queued; ties: the first configured. */
const leastConnections = (boxes: ReadonlyArray<Box>): Strategy =>
  fifoAtTargets(boxes, (job, queues) => {
    let best = -1
    let fewest = Number.POSITIVE_INFINITY
    for (const target of holders(boxes, job)) {
      const load = boxes[target]!.running.length + queues[target]!.length
      if (load < fewest) [best, fewest] = [target, load]
    }
    return best
  })

// ---------------------------------------------------------------------------------------------
// foreman's routing through the real Scheduler, under a virtual clock

const throughScheduler = (jobs: ReadonlyArray<Job>) =>
  Effect.scoped(
    Effect.gen(function*() {
      const boxes = makeBoxes()
      // In-memory targets whose `/api/ps` answers what the boxes hold at the time of the call.
      const clients = yield* Effect.forEach(TARGETS, (spec, i) =>
        Effect.map(TestTarget.make(spec.models), ({ client }): TargetClient.TargetClientService => ({
          ...client,
          ps: Effect.map(Clock.currentTimeMillis, (now) => boxes[i]!.ps(now))
        })))
      const targetsLayer = Layer.scoped(
        Target.Targets,
        Effect.map(
          Effect.forEach(TARGETS, (spec, i) =>
            Target.make(clients[i]!, { name: spec.name, concurrency: spec.concurrency, maxLoadedModels: spec.maxLoaded })),
          (all) => Target.of(all as unknown as Arr.NonEmptyReadonlyArray<Target.Target>)
        )
      )
      const context = yield* Layer.build(
        Scheduler.layer.pipe(
          Layer.provideMerge(targetsLayer),
          Layer.provideMerge(Events.layer),
          Layer.provide(ForemanConfig.make({ pollInterval: POLL_INTERVAL, maxWait: Duration.millis(MAX_WAIT_MS) }))
        )
      )
      const targets = yield* Effect.provide(Target.Targets, context)
      const scheduler = yield* Effect.provide(Scheduler.Scheduler, context)
      // The jobs foreman took for swaps (its `ModelSwapped` events), to compare with the boxes' loads.
      const events = yield* Effect.flatMap(Effect.provide(Events, context), (e) => e.subscribe)
      // The inventories read once (foreman knows which target has which model before jobs come),
      // then polled every `--poll-interval` (the default, 30 s) as the Poller does.
      yield* Effect.forEach(targets.all, (target) => target.inventory.poll, { discard: true })
      yield* Effect.forEach(targets.all, (target) => Effect.forkScoped(Effect.delay(target.polling, POLL_INTERVAL)), { discard: true })

      const outcomes: Array<Outcome | undefined> = jobs.map(() => undefined)
      let done = 0
      let drift = 0
      const arrive = (job: Job) =>
        Effect.gen(function*() {
          yield* Effect.sleep(job.arrivalMs)
          const ticket = yield* scheduler.ticket(job.key, job.priority, { id: `j${job.n}` })
          const granted = yield* Deferred.make<Target.Target>()
          const runner = yield* Effect.fork(Effect.gen(function*() {
            const target = yield* Deferred.await(granted)
            const index = TARGETS.findIndex((spec) => spec.name === target.name)
            const box = boxes[index]!
            const start = yield* Clock.currentTimeMillis
            const { durationMs, load } = box.begin(job, start)
            yield* Effect.sleep(durationMs)
            const end = yield* Clock.currentTimeMillis
            if (end - start !== durationMs) drift += 1
            // The box is done, then foreman frees the slot and asks for `/api/ps` again (as Jobs does).
            box.end(job, end)
            yield* scheduler.release(ticket.id)
            yield* target.inventory.reportServed
            outcomes[job.n] = { target: index, startMs: start, endMs: end, load }
            done += 1
          }))
          yield* scheduler.enqueue(ticket, (target) => Deferred.succeed(granted, target).pipe(Effect.asVoid))
          yield* Fiber.join(runner)
        })

      const fibers = yield* Effect.forEach(jobs, (job) => Effect.fork(arrive(job)))
      while (done < jobs.length) yield* TestClock.adjust(CLOCK_STEP_MS)
      yield* Effect.forEach(fibers, Fiber.join, { discard: true })
      const stats = yield* scheduler.stats
      const swapped = new Set<number>()
      for (const event of yield* Queue.takeAll(events)) if (event._tag === "ModelSwapped") swapped.add(Number(event.jobId.slice(1)))
      const loaded = outcomes.map((o, n) => [o!.load, n] as const)
      return {
        outcomes: outcomes.map((o) => o!),
        boxes,
        foremanSwaps: stats.swaps,
        /** Loads foreman did not count (it took the model for loaded), and swaps it counted that loaded nothing. */
        uncounted: loaded.filter(([load, n]) => load && !swapped.has(n)).map(([, n]) => n),
        phantom: loaded.filter(([load, n]) => !load && swapped.has(n)).map(([, n]) => n),
        drift
      }
    })
  ).pipe(Effect.provide(TestContext.TestContext), Logger.withMinimumLogLevel(LogLevel.None))

// ---------------------------------------------------------------------------------------------
// Figures

interface Spread {
  readonly meanMs: number
  readonly p99Ms: number
}

interface TargetFigures {
  readonly name: string
  readonly jobs: number
  readonly loads: number
  /** Busy slot-time (loads included) over its slots × the makespan. */
  readonly utilisation: number
  /** Of the busy time, the share spent loading models. */
  readonly loadingShare: number
}

interface Summary {
  readonly strategy: string
  /** Model loads the boxes made. */
  readonly swaps: number
  /** From 0 (the arrivals' origin) to the last job's end. */
  readonly makespanMs: number
  readonly wait: Spread
  readonly latency: Spread
  readonly interactiveWait: Spread
  readonly batchWait: Spread
  readonly longestWaitMs: number
  readonly targets: ReadonlyArray<TargetFigures>
  /** Through the Scheduler: the swaps it counted itself (its `stats.swaps`). */
  readonly foremanSwaps?: number
}

const spread = (xs: ReadonlyArray<number>): Spread => ({ meanMs: mean(xs), p99Ms: percentile(xs, 99) })

const summarise = (strategy: string, jobs: ReadonlyArray<Job>, outcomes: ReadonlyArray<Outcome>, boxes: ReadonlyArray<Box>): Summary => {
  const makespanMs = Math.max(...outcomes.map((o) => o.endMs))
  const wait = (o: Outcome, i: number) => o.startMs - jobs[i]!.arrivalMs
  const waits = outcomes.map(wait)
  const of = (p: Priority) => outcomes.flatMap((o, i) => (jobs[i]!.priority === p ? [wait(o, i)] : []))
  const loads = outcomes.filter((o) => o.load).length
  const counted = boxes.reduce((a, b) => a + b.loads, 0)
  if (loads !== counted) throw new Error(`${strategy}: ${loads} jobs loaded a model, the boxes counted ${counted}`)
  for (const box of boxes) if (box.overcommits > 0) throw new Error(`${strategy}: ${box.spec.name} started ${box.overcommits} jobs with no model to evict`)
  return {
    strategy,
    swaps: loads,
    makespanMs,
    wait: spread(waits),
    latency: spread(outcomes.map((o, i) => o.endMs - jobs[i]!.arrivalMs)),
    interactiveWait: spread(of("interactive")),
    batchWait: spread(of("batch")),
    longestWaitMs: Math.max(...waits),
    targets: boxes.map((box) => ({
      name: box.spec.name,
      jobs: box.jobs,
      loads: box.loads,
      utilisation: box.busyMs / (box.spec.concurrency * makespanMs),
      loadingShare: box.busyMs === 0 ? 0 : box.loadingMs / box.busyMs
    }))
  }
}

const POLICY = "foreman (policy)"
const SCHEDULER = "foreman (Scheduler)"
const ROUND_ROBIN = "round-robin"
const LEAST_CONNECTIONS = "least-connections"

/** The three simulated strategies on one workload. */
const simulated = (jobs: ReadonlyArray<Job>): ReadonlyArray<Summary> =>
  ([
    [POLICY, (boxes: ReadonlyArray<Box>) => foremanPolicy(jobs, boxes)],
    [ROUND_ROBIN, roundRobin],
    [LEAST_CONNECTIONS, leastConnections]
  ] as const).map(([name, strategy]) => {
    const boxes = makeBoxes()
    return summarise(name, jobs, simulate(jobs, boxes, strategy(boxes)), boxes)
  })

const percent = (x: number): string => (Number.isFinite(x) ? `${Math.round(x * 100)} %` : "–")

interface SeedRow {
  readonly seed: number
  readonly summaries: ReadonlyArray<Summary>
}

const byName = (summaries: ReadonlyArray<Summary>, name: string): Summary => summaries.find((s) => s.strategy === name)!

const render = (
  jobs: ReadonlyArray<Job>,
  summaries: ReadonlyArray<Summary>,
  scheduler: { readonly drift: number; readonly uncounted: ReadonlyArray<number>; readonly phantom: ReadonlyArray<number>; readonly outcomes: ReadonlyArray<Outcome> },
  seeds: ReadonlyArray<SeedRow>,
  checks: ReadonlyArray<Check>
): string => {
  const count = (f: (job: Job) => boolean) => jobs.filter(f).length
  const work = mean(jobs.map((j) => j.workMs))
  const span = jobs[jobs.length - 1]!.arrivalMs
  const s = byName(summaries, SCHEDULER)
  const uncountedAt = TARGETS.flatMap((t, i) => {
    const on = scheduler.uncounted.filter((n) => scheduler.outcomes[n]!.target === i)
    return on.length === 0 ? [] : [`${on.length} on ${t.name}: job${on.length > 1 ? "s" : ""} ${on.join(", ")}`]
  }).join("; ")
  const wins = (f: (x: Summary) => number) =>
    seeds.filter((r) => {
      const ours = f(byName(r.summaries, POLICY))
      return ours < f(byName(r.summaries, ROUND_ROBIN)) && ours < f(byName(r.summaries, LEAST_CONNECTIONS))
    }).length
  const medianOf = (name: string, f: (x: Summary) => number) => median(seeds.map((r) => f(byName(r.summaries, name))))
  return [
    `Workload (seed ${SEED}): ${JOBS} jobs, Poisson arrivals (mean gap ${seconds(MEAN_GAP_MS)}; the last arrives at ${seconds(span)}), ` +
    `${count((j) => j.priority === "interactive")} interactive and ${count((j) => j.priority === "batch")} batch, one caller. ` +
    `Job times log-normal around each model's mean (cv ${JOB_CV}), within ${seconds(JOB_MIN_MS)}–${seconds(JOB_MAX_MS)}; ` +
    `mean ${seconds(work)}, so the jobs' own work is ${percent(work / MEAN_GAP_MS / TARGETS.reduce((a, t) => a + t.concurrency, 0))} of the ` +
    "three slots before any load.",
    "",
    table(["model", "load", "mean job", "share", "jobs", "on"], MODELS.map((m) => [
      m.name,
      seconds(m.loadMs),
      seconds(m.meanMs),
      `${m.share} %`,
      String(count((j) => j.model === m.name)),
      TARGETS.filter((t) => t.models.includes(m.name)).map((t) => t.name).join(", ")
    ])),
    "",
    table(["target", "models", "slots (`--concurrency`)", "`--max-loaded-models`"], TARGETS.map((t) => [t.name, t.models.join(", "), String(t.concurrency), String(t.maxLoaded)])),
    "",
    "A box runs a job on a loaded model at once (one for a model still loading waits for the load), else loads the model and " +
    "evicts its least recently used idle one; an idle model goes after 5 min (Ollama's keep-alive). Both boxes run a job " +
    "equally fast. Strategies, all on the same jobs and arrival times:",
    "",
    `- **${POLICY}**: the real \`place(swapAware)\` over a \`TargetState\` per box (\`name\`, \`has\`, running, resident, free ` +
    "slots), called at every arrival and job end until it starts nothing, in a discrete-event simulation. It sees what the " +
    "boxes really hold (most recently used first).",
    `- **${SCHEDULER}**: the real Scheduler service over two in-memory targets (\`TestTarget\`), under TestClock: its queue, ` +
    "dispatch and its own view of residency (`/api/ps`, asked again after each job as Jobs does and every 30 s as the Poller " +
    "does, plus what it ran last). " +
    `\`--max-wait ${MAX_WAIT_MS / 1000}s\` (the default).`,
    `- **${ROUND_ROBIN}**: at arrival, the next target in turn (one pointer over both) among those with the model; FIFO there, ` +
    "the head waiting for a slot and a model it may evict (Ollama's queue).",
    `- **${LEAST_CONNECTIONS}**: at arrival, the target with the model and the fewest jobs in flight + queued (ties: desk); FIFO there.`,
    "",
    "Wait: arrival to start (a load is part of the job, not the wait). Latency: arrival to end. Makespan: 0 to the last end. " +
    "p99 is nearest-rank.",
    "",
    table(["strategy", "swaps", "makespan", "mean wait", "p99 wait", "mean latency", "p99 latency", "longest wait"], summaries.map((x) => [
      x.strategy,
      String(x.swaps),
      seconds(x.makespanMs),
      seconds(x.wait.meanMs),
      seconds(x.wait.p99Ms),
      seconds(x.latency.meanMs),
      seconds(x.latency.p99Ms),
      seconds(x.longestWaitMs)
    ])),
    "",
    "By class and by target (utilisation: busy slot-time, loads included, over slots × makespan; \"loading\": its share of that busy time):",
    "",
    table(
      [
        "strategy",
        "interactive wait mean / p99",
        "batch wait mean / p99",
        ...TARGETS.map((t) => `${t.name}: jobs, loads, utilisation (loading)`)
      ],
      summaries.map((x) => [
        x.strategy,
        `${seconds(x.interactiveWait.meanMs)} / ${seconds(x.interactiveWait.p99Ms)}`,
        `${seconds(x.batchWait.meanMs)} / ${seconds(x.batchWait.p99Ms)}`,
        ...x.targets.map((t) => `${t.jobs}, ${t.loads}, ${percent(t.utilisation)} (${percent(t.loadingShare)})`)
      ])
    ),
    "",
    `Through the Scheduler, foreman counted ${s.foremanSwaps} swaps itself; the boxes loaded ${s.swaps} times. ` +
    (scheduler.uncounted.length === 0 && scheduler.phantom.length === 0
      ? "Every load was one foreman counted. "
      : `${scheduler.uncounted.length} loads foreman did not count (${uncountedAt}): they started on a model foreman took ` +
        "for loaded there. Its view of a target (`/api/ps` as last read, plus what it ran last, trimmed to " +
        "`--max-loaded-models`) does not count against that limit a model loaded for a job still running, so after such a load " +
        "it still lists the model the load evicted, until a job there ends and `/api/ps` is read again. " +
        `${scheduler.phantom.length} swaps foreman counted loaded nothing. `) +
    (scheduler.drift === 0 ? "Every job held its slot for exactly its simulated time on the virtual clock." : `${scheduler.drift} jobs' times drifted on the virtual clock.`),
    "",
    `## The spread: ${SEEDS.length} workloads`,
    "",
    `The same workload drawn with seeds ${SEEDS[0]}–${SEEDS[SEEDS.length - 1]} (the checked seed, ${SEED}, among them; simulated strategies only). ` +
    `foreman's policy had fewer swaps than both baselines on ${wins((x) => x.swaps)} of ${seeds.length} and a lower mean wait ` +
    `on ${wins((x) => x.wait.meanMs)} of ${seeds.length}. Medians over the seeds:`,
    "",
    table(["strategy", "swaps", "makespan", "mean wait", "p99 wait", "mean latency"], [POLICY, ROUND_ROBIN, LEAST_CONNECTIONS].map((name) => [
      name,
      String(medianOf(name, (x) => x.swaps)),
      seconds(medianOf(name, (x) => x.makespanMs)),
      seconds(medianOf(name, (x) => x.wait.meanMs)),
      seconds(medianOf(name, (x) => x.wait.p99Ms)),
      seconds(medianOf(name, (x) => x.latency.meanMs))
    ])),
    "",
    `Targets (issue 17, item 6; set before the first run, seed ${SEED}):`,
    "",
    checkList(checks)
  ].join("\n")
}

const checksFor = (summaries: ReadonlyArray<Summary>): ReadonlyArray<Check> => {
  const rr = byName(summaries, ROUND_ROBIN)
  const lc = byName(summaries, LEAST_CONNECTIONS)
  return [POLICY, SCHEDULER].flatMap((name): ReadonlyArray<Check> => {
    const ours = byName(summaries, name)
    return [
      {
        target: `${name}: swaps below round-robin's and least-connections'`,
        measured: `${ours.swaps} vs ${rr.swaps} and ${lc.swaps}`,
        pass: ours.swaps < rr.swaps && ours.swaps < lc.swaps
      },
      {
        target: `${name}: mean wait below round-robin's and least-connections'`,
        measured: `${seconds(ours.wait.meanMs)} vs ${seconds(rr.wait.meanMs)} and ${seconds(lc.wait.meanMs)}`,
        pass: ours.wait.meanMs < rr.wait.meanMs && ours.wait.meanMs < lc.wait.meanMs
      },
      {
        target: `${name}: p99 wait <= max-wait + the longest job (${seconds(WAIT_BOUND_MS)})`,
        measured: `${seconds(ours.wait.p99Ms)} (longest ${seconds(ours.longestWaitMs)})`,
        pass: ours.wait.p99Ms <= WAIT_BOUND_MS
      }
    ]
  })
}

export const routing: Benchmark = {
  name: "routing",
  title: "Routing across two targets: foreman vs round-robin and least-connections",
  run: async () => {
    const jobs = workload(SEED)
    const through = await Effect.runPromise(throughScheduler(jobs))
    const scheduled = { ...summarise(SCHEDULER, jobs, through.outcomes, through.boxes), foremanSwaps: through.foremanSwaps }
    const [policy, ...baselines] = simulated(jobs)
    const summaries = [policy!, scheduled, ...baselines]
    const seeds = SEEDS.map((seed): SeedRow => ({ seed, summaries: simulated(workload(seed)) }))
    const checks = checksFor(summaries)
    return {
      data: {
        models: MODELS,
        targets: TARGETS,
        jobs: JOBS,
        meanGapMs: MEAN_GAP_MS,
        interactiveShare: INTERACTIVE_SHARE,
        jobTimes: { cv: JOB_CV, minMs: JOB_MIN_MS, maxMs: JOB_MAX_MS },
        keepAliveMs: KEEP_ALIVE_MS,
        maxWaitMs: MAX_WAIT_MS,
        seed: SEED,
        summaries,
        schedulerClockDrift: through.drift,
        // The per-job outcomes are left out: the workload is seeded, a run re-creates them.
        seeds: seeds.map((r) => ({
          seed: r.seed,
          summaries: r.summaries.map((x) => ({ strategy: x.strategy, swaps: x.swaps, makespanMs: x.makespanMs, wait: x.wait, latency: x.latency }))
        }))
      },
      markdown: render(jobs, summaries, through, seeds, checks),
      checks
    }
  }
}
