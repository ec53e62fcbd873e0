/**
 * The house rules on imports, read from the sources: each folder owns its concern and reaches
 * only down. A change that breaks one fails here, with the file and the import named.
 */
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const root = fileURLToPath(new URL("..", import.meta.url))

const sourcesUnder = (dir: string): ReadonlyArray<string> =>
  readdirSync(join(root, dir), { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".ts"))
    .map((file) => join(dir, file))

/** Every relative import of `file`, as a path from the repository's root. */
const importsOf = (file: string): ReadonlyArray<string> =>
  [...readFileSync(join(root, file), "utf8").matchAll(/^(?:import|export)[^"]*?from\s+"(\.[^"]+)"/gm)].map(([, spec]) =>
    relative(root, resolve(root, dirname(file), spec!))
  )

/** The imports of the files under `dir` that land under one of `forbidden`. */
const crossings = (dir: string, forbidden: ReadonlyArray<string>) =>
  sourcesUnder(dir).flatMap((file) =>
    importsOf(file)
      .filter((target) => forbidden.some((prefix) => target.startsWith(prefix)))
      .map((target) => `${file} -> ${target}`)
  )

describe("layering", () => {
  it("the core never imports a plugin", () => {
    expect(crossings("src", ["plugins/"]).filter((line) => !line.startsWith("src/bin.ts"))).toEqual([])
  })

  it("jobs, scheduling, inventory and targets import nothing from http/", () => {
    expect(crossings("src/jobs", ["src/http/"])).toEqual([])
    expect(crossings("src/scheduler", ["src/http/"])).toEqual([])
    expect(crossings("src/inventory", ["src/http/"])).toEqual([])
    expect(crossings("src/target", ["src/http/"])).toEqual([])
  })

  it("the event hub and the stream helpers import nothing of the services that use them", () => {
    const services = ["src/http/", "src/jobs/", "src/scheduler/", "src/inventory/", "src/target/", "src/plugin/"]
    expect(crossings("src/events", services)).toEqual([])
    expect(crossings("src/streams", services)).toEqual([])
  })

  it("no two folders of src/ import each other, directly or round about", () => {
    const folderOf = (file: string) => file.split("/").length > 2 ? file.split("/")[1]! : undefined
    const edges = new Map<string, Set<string>>()
    for (const file of sourcesUnder("src")) {
      const from = folderOf(file)
      if (from === undefined) continue
      for (const target of importsOf(file)) {
        const to = target.startsWith("src/") ? folderOf(target) : undefined
        if (to !== undefined && to !== from) edges.set(from, (edges.get(from) ?? new Set()).add(to))
      }
    }
    // A folder that reaches itself through others is a cycle: listed as the path that closes it.
    const cycles: Array<string> = []
    const visit = (folder: string, path: ReadonlyArray<string>) => {
      for (const next of edges.get(folder) ?? []) {
        if (next === path[0]) cycles.push([...path, next].join(" -> "))
        else if (!path.includes(next)) visit(next, [...path, next])
      }
    }
    for (const folder of edges.keys()) visit(folder, [folder])
    expect(cycles).toEqual([])
  })

  it("the sources and plugins test for an error with isError, which holds across realms, not instanceof Error", () => {
    const found = [...sourcesUnder("src"), ...sourcesUnder("plugins")]
      .filter((file) => file !== "src/Errors.ts")
      .filter((file) => /instanceof Error\b/.test(readFileSync(join(root, file), "utf8")))
    expect(found).toEqual([])
  })

  it("the Ollama dialect stands alone: it imports only the errors it answers with", () => {
    const outside = sourcesUnder("src/ollama").flatMap((file) =>
      importsOf(file).filter((target) => !target.startsWith("src/ollama/") && target !== "src/Errors.ts").map((t) => `${file} -> ${t}`)
    )
    expect(outside).toEqual([])
  })

  it("the OpenAI plugin uses the dialect through the package's exports, not a copy of its rules", () => {
    const plugin = sourcesUnder("plugins/openai")
    expect(plugin.flatMap((file) => importsOf(file).filter((t) => t.startsWith("src/") && t !== "src/index.ts"))).toEqual([])
    const text = plugin.map((file) => readFileSync(join(root, file), "utf8")).join("\n")
    expect(text).toMatch(/GoJson\./)
  })
})
