/**
 * A target that misbehaves never wedges a slot and never passes for healthy: one that stalls
 * before or after its headers has the attempt given up after `--stall-timeout`, one that
 * closes the connection or answers garbage fails the job after `--max-attempts`, and health
 * says what is wrong until it serves a job again. The target's listing is bounded too.
 */
import { connect } from "node:net"
import { Duration } from "effect"
import { Ollama } from "ollama"
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest"
import { OpenAiPlugin } from "../../plugins/openai/index.ts"
import { type BadTarget, startBadTarget } from "../support/BadTarget.ts"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type RunningForeman, startForeman } from "../support/foreman.ts"

/**
 * A BadTarget and a foreman in front of it for the describe block that calls this; `prepare`
 * sets the target up before foreman first polls it. Read `target` and `foreman` in the tests.
 */
const inFrontOfBadTarget = (
  settings: Omit<Parameters<typeof startForeman>[0], "target"> = {},
  prepare: (target: BadTarget) => void = () => {},
  options: Parameters<typeof startForeman>[1] = {}
) => {
  const running = {} as { target: BadTarget; foreman: RunningForeman }
  beforeAll(async () => {
    running.target = await startBadTarget()
    prepare(running.target)
    running.foreman = await startForeman({ target: running.target.url, ...settings }, options)
  })
  afterAll(async () => {
    await running.foreman?.close()
    await running.target?.close()
  })
  return running
}

/** The slot is free and the target serves again: the next job runs, health recovers. */
const servedAgain = async (target: BadTarget, foreman: RunningForeman) => {
  target.mode = "ok"
  const reply = await new Ollama({ host: foreman.url }).generate({ model: "llama3.2", prompt: "next" })
  expect(reply.response).toBe("echo: next")
  expect(await foreman.health()).toMatchObject({ status: "ok", jobFaults: 0, lastError: null })
}

const generate = (prompt: string, stream: boolean) => JSON.stringify({ model: "llama3.2", prompt, stream })

