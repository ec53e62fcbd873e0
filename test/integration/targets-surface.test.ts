/**
 * The Ollama surface over several targets (issue 17): `/api/tags`, `/v1/models` and `/api/ps`
 * list every target's models from the caches, model management and forwarded paths go to the
 * target `X-Foreman-Target` names (and are refused without one), health lists each target, and
 * the per-target metrics carry its name. Real HTTP to two fake targets on 127.0.0.1, through
 * the real clients; foreman's clock is the TestClock, so its polls happen when a test says.
 *
 * The metric registry is global to the process: the targets here have names of their own.
 */
import { Duration, Effect, Layer, Logger, Metric } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Ollama } from "ollama"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { MetricsPlugin } from "../../plugins/metrics/index.ts"
import { OpenAiPlugin } from "../../plugins/openai/index.ts"
import { addKey } from "../../src/auth/KeysFile.ts"
import { Events } from "../../src/events/Events.ts"
import * as Report from "../../src/jobs/report.ts"
import { Targets } from "../../src/target/Target.ts"
import type { WakeStatus } from "../../src/target/Waker.ts"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type RunningForeman, startForeman } from "../support/foreman.ts"
import { type MetricFamily, parse, samples } from "../support/prometheus.ts"

interface TargetReport {
  readonly name: string
  readonly url?: string
  readonly status: string
  readonly reachable: boolean
  readonly models: number
  readonly resident: ReadonlyArray<string>
  readonly running: number
  readonly slots: number
  readonly lastError?: string | null
  readonly wake?: Record<string, unknown>
}

const targetsOf = (health: Record<string, unknown>) => health.targets as ReadonlyArray<TargetReport>

