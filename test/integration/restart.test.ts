/**
 * Restart safety: jobs accepted by one foreman process survive its SIGKILL and are run,
 * exactly once, by the next process on the same `--db`.
 */
import type { ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { startProcess, stopProcess } from "../support/process.ts"

describe("restart safety", () => {
  let target: FakeTarget
  let dir: string
  const children: Array<ChildProcess> = []

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2", { name: "all-minilm", capabilities: ["embedding"] }] })
    dir = mkdtempSync(join(tmpdir(), "foreman-restart-"))
  })
  afterAll(async () => {
    for (const child of children) await stopProcess(child, "SIGKILL")
    await target?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it("jobs queued while the target sleeps survive a SIGKILL and each succeed exactly once after it wakes", async () => {
    const db = join(dir, "jobs.db")
    const args = ["--target", target.url, "--port", "0", "--db", db, "--plugins", "none", "--log-format", "json", "--poll-interval", "200ms"]
    await target.sleep()

    const first = await startProcess("node", args)
    children.push(first.child)
    const requests = [
      { endpoint: "/api/generate", body: { model: "llama3.2", prompt: "first job" } },
      { endpoint: "/api/chat", body: { model: "llama3.2", messages: [{ role: "user", content: "second job" }] } },
      { endpoint: "/api/embed", body: { model: "llama3.2", input: ["third job"] } },
      { endpoint: "/api/generate", body: { model: "llama3.2", prompt: "fourth job" } }
    ]
    // Foreman has never reached the target, so it cannot tell missing models: it accepts.
    const ids: Array<string> = []
    for (const request of requests) {
      const response = await fetch(`${first.url}/foreman/v1/jobs`, { method: "POST", body: JSON.stringify(request) })
      expect(response.status).toBe(202)
      ids.push(((await response.json()) as { id: string }).id)
    }
    for (const id of ids) {
      const job = await (await fetch(`${first.url}/foreman/v1/jobs/${id}`)).json()
      expect(job.status).toBe("queued")
    }
    await stopProcess(first.child, "SIGKILL")

    const second = await startProcess("node", args)
    children.push(second.child)
    const listed = await (await fetch(`${second.url}/foreman/v1/jobs?status=queued`)).json()
    expect(listed.jobs.map((j: { id: string }) => j.id).sort()).toEqual([...ids].sort())

    await target.wake()
    const results = []
    for (const id of ids) {
      const job = await (await fetch(`${second.url}/foreman/v1/jobs/${id}?wait=60s`)).json()
      expect(job.status).toBe("succeeded")
      results.push(job.result)
    }
    // Exactly once each: the target saw each request once.
    expect(target.count("/api/generate")).toBe(2)
    expect(target.count("/api/chat")).toBe(1)
    expect(target.count("/api/embed")).toBe(1)
    // In their original order (one model, so the swap-aware policy keeps arrival order).
    const order = target.calls.filter((c) => c.path !== "/api/tags" && c.path !== "/api/ps").map((c) => c.path)
    expect(order).toEqual(["/api/generate", "/api/chat", "/api/embed", "/api/generate"])

    // The same result a direct call gives (clock readings aside).
    const direct = await (await fetch(`${target.url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({ model: "llama3.2", prompt: "first job", stream: false })
    })).json()
    expect(results[0].response).toBe(direct.response)
    expect(results[0].model).toBe(direct.model)

    // A third process finds nothing left to run.
    await stopProcess(second.child, "SIGKILL")
    const third = await startProcess("node", args)
    children.push(third.child)
    await vi.waitFor(async () => expect((await (await fetch(`${third.url}/foreman/health`)).json()).status).toBe("ok"))
    const health = await (await fetch(`${third.url}/foreman/health`)).json()
    expect(health.jobs).toMatchObject({ queued: 0, running: 0, succeeded: 4 })
    expect(target.count("/api/generate")).toBe(3) // the two jobs plus the direct call above
  }, 60_000)
})
