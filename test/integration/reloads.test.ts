/**
 * Reloads are swaps (issue 16, item 4): jobs for one model with another `num_ctx` make Ollama
 * load it again, and the fake target pays for that load as it pays for a swap. Through
 * foreman, jobs with equal options group, sync or async, across a restart too.
 */
import { Duration } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Ollama } from "ollama"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type RunningForeman, startForeman } from "../support/foreman.ts"

/** The num_ctx each generate call the target saw asked for (its default, 4096, when none). */
const contexts = (target: FakeTarget, from = 0) =>
  target.calls.slice(from).filter((c) => c.path === "/api/generate").map((c) =>
    (c.body as { options?: { num_ctx?: number } }).options?.num_ctx ?? 4096
  )

/** How many times the values change along a list. */
const changes = (xs: ReadonlyArray<unknown>) => xs.filter((x, i) => i > 0 && x !== xs[i - 1]).length

describe("reloads are swaps", () => {
  let target: FakeTarget
  let foreman: RunningForeman

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["a"], maxLoaded: 1, loadDelayMs: 20 })
    foreman = await startForeman({ target: target.url, pollInterval: Duration.millis(100) })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
  })
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  it("jobs for one model with two num_ctx, interleaved: each num_ctx loads once, and health counts both loads", async () => {
    const ollama = new Ollama({ host: foreman.url })
    const send = (i: number) =>
      ollama.generate({ model: "a", prompt: `job ${i}`, stream: false, ...(i % 2 === 0 ? { options: { num_ctx: 8192 } } : {}) })
    const first = target.calls.length
    const loadsBefore = target.loads.length
    const swapsBefore = (await foreman.health()).swaps as number
    target.hold()
    const replies = [send(0)]
    await vi.waitFor(() => expect(target.held).toBe(1))
    for (let i = 1; i < 10; i++) replies.push(send(i))
    await vi.waitFor(async () => expect((await foreman.health()).queueDepth).toBe(9), { interval: 20 })
    target.release()
    await Promise.all(replies)
    // Straight to Ollama in this order it would load the model ten times.
    expect(contexts(target, first)).toEqual([8192, 8192, 8192, 8192, 8192, 4096, 4096, 4096, 4096, 4096])
    expect(target.loads.length - loadsBefore).toBe(2)
    expect(((await foreman.health()).swaps as number) - swapsBefore).toBe(2)
  })

  it("async jobs group by their options, also once restored from the store by the next foreman", async () => {
    const dir = mkdtempSync(join(tmpdir(), "foreman-reloads-"))
    const db = join(dir, "jobs.db")
    const sleepy = await startFakeTarget({ models: ["a"], maxLoaded: 1 })
    try {
      await sleepy.sleep()
      const before = await startForeman({ target: sleepy.url, db, pollInterval: Duration.millis(100) })
      const ids: Array<string> = []
      try {
        for (let i = 0; i < 6; i++) {
          const body = { model: "a", prompt: `job ${i}`, ...(i % 2 === 0 ? { options: { num_ctx: 8192 } } : {}) }
          // Both ways in: the Ollama route with `Prefer: respond-async`, and foreman's own jobs API.
          const response = i < 3
            ? await fetch(`${before.url}/api/generate`, { method: "POST", headers: { prefer: "respond-async" }, body: JSON.stringify(body) })
            : await fetch(`${before.url}/foreman/v1/jobs`, { method: "POST", body: JSON.stringify({ endpoint: "/api/generate", body }) })
          expect(response.status).toBe(202)
          ids.push(((await response.json()) as { id: string }).id)
        }
      } finally {
        await before.close()
      }
      const after = await startForeman({ target: sleepy.url, db, pollInterval: Duration.millis(100) })
      try {
        await sleepy.wake()
        for (const id of ids) {
          const job = await (await fetch(`${after.url}/foreman/v1/jobs/${id}?wait=30s`)).json()
          expect(job.status).toBe("succeeded")
        }
        expect(changes(contexts(sleepy))).toBe(1)
        expect(sleepy.loads).toHaveLength(2)
        expect((await after.health()).swaps).toBe(2)
      } finally {
        await after.close()
      }
    } finally {
      await sleepy.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