describe("two targets", () => {
  let a: FakeTarget
  let b: FakeTarget
  let foreman: RunningForeman
  let ollama: Ollama
  const client = (target?: string) =>
    new Ollama({ host: foreman.url, ...(target === undefined ? {} : { headers: { "X-Foreman-Target": target } }) })

  /** foreman's next poll of every target, once it has been answered. */
  const polled = async (check: () => Promise<void>) => {
    await foreman.adjust(Duration.seconds(10))
    await vi.waitFor(check)
  }

  const scrape = async (): Promise<ReadonlyArray<MetricFamily>> => parse(await (await fetch(`${foreman.url}/metrics`)).text())
  /** The value of a series of `name` for the target named `target` (these tests' targets are `desk` and `laptop`). */
  const byTarget = (families: ReadonlyArray<MetricFamily>, name: string, target: string, labels: Record<string, string> = {}) =>
    samples(families, name).filter((s) => s.labels.target === target && Object.entries(labels).every(([k, v]) => s.labels[k] === v))

  beforeAll(async () => {
    a = await startFakeTarget({ models: ["llama3.2", "qwen3"], version: "0.33.0" })
    b = await startFakeTarget({ models: ["qwen3", "gemma3", { name: "all-minilm", capabilities: ["embedding"] }], version: "0.40.0" })
    foreman = await startForeman(
      { target: `desk=${a.url},laptop=${b.url}`, pollInterval: Duration.seconds(10) },
      { plugins: Layer.mergeAll(OpenAiPlugin.layer, MetricsPlugin.layer), testClock: true }
    )
    ollama = client()
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
  })
  afterAll(async () => {
    await foreman?.close()
    await a?.close()
    await b?.close()
  })

  it("/api/tags lists each model once: the first target's, then what only the next has", async () => {
    const desk = await new Ollama({ host: a.url }).list()
    const laptop = await new Ollama({ host: b.url }).list()
    const listed = await ollama.list()
    const names = new Set(desk.models.map((m) => m.name))
    expect(listed).toEqual({ models: [...desk.models, ...laptop.models.filter((m) => !names.has(m.name))] })
    // qwen3 is on both: the first target's entry, as it sent it.
    expect(listed.models.find((m) => m.name === "qwen3:latest")).toEqual(desk.models.find((m) => m.name === "qwen3:latest"))
    expect(listed.models.map((m) => m.name).sort()).toEqual(["all-minilm:latest", "gemma3:latest", "llama3.2:latest", "qwen3:latest"])
  })

  it("/v1/models is the same union, and /v1/models/{model} finds a model on any target", async () => {
    const openai = new OpenAI({ baseURL: `${foreman.url}/v1`, apiKey: "unused", maxRetries: 0 })
    const ids = []
    for await (const model of openai.models.list()) ids.push(model.id)
    expect(ids).toEqual((await ollama.list()).models.map((m) => m.name))
    expect(await openai.models.retrieve("gemma3")).toMatchObject({ id: "gemma3", object: "model", owned_by: "library" })
    const missing = await openai.models.retrieve("phi4").catch((e) => e)
    expect(missing.status).toBe(404)
  })

  it("/api/version is the primary's", async () => {
    expect(await ollama.version()).toEqual({ version: "0.33.0" })
  })

  it("/api/ps lists every target's resident models: a model loaded on both, twice", async () => {
    // Loaded on each target directly, then seen at foreman's next poll.
    for (const target of [a, b]) {
      await new Ollama({ host: target.url }).generate({ model: "qwen3", prompt: "load", stream: false })
    }
    const direct = [...(await new Ollama({ host: a.url }).ps()).models, ...(await new Ollama({ host: b.url }).ps()).models]
    expect(direct.map((m) => m.name)).toEqual(["qwen3:latest", "qwen3:latest"])
    await polled(async () => expect(await ollama.ps()).toEqual({ models: direct }))
    const targets = targetsOf(await foreman.health())
    expect(targets.map((t) => [t.name, t.resident])).toEqual([["desk", ["qwen3:latest"]], ["laptop", ["qwen3:latest"]]])
  })

  it("health lists each target: name, URL, status, models, resident, slots in use", async () => {
    const health = await foreman.health()
    expect(health).toMatchObject({ status: "ok", target: a.url, reachable: true, models: 4, running: 0 })
    expect(targetsOf(health)).toEqual([
      expect.objectContaining({ name: "desk", url: a.url, status: "ok", reachable: true, models: 2, running: 0, slots: 1, lastError: null }),
      expect.objectContaining({ name: "laptop", url: b.url, status: "ok", reachable: true, models: 3, running: 0, slots: 1, lastError: null })
    ])
    // No Wake-on-LAN configured: no wake figures.
    for (const target of targetsOf(health)) expect(target).not.toHaveProperty("wake")
    expect(typeof (targetsOf(health)[0] as unknown as { lastPollAt: unknown }).lastPollAt).toBe("string")
  })

  it("metrics: the per-target gauges and poll counts carry the target's name", async () => {
    const families = await scrape()
    expect(byTarget(families, "foreman_target_up", "desk").map((s) => s.value)).toEqual([1])
    expect(byTarget(families, "foreman_target_up", "laptop").map((s) => s.value)).toEqual([1])
    expect(byTarget(families, "foreman_inventory_models", "desk").map((s) => s.value)).toEqual([2])
    expect(byTarget(families, "foreman_inventory_models", "laptop").map((s) => s.value)).toEqual([3])
    for (const target of ["desk", "laptop"]) {
      const polls = byTarget(families, "foreman_target_polls_total", target, { result: "success" })
      expect(polls).toHaveLength(1)
      expect(polls[0]!.value).toBeGreaterThanOrEqual(2)
      expect(Object.keys(polls[0]!.labels).sort()).toEqual(["result", "target"])
    }
  })

  it("model management without X-Foreman-Target is a 400 that names the targets; neither target is asked", async () => {
    const pull = await ollama.pull({ model: "phi4", stream: false }).catch((e) => e)
    expect(pull.status_code).toBe(400)
    expect(pull.error).toBe("foreman has several targets: name one with the X-Foreman-Target header (desk, laptop)")
    const removed = await ollama.delete({ model: "qwen3" }).catch((e) => e)
    expect(removed.status_code).toBe(400)
    const unknown = await client("garage").pull({ model: "phi4", stream: false }).catch((e) => e)
    expect(unknown.status_code).toBe(400)
    expect(unknown.error).toBe(`unknown target "garage" in X-Foreman-Target: the targets are desk, laptop`)
    for (const target of [a, b]) {
      expect(target.count("/api/pull")).toBe(0)
      expect(target.count("/api/delete")).toBe(0)
    }
  })

  it("a pull with X-Foreman-Target reaches that target only, and its inventory is refreshed", async () => {
    expect((await client("LAPTOP").pull({ model: "phi4", stream: false })).status).toBe("success")
    expect([a.count("/api/pull"), b.count("/api/pull")]).toEqual([0, 1])
    await vi.waitFor(async () => expect((await ollama.list()).models.map((m) => m.name)).toContain("phi4:latest"))
    expect((await new Ollama({ host: a.url }).list()).models.map((m) => m.name)).not.toContain("phi4:latest")
    expect(targetsOf(await foreman.health()).map((t) => t.models)).toEqual([2, 4])
  })

  it("a delete with X-Foreman-Target removes the model from that target only: the union keeps the other's", async () => {
    const before = (await new Ollama({ host: b.url }).list()).models.find((m) => m.name === "qwen3:latest")
    await client("desk").delete({ model: "qwen3" })
    expect([a.count("/api/delete"), b.count("/api/delete")]).toEqual([1, 0])
    await vi.waitFor(async () => expect(targetsOf(await foreman.health()).map((t) => t.models)).toEqual([1, 4]))
    // Still listed once, now as the second target has it.
    const listed = (await ollama.list()).models.filter((m) => m.name === "qwen3:latest")
    expect(listed).toEqual([before])
  })

  it("/api/show without a header asks the first target that has the model; with one, that target", async () => {
    const [fromA, fromB] = [a.count("/api/show"), b.count("/api/show")]
    expect((await ollama.show({ model: "gemma3" })).details.family).toBeTruthy()
    expect([a.count("/api/show") - fromA, b.count("/api/show") - fromB]).toEqual([0, 1])
    const onDesk = await client("desk").show({ model: "gemma3" }).catch((e) => e)
    expect(onDesk.status_code).toBe(404)
    expect([a.count("/api/show") - fromA, b.count("/api/show") - fromB]).toEqual([1, 1])
    // The body read as Go reads it: a key in another case names the model too.
    const folded = await fetch(`${foreman.url}/api/show`, { method: "POST", body: JSON.stringify({ Model: "gemma3" }) })
    expect(folded.status).toBe(200)
    expect([a.count("/api/show") - fromA, b.count("/api/show") - fromB]).toEqual([1, 2])
  })

  it("a forwarded path needs a target too: 400 without one, the named target's own answer with one", async () => {
    const path = "/api/experimental/not-yet"
    const refused = await fetch(`${foreman.url}${path}`)
    expect(refused.status).toBe(400)
    expect(await refused.json()).toEqual({ error: "foreman has several targets: name one with the X-Foreman-Target header (desk, laptop)" })
    const forwarded = await fetch(`${foreman.url}${path}`, { headers: { "x-foreman-target": "laptop" } })
    expect(forwarded.status).toBe(404)
    expect(await forwarded.text()).toBe("404 page not found")
    expect([a.count(path), b.count(path)]).toEqual([0, 1])
  })

  it("a target asleep: health is degraded and says which; the lists keep its last inventory; up 0 for it alone", async () => {
    const listed = await ollama.list()
    await b.sleep()
    await polled(async () => expect((await foreman.health()).status).toBe("degraded"))
    const health = await foreman.health()
    // The top-level target fields are the primary's, which is well.
    expect(health).toMatchObject({ reachable: true, consecutiveFailures: 0, lastError: null })
    const [desk, laptop] = targetsOf(health)
    expect(desk).toMatchObject({ name: "desk", status: "ok", reachable: true })
    expect(laptop).toMatchObject({ name: "laptop", status: "degraded", reachable: false })
    expect(laptop!.lastError).toMatch(/^target unreachable/)
    expect(await ollama.list()).toEqual(listed)
    expect(await ollama.version()).toEqual({ version: "0.33.0" })
    const families = await scrape()
    expect(byTarget(families, "foreman_target_up", "desk").map((s) => s.value)).toEqual([1])
    expect(byTarget(families, "foreman_target_up", "laptop").map((s) => s.value)).toEqual([0])
    expect(byTarget(families, "foreman_target_polls_total", "laptop", { result: "failure" })[0]!.value).toBeGreaterThanOrEqual(1)
    expect(byTarget(families, "foreman_target_polls_total", "desk", { result: "failure" })).toEqual([])
  })
})

