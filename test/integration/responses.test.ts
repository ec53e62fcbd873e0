/**
 * OpenAI's Responses API and audio transcriptions through the OpenAI plugin, with the official
 * `openai` client: the same answers as the target's own routes (ids and times aside),
 * streamed event by event, async jobs for responses, missing models refused at once, errors
 * in OpenAI's envelope.
 */
import OpenAI, { BadRequestError, NotFoundError, toFile } from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { OpenAiPlugin } from "../../plugins/openai/index.ts"
import type { FakeTarget } from "../support/FakeTarget.ts"
import { collect, rejection, without } from "../support/compare.ts"
import type { RunningForeman } from "../support/foreman.ts"
import { startInFront } from "../support/inFront.ts"

/** Drops what differs between two identical calls: ids and times. */
const comparable = without(["id", "item_id", "created_at", "completed_at", "_request_id"])

const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body })

const client = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 })

const request = { model: "llama3.2", input: "why is the sky blue?" }

describe("through foreman, the openai client's responses and transcriptions match the target's", () => {
  let target: FakeTarget
  let foreman: RunningForeman
  let close: () => Promise<void>
  let direct: OpenAI
  let proxied: OpenAI

  beforeAll(async () => {
    ;({ close, foreman, target } = await startInFront(
      { models: [{ name: "llama3.2", capabilities: ["completion", "tools"] }], chunks: 4 },
      { plugins: OpenAiPlugin.layer }
    ))
    direct = client(target.url)
    proxied = client(foreman.url)
  })
  afterAll(() => close?.())

  it("responses.create, not streamed", async () => {
    const viaForeman = await proxied.responses.create(request)
    expect(viaForeman).toMatchObject({ object: "response", status: "completed" })
    expect(viaForeman.output_text).toBe("echo: why is the sky blue?")
    expect(comparable(viaForeman)).toEqual(comparable(await direct.responses.create(request)))
  })

  it("responses.create with stream: true, event by event", async () => {
    const viaForeman = await collect(await proxied.responses.create({ ...request, stream: true }))
    const viaTarget = await collect(await direct.responses.create({ ...request, stream: true }))
    expect(viaForeman[0]?.type).toBe("response.created")
    expect(viaForeman.at(-1)?.type).toBe("response.completed")
    expect(viaForeman.filter((event) => event.type === "response.output_text.delta").map((event) => event.type === "response.output_text.delta" ? event.delta : "").join(""))
      .toBe("echo: why is the sky blue?")
    expect(comparable(viaForeman)).toEqual(comparable(viaTarget))
  })

  it("responses.stream() gives the same final response", async () => {
    const viaForeman = await proxied.responses.stream(request).finalResponse()
    expect(viaForeman.output_text).toBe("echo: why is the sky blue?")
    expect(comparable(viaForeman)).toEqual(comparable(await direct.responses.stream(request).finalResponse()))
  })

  it("a function call, with instructions and a message list", async () => {
    const ask = {
      model: "llama3.2",
      instructions: "be brief",
      input: [{ role: "user" as const, content: `call get_weather {"city":"Paris"}` }],
      tools: [{ type: "function" as const, name: "get_weather", description: "weather", parameters: { type: "object", properties: { city: { type: "string" } } }, strict: false }]
    }
    const viaForeman = await proxied.responses.create(ask)
    const call = viaForeman.output.find((item) => item.type === "function_call")
    expect(call).toMatchObject({ type: "function_call", name: "get_weather", arguments: `{"city":"Paris"}` })
    expect(comparable(viaForeman)).toEqual(comparable(await direct.responses.create(ask)))
  })

  it("a missing model is NotFoundError at once, and never reaches the target", async () => {
    const before = target.count("/v1/responses")
    const missing = await rejection(proxied.responses.create({ ...request, model: "nope" }))
    expect(missing).toBeInstanceOf(NotFoundError)
    expect((missing as NotFoundError).error).toEqual({ message: "model 'nope' not found", type: "not_found_error", param: null, code: null })
    expect(await rejection(proxied.responses.create({ ...request, model: "nope", stream: true }))).toBeInstanceOf(NotFoundError)
    expect(target.count("/v1/responses")).toBe(before)
  })

  it("bad bodies are 400 in the target's words", async () => {
    for (const body of ["", "{", `{"model": 1}`, `{"model":"llama3.2","input":"x","stream":"yes"}`, `{"input":"x"}`, `{"model":"llama3.2","input":[{"content":"x"}]}`]) {
      const viaForeman = await post(`${foreman.url}/v1/responses`, body)
      const viaTarget = await post(`${target.url}/v1/responses`, body)
      expect(viaForeman.status, body).toBe(400)
      expect(viaTarget.status, body).toBe(400)
      expect(await viaForeman.json(), body).toEqual(await viaTarget.json())
    }
  })

  it("Prefer: respond-async answers 202; the job's result is the non-streamed response", async () => {
    const response = await post(`${foreman.url}/v1/responses`, JSON.stringify({ ...request, stream: true }), { prefer: "respond-async" })
    expect(response.status).toBe(202)
    const job = (await response.json()) as { endpoint: string; priority: string }
    expect(job).toMatchObject({ endpoint: "/v1/responses", priority: "batch" })
    const done = (await (await fetch(`${foreman.url}${response.headers.get("location")}?wait=30s`)).json()) as { status: string; result: unknown }
    expect(done.status).toBe("succeeded")
    expect(target.calls.filter((c) => c.path === "/v1/responses").at(-1)?.body).toMatchObject({ stream: false })
    const fromTarget = await (await post(`${target.url}/v1/responses`, JSON.stringify(request))).json()
    expect(comparable(done.result)).toEqual(comparable(fromTarget))

    const missing = await post(`${foreman.url}/v1/responses`, JSON.stringify({ ...request, model: "nope" }), { prefer: "respond-async" })
    expect(missing.status).toBe(404)
  })

  describe("audio.transcriptions.create", () => {
    const audio = () => toFile(Buffer.from("RIFF-not-really-a-wav"), "speech.wav", { type: "audio/wav" })

    it("sends the form to the target as it came and answers as it does, as JSON and as text", async () => {
      const viaForeman = await proxied.audio.transcriptions.create({ model: "llama3.2", file: await audio() })
      expect(viaForeman).toEqual(await direct.audio.transcriptions.create({ model: "llama3.2", file: await audio() }))
      expect(viaForeman.text).toBe("echo: What exact words are spoken in this audio?")
      const sent = target.calls.filter((c) => c.path === "/v1/audio/transcriptions").at(-1)
      expect(String(sent?.body)).toContain("RIFF-not-really-a-wav")

      const text = await proxied.audio.transcriptions.create({ model: "llama3.2", file: await audio(), response_format: "text" })
      expect(text).toBe(await direct.audio.transcriptions.create({ model: "llama3.2", file: await audio(), response_format: "text" }))
    })

    it("a missing model is NotFoundError without reaching the target; a form without a file is 400", async () => {
      const before = target.count("/v1/audio/transcriptions")
      const missing = await rejection(proxied.audio.transcriptions.create({ model: "nope", file: await audio() }))
      expect(missing).toBeInstanceOf(NotFoundError)
      expect(target.count("/v1/audio/transcriptions")).toBe(before)

      const form = new FormData()
      form.set("model", "llama3.2")
      const viaForeman = await fetch(`${foreman.url}/v1/audio/transcriptions`, { method: "POST", body: form })
      expect(viaForeman.status).toBe(400)
      expect(await viaForeman.json()).toEqual(await (await fetch(`${target.url}/v1/audio/transcriptions`, { method: "POST", body: form })).json())
      const json = await post(`${foreman.url}/v1/audio/transcriptions`, "{}")
      expect(json.status).toBe(400)
      expect(await json.json()).toEqual(await (await post(`${target.url}/v1/audio/transcriptions`, "{}")).json())
      expect(await rejection(proxied.audio.transcriptions.create({ model: "", file: await audio() }))).toBeInstanceOf(BadRequestError)
    })

    it("runs in the request even with Prefer: respond-async (a form is not stored as a job)", async () => {
      const form = new FormData()
      form.set("model", "llama3.2")
      form.set("file", new Blob(["hello"], { type: "audio/wav" }), "a.wav")
      const response = await fetch(`${foreman.url}/v1/audio/transcriptions`, { method: "POST", body: form, headers: { prefer: "respond-async" } })
      expect(response.status).toBe(200)
      expect(response.headers.get("preference-applied")).toBeNull()
      expect(await response.json()).toEqual({ text: "echo: What exact words are spoken in this audio?" })
    })
  })
})
