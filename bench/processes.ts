/**
 * Child processes of the overhead benchmarks: foreman as users run it (`bin/foreman-effect.js`), the
 * servers it is compared with (`serve.ts`) and the load generator (`load.ts`). Separate
 * processes so that the process under test has its own event loop, as in production, and
 * its RSS is its own. Every child is killed when the benchmark process exits, whatever
 * the reason, so a failed run leaves nothing behind.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { once } from "node:events"
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"

const root = new URL("..", import.meta.url).pathname
/** The pinned Node 24 (`npm run bench` uses it too). */
export const nodeBin = new URL("../node_modules/.bin/node", import.meta.url).pathname

const children = new Set<ChildProcess>()
const tempDirs = new Set<string>()
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL")
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
})
// Interrupted (Ctrl-C): exit through the handler above rather than leave foreman running.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130))

export interface Child {
  readonly child: ChildProcess
  readonly pid: number
  /** SIGTERM, then SIGKILL if it has not exited within 5 s. */
  readonly stop: () => Promise<void>
}

const stopper = (child: ChildProcess) => async (): Promise<void> => {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, "exit")
    child.kill("SIGTERM")
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
    await exited
    clearTimeout(timer)
  }
  children.delete(child)
}

/**
 * Spawns `node <script> ...args` and resolves with the first stdout line `ready` accepts
 * (and what it returned). Later stdout is drained, not kept.
 */
const spawnUntil = <A>(script: string, args: ReadonlyArray<string>, ready: (line: string) => A | undefined) =>
  new Promise<Child & { readonly value: A }>((resolve, reject) => {
    const child = spawn(nodeBin, [script, ...args], { cwd: root, stdio: ["pipe", "pipe", "pipe"] })
    children.add(child)
    let stderr = ""
    let done = false
    child.stderr!.on("data", (chunk: Buffer) => {
      if (stderr.length < 20_000) stderr += chunk.toString()
    })
    child.once("exit", (code, signal) => {
      children.delete(child)
      if (!done) reject(new Error(`${script} exited (${code ?? signal}) before it was ready:\n${stderr}`))
    })
    const lines = createInterface({ input: child.stdout! })
    lines.on("line", (line) => {
      if (done) return
      const value = ready(line)
      if (value === undefined) return
      done = true
      resolve({ child, pid: child.pid!, stop: stopper(child), value })
    })
  })

/** A fresh directory under the system's temp dir, removed at exit if not before. */
export const tempDir = (prefix: string): string => {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  tempDirs.add(dir)
  return dir
}

export interface ForemanProcess extends Child {
  readonly url: string
  /** Its stdout: the JSON log. */
  readonly logFile: string
  /** What it printed on stderr so far (the first 20 000 characters), e.g. the `--inspect` URL. */
  readonly stderr: () => string
}

/** The entry `npx foreman-effect` runs (with no Node flags of its own). */
const entry = "bin/foreman-effect.js"

/**
 * foreman as `npx foreman-effect` runs it (`node bin/foreman-effect.js`)
 * with `--target <target> --port 0 --log-format json ...extra` (the default plugins).
 * Its log (one line per job at the default level) goes to a temporary file, not a pipe:
 * Node writes to a pipe synchronously, so a busy benchmark process slow to drain it would
 * stall foreman and the stall would be charged to foreman.
 * With `BENCH_CPU_PROF=<dir>` in the environment foreman runs under `--cpu-prof` and writes
 * a `.cpuprofile` into that directory when it is stopped (see `profile.ts`).
 */
