/**
 * The Anthropic plugin through the official `@anthropic-ai/sdk` client: what Claude Code or
 * any Anthropic SDK pointed at foreman notices. The same answers as the target's own
 * `/v1/messages` gives directly (ids aside), streamed event by event, async jobs, missing
 * models refused at once, and every error in Anthropic's envelope.
 */
import Anthropic, { APIError, BadRequestError, NotFoundError } from "@anthropic-ai/sdk"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { AnthropicPlugin } from "../../plugins/anthropic/index.ts"
import type { FakeTarget } from "../support/FakeTarget.ts"
import { collect, rejection, without } from "../support/compare.ts"
import type { Job } from "../../src/http/api/ForemanApi.ts"
import { finishedJob, type RunningForeman } from "../support/foreman.ts"
import { startInFront } from "../support/inFront.ts"

/** Drops what differs between two identical calls: ids and times. */
const comparable = without(["id", "request_id", "_request_id"])

const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body })

/** SSE frames as `[event, data]`, in order. */
const events = (text: string) =>
  text.split("\n\n").filter((frame) => frame !== "").map((frame) => {
    const [eventLine, dataLine] = frame.split("\n")
    expect(eventLine?.startsWith("event: ")).toBe(true)
    expect(dataLine?.startsWith("data: ")).toBe(true)
    return [eventLine!.slice("event: ".length), JSON.parse(dataLine!.slice("data: ".length)) as unknown] as const
  })

const client = (url: string) => new Anthropic({ baseURL: url, apiKey: "unused", maxRetries: 0 })

const request = { model: "llama3.2", max_tokens: 64, messages: [{ role: "user" as const, content: "why is the sky blue?" }] }

const weatherTool = {
  name: "get_weather",
  description: "The weather in a city",
  input_schema: { type: "object" as const, properties: { city: { type: "string" } }, required: ["city"] }
}