describe("a target that misbehaves", () => {
  let target: BadTarget
  let foreman: RunningForeman

  beforeAll(async () => {
    target = await startBadTarget()
    foreman = await startForeman({
      target: target.url,
      // Generous against a loaded machine (undici's timers tick every half second anyway).
      stallTimeout: Duration.seconds(1),
      maxAttempts: 2,
      concurrency: 1,
      requestTimeout: Duration.seconds(60)
    })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"), { timeout: 15_000 })
  })
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })
  beforeEach(async () => {
    // Each case starts from a target that serves, and a foreman that has seen it serve.
    target.mode = "ok"
    const served = await fetch(`${foreman.url}/api/generate`, { method: "POST", body: generate("warm", false) })
    expect(served.status).toBe(200)
    expect((await foreman.health()).status).toBe("ok")
  })

  const servesAgain = () => servedAgain(target, foreman)

  it("headers and then nothing: the stream ends with an error line, the slot is freed, health says why", async () => {
    target.mode = "stall-after-headers"
    const response = await fetch(`${foreman.url}/api/generate`, { method: "POST", body: generate("stall", true) })
    expect(response.status).toBe(200)
    const lines = (await response.text()).trim().split("\n").map((line) => JSON.parse(line))
    expect(lines.at(-1)).toEqual({ error: "the target stalled mid-answer: it sent nothing for --stall-timeout" })
    await vi.waitFor(async () => expect((await foreman.health()).jobFaults).toBe(1))
    expect(await foreman.health()).toMatchObject({
      status: "degraded",
      reachable: true,
      jobFaults: 1,
      lastError: "the target stalled mid-answer: it sent nothing for --stall-timeout"
    })
    await servesAgain()
  })

  it("no answer at all: the caller gets 504 after --stall-timeout, the slot is freed", async () => {
    target.mode = "stall-before-headers"
    const response = await fetch(`${foreman.url}/api/generate`, { method: "POST", body: generate("silence", true) })
    expect(response.status).toBe(504)
    expect(await response.json()).toEqual({ error: "the target stalled: it sent nothing for 1s (--stall-timeout)" })
    expect(await foreman.health()).toMatchObject({ status: "degraded", jobFaults: 1 })
    await servesAgain()
  })

  it("a generation longer than --stall-timeout is not a stall: it streams, or (stream: false) arrives whole", async () => {
    target.mode = "slow"
    target.slowMs = 2_000
    const whole = await fetch(`${foreman.url}/api/generate`, { method: "POST", body: generate("slow", false) })
    expect(whole.status).toBe(200)
    expect((await whole.json()).response).toBe("slow slow slow slow slow slow slow slow slow slow")
    const streamed = await new Ollama({ host: foreman.url }).generate({ model: "llama3.2", prompt: "slow", stream: true })
    let text = ""
    for await (const part of streamed) text += part.response
    expect(text).toBe("slow slow slow slow slow slow slow slow slow slow")
    // An async job asks for the stream and stores what stream: false would have answered.
    const job = await submit("slow")
    expect(job).toMatchObject({ status: "succeeded", attempts: 1, result: { response: "slow slow slow slow slow slow slow slow slow slow", done: true } })
    expect(await foreman.health()).toMatchObject({ status: "ok", jobFaults: 0 })
  })

  it("a pass-through call the target never answers gets 504 after --stall-timeout too", async () => {
    target.mode = "stall-before-headers"
    const response = await fetch(`${foreman.url}/api/show`, { method: "POST", body: JSON.stringify({ model: "llama3.2" }) })
    expect(response.status).toBe(504)
    expect(await response.json()).toEqual({ error: "the target stalled: it sent nothing for 1s (--stall-timeout)" })
  })

  it("an async job whose target never answers counts its attempts and fails after --max-attempts", async () => {
    target.mode = "stall-before-headers"
    const job = await submit("silence")
    expect(job).toMatchObject({
      status: "failed",
      attempts: 2,
      error: "the target stalled: it sent nothing for 1s (--stall-timeout)"
    })
    await servesAgain()
  })

  it("an async job whose target closes the connection every time fails after --max-attempts, not at its TTL", async () => {
    target.mode = "close-before-headers"
    const job = await submit("closed")
    expect(job.status).toBe("failed")
    expect(job.attempts).toBe(2)
    expect(job.error).toMatch(/^the target closed the connection before answering/)
    expect(await foreman.health()).toMatchObject({
      status: "degraded",
      lastError: expect.stringMatching(/^the target closed the connection before answering/)
    })
    await servesAgain()
  })

  it("a sync caller whose target closes the connection every time gets 502 after --max-attempts tries", async () => {
    target.mode = "close-before-headers"
    const before = target.jobs.length
    const response = await fetch(`${foreman.url}/api/generate`, { method: "POST", body: generate("closed", false) })
    expect(response.status).toBe(502)
    expect((await response.json()).error).toMatch(/^the target closed the connection before answering/)
    expect(target.jobs.length - before).toBe(2)
    await servesAgain()
  })

  it("an async job answered with garbage fails: the garbage is never its result", async () => {
    target.mode = "garbage"
    const job = await submit("garbage")
    expect(job).toMatchObject({
      status: "failed",
      attempts: 2,
      error: `the target's answer is not NDJSON: "<html>502 Bad Gateway</html>"`
    })
    expect(job.result).toBeUndefined()
    await servesAgain()
  })

  it("an async job answered with JSON nested 100 000 deep fails without a 5xx from foreman", async () => {
    target.mode = "deep"
    const job = await submit("deep")
    expect(job).toMatchObject({ status: "failed", error: "the target's answer nests deeper than 512 levels" })
    await servesAgain()
  })

  const submit = async (prompt: string) => {
    const submitted = await fetch(`${foreman.url}/foreman/v1/jobs`, {
      method: "POST",
      body: JSON.stringify({ endpoint: "/api/generate", body: { model: "llama3.2", prompt } })
    })
    expect(submitted.status).toBe(202)
    const job = await fetch(`${foreman.url}${submitted.headers.get("location")}?wait=60s`)
    expect(job.status).toBe(200)
    return await job.json() as { status: string; attempts: number; error?: string; result?: unknown }
  }
})

