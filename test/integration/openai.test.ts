/**
 * The OpenAI plugin through the official `openai` client: what a user of foreman's `/v1`
 * notices. The same answers as the target's own `/v1` gives directly (ids and timestamps
 * aside), missing models refused at once without reaching the target, bad bodies refused
 * with the target's words, and every error in OpenAI's envelope.
 */
import { Duration } from "effect"
import OpenAI, { APIError, BadRequestError, InternalServerError, NotFoundError } from "openai"
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest"
import { OpenAiPlugin } from "../../plugins/openai/index.ts"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import type { Job } from "../../src/http/api/ForemanApi.ts"
import { finishedJob, type RunningForeman, startForeman } from "../support/foreman.ts"

const collect = async <T>(stream: AsyncIterable<T>): Promise<Array<T>> => {
  const parts: Array<T> = []
  for await (const part of stream) parts.push(part)
  return parts
}

/** Drops what differs between two identical calls: `chatcmpl-N` ids and `created` seconds. */
const comparable = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(comparable)
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).filter(([key]) => key !== "id" && key !== "created"))
  }
  return value
}

/** The rejection of a promise (fails the test if it resolves). */
const rejection = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected the call to fail")
}

const envelope = (message: string, type: string) => ({ error: { message, type, param: null, code: null } })

const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body })

const reply = async (response: Response) => ({
  status: response.status,
  contentType: response.headers.get("content-type"),
  body: (await response.json()) as unknown
})

/** SSE frames' payloads, in order. */
const frames = (text: string) =>
  text.split("\n\n").filter((frame) => frame !== "").map((frame) => {
    expect(frame.startsWith("data: ")).toBe(true)
    const data = frame.slice("data: ".length)
    return data === "[DONE]" ? data : (JSON.parse(data) as unknown)
  })

const chatRequest = { model: "llama3.2", messages: [{ role: "user" as const, content: "why is the sky blue?" }] }

const client = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 })