describe("through foreman, the Anthropic client gets what the target's /v1/messages gives", () => {
  let target: FakeTarget
  let foreman: RunningForeman
  let close: () => Promise<void>
  let direct: Anthropic
  let proxied: Anthropic

  beforeAll(async () => {
    ;({ close, foreman, target } = await startInFront(
      { models: [{ name: "llama3.2", capabilities: ["completion", "tools"] }], chunks: 4 },
      { plugins: AnthropicPlugin.layer }
    ))
    direct = client(target.url)
    proxied = client(foreman.url)
  })
  afterAll(() => close?.())

  it("is a plugin named anthropic", () => {
    expect(AnthropicPlugin.name).toBe("anthropic")
  })

  it("messages.create, not streamed", async () => {
    const viaForeman = await proxied.messages.create(request)
    const viaTarget = await direct.messages.create(request)
    expect(viaForeman).toMatchObject({ type: "message", role: "assistant", stop_reason: "end_turn" })
    expect(viaForeman.content).toEqual([{ type: "text", text: "echo: why is the sky blue?" }])
    expect(comparable(viaForeman)).toEqual(comparable(viaTarget))
  })

  it("messages.create with stream: true, event by event", async () => {
    const viaForeman = await collect(await proxied.messages.create({ ...request, stream: true }))
    const viaTarget = await collect(await direct.messages.create({ ...request, stream: true }))
    expect(viaForeman.map((event) => event.type)).toEqual([
      "message_start",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop"
    ])
    expect(comparable(viaForeman)).toEqual(comparable(viaTarget))
  })

  it("messages.stream() accumulates the same final message", async () => {
    const viaForeman = await proxied.messages.stream(request).finalMessage()
    const viaTarget = await direct.messages.stream(request).finalMessage()
    expect(viaForeman.content).toEqual([{ type: "text", text: "echo: why is the sky blue?" }])
    expect(comparable(viaForeman)).toEqual(comparable(viaTarget))
  })

  it("the SSE bytes go through as the target sends them: text/event-stream, event: lines", async () => {
    const body = JSON.stringify({ ...request, stream: true })
    const viaForeman = await post(`${foreman.url}/v1/messages`, body)
    const viaTarget = await post(`${target.url}/v1/messages`, body)
    expect(viaForeman.status).toBe(200)
    expect(viaForeman.headers.get("content-type")).toBe("text/event-stream")
    expect(comparable(events(await viaForeman.text()))).toEqual(comparable(events(await viaTarget.text())))
  })

  it("a tool call, and the answer to it", async () => {
    const ask = { ...request, tools: [weatherTool], messages: [{ role: "user" as const, content: `call get_weather {"city":"Paris"}` }] }
    const viaForeman = await proxied.messages.create(ask)
    expect(viaForeman.stop_reason).toBe("tool_use")
    const use = viaForeman.content.find((block) => block.type === "tool_use")
    expect(use).toMatchObject({ type: "tool_use", name: "get_weather", input: { city: "Paris" } })
    expect(comparable(viaForeman)).toEqual(comparable(await direct.messages.create(ask)))

    const streamed = await proxied.messages.stream(ask).finalMessage()
    expect(streamed.content.find((block) => block.type === "tool_use")).toMatchObject({ name: "get_weather", input: { city: "Paris" } })

    const answer = {
      ...request,
      tools: [weatherTool],
      messages: [
        ...ask.messages,
        { role: "assistant" as const, content: viaForeman.content },
        { role: "user" as const, content: [{ type: "tool_result" as const, tool_use_id: use!.type === "tool_use" ? use!.id : "", content: "sunny" }] }
      ]
    }
    expect(comparable(await proxied.messages.create(answer))).toEqual(comparable(await direct.messages.create(answer)))
  })

  it("a missing model is NotFoundError at once, in Anthropic's envelope, and never reaches the target", async () => {
    const before = target.count("/v1/messages")
    const missing = await rejection(proxied.messages.create({ ...request, model: "nope" }))
    expect(missing).toBeInstanceOf(NotFoundError)
    expect((missing as NotFoundError).error).toMatchObject({
      type: "error",
      error: { type: "not_found_error", message: "model 'nope' not found" }
    })
    const streamed = await rejection(proxied.messages.create({ ...request, model: "nope", stream: true }))
    expect(streamed).toBeInstanceOf(NotFoundError)
    expect(target.count("/v1/messages")).toBe(before)
    // The target says the same.
    const fromTarget = await rejection(direct.messages.create({ ...request, model: "nope" }))
    expect(comparable((fromTarget as NotFoundError).error)).toEqual(comparable((missing as NotFoundError).error))
  })

  it("bad bodies are 400 in the target's words, checked in the middleware's order", async () => {
    const cases = [
      "",
      "{",
      JSON.stringify({ max_tokens: 5, messages: request.messages }),
      JSON.stringify({ model: "llama3.2", messages: request.messages }),
      JSON.stringify({ model: "llama3.2", max_tokens: 0, messages: request.messages }),
      JSON.stringify({ model: "llama3.2", max_tokens: 5, messages: [] }),
      JSON.stringify({ model: "nope", max_tokens: 0, messages: [] }),
      JSON.stringify({ model: "llama3.2", max_tokens: 5, messages: "hi" })
    ]
    for (const body of cases) {
      const viaForeman = await post(`${foreman.url}/v1/messages`, body)
      const viaTarget = await post(`${target.url}/v1/messages`, body)
      expect(viaForeman.status, body).toBe(400)
      expect(viaTarget.status, body).toBe(400)
      expect(comparable(await viaForeman.json()), body).toEqual(comparable(await viaTarget.json()))
    }
    const error = await rejection(proxied.messages.create({ ...request, max_tokens: 0 }))
    expect(error).toBeInstanceOf(BadRequestError)
    expect((error as BadRequestError).error).toMatchObject({ error: { type: "invalid_request_error", message: "max_tokens is required and must be positive" } })
  })

  it("an error the target gives after the model check comes back in Anthropic's envelope with its status", async () => {
    // An image source the target does not take: foreman leaves content blocks to it.
    const body = JSON.stringify({
      ...request,
      messages: [{ role: "user", content: [{ type: "image", source: { type: "url", url: "https://example.com/x.png" } }] }]
    })
    const viaForeman = await post(`${foreman.url}/v1/messages`, body)
    expect(viaForeman.status).toBe(400)
    expect(await viaForeman.json()).toMatchObject({
      type: "error",
      error: { type: "invalid_request_error", message: "invalid image source type: url. Only base64 images are supported." }
    })
  })

  it("a stream the target breaks off ends with Anthropic's error event, which the client raises", async () => {
    target.failNext("/v1/messages", { mode: "reset", afterLines: 3 })
    const body = JSON.stringify({ ...request, stream: true })
    const text = await (await post(`${foreman.url}/v1/messages`, body)).text()
    const last = events(text).at(-1)
    expect(last?.[0]).toBe("error")
    expect(last?.[1]).toMatchObject({ type: "error", error: { type: "api_error" } })
    expect(events(text).some(([name]) => name === "message_stop")).toBe(false)

    target.failNext("/v1/messages", { mode: "reset", afterLines: 3 })
    const raised = await rejection(collect(await proxied.messages.create({ ...request, stream: true })))
    expect(raised).toBeInstanceOf(APIError)
  })

  describe("Prefer: respond-async", () => {
    const wait = (location: string) => finishedJob(foreman.url, location)

    it("answers 202 with the job; its result is the non-streamed message", async () => {
      const response = await post(`${foreman.url}/v1/messages`, JSON.stringify({ ...request, stream: true }), { prefer: "respond-async" })
      expect(response.status).toBe(202)
      const job = (await response.json()) as typeof Job.Encoded
      expect(job).toMatchObject({ endpoint: "/v1/messages", model: "llama3.2", priority: "batch" })
      const done = await wait(response.headers.get("location")!)
      expect(done.status).toBe("succeeded")
      expect(target.calls.filter((c) => c.path === "/v1/messages").at(-1)?.body).toMatchObject({ stream: false })
      expect(comparable(done.result)).toEqual(comparable(await direct.messages.create(request)))
    })

    it("a missing model is 404 in Anthropic's envelope, no job made", async () => {
      const response = await post(`${foreman.url}/v1/messages`, JSON.stringify({ ...request, model: "nope" }), { prefer: "respond-async" })
      expect(response.status).toBe(404)
      expect(await response.json()).toMatchObject({ type: "error", error: { type: "not_found_error", message: "model 'nope' not found" } })
    })
  })
})