describe("a target that takes a stream: false job and says nothing", () => {
  // Its answer would come whole, so only --request-timeout can tell silence from a long
  // generation: the attempt ends then, the slot is freed, health says why.
  const running = inFrontOfBadTarget(
    { stallTimeout: Duration.seconds(1), requestTimeout: Duration.seconds(2), maxAttempts: 2, concurrency: 1 },
    () => {},
    { plugins: OpenAiPlugin.layer }
  )
  beforeEach(async () => {
    running.target.mode = "ok"
    const served = await fetch(`${running.foreman.url}/api/generate`, { method: "POST", body: generate("warm", false) })
    expect(served.status).toBe(200)
  })
  const servesAgain = () => servedAgain(running.target, running.foreman)

  it("an async job in the OpenAI dialect fails after --max-attempts, each attempt given --request-timeout", async () => {
    running.target.mode = "stall-before-headers"
    const before = running.target.jobs.length
    const submitted = await fetch(`${running.foreman.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", prefer: "respond-async" },
      body: JSON.stringify({ model: "llama3.2", messages: [{ role: "user", content: "hello?" }] })
    })
    expect(submitted.status).toBe(202)
    const job = await (await fetch(`${running.foreman.url}${submitted.headers.get("location")}?wait=60s`)).json()
    expect(job).toMatchObject({ status: "failed", attempts: 2, error: "the target sent nothing within 2s (--request-timeout)" })
    expect(job.startedAt).toEqual(expect.any(String))
    expect(running.target.jobs.slice(before)).toEqual(["/v1/chat/completions", "/v1/chat/completions"])
    expect(await running.foreman.health()).toMatchObject({
      status: "degraded",
      lastError: "the target sent nothing within 2s (--request-timeout)"
    })
    await servesAgain()
  })

  it("a sync caller gets 503 at its --request-timeout, and health says the target sent nothing", async () => {
    running.target.mode = "stall-before-headers"
    const response = await fetch(`${running.foreman.url}/api/generate`, { method: "POST", body: generate("silence", false) })
    expect(response.status).toBe(503)
    expect(await response.json()).toEqual({ error: "foreman: no response within 2s: the target did not start answering in time" })
    expect(await running.foreman.health()).toMatchObject({
      status: "degraded",
      jobFaults: 1,
      lastError: "the target sent nothing before the caller's --request-timeout ran out"
    })
    await servesAgain()
  })
})

describe("a target silent on a stream: false job, with --stall-timeout as long as --request-timeout (as by default)", () => {
  const running = inFrontOfBadTarget({ stallTimeout: Duration.seconds(2), requestTimeout: Duration.seconds(2), concurrency: 1 })

  it("the caller's 503 is a job fault in health", async () => {
    running.target.mode = "stall-before-headers"
    const response = await fetch(`${running.foreman.url}/api/generate`, { method: "POST", body: generate("silence", false) })
    expect(response.status).toBe(503)
    expect(await running.foreman.health()).toMatchObject({
      status: "degraded",
      jobFaults: 1,
      lastError: "the target sent nothing before the caller's --request-timeout ran out"
    })
  })
})

describe("a target whose /api/tags never ends", () => {
  const running = inFrontOfBadTarget({}, (target) => {
    target.tagsBytes = 200 * 2 ** 20
  })

  it("is read up to 16 MiB and reported, not taken whole into memory", async () => {
    await vi.waitFor(async () => expect((await running.foreman.health()).consecutiveFailures).toBeGreaterThan(0))
    expect(await running.foreman.health()).toMatchObject({
      status: "degraded",
      lastError: "target answered 502: the target's /api/tags answer is larger than 16 MiB"
    })
  })
})

describe("a request line in absolute form", () => {
  const running = inFrontOfBadTarget()

  it("is the caller's error, a 400, and nothing reaches the target", async () => {
    const { port } = new URL(running.foreman.url)
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), "127.0.0.1", () => {
        socket.end(`POST http://x/api/blobs/sha256:1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
      })
      let text = ""
      socket.setEncoding("utf8")
      socket.on("data", (chunk) => (text += chunk))
      socket.once("end", () => resolve(text))
      socket.once("error", reject)
    })
    expect(reply).toMatch(/^HTTP\/1\.1 400 /)
    expect(reply).toContain(`{"error":"the request target must be a path such as /api/chat, not \\"http://x/api/blobs/sha256:1\\""}`)
    expect(running.target.jobs).toEqual([])
  })
})