describe("through foreman, the openai client gets what the target's /v1 gives", () => {
  let target: FakeTarget
  let foreman: RunningForeman
  let direct: OpenAI
  let proxied: OpenAI

  beforeAll(async () => {
    target = await startFakeTarget({
      models: ["llama3.2", { name: "all-minilm", capabilities: ["embedding"] }, "hf.co/org/repo:Q4_K_M"]
    })
    foreman = await startForeman(
      { target: target.url, pollInterval: Duration.millis(100), maxBodySize: 64 * 1024 },
      { plugins: OpenAiPlugin.layer }
    )
    direct = client(target.url)
    proxied = client(foreman.url)
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
  })
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  it("is a plugin named openai", () => {
    expect(OpenAiPlugin.name).toBe("openai")
  })

  it("models.list() returns the target's models from the cache, without asking the target", async () => {
    const before = target.count("/v1/models")
    const viaForeman = await collect(proxied.models.list())
    expect(target.count("/v1/models")).toBe(before)
    const viaTarget = await collect(direct.models.list())
    expect(viaForeman.map((m) => m.id)).toEqual(["llama3.2:latest", "all-minilm:latest", "hf.co/org/repo:Q4_K_M"])
    expect(viaForeman).toEqual(viaTarget)
    expect(viaForeman[2]?.owned_by).toBe("org")
    const raw = await reply(await fetch(`${foreman.url}/v1/models`))
    expect(raw).toMatchObject({ status: 200, contentType: "application/json", body: { object: "list" } })
  })

  it("models.retrieve() echoes the id as given; a missing model is NotFoundError with the normalised name", async () => {
    for (const id of ["llama3.2", "LLAMA3.2:Latest", "all-minilm:latest"]) {
      expect(await proxied.models.retrieve(id)).toEqual(await direct.models.retrieve(id))
    }
    const missing = await rejection(proxied.models.retrieve("nope"))
    expect(missing).toBeInstanceOf(NotFoundError)
    expect((missing as NotFoundError).error).toEqual(envelope("model 'nope:latest' not found", "not_found_error").error)
    expect(await reply(await fetch(`${foreman.url}/v1/models/nope`))).toEqual(
      await reply(await fetch(`${target.url}/v1/models/nope`))
    )
    expect(await reply(await fetch(`${foreman.url}/v1/models/bad%20name`))).toEqual(
      await reply(await fetch(`${target.url}/v1/models/bad%20name`))
    )
  })

  it("models.retrieve() never calls the target", async () => {
    const before = target.calls.filter((c) => c.path.startsWith("/v1/models")).length
    await proxied.models.retrieve("llama3.2")
    await rejection(proxied.models.retrieve("nope"))
    expect(target.calls.filter((c) => c.path.startsWith("/v1/models")).length).toBe(before)
  })

  it("a namespaced model is found too (the client sends its slashes as %2F)", async () => {
    expect(await proxied.models.retrieve("hf.co/org/repo:Q4_K_M")).toMatchObject({
      id: "hf.co/org/repo:Q4_K_M",
      object: "model",
      owned_by: "org"
    })
  })

  it("chat.completions.create, not streamed", async () => {
    const viaForeman = await proxied.chat.completions.create(chatRequest)
    const viaTarget = await direct.chat.completions.create(chatRequest)
    expect(viaForeman.object).toBe("chat.completion")
    expect(viaForeman.choices[0]?.message.content).toBe("echo: why is the sky blue?")
    expect(comparable(viaForeman)).toEqual(comparable(viaTarget))
  })

  it("chat.completions.create, streamed (with the usage chunk)", async () => {
    const request = { ...chatRequest, stream: true as const, stream_options: { include_usage: true } }
    const viaForeman = await collect(await proxied.chat.completions.create(request))
    const viaTarget = await collect(await direct.chat.completions.create(request))
    expect(viaForeman.length).toBeGreaterThan(3)
    expect(viaForeman.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("")).toBe("echo: why is the sky blue?")
    expect(comparable(viaForeman)).toEqual(comparable(viaTarget))
  })

  it("SSE goes through as the target sends it: text/event-stream, frame for frame, data: [DONE] last", async () => {
    const body = JSON.stringify({ ...chatRequest, stream: true })
    const viaForeman = await post(`${foreman.url}/v1/chat/completions`, body)
    const viaTarget = await post(`${target.url}/v1/chat/completions`, body)
    expect(viaForeman.status).toBe(200)
    expect(viaForeman.headers.get("content-type")).toBe("text/event-stream")
    const text = await viaForeman.text()
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true)
    expect(comparable(frames(text))).toEqual(comparable(frames(await viaTarget.text())))
  })

  it("completions.create, streamed and not", async () => {
    const request = { model: "llama3.2", prompt: "count to three" }
    const viaForeman = await proxied.completions.create(request)
    expect(viaForeman.choices[0]?.text).toBe("echo: count to three")
    expect(comparable(viaForeman)).toEqual(comparable(await direct.completions.create(request)))
    const streamed = await collect(await proxied.completions.create({ ...request, stream: true }))
    expect(streamed.length).toBeGreaterThan(2)
    expect(comparable(streamed)).toEqual(comparable(await collect(await direct.completions.create({ ...request, stream: true }))))
  })

  it("embeddings.create, as floats and as base64", async () => {
    const request = { model: "all-minilm", input: ["why is the sky blue?", "because"] }
    const viaForeman = await proxied.embeddings.create(request)
    expect(viaForeman.data).toHaveLength(2)
    expect(viaForeman).toEqual(await direct.embeddings.create(request))
    const floats = { ...request, encoding_format: "float" as const }
    expect(await proxied.embeddings.create(floats)).toEqual(await direct.embeddings.create(floats))
  })

  it("keys match in any case, as Go decodes them, and the bytes reach the target untouched", async () => {
    const body = `{"Model":"llama3.2","Messages":[{"role":"user","content":"hi"}],"extra":{"kept":true}}`
    const response = await post(`${foreman.url}/v1/chat/completions`, body)
    expect(response.status).toBe(200)
    expect(((await response.json()) as OpenAI.ChatCompletion).choices[0]?.message.content).toBe("echo: hi")
    const last = target.calls.filter((c) => c.path === "/v1/chat/completions").at(-1)
    expect(last?.body).toEqual(JSON.parse(body))
  })

  it("a missing model raises NotFoundError at once, in the target's words, and never reaches the target", async () => {
    const before = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"].map((path) => target.count(path))
    const chat = await rejection(proxied.chat.completions.create({ ...chatRequest, model: "nope" }))
    expect(chat).toBeInstanceOf(NotFoundError)
    expect((chat as NotFoundError).error).toEqual(envelope("model 'nope' not found", "not_found_error").error)
    const streamed = await rejection(proxied.chat.completions.create({ ...chatRequest, model: "nope", stream: true }))
    expect(streamed).toBeInstanceOf(NotFoundError)
    const completion = await rejection(proxied.completions.create({ model: "nope", prompt: "x" }))
    expect(completion).toBeInstanceOf(NotFoundError)
    expect((completion as NotFoundError).message).toBe("404 model 'nope' not found")
    const embedding = await rejection(proxied.embeddings.create({ model: "nope", input: "x" }))
    expect(embedding).toBeInstanceOf(NotFoundError)
    expect((embedding as NotFoundError).error).toEqual(
      envelope(`model "nope" not found, try pulling it first`, "not_found_error").error
    )
    expect(["/v1/chat/completions", "/v1/completions", "/v1/embeddings"].map((path) => target.count(path))).toEqual(before)
    // ... and the answer is the one the target gives.
    const body = JSON.stringify({ ...chatRequest, model: "nope" })
    expect(await reply(await post(`${foreman.url}/v1/chat/completions`, body))).toEqual(
      await reply(await post(`${target.url}/v1/chat/completions`, body))
    )
  })

  it("bad bodies are BadRequestError, with the target's status and words", async () => {
    const error = await rejection(proxied.chat.completions.create({ model: "llama3.2", messages: [] }))
    expect(error).toBeInstanceOf(BadRequestError)
    expect((error as BadRequestError).error).toEqual(envelope("[] is too short - 'messages'", "invalid_request_error").error)
    const noModel = await rejection(proxied.chat.completions.create({ messages: chatRequest.messages } as never))
    expect(noModel).toBeInstanceOf(BadRequestError)
    expect((noModel as BadRequestError).message).toBe("400 model is required")
  })

  // [route, body, whether foreman refuses it itself (else the target does, after the queue)]
  const badBodies: ReadonlyArray<readonly [string, string, boolean]> = [
    ["/v1/chat/completions", "", true],
    ["/v1/chat/completions", "{bad", true],
    ["/v1/chat/completions", "[]", true],
    ["/v1/chat/completions", "null", true],
    ["/v1/chat/completions", `{"model":"llama3.2","messages":[]}`, true],
    ["/v1/chat/completions", `{"model":"nope","messages":[]}`, true],
    ["/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`, true],
    ["/v1/chat/completions", `{"model":5,"messages":[{"role":"user","content":"hi"}]}`, true],
    ["/v1/chat/completions", `{"model":"llama3.2","messages":"hi"}`, true],
    ["/v1/chat/completions", `{"model":"bad name!","messages":[{"role":"user","content":"hi"}]}`, true],
    [
      "/v1/chat/completions",
      `{"model":"llama3.2","messages":[{"role":"user","content":[{"type":"image_url","image_url":"https://example.com/a.png"}]}]}`,
      false
    ],
    ["/v1/completions", `{}`, true],
    ["/v1/completions", `{"model":"llama3.2","prompt":["x"]}`, true],
    ["/v1/completions", `{"model":"llama3.2","prompt":"x","stop":[1]}`, false],
    ["/v1/embeddings", `{}`, true],
    ["/v1/embeddings", `{"input":"x"}`, true],
    ["/v1/embeddings", `{"model":"all-minilm","input":[1]}`, true],
    ["/v1/embeddings", `{"model":"all-minilm","input":"x","encoding_format":"hex"}`, false]
  ]
  for (const [route, body, refusedByForeman] of badBodies) {
    it(`${route} ${JSON.stringify(body)}: the target's answer, in the envelope`, async () => {
      const before = target.count(route)
      const viaForeman = await reply(await post(`${foreman.url}${route}`, body))
      expect(target.count(route)).toBe(before + (refusedByForeman ? 0 : 1))
      const viaTarget = await reply(await post(`${target.url}${route}`, body))
      expect([400, 404]).toContain(viaForeman.status)
      expect(viaForeman).toEqual(viaTarget)
    })
  }

  it("a body over --max-body-size and a bad X-Foreman-Priority are refused in the envelope", async () => {
    const big = JSON.stringify({ ...chatRequest, messages: [{ role: "user", content: "x".repeat(70 * 1024) }] })
    const tooLarge = await reply(await post(`${foreman.url}/v1/chat/completions`, big))
    expect(tooLarge).toEqual({
      status: 413,
      contentType: "application/json",
      body: envelope(`request body too large (limit ${64 * 1024} bytes)`, "api_error")
    })
    const badPriority = await reply(
      await post(`${foreman.url}/v1/chat/completions`, JSON.stringify(chatRequest), { "x-foreman-priority": "urgent" })
    )
    expect(badPriority.status).toBe(400)
    expect(badPriority.body).toEqual(
      envelope(`invalid X-Foreman-Priority "urgent": expected one of interactive, normal, batch`, "invalid_request_error")
    )
  })

  it("a target failure before the first frame is answered in the envelope with its status", async () => {
    target.failNext("/v1/chat/completions", { mode: "status", status: 500, message: "llama runner process has terminated" })
    const error = await rejection(proxied.chat.completions.create({ ...chatRequest, stream: true }))
    expect(error).toBeInstanceOf(InternalServerError)
    expect((error as InternalServerError).status).toBe(500)
    expect((error as InternalServerError).error).toEqual(envelope("llama runner process has terminated", "api_error").error)
  })

  it("a target failure mid-stream ends the stream as the target does: no [DONE]", async () => {
    const body = JSON.stringify({ ...chatRequest, stream: true })
    target.failNext("/v1/chat/completions", { mode: "midstream", afterLines: 2, message: "boom" })
    const viaForeman = await (await post(`${foreman.url}/v1/chat/completions`, body)).text()
    target.failNext("/v1/chat/completions", { mode: "midstream", afterLines: 2, message: "boom" })
    const viaTarget = await (await post(`${target.url}/v1/chat/completions`, body)).text()
    expect(viaForeman).not.toContain("[DONE]")
    expect(comparable(frames(viaForeman))).toEqual(comparable(frames(viaTarget)))
  })

  describe("Prefer: respond-async", () => {
    const wait = (location: string) => finishedJob(foreman.url, location)

    it("POST /v1/chat/completions answers 202 with the job; its result is the non-streamed completion", async () => {
      // Even a request that asked for a stream: the stored result is the final body.
      const body = JSON.stringify({ ...chatRequest, stream: true })
      const response = await post(`${foreman.url}/v1/chat/completions`, body, { prefer: "respond-async" })
      expect(response.status).toBe(202)
      const job = (await response.json()) as typeof Job.Encoded
      const location = response.headers.get("location")
      expect(location).toBe(`/foreman/v1/jobs/${job.id}`)
      expect(job).toMatchObject({ endpoint: "/v1/chat/completions", model: "llama3.2", priority: "batch" })
      const done = await wait(location!)
      expect(done.status).toBe("succeeded")
      const sent = target.calls.filter((c) => c.path === "/v1/chat/completions").at(-1)
      expect(sent?.body).toMatchObject({ stream: false })
      expect(comparable(done.result)).toEqual(comparable(await direct.chat.completions.create(chatRequest)))
    })

    it("embeddings too, with the priority of X-Foreman-Priority; a missing model is 404 in the envelope", async () => {
      const request = { model: "all-minilm", input: "why is the sky blue?" }
      const response = await post(`${foreman.url}/v1/embeddings`, JSON.stringify(request), {
        prefer: "respond-async",
        "x-foreman-priority": "normal"
      })
      expect(response.status).toBe(202)
      const job = (await response.json()) as typeof Job.Encoded
      expect(job.priority).toBe("normal")
      const done = await wait(response.headers.get("location")!)
      expect(done.status).toBe("succeeded")
      expect(done.result).toEqual(await (await post(`${target.url}/v1/embeddings`, JSON.stringify(request))).json())

      const missing = await reply(
        await post(`${foreman.url}/v1/chat/completions`, JSON.stringify({ ...chatRequest, model: "nope" }), { prefer: "respond-async" })
      )
      expect(missing).toMatchObject({ status: 404, body: envelope("model 'nope' not found", "not_found_error") })
    })
  })
})

