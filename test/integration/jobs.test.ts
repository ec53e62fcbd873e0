/**
 * The async jobs API over real HTTP and a real SQLite store: submit now, collect later.
 */
import { Duration } from "effect"
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest"
import { timeless } from "../support/compare.ts"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type RunningForeman, startForeman } from "../support/foreman.ts"

interface Job {
  id: string
  status: string
  endpoint: string
  model: string
  priority: string
  attempts: number
  position?: number
  result?: Record<string, unknown>
  error?: string
  createdAt: string
  startedAt: string | null
  finishedAt: string | null
}

describe("async jobs", () => {
  let target: FakeTarget
  let foreman: RunningForeman
  const json = async (response: Response) => ({ status: response.status, headers: response.headers, body: await response.json() })
  const submit = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${foreman.url}/foreman/v1/jobs`, { method: "POST", headers, body: JSON.stringify(body) }).then(json)
  const getJob = (id: string, query = "") => fetch(`${foreman.url}/foreman/v1/jobs/${id}${query}`).then(json)

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2", { name: "all-minilm", capabilities: ["embedding"] }] })
    foreman = await startForeman({ target: target.url, maxAttempts: 2, pollInterval: Duration.millis(100) })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
  })
  afterEach(() => target.release())
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  it("POST /foreman/v1/jobs answers 202 with the job and its Location; the result equals a direct call's", async () => {
    const body = { model: "llama3.2", messages: [{ role: "user", content: "summarise this folder" }] }
    const { body: job, headers, status } = await submit({ endpoint: "/api/chat", body })
    expect(status).toBe(202)
    expect(headers.get("location")).toBe(`/foreman/v1/jobs/${job.id}`)
    expect(job).toMatchObject({ endpoint: "/api/chat", model: "llama3.2", priority: "batch", attempts: 0 })
    expect(["queued", "running", "succeeded"]).toContain(job.status)

    const done = (await getJob(job.id, "?wait=30s")).body as Job
    expect(done.status).toBe("succeeded")
    expect(done.attempts).toBe(1)
    expect(done.finishedAt).not.toBeNull()
    const direct = await (await fetch(`${target.url}/api/chat`, { method: "POST", body: JSON.stringify({ ...body, stream: false }) })).json()
    expect(timeless(done.result)).toEqual(timeless(direct))
  })

  it("?wait= returns as soon as the job finishes, not at the end of the wait", async () => {
    // On a foreman whose clock stands still, the wait cannot run out: only the job's end can
    // answer it.
    const still = await startForeman({ target: target.url }, { testClock: true })
    try {
      const url = `${still.url}/foreman/v1/jobs`
      target.hold()
      const job = (await (await fetch(url, { method: "POST", body: JSON.stringify({ endpoint: "/api/generate", body: { model: "llama3.2", prompt: "slow" } }) })).json()) as Job
      await vi.waitFor(() => expect(target.held).toBe(1))
      let answered: Job | undefined
      const waiting = fetch(`${url}/${job.id}?wait=60s`).then(async (response) => (answered = (await response.json()) as Job))
      const queuedView = (await (await fetch(`${url}/${job.id}`)).json()) as Job
      expect(queuedView.status).toBe("running")
      expect(answered).toBeUndefined()
      target.release()
      const done = await waiting
      expect(done.status).toBe("succeeded")
      expect((done.result as { response: string }).response.length).toBeGreaterThan(0)
    } finally {
      await still.close()
    }
  })

  it("a wait that runs out returns the job as it is", async () => {
    target.hold()
    const { body: job } = await submit({ endpoint: "/api/generate", body: { model: "llama3.2", prompt: "held" } })
    await vi.waitFor(() => expect(target.held).toBe(1))
    const view = (await getJob(job.id, "?wait=200ms")).body as Job
    expect(view.status).toBe("running")
    target.release()
    await getJob(job.id, "?wait=30s")
  })

  for (const [endpoint, body] of [
    ["/api/chat", { model: "llama3.2", messages: [{ role: "user", content: "hi" }] }],
    ["/api/generate", { model: "llama3.2", prompt: "hi" }],
    ["/api/embed", { model: "all-minilm", input: ["a", "b"] }],
    ["/api/embeddings", { model: "all-minilm", prompt: "a" }]
  ] as const) {
    it(`Prefer: respond-async turns ${endpoint} into a job`, async () => {
      const response = await fetch(`${foreman.url}${endpoint}`, {
        method: "POST",
        headers: { prefer: "respond-async" },
        body: JSON.stringify(body)
      })
      expect(response.status).toBe(202)
      const job = (await response.json()) as Job
      expect(response.headers.get("location")).toBe(`/foreman/v1/jobs/${job.id}`)
      expect(job.endpoint).toBe(endpoint)
      expect(job.priority).toBe("batch")
      const done = (await getJob(job.id, "?wait=30s")).body as Job
      expect(done.status).toBe("succeeded")
      const direct = await (await fetch(`${target.url}${endpoint}`, {
        method: "POST",
        body: JSON.stringify(endpoint === "/api/chat" || endpoint === "/api/generate" ? { ...body, stream: false } : body)
      })).json()
      expect(timeless(done.result)).toEqual(timeless(direct))
    })
  }

  it("the model is validated as for a sync request, and bad bodies are 400", async () => {
    const missing = await submit({ endpoint: "/api/chat", body: { model: "nope", messages: [] } })
    expect(missing.status).toBe(404)
    expect(missing.body).toEqual({ error: "model 'nope' not found" })
    const noModel = await submit({ endpoint: "/api/chat", body: { messages: [] } })
    expect(noModel).toMatchObject({ status: 400, body: { error: "model is required" } })
    const badEndpoint = await submit({ endpoint: "/api/pull", body: { model: "x" } })
    expect(badEndpoint.status).toBe(400)
    expect(badEndpoint.body.error).toContain(`expected {"endpoint"`)
    const notJson = await fetch(`${foreman.url}/foreman/v1/jobs`, { method: "POST", body: "{oops" })
    expect(notJson.status).toBe(400)
    expect(await notJson.json()).toEqual({ error: "the body is not valid JSON" })
    const badPriority = await submit({ endpoint: "/api/chat", body: { model: "llama3.2" }, priority: "urgent" })
    expect(badPriority.status).toBe(400)
    const asyncMissing = await fetch(`${foreman.url}/api/embed`, {
      method: "POST",
      headers: { prefer: "respond-async" },
      body: JSON.stringify({ model: "nope", input: "x" })
    })
    expect(asyncMissing.status).toBe(404)
    expect(await asyncMissing.json()).toEqual({ error: `model "nope" not found, try pulling it first` })
  })

  it("unknown ids are 404; bad query values are 400", async () => {
    expect(await getJob("no-such-job")).toMatchObject({ status: 404, body: { error: "job 'no-such-job' not found" } })
    const del = await fetch(`${foreman.url}/foreman/v1/jobs/no-such-job`, { method: "DELETE" })
    expect(del.status).toBe(404)
    expect((await getJob("x", "?wait=soon")).status).toBe(400)
    expect((await fetch(`${foreman.url}/foreman/v1/jobs?status=done`)).status).toBe(400)
    expect((await fetch(`${foreman.url}/foreman/v1/jobs?limit=0`)).status).toBe(400)
  })

  it("DELETE: a queued job never runs, a running one is aborted upstream, a finished one is 409", async () => {
    target.hold()
    const { body: running } = await submit({ endpoint: "/api/generate", body: { model: "llama3.2", prompt: "running one" } })
    await vi.waitFor(() => expect(target.held).toBe(1))
    const { body: queued } = await submit({ endpoint: "/api/generate", body: { model: "llama3.2", prompt: "queued one" } })
    const queuedView = (await getJob(queued.id)).body as Job
    expect(queuedView).toMatchObject({ status: "queued", position: 1 })

    const cancelledQueued = await fetch(`${foreman.url}/foreman/v1/jobs/${queued.id}`, { method: "DELETE" }).then(json)
    expect(cancelledQueued).toMatchObject({ status: 200, body: { status: "cancelled" } })
    const cancelledRunning = await fetch(`${foreman.url}/foreman/v1/jobs/${running.id}`, { method: "DELETE" }).then(json)
    expect(cancelledRunning.body.status).toBe("cancelled")
    await vi.waitFor(() => expect(target.held).toBe(0))
    target.release()
    await vi.waitFor(async () => expect((await foreman.health()).running).toBe(0))
    const prompts = target.calls.filter((c) => c.path === "/api/generate").map((c) => (c.body as { prompt: string }).prompt)
    expect(prompts).not.toContain("queued one")
    expect((await getJob(running.id)).body.status).toBe("cancelled")

    const again = await fetch(`${foreman.url}/foreman/v1/jobs/${running.id}`, { method: "DELETE" }).then(json)
    expect(again).toMatchObject({ status: 409, body: { error: `job '${running.id}' has already been cancelled` } })
  })

  it("a failure at the target is retried up to --max-attempts and the error kept; a 4xx fails at once", async () => {
    target.failNext("/api/generate", { mode: "status", status: 500, message: "runner crashed" })
    target.failNext("/api/generate", { mode: "status", status: 500, message: "runner crashed again" })
    const { body: job } = await submit({ endpoint: "/api/generate", body: { model: "llama3.2", prompt: "doomed" } })
    const failed = (await getJob(job.id, "?wait=30s")).body as Job
    expect(failed.status).toBe("failed")
    expect(failed.error).toBe("runner crashed again")

    target.failNext("/api/generate", { mode: "status", status: 400, message: "invalid option" })
    const { body: bad } = await submit({ endpoint: "/api/generate", body: { model: "llama3.2", prompt: "bad" } })
    const badView = (await getJob(bad.id, "?wait=30s")).body as Job
    expect(badView).toMatchObject({ status: "failed", error: "invalid option" })

    target.failNext("/api/generate", { mode: "status", status: 500, message: "once" })
    const { body: flaky } = await submit({ endpoint: "/api/generate", body: { model: "llama3.2", prompt: "flaky" } })
    expect(((await getJob(flaky.id, "?wait=30s")).body as Job).status).toBe("succeeded")
  })

  it("lists newest first, by status, a page at a time", async () => {
    const ids: Array<string> = []
    for (let i = 0; i < 3; i++) {
      ids.push((await submit({ endpoint: "/api/embed", body: { model: "all-minilm", input: `page ${i}` } })).body.id)
    }
    for (const id of ids) await getJob(id, "?wait=30s")
    const first = await fetch(`${foreman.url}/foreman/v1/jobs?limit=2`).then(json)
    expect(first.body.jobs.map((j: Job) => j.id)).toEqual([ids[2], ids[1]])
    const second = await fetch(`${foreman.url}/foreman/v1/jobs?limit=2&cursor=${first.body.nextCursor}`).then(json)
    expect(second.body.jobs[0].id).toBe(ids[0])
    const failed = await fetch(`${foreman.url}/foreman/v1/jobs?status=failed`).then(json)
    expect(failed.body.jobs.length).toBeGreaterThan(0)
    expect(failed.body.jobs.every((j: Job) => j.status === "failed")).toBe(true)
    const health = await foreman.health() as { jobs: Record<string, number> }
    expect(health.jobs.succeeded).toBeGreaterThan(3)
    expect(health.jobs.failed).toBeGreaterThanOrEqual(2)
  })

  it("while the target sleeps a job waits, and completes when it wakes", async () => {
    await target.sleep()
    await vi.waitFor(async () => expect((await foreman.health()).reachable).toBe(false), { interval: 20 })
    const { body: job } = await submit({ endpoint: "/api/generate", body: { model: "llama3.2", prompt: "overnight" } })
    expect(((await getJob(job.id, "?wait=300ms")).body as Job).status).toBe("queued")
    await target.wake()
    const done = (await getJob(job.id, "?wait=30s")).body as Job
    expect(done.status).toBe("succeeded")
    expect(done.attempts).toBe(1)
  })
})

describe("async job TTL", () => {
  it("a job the target never serves fails as expired after --job-ttl", async () => {
    const target = await startFakeTarget({ models: ["llama3.2"] })
    const foreman = await startForeman({ target: target.url, jobTtl: Duration.millis(500), pollInterval: Duration.millis(100) })
    try {
      await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
      await target.sleep()
      await vi.waitFor(async () => expect((await foreman.health()).reachable).toBe(false), { interval: 20 })
      const response = await fetch(`${foreman.url}/foreman/v1/jobs`, {
        method: "POST",
        body: JSON.stringify({ endpoint: "/api/generate", body: { model: "llama3.2", prompt: "never" } })
      })
      const job = (await response.json()) as Job
      const done = (await (await fetch(`${foreman.url}/foreman/v1/jobs/${job.id}?wait=30s`)).json()) as Job
      expect(done.status).toBe("failed")
      expect(done.error).toMatch(/^expired: not served within/)
    } finally {
      await foreman.close()
      await target.close()
    }
  })
})
