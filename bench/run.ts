/**
 * `npm run bench [-- name ...]`: runs the named benchmarks (all of them without a name),
 * writes `bench/results/<name>.json` and `.md`, and regenerates `bench/results/README.md`
 * from every result on disk, so running one benchmark keeps the others' links.
 * Exits 1 when a target is missed (the figures are written either way), 2 on a bad name.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { type Benchmark, describeEnvironment, type Environment, environment, verdict } from "./lib.ts"
import { swaps } from "./swaps.ts"

/** In the order a full run takes them; a new benchmark is one import and one entry here. */
const benchmarks: ReadonlyArray<Benchmark> = [swaps]

const resultsDir = new URL("./results/", import.meta.url)

interface Written {
  readonly benchmark: string
  readonly title: string
  readonly command: string
  readonly environment: Environment
}

const writeIndex = (): void => {
  const entries = readdirSync(resultsDir)
    .filter((file) => file.endsWith(".json"))
    .sort()
    .map((file) => JSON.parse(readFileSync(new URL(file, resultsDir), "utf8")) as Written)
  const lines = [
    "# Benchmark results",
    "",
    "Written by `npm run bench` (every benchmark) or `npm run bench -- <name>`; each file notes the commit and machine.",
    "",
    ...entries.map((e) =>
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
    const result = await bench.run()
    const env = environment()
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
    const markdown = [`# ${bench.title}`, "", `\`${command}\` — ${describeEnvironment(env)}`, "", result.markdown].join("\n")
    writeFileSync(new URL(`${bench.name}.md`, resultsDir), markdown + "\n")
    process.stdout.write(`${markdown}\n\n${result.checks.map(verdict).join("\n")}\n\nwrote bench/results/${bench.name}.json and .md\n\n`)
    missed ||= result.checks.some((c) => !c.pass)
  }
  writeIndex()
  if (missed) process.exitCode = 1
}

await main()