describe("SSE is passed through chunk by chunk", () => {
  let target: FakeTarget
  let foreman: RunningForeman

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"], chunks: 4 })
    foreman = await startForeman({ target: target.url }, { plugins: OpenAiPlugin.layer })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
  })
  afterEach(() => target.release())
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  it("the first frame reaches the caller while the target is still producing the rest", async () => {
    // The target sends each token after the first only once the caller has the frames before
    // it: a buffered reply would never reach the caller.
    target.pace()
    const stream = await client(foreman.url).chat.completions.create({ ...chatRequest, stream: true })
    const frames: Array<string> = []
    const reading = (async () => {
      for await (const chunk of stream) frames.push(chunk.choices[0]?.delta.content ?? "")
    })()
    // The role frame comes with the first token, each further token in a frame of its own.
    const tokens = () => frames.filter((content) => content !== "").length
    for (let n = 1; n <= 4; n++) {
      await vi.waitFor(() => expect(tokens()).toBe(n), { timeout: 5000, interval: 5 })
      target.step()
    }
    await reading
    expect(frames.length).toBeGreaterThanOrEqual(5)
    expect(frames.join("")).toBe("echo: why is the sky blue?")
  })
})

describe("with no models at the target", () => {
  let target: FakeTarget
  let foreman: RunningForeman

  beforeAll(async () => {
    target = await startFakeTarget({ models: [] })
    foreman = await startForeman({ target: target.url }, { plugins: OpenAiPlugin.layer })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
  })
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  it("/v1/models answers data: null, like the target", async () => {
    const viaForeman = await reply(await fetch(`${foreman.url}/v1/models`))
    expect(viaForeman.body).toEqual({ object: "list", data: null })
    expect(viaForeman).toEqual(await reply(await fetch(`${target.url}/v1/models`)))
    expect(await collect(client(foreman.url).models.list())).toEqual([])
  })
})