describe("back-pressure with stored async jobs waiting", () => {
  let target: FakeTarget
  let foreman: RunningForeman

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"] })
    foreman = await startForeman({ target: target.url, maxQueue: 2 })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"), { timeout: 15_000 })
  })
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  it("batch jobs stored beyond --max-queue do not turn an interactive caller away; it is served first", async () => {
    target.hold()
    const ids: Array<string> = []
    for (let i = 0; i < 6; i++) {
      const submitted = await fetch(`${foreman.url}/foreman/v1/jobs`, {
        method: "POST",
        body: JSON.stringify({ endpoint: "/api/generate", body: { model: "llama3.2", prompt: `batch ${i}` } })
      })
      expect(submitted.status).toBe(202)
      ids.push((await submitted.json()).id)
    }
    await vi.waitFor(async () => expect(await foreman.health()).toMatchObject({ running: 1, queueDepth: 5 }))
    const interactive = new Ollama({ host: foreman.url }).generate({ model: "llama3.2", prompt: "me first" })
    await vi.waitFor(async () => expect((await foreman.health()).queueDepth).toBe(6))
    target.release()
    expect((await interactive).response).toBe("echo: me first")
    const order = target.calls.filter((call) => call.path === "/api/generate").map((call) => (call.body as { prompt: string }).prompt)
    expect(order.slice(0, 2)).toEqual(["batch 0", "me first"])
    for (const id of ids) {
      expect((await (await fetch(`${foreman.url}/foreman/v1/jobs/${id}?wait=30s`)).json()).status).toBe("succeeded")
    }
  })
})

describe("JSON nested deep", () => {
  const running = inFrontOfBadTarget()
  beforeAll(async () => {
    await vi.waitFor(async () => expect((await running.foreman.health()).status).toBe("ok"), { timeout: 15_000 })
  })

  const nested = (levels: number) => "[".repeat(levels) + "]".repeat(levels)
  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${running.foreman.url}${path}`, { method: "POST", body, headers })

  it("as deep as Go allows is stored and run, sync or async, as Ollama would take it", async () => {
    const body = `{"model":"llama3.2","prompt":"deep","options":${nested(5_000)}}`
    const submitted = await post("/api/generate", body, { prefer: "respond-async" })
    expect(submitted.status).toBe(202)
    const viaApi = await post("/foreman/v1/jobs", `{"endpoint":"/api/generate","body":${body}}`)
    expect(viaApi.status).toBe(202)
    for (const response of [submitted, viaApi]) {
      const job = await (await fetch(`${running.foreman.url}${response.headers.get("location")}?wait=30s`)).json()
      expect(job).toMatchObject({ status: "succeeded", result: { response: "echo: deep" } })
    }
    // What reached the target is the body as sent, with `stream: false` for the stored job.
    expect(running.target.jobs.filter((path) => path === "/api/generate").length).toBe(2)
  })

  it("deeper than Go allows is Ollama's 400, on every way in; never a 500", async () => {
    const body = `{"model":"llama3.2","prompt":"x","options":${nested(100_000)}}`
    for (const response of [
      await post("/api/generate", body),
      await post("/api/generate", body, { prefer: "respond-async" }),
      await post("/foreman/v1/jobs", `{"endpoint":"/api/generate","body":${body}}`)
    ]) {
      expect(response.status).toBe(400)
      expect(await response.json()).toEqual({ error: "invalid character '[' exceeded max depth" })
    }
  })
})
