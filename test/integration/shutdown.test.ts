/**
 * A clean shutdown: SIGTERM to the real command line with a streamed answer in flight and an
 * async job queued behind it (or running, with a caller queued behind it). The process exits, the stream ends with Ollama's error line,
 * and the async job is still `queued` in the store for the next process, which runs it.
 */
import { once } from "node:events"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { ChildProcess } from "node:child_process"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { type BadTarget, startBadTarget } from "../support/BadTarget.ts"
import { runtimes, startCommand, startProcess, stopProcess } from "../support/process.ts"

describe("shutdown", () => {
  let target: BadTarget
  let dir: string
  const children: Array<ChildProcess> = []

  beforeAll(async () => {
    // Every job gets its headers and one line, then nothing: a stream held open.
    target = await startBadTarget("stall-after-headers")
    dir = mkdtempSync(join(tmpdir(), "foreman-shutdown-"))
  })
  afterAll(async () => {
    for (const child of children) await stopProcess(child, "SIGKILL")
    await target?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it("SIGTERM ends a stream in flight with an error line, exits, and leaves a queued async job queued", async () => {
    const db = join(dir, "jobs.db")
    const args = ["--target", target.url, "--port", "0", "--db", db, "--plugins", "none", "--log-format", "json", "--poll-interval", "200ms"]
    // Through the command's entry, as `npx foreman-effect` starts it: the signal must reach foreman.
    const first = await startCommand(runtimes.node.command, ["bin/foreman-effect.js", ...args])
    children.push(first.child)

    // A streamed generation: its first line arrives, then the target says nothing more.
    const response = await fetch(`${first.url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({ model: "llama3.2", prompt: "held open" })
    })
    expect(response.status).toBe(200)
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    let text = ""
    while (!text.includes("\n")) {
      const { done, value } = await reader.read()
      if (done) break
      text += decoder.decode(value, { stream: true })
    }
    expect(JSON.parse(text.split("\n")[0]!)).toMatchObject({ response: "echo", done: false })
    const rest = (async () => {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return
        text += decoder.decode(value, { stream: true })
      }
    })()

    // An async job, queued behind it (one slot).
    const submitted = await fetch(`${first.url}/foreman/v1/jobs`, {
      method: "POST",
      body: JSON.stringify({ endpoint: "/api/generate", body: { model: "llama3.2", prompt: "queued" } })
    })
    expect(submitted.status).toBe(202)
    const { id } = (await submitted.json()) as { id: string }
    expect((await (await fetch(`${first.url}/foreman/v1/jobs/${id}`)).json()).status).toBe("queued")

    const exited = once(first.child, "exit")
    first.child.kill("SIGTERM")
    const [code, signal] = await exited
    expect({ code, signal }).toEqual({ code: 0, signal: null })

    // The stream ended, its last line Ollama's error line.
    await rest
    const lines = text.trim().split("\n")
    expect(lines.length).toBe(2)
    expect(JSON.parse(lines[1]!)).toEqual({ error: expect.stringContaining("shutting down") })

    // The next process on the same database finds the job queued, and runs it.
    target.mode = "ok"
    const second = await startProcess("node", args)
    children.push(second.child)
    const restored = await (await fetch(`${second.url}/foreman/v1/jobs/${id}`)).json()
    expect(["queued", "running", "succeeded"]).toContain(restored.status)
    expect(restored.attempts).toBe(0)
    await vi.waitFor(async () => {
      const job = await (await fetch(`${second.url}/foreman/v1/jobs/${id}?wait=30s`)).json()
      expect(job.status).toBe("succeeded")
      expect(job.result.response).toBe("echo: queued")
    }, { timeout: 45_000 })
    await stopProcess(second.child, "SIGTERM")
  }, 60_000)

  it("SIGTERM leaves a running async job queued, not running, and answers a caller still queued", async () => {
    target.mode = "stall-after-headers"
    const db = join(dir, "running.db")
    const args = ["--target", target.url, "--port", "0", "--db", db, "--plugins", "none", "--log-format", "json", "--poll-interval", "200ms"]
    const first = await startProcess("node", args)
    children.push(first.child)

    // The async job takes the one slot (the target sends its first line and then nothing).
    const submitted = await fetch(`${first.url}/api/generate`, {
      method: "POST",
      headers: { prefer: "respond-async" },
      body: JSON.stringify({ model: "llama3.2", prompt: "running" })
    })
    expect(submitted.status).toBe(202)
    const { id } = (await submitted.json()) as { id: string }
    await vi.waitFor(async () => {
      const job = await (await fetch(`${first.url}/foreman/v1/jobs/${id}`)).json()
      expect(job).toMatchObject({ status: "running", attempts: 1 })
    }, { timeout: 15_000 })

    // A sync caller waits behind it.
    const queued = fetch(`${first.url}/api/chat`, {
      method: "POST",
      body: JSON.stringify({ model: "llama3.2", messages: [{ role: "user", content: "waiting" }] })
    })
    await vi.waitFor(async () => expect((await (await fetch(`${first.url}/foreman/health`)).json()).queueDepth).toBe(1), {
      timeout: 15_000
    })

    const exited = once(first.child, "exit")
    first.child.kill("SIGTERM")
    const [code] = await exited
    expect(code).toBe(0)
    // The waiting caller was answered (not left hanging), in Ollama's words, to come back.
    const answered = await queued
    expect(answered.status).toBe(503)
    expect(answered.headers.get("retry-after")).toBe("5")
    expect(await answered.json()).toEqual({ error: "foreman is shutting down" })

    // Stored as queued: a restart re-queues what it finds running and counts an attempt for
    // it, so a job left running would show two.
    target.mode = "ok"
    const second = await startProcess("node", args)
    children.push(second.child)
    await vi.waitFor(async () => {
      const job = await (await fetch(`${second.url}/foreman/v1/jobs/${id}?wait=30s`)).json()
      expect(job).toMatchObject({ status: "succeeded", attempts: 2 })
    }, { timeout: 45_000 })
    await stopProcess(second.child, "SIGTERM")
  }, 60_000)
})