describe("a full queue", () => {
  let target: FakeTarget
  let foreman: RunningForeman

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"] })
    foreman = await startForeman({ target: target.url, maxQueue: 1 }, { plugins: OpenAiPlugin.layer })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
  })
  afterAll(async () => {
    target?.release()
    await foreman?.close()
    await target?.close()
  })

  it("answers 503 with Retry-After in the envelope; the accepted jobs complete", async () => {
    const openai = client(foreman.url)
    target.hold()
    const running = openai.chat.completions.create(chatRequest)
    await vi.waitFor(() => expect(target.held).toBe(1))
    const queued = openai.chat.completions.create(chatRequest)
    await vi.waitFor(async () => expect((await foreman.health()).queueDepth).toBe(1), { interval: 20 })

    const refused = await rejection(openai.chat.completions.create(chatRequest))
    expect(refused).toBeInstanceOf(InternalServerError)
    expect((refused as APIError).status).toBe(503)
    expect((refused as APIError).headers?.get("retry-after")).toBe("5")
    expect((refused as APIError).error).toEqual(
      envelope("server busy, please try again.  maximum pending requests exceeded", "api_error").error
    )

    target.release()
    const replies = await Promise.all([running, queued])
    expect(replies.map((r) => r.choices[0]?.message.content)).toEqual(["echo: why is the sky blue?", "echo: why is the sky blue?"])
  })
})

describe("a target asleep past the request timeout", () => {
  let target: FakeTarget
  let foreman: RunningForeman

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"] })
    foreman = await startForeman(
      { target: target.url, requestTimeout: Duration.millis(400), pollInterval: Duration.millis(100) },
      { plugins: OpenAiPlugin.layer }
    )
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
    await target.sleep()
  })
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  it("answers 503 in the envelope with Retry-After; /v1/models still lists the last inventory", async () => {
    const openai = client(foreman.url)
    const error = await rejection(openai.chat.completions.create(chatRequest))
    expect(error).toBeInstanceOf(InternalServerError)
    expect((error as APIError).status).toBe(503)
    expect((error as APIError).headers?.get("retry-after")).toBe("5")
    expect((error as APIError).error).toMatchObject({ type: "api_error", param: null, code: null })
    expect(((error as APIError).error as { message: string }).message).toMatch(/^foreman: no response within .*: the target is unreachable/)
    expect((await collect(openai.models.list())).map((m) => m.id)).toEqual(["llama3.2:latest"])
  })
})
