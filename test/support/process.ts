/**
 * foreman as a separate process, for tests that need a real process: SIGKILL, `deno run`,
 * the installed package. Resolves once its JSON log says it listens.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { once } from "node:events"
import { createInterface } from "node:readline"

const root = new URL("../..", import.meta.url).pathname

export const runtimes = {
  node: { command: new URL("../../node_modules/.bin/node", import.meta.url).pathname, args: [] as Array<string> },
  deno: { command: new URL("../../node_modules/.bin/deno", import.meta.url).pathname, args: ["run", "-A"] }
}

export interface ForemanProcess {
  readonly url: string
  readonly child: ChildProcess
}

export interface CommandOptions {
  readonly cwd?: string
  readonly env?: NodeJS.ProcessEnv
}

/**
 * Starts `command args` (in its own process group, so that stopping it stops what it
 * started: `npx` runs foreman as its child). `args` must make foreman log as JSON
 * (`--log-format json`): the listening line is read from it.
 */
export const startCommand = (command: string, args: ReadonlyArray<string>, options: CommandOptions = {}) =>
  new Promise<ForemanProcess>((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? root,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true
    })
    let output = ""
    child.stderr!.on("data", (chunk) => (output += chunk))
    child.once("error", reject)
    child.once("exit", (code, signal) => reject(new Error(`foreman exited (${code ?? signal}) before listening:\n${output}`)))
    createInterface({ input: child.stdout! }).on("line", (line) => {
      output += line + "\n"
      try {
        const entry = JSON.parse(line)
        if (entry.message === "foreman listening") resolve({ url: entry.annotations.url, child })
      } catch {
        // not one of our log lines
      }
    })
  })

/** `src/bin.ts` of this checkout under Node 24 or Deno. */
export const startProcess = (runtime: keyof typeof runtimes, args: ReadonlyArray<string>) => {
  const { args: runtimeArgs, command } = runtimes[runtime]
  return startCommand(command, [...runtimeArgs, "src/bin.ts", ...args])
}

/** Stops the process (and its group) with `signal` and waits for it to exit. */
export const stopProcess = async (child: ChildProcess, signal: NodeJS.Signals) => {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, "exit")
  try {
    process.kill(-child.pid!, signal)
  } catch {
    child.kill(signal)
  }
  await exited
}
