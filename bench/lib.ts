/**
 * What every benchmark of `npm run bench` shares: the shape of a benchmark and its result,
 * small statistics, markdown helpers and the description of the machine and commit a
 * result was measured on.
 */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import * as os from "node:os"

/** One target of an issue, checked against a measured figure. */
export interface Check {
  readonly target: string
  /** The figure(s) the verdict rests on, in words. */
  readonly measured: string
  readonly pass: boolean
}

export interface BenchResult {
  /** Everything measured, as written to `bench/results/<name>.json`. */
  readonly data: unknown
  /** The body of `bench/results/<name>.md` (tables and notes, no title). */
  readonly markdown: string
  readonly checks: ReadonlyArray<Check>
}

export interface Benchmark {
  /** As typed after `npm run bench --`; also the results' file name. */
  readonly name: string
  readonly title: string
  readonly run: () => Promise<BenchResult>
}

export interface Environment {
  readonly commit: string
  /** The measured code (src/, test/support/) differs from `commit`: others edit the same checkout. */
  readonly dirty: boolean
  readonly date: string
  readonly node: string
  readonly os: string
  readonly cpu: string
  readonly cores: number
  readonly memoryGiB: number
}

const repoRoot = new URL("..", import.meta.url)

const git = (...args: ReadonlyArray<string>): string | undefined => {
  try {
    return execFileSync("git", args, { cwd: repoRoot, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
  } catch {
    return undefined
  }
}

export const environment = (): Environment => {
  const cpus = os.cpus()
  return {
    commit: git("rev-parse", "--short", "HEAD") ?? "unknown",
    dirty: (git("status", "--porcelain", "--", "src", "test/support") ?? "") !== "",
    date: new Date().toISOString(),
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10
  }
}

export const describeEnvironment = (env: Environment): string =>
  `commit \`${env.commit}\`${env.dirty ? " (with uncommitted changes in src/ or test/support/)" : ""}, ` +
  `${env.date}, Node ${env.node}, ${env.cpu} × ${env.cores} cores, ${env.memoryGiB} GiB, ${env.os}`

// ---------------------------------------------------------------------------------------------
// Statistics

export const mean = (xs: ReadonlyArray<number>): number => xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length

/** Nearest-rank percentile: an observed value, never an interpolation (so p99 of < 100 samples is the max). */
export const percentile = (xs: ReadonlyArray<number>, p: number): number => {
  if (xs.length === 0) return Number.NaN
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!
}

/** Deterministic PRNG (mulberry32): same seed, same workload, on every machine. */
export const seededRandom = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// ---------------------------------------------------------------------------------------------
// Markdown

export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string =>
  [header, header.map(() => "---"), ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n")

export const seconds = (ms: number): string => Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : "–"

export const ratio = (x: number, y: number): number => y === 0 ? Number.NaN : x / y

/** Two decimals; three below 0.1, where two would round a real figure to 0.00 or 0.01. */
export const times = (r: number): string => Number.isFinite(r) ? `${r.toFixed(r < 0.1 ? 3 : 2)}×` : "–"

export const verdict = (check: Check): string => `${check.pass ? "PASS" : "FAIL"}  ${check.target}: ${check.measured}`

// ---------------------------------------------------------------------------------------------
// Shared by the overhead benchmarks (latency, streaming, throughput, policy, memory)

export const median = (xs: ReadonlyArray<number>): number => percentile(xs, 50)

/** Milliseconds with µs resolution: overheads are fractions of a millisecond. */
export const millis = (ms: number): string => Number.isFinite(ms) ? `${ms.toFixed(3)} ms` : "–"

export const micros = (us: number): string => Number.isFinite(us) ? `${us.toFixed(2)} µs` : "–"

/** Decimal megabytes (10^6 bytes), the unit of the memory targets. */
export const megabytes = (bytes: number): string => Number.isFinite(bytes) ? `${(bytes / 1e6).toFixed(1)} MB` : "–"

/**
 * Generate jobs foreman runs before it is measured: V8 goes on optimising its hot path for
 * about this many (with `--trace-opt`, new optimised functions stop appearing about there)
 * and CPU per job falls by a quarter to a third. A broker runs for days: it is measured warm.
 */
export const FOREMAN_WARMUP_JOBS = 15_000

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))

/** The targets as a markdown list, the way every result file ends. */
export const checkList = (checks: ReadonlyArray<Check>): string =>
  checks.map((c) => `- **${c.pass ? "PASS" : "FAIL"}** ${c.target}: ${c.measured}`).join("\n")

/** A result's "Targets" block: each check's verdict, then `why()` (its lines) when any missed. */
export const targetsBlock = (checks: ReadonlyArray<Check>, why: () => ReadonlyArray<string>): ReadonlyArray<string> => [
  "Targets (issue 6):",
  "",
  checkList(checks),
  ...(checks.every((c) => c.pass) ? [] : ["", ...why()])
]

// ---------------------------------------------------------------------------------------------
// The machine's own load

const cpuTimes = (): { readonly busy: number; readonly total: number } | undefined => {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!
    const fields = line.trim().split(/\s+/).slice(1).map(Number)
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0)
    const total = fields.reduce((a, b) => a + b, 0)
    return { busy: total - idle, total }
  } catch {
    return undefined
  }
}

/**
 * Waits (up to `maxMs`) until the whole machine is under `share` busy over one second, so a
 * benchmark does not start in the tail of whatever ran before it (a test run, the previous
 * benchmark's processes exiting). Returns the busy share of the last second looked at, or
 * undefined where `/proc/stat` is not there.
 */
export const quietMachine = async (share = 0.15, maxMs = 30_000): Promise<number | undefined> => {
  const deadline = Date.now() + maxMs
  for (;;) {
    const before = cpuTimes()
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    const after = cpuTimes()
    if (before === undefined || after === undefined) return undefined
    const busy = (after.busy - before.busy) / Math.max(1, after.total - before.total)
    if (busy < share || Date.now() > deadline) return busy
  }
}

/** One of `items`, drawn with the weight given to each. */
export const pick = <A>(random: () => number, items: ReadonlyArray<readonly [A, number]>): A => {
  let x = random() * items.reduce((a, [, w]) => a + w, 0)
  for (const [item, weight] of items) {
    x -= weight
    if (x < 0) return item
  }
  return items[items.length - 1]![0]
}

/** A log-normal sample with the given mean and coefficient of variation. */
export const logNormal = (random: () => number, mean: number, cv: number): number => {
  const sigma2 = Math.log(1 + cv * cv)
  const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
  return Math.exp(Math.log(mean) - sigma2 / 2 + Math.sqrt(sigma2) * z)
}
