/**
 * Queue positions and ETAs over HTTP: an async job's view and health's list of waiting sync
 * requests, on foreman's TestClock, so every expected time is exact: the test says how long
 * each measured job took at the target.
 */
import { Duration } from "effect"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type RunningForeman, startForeman } from "../support/foreman.ts"

interface Health {
  queueDepth: number
  running: number
  queue: {
    waiting: Array<Record<string, unknown>>
    estimates: Record<string, { durationMs: number | null; durationWithLoadMs: number | null; loadMs: number | null; samples: number }>
  }
}

/** Epoch milliseconds of foreman's TestClock as the API writes them. */
const at = (ms: number) => new Date(ms).toISOString()

describe("queue positions and ETAs", () => {
  let target: FakeTarget
  let foreman: RunningForeman
  const health = () => foreman.health() as unknown as Promise<Health>
  const generate = (prompt: string, headers: Record<string, string> = {}) =>
    fetch(`${foreman.url}/api/generate`, {
      method: "POST",
      headers,
      body: JSON.stringify({ model: "llama3.2", prompt, stream: false })
    }).then((r) => r.json())
  const submit = (prompt: string) =>
    fetch(`${foreman.url}/foreman/v1/jobs`, {
      method: "POST",
      body: JSON.stringify({ endpoint: "/api/generate", body: { model: "llama3.2", prompt } })
    }).then((r) => r.json() as Promise<Record<string, unknown>>)
  const view = (id: string) => fetch(`${foreman.url}/foreman/v1/jobs/${id}`).then((r) => r.json() as Promise<Record<string, unknown>>)

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"] })
    foreman = await startForeman({ target: target.url, concurrency: 1 }, { testClock: true })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"), { timeout: 15_000 })
  })
  afterAll(async () => {
    target?.release()
    await foreman?.close()
    await target?.close()
  })

  it("before any job is measured: a place, no times; an idle foreman starts a job at once", async () => {
    target.hold()
    const running = await submit("holds the slot")
    // Nothing waited: it was given the slot on arrival.
    expect(running).toMatchObject({ status: "running", startedAt: at(0) })
    expect(running).not.toHaveProperty("position")
    const queued = await submit("waits")
    expect(queued).toMatchObject({ status: "queued", position: 1 })
    expect(queued).not.toHaveProperty("estimatedStartAt")
    expect(queued).not.toHaveProperty("estimatedFinishAt")
    await vi.waitFor(() => expect(target.held).toBe(1))
    // The first took 4 s, the second none (it went once the first was done).
    await foreman.adjust(Duration.seconds(4))
    target.release()
    await vi.waitFor(async () => expect((await view(queued.id as string)).status).toBe("succeeded"))
    await vi.waitFor(async () => expect((await health()).queue.estimates["llama3.2:latest"]?.samples).toBe(2))
    // The first loaded the model (4 s); the second ran on it loaded (0 s).
    expect((await health()).queue.estimates["llama3.2:latest"]).toEqual({ durationMs: 0, durationWithLoadMs: 4_000, loadMs: 4_000, samples: 2 })
  })

  it("a queued async job shows its place and when it is expected to start and finish; health lists the sync requests waiting", async () => {
    /** A sync job on the loaded model that takes `seconds` at the target. */
    const measured = async (seconds: number) => {
      target.hold()
      const job = generate(`${seconds} s`)
      await vi.waitFor(() => expect(target.held).toBe(1))
      await foreman.adjust(Duration.seconds(seconds))
      target.release()
      await job
    }
    // 0 s, then 4 s: the average of the two (the first ten jobs are a plain mean) is 2 s.
    await measured(4)
    await vi.waitFor(async () => expect((await health()).queue.estimates["llama3.2:latest"]?.durationMs).toBe(2_000))

    target.hold()
    const now = 8_000
    const running = generate("holds the slot")
    await vi.waitFor(() => expect(target.held).toBe(1))
    const batch = await submit("batch work")
    expect(batch).toMatchObject({ status: "queued", position: 1, estimatedStartAt: at(now + 2_000), estimatedFinishAt: at(now + 4_000) })
    // A sync request is interactive: it goes ahead of the batch job.
    const sync = generate("interactive")
    await vi.waitFor(async () => expect((await health()).queueDepth).toBe(2))
    const report = await health()
    expect(report.queue.waiting).toEqual([{
      id: expect.any(String),
      model: "llama3.2:latest",
      priority: "interactive",
      waitedMs: 0,
      position: 1,
      estimatedStartAt: at(now + 2_000),
      estimatedFinishAt: at(now + 4_000)
    }])
    expect(await view(batch.id as string)).toMatchObject({
      status: "queued",
      position: 2,
      estimatedStartAt: at(now + 4_000),
      estimatedFinishAt: at(now + 6_000)
    })
    // In the list too.
    const list = (await (await fetch(`${foreman.url}/foreman/v1/jobs?status=queued`)).json()) as { jobs: Array<Record<string, unknown>> }
    expect(list.jobs).toEqual([expect.objectContaining({ id: batch.id, position: 2, estimatedStartAt: at(now + 4_000) })])

    // The running job takes longer than expected: past its expected end, it is expected to end now.
    await foreman.adjust(Duration.seconds(3))
    expect(await view(batch.id as string)).toMatchObject({ position: 2, estimatedStartAt: at(now + 3_000 + 2_000) })
    target.release()
    await Promise.all([running, sync])
    await vi.waitFor(async () => expect((await view(batch.id as string)).status).toBe("succeeded"))
    const done = await view(batch.id as string)
    expect(done).not.toHaveProperty("position")
    expect(done).not.toHaveProperty("estimatedFinishAt")
    expect((await health()).queue.waiting).toEqual([])
  })
})
