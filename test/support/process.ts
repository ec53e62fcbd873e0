/**
 * foreman as a separate process (`src/bin.ts` under Node 24 or Deno), for tests that need
 * a real process: SIGKILL, `deno run`. Resolves once its JSON log says it listens.
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

/** `args` must include `--log-format json` (the listening line is read from it). */
export const startProcess = (runtime: keyof typeof runtimes, args: ReadonlyArray<string>) =>
  new Promise<ForemanProcess>((resolve, reject) => {
    const { args: runtimeArgs, command } = runtimes[runtime]
    const child = spawn(command, [...runtimeArgs, "src/bin.ts", ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stderr!.on("data", (chunk) => (output += chunk))
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

/** Stops the process with `signal` and waits for it to exit. */
export const stopProcess = async (child: ChildProcess, signal: NodeJS.Signals) => {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, "exit")
  child.kill(signal)
  await exited
}
