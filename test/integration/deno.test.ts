/**
 * The same server under Deno: `deno run -A src/bin.ts` (the Deno binary comes from the
 * `deno` npm package), answering /foreman/health and streaming one chat to the real
 * `ollama` client; and the checkout's `deno task start`, with and without `npm install`.
 */
import { cpSync, existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Ollama } from "ollama"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type BadTarget, startBadTarget } from "../support/BadTarget.ts"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type ForemanProcess, root, runtimes, startCommand, startProcess, stopProcess } from "../support/process.ts"

describe("under Deno", () => {
  let target: FakeTarget
  let foreman: ForemanProcess
  let dir: string | undefined

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"] })
    dir = mkdtempSync(join(tmpdir(), "foreman-deno-"))
    foreman = await startProcess("deno", ["--target", target.url, "--port", "0", "--plugins", "none", "--log-format", "json", "--db", join(dir, "jobs.db")])
  }, 120_000)
  afterAll(async () => {
    if (foreman !== undefined) await stopProcess(foreman.child, "SIGTERM")
    await target?.close()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
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

  it("keeps an async job in its SQLite store: submit, poll, result", async () => {
    const submitted = await fetch(`${foreman.url}/foreman/v1/jobs`, {
      method: "POST",
      body: JSON.stringify({ endpoint: "/api/generate", body: { model: "llama3.2", prompt: "from deno's store" } })
    })
    expect(submitted.status).toBe(202)
    const { id } = await submitted.json()
    const job = await (await fetch(`${foreman.url}${submitted.headers.get("location")}?wait=30s`)).json()
    expect(job).toMatchObject({ id, status: "succeeded", attempts: 1 })
    const direct = await (await fetch(`${target.url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({ model: "llama3.2", prompt: "from deno's store", stream: false })
    })).json()
    expect(job.result.response).toBe(direct.response)
  })
})

describe("deno task start", () => {
  let target: FakeTarget
  let dir: string | undefined
  const started: Array<ForemanProcess> = []
  const task = async (cwd: string) => {
    const foreman = await startCommand(
      runtimes.deno.command,
      ["task", "start", "--target", target.url, "--port", "0", "--plugins", "none", "--log-format", "json", "--db", ":memory:"],
      { cwd, group: true }
    )
    started.push(foreman)
    return foreman
  }
  const chats = async (foreman: ForemanProcess) => {
    const reply = await new Ollama({ host: foreman.url }).chat({ model: "llama3.2", messages: [{ role: "user", content: "from the task" }] })
    expect(reply.message.content).toBe("echo: from the task")
  }

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"] })
  })
  afterAll(async () => {
    for (const foreman of started) await stopProcess(foreman.child, "SIGTERM")
    await target?.close()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  // Deno's task runner looks a command up in node_modules/.bin first: `deno` must still be
  // the Deno that runs the task, not the npm package's binary taken for a script.
  it("serves a chat in this checkout, after npm ci", { timeout: 120_000 }, async () => {
    await chats(await task(root))
  })

  it("serves a chat in a checkout where npm install never ran", { timeout: 120_000 }, async () => {
    dir = mkdtempSync(join(tmpdir(), "foreman-deno-checkout-"))
    for (const entry of ["deno.json", "deno.lock", "package.json", "src", "plugins"]) {
      cpSync(join(root, entry), join(dir, entry), { recursive: true })
    }
    expect(existsSync(join(dir, "node_modules"))).toBe(false)
    await chats(await task(dir))
    expect(existsSync(join(dir, "node_modules"))).toBe(false)
  })
})

// Under Deno foreman talks to the target through fetch, with its own timers: the same bounds.
describe("under Deno, a target that misbehaves", () => {
  let target: BadTarget
  let foreman: ForemanProcess

  beforeAll(async () => {
    target = await startBadTarget()
    foreman = await startProcess("deno", [
      "--target", target.url, "--port", "0", "--plugins", "none", "--log-format", "json", "--db", ":memory:",
      "--stall-timeout", "1500ms", "--max-attempts", "2"
    ])
  }, 120_000)
  afterAll(async () => {
    if (foreman !== undefined) await stopProcess(foreman.child, "SIGTERM")
    await target?.close()
  })

  const generate = (stream: boolean) =>
    fetch(`${foreman.url}/api/generate`, { method: "POST", body: JSON.stringify({ model: "llama3.2", prompt: "x", stream }) })

  it("headers and then nothing: the stream ends with an error line", async () => {
    target.mode = "stall-after-headers"
    const response = await generate(true)
    expect(response.status).toBe(200)
    expect(JSON.parse((await response.text()).trim().split("\n").at(-1)!)).toEqual({
      error: "the target stalled mid-answer: it sent nothing for --stall-timeout"
    })
  })

  it("no answer: 504; closed before answering: 502; then it serves again", async () => {
    target.mode = "stall-before-headers"
    expect((await generate(true)).status).toBe(504)
    target.mode = "close-before-headers"
    const closed = await generate(false)
    expect(closed.status).toBe(502)
    expect((await closed.json()).error).toMatch(/^the target closed the connection before answering/)
    target.mode = "ok"
    expect(await (await generate(false)).json()).toMatchObject({ response: "echo: x", done: true })
  })
})
