/**
 * The scheduler against a target that pays for every model load: the fake target counts
 * loads (one per swap) exactly as a GPU box would pay for them.
 */
import { Duration } from "effect"
import { Ollama } from "ollama"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type RunningForeman, startForeman } from "../support/foreman.ts"

const generate = (url: string, model: string, prompt: string, priority?: string) =>
  fetch(`${url}/api/generate`, {
    method: "POST",
    headers: priority === undefined ? {} : { "x-foreman-priority": priority },
    body: JSON.stringify({ model, prompt, stream: false })
  })

describe("swap-aware scheduling", () => {
  let target: FakeTarget
  let foreman: RunningForeman

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["a", "b", "c"], maxLoaded: 1, loadDelayMs: 20 })
    foreman = await startForeman({ target: target.url, pollInterval: Duration.millis(100), maxQueue: 40 })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
  })
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  it("30 jobs interleaved over 3 models, queued while the target sleeps, cost at most 3 loads on wake", async () => {
    await target.sleep()
    await vi.waitFor(async () => expect((await foreman.health()).reachable).toBe(false), { interval: 20 })
    const replies: Array<Promise<Response>> = []
    for (let i = 0; i < 30; i++) replies.push(generate(foreman.url, ["a", "b", "c"][i % 3]!, `job ${i}`))
    await vi.waitFor(async () => expect((await foreman.health()).queueDepth).toBe(30), { interval: 20 })
    const loadsBefore = target.loads.length
    await target.wake()
    const statuses = (await Promise.all(replies)).map((r) => r.status)
    expect(statuses).toEqual(Array(30).fill(200))
    // Three models all had work: at least two loads happened whatever was resident, at most three.
    expect(target.loads.length - loadsBefore).toBeGreaterThanOrEqual(2)
    expect(target.loads.length - loadsBefore).toBeLessThanOrEqual(3)
  })

  it("an interactive job for B overtakes queued batch work for A: it runs right after the job in flight", async () => {
    target.hold()
    const batch = [generate(foreman.url, "a", "batch 0", "batch")]
    await vi.waitFor(() => expect(target.held).toBe(1))
    for (let i = 1; i < 6; i++) batch.push(generate(foreman.url, "a", `batch ${i}`, "batch"))
    await vi.waitFor(async () => expect((await foreman.health()).queueDepth).toBe(5), { interval: 20 })
    const urgent = generate(foreman.url, "b", "urgent")
    await vi.waitFor(async () => expect((await foreman.health()).queueDepth).toBe(6), { interval: 20 })
    const first = target.calls.length
    target.release()
    await Promise.all([urgent, ...batch])
    const order = target.calls.slice(first).filter((c) => c.path === "/api/generate").map((c) => (c.body as { prompt: string }).prompt)
    expect(order[0]).toBe("urgent")
    expect(order.slice(1)).toEqual(["batch 1", "batch 2", "batch 3", "batch 4", "batch 5"])
  })

  it("a lone job for a rare model waits for max-wait under a steady stream for another, then goes next", async () => {
    const maxWait = Duration.millis(400)
    const rare = await startFakeTarget({ models: ["a", "b"], maxLoaded: 1, tokenDelayMs: 10, chunks: 4 })
    // On foreman's TestClock the rare job's wait grows only when the test moves the clock.
    const broker = await startForeman({ target: rare.url, maxWait }, { testClock: true })
    const prompts = () => rare.calls.filter((c) => c.path === "/api/generate").map((c) => (c.body as { prompt: string }).prompt)
    let streaming = true
    let stream: Promise<unknown> = Promise.resolve()
    try {
      await vi.waitFor(async () => expect((await broker.health()).status).toBe("ok"))
      // Keep six jobs for A outstanding at all times: A always has work waiting (even on a
      // loaded machine, where a lane's next request may be slow to arrive) and stays resident.
      stream = Promise.all([0, 1, 2, 3, 4, 5].map(async (lane) => {
        for (let i = 0; streaming; i++) await generate(broker.url, "a", `a ${lane}.${i}`)
      }))
      await vi.waitFor(() => expect(rare.count("/api/generate")).toBeGreaterThan(3))
      const reply = generate(broker.url, "b", "the rare one")
      await vi.waitFor(async () => {
        const { queue } = (await broker.health()) as { queue: { byModel: Record<string, { waiting: number }> } }
        expect(queue.byModel["b:latest"]?.waiting).toBe(1)
      }, { interval: 20 })
      // Resident-first holds it back while it is within max-wait, however many jobs for A pass it ...
      const passing = rare.count("/api/generate") + 12
      await vi.waitFor(() => expect(rare.count("/api/generate")).toBeGreaterThanOrEqual(passing), { timeout: 10_000, interval: 20 })
      expect(prompts()).not.toContain("the rare one")
      // ... and once overdue it is next: before it starts, at most the job for A that was
      // already under way when it became overdue (one slot).
      const overdueFrom = prompts().length
      await broker.adjust(Duration.sum(maxWait, Duration.millis(1)))
      const answered = await reply
      streaming = false
      await stream
      expect(answered.status).toBe(200)
      expect([0, 1]).toContain(prompts().slice(overdueFrom).indexOf("the rare one"))
    } finally {
      // The lanes stop before foreman does, also when an assertion failed.
      streaming = false
      await stream.catch(() => undefined)
      await broker.close()
      await rare.close()
    }
  })

  it("health shows the queue per model and per priority, and the swaps foreman caused", async () => {
    target.hold()
    const running = generate(foreman.url, "c", "hold")
    await vi.waitFor(() => expect(target.held).toBe(1))
    const waiting = [generate(foreman.url, "a", "w1", "batch"), generate(foreman.url, "b", "w2", "normal")]
    await vi.waitFor(async () => expect((await foreman.health()).queueDepth).toBe(2), { interval: 20 })
    const health = await foreman.health() as {
      swaps: number
      queue: { byModel: Record<string, { waiting: number }>; byPriority: Record<string, { waiting: number }> }
    }
    expect(health.queue.byModel).toMatchObject({ "a:latest": { waiting: 1 }, "b:latest": { waiting: 1 } })
    expect(health.queue.byPriority).toMatchObject({ interactive: { waiting: 0 }, normal: { waiting: 1 }, batch: { waiting: 1 } })
    expect(health.swaps).toBeGreaterThan(0)
    target.release()
    await Promise.all([running, ...waiting])
  })
})

