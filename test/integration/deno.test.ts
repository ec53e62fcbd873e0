/**
 * The same server under Deno: `deno run -A src/bin.ts` (the Deno binary comes from the
 * `deno` npm package), answering /foreman/health and streaming one chat to the real
 * `ollama` client.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { once } from "node:events"
import { createInterface } from "node:readline"
import { Ollama } from "ollama"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"

const deno = new URL("../../node_modules/.bin/deno", import.meta.url).pathname
const root = new URL("../..", import.meta.url).pathname

/** Starts `deno run` and resolves with the URL from its "foreman listening" log line. */
const startUnderDeno = (args: ReadonlyArray<string>) =>
  new Promise<{ url: string; child: ChildProcess }>((resolve, reject) => {
    const child = spawn(deno, ["run", "-A", "src/bin.ts", ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stderr!.on("data", (chunk) => (output += chunk))
    child.once("exit", (code) => reject(new Error(`deno exited with ${code} before listening:\n${output}`)))
    createInterface({ input: child.stdout! }).on("line", (line) => {
      output += line + "\n"
      try {
        const entry = JSON.parse(line)
        if (entry.message === "foreman listening") resolve({ url: entry.annotations.url, child })
      } catch {
        // not a log line of ours
      }
    })
  })

describe("under Deno", () => {
  let target: FakeTarget
  let foreman: { url: string; child: ChildProcess }

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"] })
    foreman = await startUnderDeno(["--target", target.url, "--port", "0", "--plugins", "none", "--log-format", "json", "--db", ":memory:"])
  }, 120_000)
  afterAll(async () => {
    if (foreman?.child.exitCode === null) {
      foreman.child.kill("SIGTERM")
      await once(foreman.child, "exit")
    }
    await target?.close()
  })

  it("answers /foreman/health", async () => {
    const health = await (await fetch(`${foreman.url}/foreman/health`)).json()
    expect(health.target).toBe(target.url)
    expect(["ok", "degraded"]).toContain(health.status)
  })

  it("streams a chat", async () => {
    const client = new Ollama({ host: foreman.url })
    const parts: Array<string> = []
    for await (const part of await client.chat({ model: "llama3.2", messages: [{ role: "user", content: "hi from deno" }], stream: true })) {
      parts.push(part.message.content)
      if (part.done) expect(part.done_reason).toBe("stop")
    }
    expect(parts.length).toBeGreaterThan(2)
    expect(parts.join("").length).toBeGreaterThan(0)
  })
})
