/**
 * The real server, the real `ollama` client, a faithful fake target on 127.0.0.1.
 * What a user of an Ollama proxy notices: the same answers as the target gives directly,
 * fast failures for missing models, and no failures while the target sleeps.
 */
import { Duration } from "effect"
import { Ollama } from "ollama"
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest"
import { timeless } from "../support/compare.ts"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type RunningForeman, startForeman } from "../support/foreman.ts"

const collect = async <T>(stream: AsyncIterable<T>): Promise<Array<T>> => {
  const parts: Array<T> = []
  for await (const part of stream) parts.push(part)
  return parts
}

describe("through foreman, the ollama client gets what the target gives", () => {
  let target: FakeTarget
  let foreman: RunningForeman
  let direct: Ollama
  let proxied: Ollama

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2", { name: "all-minilm", capabilities: ["embedding"] }] })
    foreman = await startForeman({ target: target.url })
    direct = new Ollama({ host: target.url })
    proxied = new Ollama({ host: foreman.url })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
  })
  afterEach(() => target.release())
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  it("list", async () => {
    expect(await proxied.list()).toEqual(await direct.list())
  })

  it("chat, streamed", async () => {
    const request = { model: "llama3.2", messages: [{ role: "user", content: "why is the sky blue?" }] }
    const viaForeman = await collect(await proxied.chat({ ...request, stream: true }))
    const viaTarget = await collect(await direct.chat({ ...request, stream: true }))
    expect(viaForeman.length).toBeGreaterThan(2)
    expect(timeless(viaForeman)).toEqual(timeless(viaTarget))
  })

  it("chat, not streamed", async () => {
    const request = { model: "llama3.2", messages: [{ role: "user", content: "hello" }] }
    expect(timeless(await proxied.chat(request))).toEqual(timeless(await direct.chat(request)))
  })

  it("generate", async () => {
    const request = { model: "llama3.2", prompt: "count to three" }
    expect(timeless(await proxied.generate(request))).toEqual(timeless(await direct.generate(request)))
    const streamed = await collect(await proxied.generate({ ...request, stream: true }))
    expect(timeless(streamed)).toEqual(timeless(await collect(await direct.generate({ ...request, stream: true }))))
  })

  it("embed", async () => {
    const request = { model: "all-minilm", input: ["one", "two"] }
    expect(timeless(await proxied.embed(request))).toEqual(timeless(await direct.embed(request)))
  })

  it("today's request fields reach the target as sent and its answer comes back (think levels, truncate, shift, logprobs, dimensions, tool messages)", async () => {
    const post = (url: string, path: string, body: unknown) =>
      fetch(`${url}${path}`, { method: "POST", body: JSON.stringify(body) }).then(async (r) => ({ status: r.status, body: timeless(await r.json()) }))
    const cases: Array<[string, Record<string, unknown>]> = [
      ["/api/chat", {
        model: "llama3.2",
        stream: false,
        truncate: false,
        shift: false,
        logprobs: true,
        top_logprobs: 3,
        messages: [
          { role: "user", content: "weather?" },
          { role: "assistant", content: "", tool_calls: [{ id: "call_1", function: { name: "w", arguments: {} } }] },
          { role: "tool", content: "sunny", tool_name: "w", tool_call_id: "call_1" }
        ]
      }],
      // A level the target judges (this model does not think): its 400 comes back.
      ["/api/generate", { model: "llama3.2", prompt: "hi", stream: false, think: "high" }],
      ["/api/generate", { model: "llama3.2", prompt: "hi", stream: false, think: false }],
      ["/api/embed", { model: "all-minilm", input: "hi", dimensions: 8, truncate: true }]
    ]
    for (const [path, body] of cases) {
      const before = target.calls.length
      const viaForeman = await post(foreman.url, path, body)
      expect(target.calls.slice(before).find((c) => c.path === path)?.body).toEqual(body)
      expect(viaForeman).toEqual(await post(target.url, path, body))
    }
  })

  it("a missing model fails with Ollama's 404 at once, without waiting for the queue or reaching generation", async () => {
    // A job holds foreman's only slot at the target: a request that waited its turn could not
    // be answered before the job ends.
    target.hold()
    const held = proxied.chat({ model: "llama3.2", messages: [{ role: "user", content: "hold the slot" }] })
    await vi.waitFor(() => expect(target.held).toBe(1))
    const chatsBefore = target.count("/api/chat")
    let error: { status_code: number; error: string } | undefined
    void proxied.chat({ model: "nope", messages: [{ role: "user", content: "hi" }] }).catch((e) => (error = e))
    await vi.waitFor(() => expect(error).toBeDefined(), { timeout: 5000 })
    expect(error!.status_code).toBe(404)
    expect(error!.error).toBe("model 'nope' not found")
    expect(target.held).toBe(1)
    expect(target.count("/api/chat")).toBe(chatsBefore)
    target.release()
    expect((await held).message.content).toBe("echo: hold the slot")

    const embedError = await proxied.embed({ model: "nope", input: "x" }).catch((e) => e)
    expect(embedError.status_code).toBe(404)
    expect(embedError.error).toBe(`model "nope" not found, try pulling it first`)
  })

  it("a model added after the last poll is served (grace path)", async () => {
    target.addModel("qwen3")
    const reply = await proxied.chat({ model: "qwen3", messages: [{ role: "user", content: "hi" }] })
    expect(reply.message.role).toBe("assistant")
    expect((await proxied.list()).models.map((m) => m.name)).toContain("qwen3:latest")
  })

  it("names normalise as Ollama's do", async () => {
    const reply = await proxied.generate({ model: "LLAMA3.2:Latest", prompt: "hi" })
    expect(reply.model).toBe("LLAMA3.2:Latest")
  })
})

describe("a sleeping target", () => {
  let target: FakeTarget
  let foreman: RunningForeman

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"] })
    foreman = await startForeman({ target: target.url, pollInterval: Duration.millis(200) }, { testClock: true })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
  })
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  it("is reported degraded, keeps its inventory, and work sent meanwhile completes on wake", async () => {
    const client = new Ollama({ host: foreman.url })
    await target.sleep()
    // foreman's clock stands still: no poll has seen the target go.
    expect((await foreman.health()).status).toBe("ok")
    // The next regular poll, one interval on, finds it.
    await foreman.adjust(Duration.millis(200))
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("degraded"), { timeout: 5000, interval: 20 })
    const health = await foreman.health()
    expect(health.consecutiveFailures).toBeGreaterThan(0)
    expect(String(health.lastError)).toContain("unreachable")
    expect((await client.list()).models.map((m) => m.name)).toEqual(["llama3.2:latest"])

    const reply = client.chat({ model: "llama3.2", messages: [{ role: "user", content: "are you awake?" }] })
    // The request is waiting in foreman's queue, not failed.
    await vi.waitFor(async () => expect((await foreman.health()).queueDepth).toBe(1), { interval: 20 })
    await target.wake()
    // The recovery probe finds it awake (it probes on a backoff, no slower than the poll).
    await vi.waitFor(async () => {
      await foreman.adjust(Duration.millis(200))
      expect((await foreman.health()).status).toBe("ok")
    }, { timeout: 5000, interval: 20 })
    const answer = await reply
    expect(answer.message.content.length).toBeGreaterThan(0)
  })
})