describe("back-pressure", () => {
  let target: FakeTarget
  let foreman: RunningForeman

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"] })
    foreman = await startForeman({ target: target.url, maxQueue: 3 })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
  })
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  it("past --max-queue answers 503 with Retry-After in Ollama's words, and every accepted job completes", async () => {
    target.hold()
    const accepted = [generate(foreman.url, "llama3.2", "running")]
    await vi.waitFor(() => expect(target.held).toBe(1))
    for (let i = 0; i < 3; i++) accepted.push(generate(foreman.url, "llama3.2", `queued ${i}`))
    await vi.waitFor(async () => expect((await foreman.health()).queueDepth).toBe(3), { interval: 20 })

    const refused = await generate(foreman.url, "llama3.2", "one too many")
    expect(refused.status).toBe(503)
    expect(refused.headers.get("retry-after")).toBe("5")
    expect(await refused.json()).toEqual({ error: "server busy, please try again.  maximum pending requests exceeded" })
    const client = await new Ollama({ host: foreman.url }).generate({ model: "llama3.2", prompt: "x" }).catch((e) => e)
    expect(client.status_code).toBe(503)

    target.release()
    const replies = await Promise.all(accepted)
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200])
    const prompts = target.calls.filter((c) => c.path === "/api/generate").map((c) => (c.body as { prompt: string }).prompt)
    expect(prompts).toEqual(["running", "queued 0", "queued 1", "queued 2"])
  })
})
