/**
 * `GET /metrics` on a running foreman, against the fake target: a Prometheus scrape,
 * read by a strict parser of the format, whose figures move as jobs run, models swap and
 * the target sleeps.
 *
 * The metric registry is global to the process (vitest gives this file a worker of its
 * own, but tests in it share one foreman): each test compares scrapes before and after.
 */
import { Duration } from "effect"
import { Ollama } from "ollama"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { MetricsPlugin } from "../../plugins/metrics/index.ts"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type RunningForeman, startForeman } from "../support/foreman.ts"
import { family, type MetricFamily, parse, samples, sum } from "../support/prometheus.ts"

const foremanFamilies = {
  foreman_jobs_total: "counter",
  foreman_queue_depth: "gauge",
  foreman_jobs_running: "gauge",
  foreman_job_queue_wait_seconds: "histogram",
  foreman_job_duration_seconds: "histogram",
  foreman_model_swaps_total: "counter",
  foreman_target_up: "gauge",
  foreman_target_polls_total: "counter",
  foreman_inventory_models: "gauge"
} as const

describe("the metrics plugin", () => {
  let target: FakeTarget
  let foreman: RunningForeman
  let ollama: Ollama

  /** One scrape, parsed strictly (a malformed exposition fails the test here). */
  const scrape = async (): Promise<ReadonlyArray<MetricFamily>> => {
    const response = await fetch(`${foreman.url}/metrics`)
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8")
    return parse(await response.text())
  }

  /** Jobs sent (each ends in foreman_jobs_total), and those of them the target started (each observed by both histograms). */
  const sent = { jobs: 0, started: 0 }

  const chat = (model: string, content: string) => {
    sent.jobs++
    sent.started++
    return ollama.chat({ model, messages: [{ role: "user", content }] })
  }

  /**
   * A scrape once every job sent is recorded: a job is counted after its last byte is sent,
   * so a caller can read its answer a moment before the counters move.
   */
  const settled = () =>
    vi.waitFor(async () => {
      const families = await scrape()
      expect(sum(families, "foreman_jobs_total")).toBe(sent.jobs)
      expect(sum(families, "foreman_job_queue_wait_seconds_count")).toBe(sent.started)
      expect(sum(families, "foreman_job_duration_seconds_count")).toBe(sent.started)
      expect(sum(families, "foreman_jobs_running")).toBe(0)
      return families
    })

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2", "qwen3"], maxLoaded: 1 })
    foreman = await startForeman({ target: target.url, pollInterval: Duration.millis(100) }, { plugins: MetricsPlugin.layer })
    ollama = new Ollama({ host: foreman.url })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
  })
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  it("serves every foreman metric with HELP and TYPE once a job has run", async () => {
    await chat("llama3.2", "hello")
    const families = await settled()
    for (const [name, type] of Object.entries(foremanFamilies)) {
      expect(family(families, name), name).toMatchObject({ name, type })
      expect(family(families, name)!.help, name).toBeTruthy()
    }
    expect(samples(families, "foreman_jobs_total").map((s) => Object.keys(s.labels).sort()))
      .toContainEqual(["endpoint", "model", "status"])
    expect(sum(families, "foreman_inventory_models")).toBe(2)
    expect(sum(families, "foreman_target_up")).toBe(1)
  })

  it("N chats: foreman_jobs_total{endpoint=\"/api/chat\",status=\"200\"} and both histograms' counts grow by N", async () => {
    // The model label is left out of the match: it carries the name as the caller spelt it.
    const ok = { endpoint: "/api/chat", status: "200" }
    const before = await settled()
    const n = 5
    for (let i = 0; i < n; i++) await chat("llama3.2", `question ${i}`)
    const after = await settled()
    expect(sum(after, "foreman_jobs_total", ok) - sum(before, "foreman_jobs_total", ok)).toBe(n)
    expect(sum(after, "foreman_jobs_total") - sum(before, "foreman_jobs_total")).toBe(n)
    for (const histogram of ["foreman_job_queue_wait_seconds", "foreman_job_duration_seconds"]) {
      expect(sum(after, `${histogram}_count`) - sum(before, `${histogram}_count`), histogram).toBe(n)
      expect(sum(after, `${histogram}_bucket`, { le: "+Inf" }) - sum(before, `${histogram}_bucket`, { le: "+Inf" })).toBe(n)
      expect(sum(after, `${histogram}_sum`)).toBeGreaterThanOrEqual(sum(before, `${histogram}_sum`))
    }
    // Every chat took well under 20 minutes, so the finite buckets hold them all too.
    expect(sum(after, "foreman_job_duration_seconds_bucket", { le: "327.68" }))
      .toBe(sum(after, "foreman_job_duration_seconds_count"))
  })

  it("a failing job is counted under its status", async () => {
    const notFound = { endpoint: "/api/generate", status: "404" }
    const before = await settled()
    target.failNext("/api/generate", { mode: "status", status: 500, message: "boom" })
    sent.jobs++ // Not started: the target refused it before its first byte.
    const response = await fetch(`${foreman.url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({ model: "llama3.2", prompt: "x", stream: false })
    })
    expect(response.status).toBe(500)
    await response.text()
    const after = await settled()
    const failed = { endpoint: "/api/generate", status: "500" }
    expect(sum(after, "foreman_jobs_total", failed) - sum(before, "foreman_jobs_total", failed)).toBe(1)
    expect(sum(after, "foreman_jobs_total", notFound)).toBe(sum(before, "foreman_jobs_total", notFound))
  })

  it("a forced swap (a job for a second model while the first is resident) adds exactly 1 to foreman_model_swaps_total", async () => {
    await chat("llama3.2", "make llama3.2 resident")
    const before = await settled()
    const loads = target.loads.length
    await chat("qwen3", "now the other one")
    const afterSwap = await settled()
    expect(target.loads.length - loads).toBe(1)
    expect(sum(afterSwap, "foreman_model_swaps_total") - sum(before, "foreman_model_swaps_total")).toBe(1)
    // Another job for the model now resident swaps nothing.
    await chat("qwen3", "still the other one")
    expect(sum(await settled(), "foreman_model_swaps_total")).toBe(sum(afterSwap, "foreman_model_swaps_total"))
  })

  it("a reload (the resident model asked for with another num_ctx) is a swap too, in foreman_model_swaps_total", async () => {
    await chat("qwen3", "make qwen3 resident with its defaults")
    const before = await settled()
    const loads = target.loads.length
    sent.jobs++
    sent.started++
    await ollama.chat({ model: "qwen3", messages: [{ role: "user", content: "a longer context" }], options: { num_ctx: 8192 } })
    const after = await settled()
    expect(target.loads.length - loads).toBe(1)
    expect(sum(after, "foreman_model_swaps_total") - sum(before, "foreman_model_swaps_total")).toBe(1)
  })

  it("queue depth and running jobs are gauges that follow the queue", async () => {
    target.hold()
    try {
      const first = chat("llama3.2", "in flight")
      await vi.waitFor(() => expect(target.held).toBe(1))
      const waiting = [chat("llama3.2", "waiting 1"), chat("llama3.2", "waiting 2")]
      await vi.waitFor(async () => {
        const families = await scrape()
        expect(sum(families, "foreman_queue_depth", { priority: "interactive" })).toBe(2)
        expect(sum(families, "foreman_jobs_running")).toBe(1)
      })
      target.release()
      await Promise.all([first, ...waiting])
    } finally {
      target.release()
    }
    const families = await settled()
    expect(samples(families, "foreman_queue_depth").map((s) => s.value)).toEqual([0])
  })

  it("target asleep: foreman_target_up 0 and failed polls counted; awake: 1 again and successful polls counted", async () => {
    const before = await settled()
    await target.sleep()
    const asleep = await vi.waitFor(async () => {
      const families = await scrape()
      expect(sum(families, "foreman_target_up")).toBe(0)
      return families
    }, { interval: 20 })
    const failures = (families: ReadonlyArray<MetricFamily>) => sum(families, "foreman_target_polls_total", { result: "failure" })
    const successes = (families: ReadonlyArray<MetricFamily>) => sum(families, "foreman_target_polls_total", { result: "success" })
    expect(failures(asleep) - failures(before)).toBeGreaterThanOrEqual(1)
    // What foreman knew of the models stays while the target sleeps.
    expect(sum(asleep, "foreman_inventory_models")).toBe(2)

    await target.wake()
    const awake = await vi.waitFor(async () => {
      const families = await scrape()
      expect(sum(families, "foreman_target_up")).toBe(1)
      return families
    }, { interval: 20 })
    expect(successes(awake) - successes(asleep)).toBeGreaterThanOrEqual(1)
    expect(samples(awake, "foreman_target_polls_total").map((s) => s.labels.result).sort()).toEqual(["failure", "success"])
  })
})

describe("without the metrics plugin", () => {
  it("/metrics is 404 and the rest works", async () => {
    const target = await startFakeTarget({ models: ["llama3.2"] })
    const foreman = await startForeman({ target: target.url })
    try {
      expect((await fetch(`${foreman.url}/metrics`)).status).toBe(404)
      await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
      const reply = await new Ollama({ host: foreman.url }).chat({ model: "llama3.2", messages: [{ role: "user", content: "hi" }] })
      expect(reply.message.content).toBe("echo: hi")
    } finally {
      await foreman.close()
      await target.close()
    }
  })
})
