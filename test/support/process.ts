/**
 * foreman as a separate process, for tests that need a real process: SIGKILL, `deno run`,
 * the installed package. Resolves once its JSON log says it listens. POSIX only (process
 * groups, `node_modules/.bin` without `.cmd` shims).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { once } from "node:events"
import { fileURLToPath } from "node:url"
import { createInterface } from "node:readline"

/** The checkout's root directory. */
export const root = fileURLToPath(new URL("../..", import.meta.url))

export const runtimes = {
  node: { command: fileURLToPath(new URL("../../node_modules/.bin/node", import.meta.url)), args: [] as Array<string> },
  deno: { command: fileURLToPath(new URL("../../node_modules/.bin/deno", import.meta.url)), args: ["run", "-A"] }
}

export interface ForemanProcess {
  readonly url: string
  readonly child: ChildProcess
}

export interface CommandOptions {
  readonly cwd?: string
  readonly env?: NodeJS.ProcessEnv
  /**
   * Run it in a process group of its own, stopped as a whole: for launchers that run foreman
   * as their child (`npx`, `deno task`), which a signal to the launcher alone may not reach.
   */
  readonly group?: boolean
  /**
   * Reads the URL foreman listens on from its output so far (stdout); default: its JSON log
   * line `foreman listening` (so `args` must include `--log-format json`).
   */
  readonly listening?: (stdout: string) => string | undefined
}

const jsonListening = (stdout: string) => {
  for (const line of stdout.split("\n")) {
    try {
      const entry = JSON.parse(line)
      if (entry.message === "foreman listening") return entry.annotations.url as string
    } catch {
      // not one of our log lines
    }
  }
  return undefined
}

/** Every process started here and not yet seen to exit, with whether it leads a group. */
const live = new Map<ChildProcess, boolean>()

// A test that fails before it stops what it started (a start that never listens, a worker
// torn down early) must not leave a server running: whatever is left dies with this process.
process.once("exit", () => {
  for (const [child, group] of live) signal(child, group, "SIGKILL")
})

const signal = (child: ChildProcess, group: boolean, name: NodeJS.Signals) => {
  try {
    if (group) process.kill(-child.pid!, name)
    else child.kill(name)
  } catch {
    // already gone
  }
}

/** Starts `command args` and resolves once foreman listens (see `CommandOptions.listening`). */
export const startCommand = (command: string, args: ReadonlyArray<string>, options: CommandOptions = {}) =>
  new Promise<ForemanProcess>((resolve, reject) => {
    const group = options.group ?? false
    const child = spawn(command, args, {
      cwd: options.cwd ?? root,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: group
    })
    live.set(child, group)
    child.once("exit", () => {
      if (!group) live.delete(child)
    })
    const listening = options.listening ?? jsonListening
    let stdout = ""
    let stderr = ""
    child.stderr!.on("data", (chunk) => (stderr += chunk))
    child.once("error", reject)
    child.once("exit", (code, signal) => reject(new Error(`foreman exited (${code ?? signal}) before listening:\n${stdout}${stderr}`)))
    const lines = createInterface({ input: child.stdout! })
    lines.on("line", (line) => {
      stdout += line + "\n"
      const url = listening(stdout)
      if (url === undefined) return
      resolve({ url, child })
      // readline goes on reading (and dropping) what it writes, so a full pipe never blocks it.
      lines.removeAllListeners("line")
    })
  })

/** `src/bin.ts` of this checkout under Node 24 or Deno. */
export const startProcess = (runtime: keyof typeof runtimes, args: ReadonlyArray<string>) => {
  const { args: runtimeArgs, command } = runtimes[runtime]
  return startCommand(command, [...runtimeArgs, "src/bin.ts", ...args])
}

/**
 * Stops the process (and its group, if it leads one) with `signal` and waits for it to exit;
 * what has not exited 10 s later is killed.
 */
export const stopProcess = async (child: ChildProcess, name: NodeJS.Signals) => {
  const group = live.get(child) ?? false
  const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, "exit")
  signal(child, group, name)
  const deadline = setTimeout(() => signal(child, group, "SIGKILL"), 10_000)
  await exited
  clearTimeout(deadline)
  if (group) {
    // The launcher waits for foreman before it exits; whatever is left of the group goes too.
    signal(child, group, "SIGKILL")
    for (let i = 0; i < 100 && groupAlive(child); i++) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  live.delete(child)
}

const groupAlive = (child: ChildProcess) => {
  try {
    process.kill(-child.pid!, 0)
    return true
  } catch {
    return false
  }
}

/** How a command ended, and what it wrote. */
export interface Finished {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs a command to its end without blocking the test's event loop (a blocked loop leaves
 * its HTTP connections' closes unread, and the next request on one fails: "other side closed").
 */
export const run = (command: string, args: ReadonlyArray<string>, options: { readonly cwd: string; readonly env: NodeJS.ProcessEnv }) =>
  new Promise<Finished>((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    child.stderr.on("data", (chunk) => (stderr += chunk))
    child.once("error", reject)
    child.once("close", (status) => resolve({ status, stdout, stderr }))
  })