export const startForeman = async (
  target: string,
  extra: ReadonlyArray<string> = [],
  options: { readonly nodeArgs?: ReadonlyArray<string> } = {}
): Promise<ForemanProcess> => {
  const profile = process.env.BENCH_CPU_PROF
  const nodeArgs = [
    ...(profile ? ["--cpu-prof", `--cpu-prof-dir=${profile}`] : []),
    ...(options.nodeArgs ?? [])
  ]
  const args = ["--target", target, "--port", "0", "--log-format", "json", ...extra]
  const dir = tempDir("foreman-bench-log-")
  const logFile = join(dir, "foreman.log")
  const log = openSync(logFile, "w")
  const child = spawn(nodeBin, [...nodeArgs, entry, ...args], { cwd: root, stdio: ["ignore", log, "pipe"] })
  closeSync(log)
  children.add(child)
  let stderr = ""
  child.stderr!.on("data", (chunk: Buffer) => {
    if (stderr.length < 20_000) stderr += chunk.toString()
  })
  const stop = stopper(child)
  tempDirs.add(dir)
  const cleanUp = () => {
    rmSync(dir, { recursive: true, force: true })
    tempDirs.delete(dir)
  }
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      cleanUp()
      throw new Error(`foreman exited (${child.exitCode ?? child.signalCode}) before listening:\n${stderr}`)
    }
    const url = listeningUrl(readFileSync(logFile, "utf8"))
    if (url !== undefined) return { child, pid: child.pid!, url, logFile, stderr: () => stderr, stop: () => stop().finally(cleanUp) }
    if (Date.now() > deadline) {
      await stop()
      cleanUp()
      throw new Error(`foreman did not log "foreman listening" within 30 s:\n${stderr}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

const listeningUrl = (log: string): string | undefined => {
  for (const line of log.split("\n")) {
    try {
      const entry = JSON.parse(line) as { message?: string; annotations?: { url?: string } }
      if (entry.message === "foreman listening") return entry.annotations?.url
    } catch {
      // not one of foreman's log lines (or not complete yet)
    }
  }
  return undefined
}

/** Waits until foreman has polled the target (models known), so jobs do not wait for that. */
export const untilHealthy = async (url: string, timeoutMs = 10_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const health = (await (await fetch(`${url}/foreman/health`)).json()) as { status?: string }
    if (health.status === "ok") return
    if (Date.now() > deadline) throw new Error(`foreman at ${url} did not reach its target within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

export interface ServerProcess extends Child {
  readonly url: string
}

/**
 * `serve.ts`: the fake Ollama (with its options), the bare `node:http` baseline or the
 * minimal proxy (`{ target }`), in its own process.
 */
export const startServer = async (kind: "fake" | "bare" | "proxy", options: Record<string, unknown> = {}): Promise<ServerProcess> => {
  const started = await spawnUntil("bench/serve.ts", [kind, JSON.stringify(options)], (line) => {
    try {
      return (JSON.parse(line) as { url?: string }).url
    } catch {
      return undefined
    }
  })
  return { ...started, url: started.value }
}

/** Resident set size of a process, from `/proc/<pid>/status` (Linux), in bytes. */
export const rss = (pid: number): number => {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  if (match === null) throw new Error(`no VmRSS for process ${pid}`)
  return Number(match[1]) * 1024
}

export interface LoadGenerator extends Child {
  /** Runs one open-loop step (see load.ts); an unanswered p99 comes back as Infinity. */
  readonly step: (step: import("./load.ts").LoadStep) => Promise<import("./load.ts").LoadResult>
}

export const startLoadGenerator = async (): Promise<LoadGenerator> => {
  const started = await spawnUntil("bench/load.ts", [], (line) => (line === "ready" ? true : undefined))
  const waiting: Array<(line: string) => void> = []
  createInterface({ input: started.child.stdout! }).on("line", (line) => waiting.shift()?.(line))
  const infinite = (x: number | null) => (x === null ? Number.POSITIVE_INFINITY : x)
  return {
    ...started,
    step: (step) =>
      new Promise((resolve) => {
        waiting.push((line) => {
          const r = JSON.parse(line)
          resolve({ ...r, p50Ms: infinite(r.p50Ms), p99Ms: infinite(r.p99Ms), maxMs: infinite(r.maxMs) })
        })
        started.child.stdin!.write(JSON.stringify(step) + "\n")
      }),
    // Closing stdin lets it finish the step in hand and close its pools.
    stop: async () => {
      started.child.stdin!.end()
      await started.stop()
    }
  }
}

/** CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`, in milliseconds (10 ms steps). */
export const cpuMillis = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  // Fields after the parenthesised command name, which may itself contain spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const ticks = Number(fields[11]) + Number(fields[12])
  return (ticks * 1000) / CLOCK_TICKS
}

/** `getconf CLK_TCK`: 100 on every Linux this runs on. */
const CLOCK_TICKS = 100

/**
 * Waits until the processes have been (nearly) idle for `windowMs`: under 10 % of one core
 * each (/proc counts in 10 ms steps, so one step of a 200 ms window is allowed), or `maxMs`
 * passed. After an overload a server keeps working off its backlog, which would count
 * against whatever is measured next.
 */
export const quiesce = async (pids: ReadonlyArray<number>, windowMs = 200, maxMs = 5_000): Promise<void> => {
  const deadline = Date.now() + maxMs
  while (Date.now() < deadline) {
    const before = pids.map(cpuMillis)
    await new Promise((resolve) => setTimeout(resolve, windowMs))
    if (pids.every((pid, i) => cpuMillis(pid) - before[i]! <= Math.max(10, 0.1 * windowMs))) return
  }
}
