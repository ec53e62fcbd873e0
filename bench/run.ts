/**
 * `npm run bench [-- name ...]`: runs the named benchmarks (all of them without a name),
 * writes `bench/results/<name>.json` and `.md`, and regenerates `bench/results/README.md`
 * (every target of every result on disk in one table, and links) so running one benchmark
 * keeps the others. Exits 1 when a target is missed or a benchmark fails (the figures are
 * written either way), 2 on a bad name.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { loadavg } from "node:os"
import { eta } from "./eta.ts"
import { latency } from "./latency.ts"
import { type Benchmark, type Check, describeEnvironment, type Environment, environment, quietMachine, table, verdict } from "./lib.ts"
import { memory } from "./memory.ts"
import { policy } from "./policy.ts"
import { routing } from "./routing.ts"
import { streaming } from "./streaming.ts"
import { swaps } from "./swaps.ts"
import { throughput } from "./throughput.ts"

/** In the order a full run takes them (the issue's); a new benchmark is one import and one entry here. */
const benchmarks: ReadonlyArray<Benchmark> = [latency, streaming, throughput, policy, memory, swaps, eta, routing]

const resultsDir = new URL("./results/", import.meta.url)

interface Written {
  readonly benchmark: string
  readonly title: string
  readonly command: string
  readonly environment: Environment
  readonly checks: ReadonlyArray<Check>
}

/** Every target of every result on disk, in run order: the table the README shows. */
const combinedTable = (entries: ReadonlyArray<Written>): string =>
  table(
    ["benchmark", "target", "measured", "verdict"],
    [...entries]
      .sort((a, b) => order(a.benchmark) - order(b.benchmark))
      .flatMap((e) => e.checks.map((c) => [`[${e.benchmark}](${e.benchmark}.md)`, c.target, c.measured, c.pass ? "PASS" : "**FAIL**"]))
  )

const order = (name: string): number => {
  const i = benchmarks.findIndex((b) => b.name === name)
  return i === -1 ? benchmarks.length : i
}

const readResults = (): ReadonlyArray<Written> =>
  readdirSync(resultsDir)
    .filter((file) => file.endsWith(".json"))
    .sort()
    .map((file) => JSON.parse(readFileSync(new URL(file, resultsDir), "utf8")) as Written)

const writeIndex = (entries: ReadonlyArray<Written>): void => {
  const lines = [
    "# Benchmark results",
    "",
    "Written by `npm run bench` (every benchmark, about 8–9 minutes on 2 cores) or `npm run bench -- <name>`. Each " +
    "benchmark starts once the machine is under 15 % busy over a second (after at most 30 s of waiting); each file " +
    "notes the commit, the machine, its load going in and how long it ran. To see where foreman's time goes: " +
    "`BENCH_CPU_PROF=/tmp/prof npm run bench -- latency`, then `node bench/profile.ts /tmp/prof/*.cpuprofile`.",
    "",
    combinedTable(entries),
    "",
    ...[...entries].sort((a, b) => order(a.benchmark) - order(b.benchmark)).map((e) =>
      `- [${e.title}](${e.benchmark}.md) ([JSON](${e.benchmark}.json)): \`${e.command}\`, ${describeEnvironment(e.environment)}`
    )
  ]
  writeFileSync(new URL("README.md", resultsDir), lines.join("\n") + "\n")
}

const main = async (): Promise<void> => {
  const names = process.argv.slice(2)
  const unknown = names.filter((name) => !benchmarks.some((b) => b.name === name))
  if (unknown.length > 0) {
    process.stderr.write(`unknown benchmark: ${unknown.join(", ")} (known: ${benchmarks.map((b) => b.name).join(", ")})\n`)
    process.exitCode = 2
    return
  }
  const selected = names.length === 0 ? benchmarks : benchmarks.filter((b) => names.includes(b.name))
  mkdirSync(resultsDir, { recursive: true })
  let missed = false
  for (const bench of selected) {
    // The machine is shared: start once it is quiet, and say how busy it was going in.
    const busyBefore = await quietMachine()
    const loadBefore = loadavg()[0]!
    const started = performance.now()
    let result: Awaited<ReturnType<Benchmark["run"]>>
    try {
      result = await bench.run()
    } catch (error) {
      // One broken benchmark must not cost the others' results; its old files stay as they were.
      process.stderr.write(`${bench.name} failed: ${error instanceof Error ? error.stack : String(error)}\n\n`)
      missed = true
      continue
    }
    const env = { ...environment(), loadBefore, busyBefore, seconds: Math.round((performance.now() - started) / 100) / 10 }
    const command = `npm run bench -- ${bench.name}`
    const written: Written & { readonly checks: unknown; readonly data: unknown } = {
      benchmark: bench.name,
      title: bench.title,
      command,
      environment: env,
      checks: result.checks,
      data: result.data
    }
    writeFileSync(new URL(`${bench.name}.json`, resultsDir), JSON.stringify(written, null, 2) + "\n")
    const markdown = [
      `# ${bench.title}`,
      "",
      `\`${command}\` — ${describeEnvironment(env)}; load average ${loadBefore.toFixed(2)} going in${
        busyBefore === undefined ? "" : ` (machine ${Math.round(busyBefore * 100)} % busy over the last second)`
      }, ran ${env.seconds} s`,
      "",
      result.markdown
    ].join("\n")
    writeFileSync(new URL(`${bench.name}.md`, resultsDir), markdown + "\n")
    process.stdout.write(`${markdown}\n\n${result.checks.map(verdict).join("\n")}\n\nwrote bench/results/${bench.name}.json and .md\n\n`)
    missed ||= result.checks.some((c) => !c.pass)
  }
  const entries = readResults()
  writeIndex(entries)
  if (selected.length > 1) process.stdout.write(`All results on disk:\n\n${combinedTable(entries)}\n`)
  if (missed) process.exitCode = 1
}

await main()
