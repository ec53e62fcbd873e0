/**
 * `node bench/profile.ts <file.cpuprofile> [top]`: the hottest functions of a V8 CPU profile,
 * by self time and by inclusive time, as markdown. Profiles come from running a benchmark
 * with `BENCH_CPU_PROF=<dir>` (foreman then runs under `node --cpu-prof`, see processes.ts).
 */
import { readFileSync } from "node:fs"
import { relative } from "node:path"

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly children?: ReadonlyArray<number>
}

interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const root = new URL("..", import.meta.url).pathname

/** Which layer a frame belongs to: a package, foreman's own file, Node's internals, or V8's own buckets. */
const layerOf = (node: ProfileNode): string => {
  const { functionName, url } = node.callFrame
  if (url === "") return functionName.startsWith("(") ? functionName : `native: ${functionName}`
  if (url.startsWith("node:")) return `node:${url.slice(5).replace(/^internal\//, "").split("/")[0]}`
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(?:dist\/(?:esm|cjs)\/)?(?:internal\/)?([^/]+)?/.exec(url)
  if (pkg !== null) return pkg[1] === "effect" ? `effect/${(pkg[2] ?? "").replace(/\.js$/, "")}` : pkg[1]!
  if (url.startsWith("file://")) return relative(root, new URL(url).pathname)
  return url
}

const label = (node: ProfileNode): string => {
  const { functionName, lineNumber, url } = node.callFrame
  const file = url.startsWith("file://") ? relative(root, new URL(url).pathname) : url
  return `${functionName || "(anonymous)"} ${file ? `${file}:${lineNumber + 1}` : ""}`.trim()
}

export const summarise = (profile: Profile, top = 25): string => {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const self = new Map<string, number>()
  const layers = new Map<string, number>()
  const inclusive = new Map<string, number>()
  let total = 0
  let idle = 0
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0
    const node = byId.get(id)!
    total += dt
    if (node.callFrame.functionName === "(idle)") {
      idle += dt
      return
    }
    self.set(label(node), (self.get(label(node)) ?? 0) + dt)
    layers.set(layerOf(node), (layers.get(layerOf(node)) ?? 0) + dt)
    // Each function once per sample, however deep it recurses.
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const name = label(byId.get(at)!)
      if (!seen.has(name)) inclusive.set(name, (inclusive.get(name) ?? 0) + dt)
      seen.add(name)
    }
  })
  const busy = total - idle
  const rows = (m: Map<string, number>, keep: (name: string) => boolean = () => true) =>
    [...m].filter(([name]) => keep(name)).sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, us]) =>
      `| ${(us / 1000).toFixed(0)} ms | ${((100 * us) / busy).toFixed(1)} % | \`${name}\` |`
    )
  return [
    `Sampled ${(total / 1e6).toFixed(2)} s, of which busy ${(busy / 1e6).toFixed(2)} s.`,
    "",
    "Self time by layer (a package, an Effect module, a Node subsystem, a file of foreman's):",
    "",
    "| time | of busy | layer |",
    "| --- | --- | --- |",
    ...rows(layers),
    "",
    "Self time:",
    "",
    "| time | of busy | function |",
    "| --- | --- | --- |",
    ...rows(self),
    "",
    "Inclusive time:",
    "",
    "| time | of busy | function |",
    "| --- | --- | --- |",
    ...rows(inclusive),
    "",
    // The generic frames (Effect's run loop, Node's event loop) hide which of foreman's own functions are costly.
    "Inclusive time, foreman's own code (`src/`) and the Effect platform layer:",
    "",
    "| time | of busy | function |",
    "| --- | --- | --- |",
    ...rows(inclusive, (name) => / src\/|@effect\/platform/.test(name))
  ].join("\n")
}

if (import.meta.main) {
  const [file, top] = process.argv.slice(2)
  if (file === undefined) {
    process.stderr.write("usage: node bench/profile.ts <file.cpuprofile> [top]\n")
    process.exit(2)
  }
  process.stdout.write(summarise(JSON.parse(readFileSync(file, "utf8")) as Profile, top === undefined ? 25 : Number(top)) + "\n")
}
