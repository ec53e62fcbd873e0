import { readdirSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { configDefaults, defineConfig } from "vitest/config"

const root = fileURLToPath(new URL(".", import.meta.url))
const read = (file: string) => readFileSync(root + file, "utf8")

// Two projects. `fast`: unit tests and foreman in-process against fake targets on 127.0.0.1
// (the development loop, `npm run test:fast`). `e2e`: whatever starts processes (the CLI,
// Deno, SIGKILL and SIGTERM, `npm pack` and a registry, the DB lock across processes). The
// rule reads the files: a test file that imports `node:child_process`, or a test/support
// module that does (`process.ts`, `registry.ts`), is e2e; so a new process test lands there
// wherever it lives, and a file that is mostly in-process keeps its process tests in a file
// of their own.
const startsProcesses = /["']node:child_process["']/
const processSupport = readdirSync(root + "test/support")
  .filter((name) => name.endsWith(".ts") && startsProcesses.test(read(`test/support/${name}`)))
const isEndToEnd = (file: string) => {
  const text = read(file)
  return startsProcesses.test(text) || processSupport.some((name) => text.includes(`support/${name}"`))
}
const e2e = readdirSync(root + "test", { recursive: true, encoding: "utf8" })
  .filter((name) => name.endsWith(".test.ts"))
  .map((name) => `test/${name}`)
  .filter(isEndToEnd)
  .sort()

export default defineConfig({
  // Tests written as a user's code import "foreman-effect": in the checkout that is the
  // sources (the package's exports point at its build; the packaging test tests those).
  resolve: {
    alias: [
      { find: /^foreman-effect$/, replacement: fileURLToPath(new URL("./src/index.ts", import.meta.url)) },
      { find: /^foreman-effect\/plugins\/(\w+)$/, replacement: fileURLToPath(new URL("./plugins/$1/index.ts", import.meta.url)) }
    ]
  },
  test: {
    // Integration tests start real servers on 127.0.0.1; keep the shared 2-core machines calm
    // (at most two workers, whichever project they run).
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      {
        extends: true,
        // Fast first: its failures show before the slow processes start.
        test: {
          name: "fast",
          include: ["test/**/*.test.ts"],
          exclude: [...configDefaults.exclude, ...e2e],
          sequence: { groupOrder: 0 },
          // Each file still gets modules of its own (a VM context), but the worker processes are
          // reused: Node does not start and load Effect afresh for each of ~50 files. Measured
          // here: 75 s with a process per file, 54 s with this. Errors that Node's own modules
          // throw then come from another realm, so the sources test for an error with
          // `isError` (src/Errors.ts), never `instanceof Error`.
          pool: "vmForks"
        }
      },
      { extends: true, test: { name: "e2e", include: e2e, sequence: { groupOrder: 1 } } }
    ]
  }
})