describe("two targets, the primary never reached", () => {
  it("/api/version is the next target's that answers; health is degraded", async () => {
    const asleep = await startFakeTarget({ models: ["llama3.2"] })
    await asleep.sleep()
    const awake = await startFakeTarget({ models: ["qwen3"], version: "0.40.0" })
    const foreman = await startForeman({ target: `first=${asleep.url},second=${awake.url}` }, { testClock: true })
    try {
      await vi.waitFor(async () => expect(targetsOf(await foreman.health()).map((t) => t.status)).toEqual(["degraded", "ok"]))
      expect((await foreman.health()).status).toBe("degraded")
      expect(await new Ollama({ host: foreman.url }).version()).toEqual({ version: "0.40.0" })
      expect((await new Ollama({ host: foreman.url }).list()).models.map((m) => m.name)).toEqual(["qwen3:latest"])
    } finally {
      await foreman.close()
      await awake.close()
      await asleep.close()
    }
  })
})

describe("health's targets with keys and Wake-on-LAN", () => {
  let a: FakeTarget
  let b: FakeTarget
  let foreman: RunningForeman
  let dir: string
  const keys: Record<string, string> = {}
  const health = async (key: string) =>
    (await (await fetch(`${foreman.url}/foreman/health`, { headers: { authorization: `Bearer ${key}` } })).json()) as Record<string, unknown>

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "foreman-targets-"))
    const keysFile = join(dir, "keys.json")
    keys.root = (await Effect.runPromise(addKey(keysFile, "root", "admin"))).key
    keys.alice = (await Effect.runPromise(addKey(keysFile, "alice", "user"))).key
    a = await startFakeTarget({ models: ["llama3.2"] })
    b = await startFakeTarget({ models: ["qwen3"] })
    const targetsFile = join(dir, "targets.json")
    writeFileSync(targetsFile, JSON.stringify({
      targets: [
        { name: "tower", url: a.url, concurrency: 2 },
        { name: "notebook", url: b.url, wake: { mac: "aa:bb:cc:dd:ee:ff", address: "192.168.1.255" } }
      ]
    }))
    foreman = await startForeman({ target: a.url, targetsFile, keysFile }, { testClock: true })
    await vi.waitFor(async () => expect((await health(keys.root!)).status).toBe("ok"))
  })
  afterAll(async () => {
    await foreman?.close()
    await a?.close()
    await b?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it("a target that can be woken reports its wakes (none yet), its own concurrency as slots", async () => {
    const [tower, notebook] = targetsOf(await health(keys.root!))
    expect(tower).toMatchObject({ name: "tower", slots: 2 })
    expect(tower).not.toHaveProperty("wake")
    expect(notebook!.wake).toEqual({ packets: 0, lastAttemptAt: null, lastWokeAt: null, lastWakeMillis: null, lastError: null })
  })

  it("the wake figures are the target's wake status once it carries one", async () => {
    const targets = await foreman.runtime.runPromise(Targets)
    const status: WakeStatus = { packets: 3, lastAttemptAt: 10_000, lastWokeAt: 12_500, lastWakeMillis: 4_500, lastError: "send EHOSTUNREACH 192.168.1.255:9" }
    Object.assign(targets.all[1]!, { wakeStatus: status })
    expect(targetsOf(await health(keys.root!))[1]!.wake).toEqual({
      packets: 3,
      lastAttemptAt: "1970-01-01T00:00:10.000Z",
      lastWokeAt: "1970-01-01T00:00:12.500Z",
      lastWakeMillis: 4500,
      lastError: "send EHOSTUNREACH 192.168.1.255:9"
    })
  })

  it("a user key sees the targets' names and figures, not their URLs or errors", async () => {
    const report = await health(keys.alice!)
    expect(report).not.toHaveProperty("target")
    const targets = targetsOf(report)
    expect(targets.map((t) => t.name)).toEqual(["tower", "notebook"])
    for (const target of targets) {
      expect(target).not.toHaveProperty("url")
      expect(target).not.toHaveProperty("lastError")
      expect(target).toMatchObject({ status: "ok", reachable: true, models: 1 })
    }
    expect(targets[1]!.wake).toEqual({ packets: 3, lastAttemptAt: "1970-01-01T00:00:10.000Z", lastWokeAt: "1970-01-01T00:00:12.500Z", lastWakeMillis: 4500 })
    expect(JSON.stringify(report)).not.toContain(a.url)
    expect(JSON.stringify(report)).not.toContain("192.168.1.255")
    // Without a key, the status only.
    expect(await (await fetch(`${foreman.url}/foreman/health`)).json()).toEqual({ status: "ok" })
  })
})

describe("a target named after its host, with keys", () => {
  it("a user key sees it as target-N, may pin to that name, and no 400 lists its host", async () => {
    const dir = mkdtempSync(join(tmpdir(), "foreman-public-"))
    const keysFile = join(dir, "keys.json")
    const root = (await Effect.runPromise(addKey(keysFile, "root", "admin"))).key
    const alice = (await Effect.runPromise(addKey(keysFile, "alice", "user"))).key
    const target = await startFakeTarget({ models: ["llama3.2"] })
    const foreman = await startForeman({ target: target.url, keysFile }, { testClock: true })
    const as = (key: string) => ({ authorization: `Bearer ${key}` })
    try {
      await vi.waitFor(async () =>
        expect((await (await fetch(`${foreman.url}/foreman/health`, { headers: as(root) })).json()).status).toBe("ok"))
      const user = await (await fetch(`${foreman.url}/foreman/health`, { headers: as(alice) })).json()
      expect(targetsOf(user).map((t) => t.name)).toEqual(["target-1"])
      expect(JSON.stringify(user)).not.toContain("127.0.0.1")
      const admin = await (await fetch(`${foreman.url}/foreman/health`, { headers: as(root) })).json()
      expect(targetsOf(admin).map((t) => t.name)).toEqual(["127.0.0.1"])
      const chat = JSON.stringify({ model: "llama3.2", messages: [{ role: "user", content: "hi" }], stream: false })
      const pinned = await fetch(`${foreman.url}/api/chat`, { method: "POST", body: chat, headers: { ...as(alice), "x-foreman-target": "target-1" } })
      expect(pinned.status).toBe(200)
      const wrong = await fetch(`${foreman.url}/api/chat`, { method: "POST", body: chat, headers: { ...as(alice), "x-foreman-target": "nas" } })
      expect(wrong.status).toBe(400)
      expect(await wrong.json()).toEqual({ error: `unknown target "nas" in X-Foreman-Target: the targets are target-1` })
      const forAdmin = await fetch(`${foreman.url}/api/chat`, { method: "POST", body: chat, headers: { ...as(root), "x-foreman-target": "nas" } })
      expect(await forAdmin.json()).toEqual({ error: `unknown target "nas" in X-Foreman-Target: the targets are 127.0.0.1` })
    } finally {
      await foreman.close()
      await target.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("one target", () => {
  it("X-Foreman-Target may name it, and nothing else; health lists it under its host; metrics carry that name", async () => {
    const target = await startFakeTarget({ models: ["llama3.2"] })
    const foreman = await startForeman({ target: target.url }, { plugins: MetricsPlugin.layer, testClock: true })
    try {
      await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
      const named = new Ollama({ host: foreman.url, headers: { "X-Foreman-Target": "127.0.0.1" } })
      expect((await named.pull({ model: "phi4", stream: false })).status).toBe("success")
      expect((await new Ollama({ host: foreman.url }).pull({ model: "gemma3", stream: false })).status).toBe("success")
      const other = await new Ollama({ host: foreman.url, headers: { "X-Foreman-Target": "desk" } }).pull({ model: "x", stream: false }).catch((e) => e)
      expect(other.status_code).toBe(400)
      expect(other.error).toBe(`unknown target "desk" in X-Foreman-Target: the targets are 127.0.0.1`)
      const health = await foreman.health()
      expect(targetsOf(health)).toEqual([expect.objectContaining({ name: "127.0.0.1", url: target.url, status: "ok" })])
      const families = parse(await (await fetch(`${foreman.url}/metrics`)).text())
      expect(samples(families, "foreman_target_up").filter((s) => s.labels.target === "127.0.0.1").length).toBe(1)
    } finally {
      await foreman.close()
      await target.close()
    }
  })
})

describe("the job report", () => {
  it("names the target that ran the job in its log line and, with several targets, in foreman_jobs_total", async () => {
    const lines: Array<Record<string, unknown>> = []
    const logger = Logger.make(({ annotations, message }) => {
      const text = Array.isArray(message) ? message.join(" ") : String(message)
      if (text === "job finished") lines.push(Object.fromEntries(annotations))
    })
    const job = { id: "j1", endpoint: "/api/chat", model: "report-test-model", priority: "interactive", async: false, target: "laptop" } as const
    await Effect.runPromise(
      Effect.gen(function*() {
        const reporter = yield* Report.make
        yield* reporter.finished(job, { status: 200, enqueuedAt: 0, dispatchedAt: 5, startedAt: 10, at: 20, attempts: 1 })
      }).pipe(
        Effect.provide(Events.layer),
        // The target label comes with a second target.
        Effect.provideService(Targets, { all: [{ name: "desk" }, { name: "laptop" }] } as unknown as Targets["Type"]),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
    )
    expect(lines).toEqual([expect.objectContaining({ job: "j1", target: "laptop", status: 200 })])
    const counted = (await Effect.runPromise(Metric.snapshot)).filter((pair) =>
      pair.metricKey.name === "foreman_jobs_total" && pair.metricKey.tags.some((tag) => tag.key === "model" && tag.value === "report-test-model:latest")
    )
    expect(counted.map((pair) => Object.fromEntries(pair.metricKey.tags.map((tag) => [tag.key, tag.value])))).toEqual([
      { endpoint: "/api/chat", model: "report-test-model:latest", status: "200", target: "laptop" }
    ])
  })
})
