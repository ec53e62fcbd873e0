import { Ollama } from "ollama"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { rfc3339, startFakeTarget, type FakeTarget, type FakeTargetOptions } from "./FakeTarget.ts"

// ---------------------------------------------------------------------------------------------
// helpers

/** Start a fake for one test and always close it. */
const withFake = async (options: FakeTargetOptions, body: (fake: FakeTarget) => Promise<void>): Promise<void> => {
  const fake = await startFakeTarget(options)
  try {
    await body(fake)
  } finally {
    await fake.close()
  }
}

/** Await a condition (polling the event loop), failing after `ms`. */
const waitFor = async (cond: () => boolean, ms = 5_000): Promise<void> => {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time")
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

const post = (fake: FakeTarget, path: string, body: unknown, method = "POST"): Promise<Response> =>
  fetch(fake.url + path, { method, body: typeof body === "string" ? body : JSON.stringify(body) })

const ndjson = (text: string): Array<Record<string, unknown>> => {
  expect(text.endsWith("\n")).toBe(true)
  return text
    .slice(0, -1)
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

/** What fetch rejects with when the connection is refused / reset. */
const errorCode = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause
    return cause?.code ?? (e as Error).name
  }
  return "resolved"
}

const METRICS = ["total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration"]
const UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/
const LOCAL = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/

// ---------------------------------------------------------------------------------------------

describe("FakeTarget: listing and metadata", () => {
  let fake: FakeTarget
  beforeAll(async () => {
    fake = await startFakeTarget({ models: ["llama3.2", { name: "all-minilm", capabilities: ["embedding"] }, "hf.co/org/repo:Q4_K_M", "user/model"] })
  })
  afterAll(() => fake.close())

  it("answers / and HEAD / like Ollama", async () => {
    expect(fake.url).toBe(`http://127.0.0.1:${fake.port}`)
    const res = await fetch(fake.url + "/")
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8")
    expect(await res.text()).toBe("Ollama is running")
    const head = await fetch(fake.url + "/", { method: "HEAD" })
    expect(head.status).toBe(200)
    expect(await head.text()).toBe("")
  })

  it("/api/version and /api/tags with the ollama client", async () => {
    const ollama = new Ollama({ host: fake.url })
    expect(await ollama.version()).toEqual({ version: "0.33.0" })
    const { models } = await ollama.list()
    expect(models.map((m) => m.name)).toEqual(["llama3.2:latest", "all-minilm:latest", "hf.co/org/repo:Q4_K_M", "user/model:latest"])
    for (const m of models) {
      expect(m.model).toBe(m.name)
      expect(m.digest).toMatch(/^[0-9a-f]{64}$/)
      expect(String(m.modified_at)).toMatch(LOCAL)
      expect(m.size).toBeGreaterThan(0)
      expect(Object.keys(m.details).slice(0, 6)).toEqual(["parent_model", "format", "family", "families", "parameter_size", "quantization_level"])
      expect(Array.isArray(m.details.families)).toBe(true)
    }
    expect((models[1] as unknown as { capabilities: string[] }).capabilities).toEqual(["embedding"])
    // sorted newest first
    const times = models.map((m) => Date.parse(String(m.modified_at)))
    expect([...times].sort((a, b) => b - a)).toEqual(times)
    // the digest is deterministic from the name
    const again = await startFakeTarget()
    try {
      const other = (await (await fetch(again.url + "/api/tags")).json()) as { models: Array<{ name: string; digest: string }> }
      expect(other.models.find((m) => m.name === "llama3.2:latest")?.digest).toBe(models[0]?.digest)
    } finally {
      await again.close()
    }
  })

  it("/api/tags is {models:[]} when empty and /v1/models has data:null", async () => {
    await withFake({ models: [] }, async (empty) => {
      const res = await fetch(empty.url + "/api/tags")
      expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8")
      expect(await res.text()).toBe('{"models":[]}')
      expect(await (await fetch(empty.url + "/api/ps")).text()).toBe('{"models":[]}')
      expect(await (await fetch(empty.url + "/v1/models")).json()).toEqual({ object: "list", data: null })
    })
  })

  it("/api/show details, and the normalised-name 404", async () => {
    const ollama = new Ollama({ host: fake.url })
    const shown = await ollama.show({ model: "LLAMA3.2" })
    expect(shown.details.family).toBe("llama")
    expect(shown.capabilities).toEqual(["completion"])
    expect(typeof shown.modelfile).toBe("string")
    expect(typeof shown.template).toBe("string")
    expect(typeof shown.parameters).toBe("string")
    expect((shown.model_info as unknown as Record<string, unknown>)["general.architecture"]).toBe("llama")
    expect(String(shown.modified_at)).toMatch(LOCAL)
    const res = await post(fake, "/api/show", { model: "llama3" })
    expect(res.status).toBe(404)
    expect(await res.json()).toEqual({ error: "model 'llama3:latest' not found" })
    const none = await post(fake, "/api/show", {})
    expect(none.status).toBe(400)
    expect(await none.json()).toEqual({ error: "model is required" })
  })

  it("matches names like Ollama: x ≡ x:latest ≡ library/x:latest, case-insensitive, echoing the name as sent", async () => {
    for (const name of ["llama3.2", "llama3.2:latest", "library/llama3.2:latest", "registry.ollama.ai/library/llama3.2:latest", "LLAMA3.2:Latest"]) {
      const res = await post(fake, "/api/generate", { model: name, prompt: "x", stream: false })
      expect(res.status).toBe(200)
      expect(((await res.json()) as { model: string }).model).toBe(name)
    }
    const hf = await post(fake, "/api/generate", { model: "hf.co/org/repo:Q4_K_M", prompt: "x", stream: false })
    expect(hf.status).toBe(200)
    const user = await post(fake, "/api/generate", { model: "user/model", prompt: "x", stream: false })
    expect(user.status).toBe(200)
  })
})

describe("FakeTarget: generation", () => {
  let fake: FakeTarget
  beforeAll(async () => {
    fake = await startFakeTarget({ maxLoaded: 3 })
  })
  afterAll(() => fake.close())

  it("streams generate as NDJSON: headers, done:false lines without metrics, one final line with the six metrics", async () => {
    const res = await post(fake, "/api/generate", { model: "llama3.2", prompt: "Why is the sky blue?" })
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toBe("application/x-ndjson")
    const lines = ndjson(await res.text())
    expect(lines).toHaveLength(5)
    const body = lines.slice(0, -1)
    for (const l of body) {
      expect(Object.keys(l)).toEqual(["model", "created_at", "response", "done"])
      expect(l["done"]).toBe(false)
      expect(l["model"]).toBe("llama3.2")
      expect(l["created_at"]).toMatch(UTC)
    }
    expect(body.map((l) => l["response"]).join("")).toBe("echo: Why is the sky blue?")
    const final = lines[4] ?? {}
    expect(final["done"]).toBe(true)
    expect(final["done_reason"]).toBe("stop")
    expect(final["response"]).toBe("")
    expect(Array.isArray(final["context"])).toBe(true)
    for (const m of METRICS) expect(Number.isInteger(final[m]) && (final[m] as number) > 0).toBe(true)
    expect(Object.keys(final).slice(-6)).toEqual(METRICS)
  })

  it("answers stream:false with one object holding the joined text", async () => {
    const res = await post(fake, "/api/generate", { model: "llama3.2", prompt: "hi", stream: false })
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8")
    const body = (await res.json()) as Record<string, unknown>
    expect(body["response"]).toBe("echo: hi")
    expect(body["done"]).toBe(true)
    expect(body["done_reason"]).toBe("stop")
    for (const m of METRICS) expect(body[m]).toBeGreaterThan(0)
  })

  it("chat streamed and not, with the ollama client; the reply is deterministic", async () => {
    const ollama = new Ollama({ host: fake.url })
    const messages = [
      { role: "system", content: "be brief" },
      { role: "user", content: "first" },
      { role: "assistant", content: "ok" },
      { role: "user", content: "Hello there" }
    ]
    const stream = await ollama.chat({ model: "llama3.2", messages, stream: true })
    const parts: string[] = []
    let final: Record<string, unknown> | undefined
    for await (const part of stream) {
      parts.push(part.message.content)
      expect(part.message.role).toBe("assistant")
      if (part.done) final = part as unknown as Record<string, unknown>
    }
    expect(parts.join("")).toBe("echo: Hello there")
    expect(parts).toHaveLength(5)
    expect(final?.["done_reason"]).toBe("stop")
    for (const m of METRICS) expect(final?.[m]).toBeGreaterThan(0)

    const single = await ollama.chat({ model: "llama3.2", messages })
    expect(single.message).toEqual({ role: "assistant", content: "echo: Hello there" })
    expect(single.done).toBe(true)

    const generated = await ollama.generate({ model: "llama3.2", prompt: "abc" })
    expect(generated.response).toBe("echo: abc")
    const again = await ollama.generate({ model: "llama3.2", prompt: "abc" })
    expect(again.response).toBe(generated.response)
    expect(again.context).toEqual(generated.context)
  })

  it("empty prompt/messages load; keep_alive 0 unloads", async () => {
    const load = await post(fake, "/api/generate", { model: "llama3.2" })
    expect(load.headers.get("content-type")).toBe("application/json; charset=utf-8")
    expect(await load.json()).toMatchObject({ model: "llama3.2", response: "", done: true, done_reason: "load" })
    expect(fake.resident).toContain("llama3.2:latest")
    const chatLoad = (await (await post(fake, "/api/chat", { model: "llama3.2", messages: [] })).json()) as Record<string, unknown>
    expect(chatLoad).toMatchObject({ message: { role: "assistant", content: "" }, done: true, done_reason: "load" })
    expect(Object.keys(chatLoad)).toEqual(["model", "created_at", "message", "done", "done_reason"])
    const unload = (await (await post(fake, "/api/chat", { model: "llama3.2", messages: [], keep_alive: 0 })).json()) as Record<string, unknown>
    expect(unload["done_reason"]).toBe("unload")
    expect(fake.resident).not.toContain("llama3.2:latest")
    const unload2 = await post(fake, "/api/generate", { model: "llama3.2", keep_alive: "0s" })
    expect(await unload2.json()).toMatchObject({ done_reason: "unload", response: "" })
  })

  it("embed: L2-normalised, deterministic vectors; legacy embeddings not normalised", async () => {
    const ollama = new Ollama({ host: fake.url })
    const a = await ollama.embed({ model: "all-minilm", input: ["hello", "world"] })
    expect(a.model).toBe("all-minilm")
    expect(a.embeddings).toHaveLength(2)
    for (const v of a.embeddings) {
      expect(v).toHaveLength(8)
      expect(Math.abs(Math.hypot(...v) - 1)).toBeLessThan(1e-5)
    }
    const b = await ollama.embed({ model: "all-minilm", input: "hello" })
    expect(b.embeddings[0]).toEqual(a.embeddings[0])
    expect(a.embeddings[0]).not.toEqual(a.embeddings[1])
    const empty = await post(fake, "/api/embed", { model: "all-minilm", input: "" })
    expect(await empty.json()).toEqual({ model: "all-minilm", embeddings: [] })
    const missing = await post(fake, "/api/embed", { model: "all-minilm" })
    expect(await missing.json()).toEqual({ model: "all-minilm", embeddings: [] })
    const bad = await post(fake, "/api/embed", { model: "all-minilm", input: [1, 2] })
    expect(bad.status).toBe(400)
    expect(await bad.json()).toEqual({ error: "invalid input type" })
    const legacy = await ollama.embeddings({ model: "all-minilm", prompt: "hello" })
    expect(legacy.embedding).toHaveLength(8)
    expect(Math.abs(Math.hypot(...legacy.embedding) - 1)).toBeGreaterThan(1e-3)
    expect(await (await post(fake, "/api/embeddings", { model: "all-minilm", prompt: "" })).json()).toEqual({ embedding: [] })
  })

  it("num_predict cuts the reply with done_reason length; format json answers JSON", async () => {
    const cut = (await (await post(fake, "/api/generate", { model: "llama3.2", prompt: "abcdefgh", stream: false, options: { num_predict: 2 } })).json()) as Record<string, unknown>
    expect(cut["done_reason"]).toBe("length")
    expect(cut["eval_count"]).toBe(2)
    const json = (await (await post(fake, "/api/chat", { model: "llama3.2", stream: false, format: "json", messages: [{ role: "user", content: "hi" }] })).json()) as {
      message: { content: string }
    }
    expect(JSON.parse(json.message.content)).toEqual({ echo: "hi" })
  })

  it("model management: pull, copy, delete, create, push", async () => {
    const ollama = new Ollama({ host: fake.url })
    const progress = await ollama.pull({ model: "qwen3:0.6b", stream: true })
    const statuses: string[] = []
    for await (const p of progress) statuses.push(p.status)
    expect(statuses[0]).toBe("pulling manifest")
    expect(statuses.slice(-3)).toEqual(["verifying sha256 digest", "writing manifest", "success"])
    expect((await ollama.list()).models.map((m) => m.name)).toContain("qwen3:0.6b")
    const quiet = await post(fake, "/api/pull", { model: "tinyllama", stream: false })
    expect(quiet.headers.get("content-type")).toBe("application/json")
    expect(await quiet.json()).toEqual({ status: "success" })

    const copied = await post(fake, "/api/copy", { source: "qwen3:0.6b", destination: "my-alias" })
    expect(copied.status).toBe(200)
    expect(await copied.text()).toBe("")
    const tags = (await ollama.list()).models
    expect(tags.find((m) => m.name === "my-alias:latest")?.digest).toBe(tags.find((m) => m.name === "qwen3:0.6b")?.digest)
    const missingCopy = await post(fake, "/api/copy", { source: "nope", destination: "x" })
    expect(missingCopy.status).toBe(404)
    expect(await missingCopy.json()).toEqual({ error: 'model "nope" not found' })

    const deleted = await post(fake, "/api/delete", { model: "my-alias" }, "DELETE")
    expect(deleted.status).toBe(200)
    expect(await deleted.text()).toBe("")
    const again = await post(fake, "/api/delete", { model: "my-alias" }, "DELETE")
    expect(again.status).toBe(404)
    expect(await again.json()).toEqual({ error: "model 'my-alias' not found" })

    const created = await post(fake, "/api/create", { model: "mario", from: "llama3.2", system: "You are Mario" })
    expect(ndjson(await created.text()).at(-1)).toEqual({ status: "success" })
    expect((await ollama.generate({ model: "mario", prompt: "hi" })).response).toBe("echo: hi")
    const neither = await post(fake, "/api/create", { model: "x" })
    expect(neither.status).toBe(400)
    expect(neither.headers.get("content-type")).toBe("application/json")
    expect(await neither.json()).toEqual({ error: "neither 'from' or 'files' was specified" })

    const pushed = await post(fake, "/api/push", { model: "mario" })
    expect(ndjson(await pushed.text()).at(-1)).toEqual({ status: "success" })
  })
})

describe("FakeTarget: exact errors", () => {
  let fake: FakeTarget
  beforeAll(async () => {
    fake = await startFakeTarget()
  })
  afterAll(() => fake.close())

  const cases: ReadonlyArray<readonly [string, string, string, number, unknown]> = [
    ["POST", "/api/generate", "", 400, { error: "missing request body" }],
    ["POST", "/api/chat", "  \n", 400, { error: "missing request body" }],
    ["POST", "/api/embed", "", 400, { error: "missing request body" }],
    ["POST", "/api/generate", '{"model":', 400, { error: "unexpected EOF" }],
    ["POST", "/api/generate", "xyz", 400, { error: "invalid character 'x' looking for beginning of value" }],
    ["POST", "/api/generate", '{"model":"x",}', 400, { error: "invalid character '}' looking for beginning of object key string" }],
    ["POST", "/api/generate", '{"model" "x"}', 400, { error: "invalid character '\"' after object key" }],
    ["POST", "/api/chat", '{"model":"x" "y"}', 400, { error: "invalid character '\"' after object key:value pair" }],
    ["POST", "/api/chat", '{"messages":[1 2]}', 400, { error: "invalid character '2' after array element" }],
    ["POST", "/api/generate", '{"model":tru}', 400, { error: "invalid character '}' in literal true (expecting 'e')" }],
    ["POST", "/api/generate", '{"prompt":1}', 400, { error: "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string" }],
    ["POST", "/api/chat", '{"model":"llama3.2","messages":"hi"}', 400, { error: "json: cannot unmarshal string into Go struct field ChatRequest.messages of type []api.Message" }],
    ["POST", "/api/generate", '"hello"', 400, { error: "json: cannot unmarshal string into Go value of type api.GenerateRequest" }],
    ["POST", "/api/generate", '{"model":"llama3.2","keep_alive":"5"}', 400, { error: 'time: missing unit in duration "5"' }],
    ["POST", "/api/generate", '{"model":"llama3.2","keep_alive":true}', 400, { error: "Unsupported type: 'bool'" }],
    ["POST", "/api/generate", '{"model":"llama3.2","think":"x"}', 400, { error: 'invalid think value: "x" (must be "high", "medium", "low", "max", true, or false)' }],
    ["POST", "/api/generate", '{"model":"llama3.2","prompt":"x","think":true}', 400, { error: '"llama3.2" does not support thinking' }],
    ["POST", "/api/generate", '{"model":"llama3.2","top_logprobs":21}', 400, { error: "top_logprobs must be between 0 and 20" }],
    ["POST", "/api/generate", '{"model":"llama3.2","raw":true,"system":"s","prompt":"p"}', 400, { error: "raw mode does not support template, system, or context" }],
    ["POST", "/api/generate", '{"prompt":"x"}', 404, { error: "model '' not found" }],
    ["POST", "/api/generate", "null", 404, { error: "model '' not found" }],
    ["POST", "/api/chat", '{"messages":[]}', 400, { error: "model is required" }],
    ["POST", "/api/generate", '{"model":"llama3","prompt":"x"}', 404, { error: "model 'llama3' not found" }],
    ["POST", "/api/chat", '{"model":"Nope:7b","messages":[{"role":"user","content":"x"}]}', 404, { error: "model 'Nope:7b' not found" }],
    ["POST", "/api/embed", '{"model":"nope","input":"x"}', 404, { error: 'model "nope" not found, try pulling it first' }],
    ["POST", "/api/embed", '{"input":"x"}', 404, { error: "model '' not found" }],
    ["POST", "/api/embeddings", '{"model":"nope","prompt":"x"}', 404, { error: 'model "nope" not found, try pulling it first' }],
    ["POST", "/api/embeddings", '{"prompt":"x"}', 400, { error: "model is required" }],
    ["POST", "/api/generate", '{"model":"all-minilm","prompt":"x"}', 400, { error: '"all-minilm" does not support generate' }],
    ["POST", "/api/chat", '{"model":"all-minilm","messages":[{"role":"user","content":"x"}]}', 400, { error: '"all-minilm" does not support chat' }],
    ["POST", "/api/generate", '{"model":"llama3.2","prompt":"x","suffix":"y"}', 400, { error: "registry.ollama.ai/library/llama3.2:latest does not support insert" }],
    ["POST", "/api/chat", '{"model":"llama3.2","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}]}', 400, { error: "registry.ollama.ai/library/llama3.2:latest does not support tools" }],
    ["POST", "/api/generate", '{"model":"llama3.2","prompt":"x","options":{"temperature":"hot"}}', 500, { error: 'option "temperature" must be of type float32' }],
    ["POST", "/api/pull", "{}", 400, { error: "invalid model name" }],
    ["POST", "/api/push", "{}", 400, { error: "model is required" }],
    ["DELETE", "/api/delete", "{}", 400, { error: "model is required" }],
    ["POST", "/api/copy", '{"source":"","destination":"b"}', 400, { error: 'source "" is invalid' }],
    ["POST", "/api/generate", '{"model":"a//b","prompt":"x"}', 400, { error: "invalid model name" }]
  ]

  it.each(cases)("%s %s %j → %i", async (method, path, body, status, expected) => {
    const res = await fetch(fake.url + path, { method, body })
    expect(res.status).toBe(status)
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8")
    expect(await res.json()).toEqual(expected)
  })

  it("the legacy /api/embeddings skips the case fix-up", async () => {
    expect((await post(fake, "/api/embed", { model: "ALL-MINILM", input: "x" })).status).toBe(200)
    const res = await post(fake, "/api/embeddings", { model: "ALL-MINILM", prompt: "x" })
    expect(res.status).toBe(404)
    expect(await res.json()).toEqual({ error: 'model "ALL-MINILM" not found, try pulling it first' })
  })

  it("encodes JSON like Go (HTML characters escaped) and timestamps like RFC3339Nano", async () => {
    const text = await (await post(fake, "/api/generate", { model: "llama3.2", prompt: "<b>&</b>", stream: false })).text()
    expect(text).toContain('"response":"echo: \\u003cb\\u003e\\u0026\\u003c/b\\u003e"')
    expect(rfc3339(1787330000100000000n, false)).toBe("2026-08-21T16:33:20.1Z")
    expect(rfc3339(1787330000000000000n, false)).toBe("2026-08-21T16:33:20Z")
    expect(rfc3339(1787330000123456789n, false)).toBe("2026-08-21T16:33:20.123456789Z")
  })

  it("OPTIONS gets 204; a trailing slash redirects like gin", async () => {
    expect((await fetch(fake.url + "/api/chat", { method: "OPTIONS" })).status).toBe(204)
    const res = await fetch(fake.url + "/api/tags/", { redirect: "manual" })
    expect(res.status).toBe(301)
    expect(res.headers.get("location")).toBe("/api/tags")
    await res.text()
  })

  it("unknown paths are 404 text/plain, wrong methods 405 text/plain", async () => {
    const notFound = await fetch(fake.url + "/api/nope")
    expect(notFound.status).toBe(404)
    expect(notFound.headers.get("content-type")).toBe("text/plain")
    expect(await notFound.text()).toBe("404 page not found")
    for (const [method, path] of [["GET", "/api/generate"], ["POST", "/api/tags"], ["POST", "/api/delete"], ["DELETE", "/api/chat"]] as const) {
      const res = await fetch(fake.url + path, { method })
      expect(res.status).toBe(405)
      expect(res.headers.get("content-type")).toBe("text/plain")
      expect(await res.text()).toBe("405 method not allowed")
    }
  })

  it("a runner error before the first line has a status and no charset", async () => {
    const res = await post(fake, "/api/generate", { model: "llama3.2", prompt: "x", format: 5 })
    expect(res.status).toBe(500)
    expect(res.headers.get("content-type")).toBe("application/json")
    expect(await res.json()).toEqual({ error: 'invalid format: 5; expected "json" or a valid JSON Schema object' })
  })

  it("the Host-header guard answers 403 with an empty body to a non-local Host", async () => {
    const http = await import("node:http")
    const status = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port: fake.port, path: "/api/tags", headers: { host: "example.com" } }, (res) => {
        let body = ""
        res.on("data", (c: Buffer) => (body += c.toString()))
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
      })
      req.on("error", reject)
      req.end()
    })
    expect(status).toEqual({ status: 403, body: "" })
  })

  it("the ollama client surfaces the error texts", async () => {
    const ollama = new Ollama({ host: fake.url })
    await expect(ollama.chat({ model: "nope", messages: [{ role: "user", content: "x" }] })).rejects.toMatchObject({
      error: "model 'nope' not found",
      status_code: 404
    })
    await expect(ollama.embed({ model: "nope", input: "x" })).rejects.toMatchObject({
      error: 'model "nope" not found, try pulling it first',
      status_code: 404
    })
  })
})

describe("FakeTarget: residency", () => {
  it("counts loads with maxLoaded 1: a warm model starts at once, another model swaps", async () => {
    await withFake({ maxLoaded: 1 }, async (fake) => {
      const ollama = new Ollama({ host: fake.url })
      await ollama.generate({ model: "llama3.2", prompt: "a" })
      await ollama.generate({ model: "llama3.2:latest", prompt: "b" })
      expect(fake.loads).toEqual(["llama3.2:latest"])
      await ollama.embed({ model: "all-minilm", input: "x" })
      expect(fake.loads).toEqual(["llama3.2:latest", "all-minilm:latest"])
      expect(fake.resident).toEqual(["all-minilm:latest"])
      await ollama.chat({ model: "llama3.2", messages: [{ role: "user", content: "c" }] })
      expect(fake.loads).toEqual(["llama3.2:latest", "all-minilm:latest", "llama3.2:latest"])
      expect(fake.resident).toEqual(["llama3.2:latest"])
      const ps = await ollama.ps()
      expect(ps.models).toHaveLength(1)
      const entry = ps.models[0] as unknown as Record<string, unknown>
      expect(entry["name"]).toBe("llama3.2:latest")
      expect(String(entry["expires_at"])).toMatch(LOCAL)
      expect(entry["size_vram"]).toBeGreaterThan(0)
      expect(entry["context_length"]).toBe(4096)
      expect(Date.parse(String(entry["expires_at"])) - Date.now()).toBeGreaterThan(4 * 60_000)
    })
  })

  it("keeps maxLoaded models resident, evicting the least recently used", async () => {
    await withFake({ maxLoaded: 2, models: ["a", "b", "c"] }, async (fake) => {
      const gen = (model: string) => post(fake, "/api/generate", { model, prompt: "x", stream: false }).then((r) => r.json())
      await gen("a")
      await gen("b")
      await gen("a")
      await gen("c")
      expect(fake.loads).toEqual(["a:latest", "b:latest", "c:latest"])
      expect([...fake.resident].sort()).toEqual(["a:latest", "c:latest"])
    })
  })

  it("changing num_ctx reloads; concurrent requests share one load", async () => {
    await withFake({ loadDelayMs: 30 }, async (fake) => {
      const gen = (options: object = {}) => post(fake, "/api/generate", { model: "llama3.2", prompt: "x", stream: false, options }).then((r) => r.json())
      await Promise.all([gen(), gen(), gen()])
      expect(fake.loads).toEqual(["llama3.2:latest"])
      await gen({ num_ctx: 8192 })
      expect(fake.loads).toHaveLength(2)
      const ps = (await (await fetch(fake.url + "/api/ps")).json()) as { models: Array<{ context_length: number }> }
      expect(ps.models[0]?.context_length).toBe(8192)
    })
  })

  it("holds the headers back while the model loads", async () => {
    await withFake({ loadDelayMs: 100 }, async (fake) => {
      let headers = false
      const res = post(fake, "/api/chat", { model: "llama3.2", messages: [{ role: "user", content: "x" }] }).then((r) => {
        headers = true
        return r
      })
      await waitFor(() => fake.loads.length === 1)
      expect(headers).toBe(false)
      expect(fake.resident).toEqual([])
      const r = await res
      expect(r.headers.get("content-type")).toBe("application/x-ndjson")
      expect(fake.resident).toEqual(["llama3.2:latest"])
      await r.text()
    })
  })

  it("load_duration includes the load delay, and a warm model does not pay it", async () => {
    await withFake({ loadDelayMs: 50 }, async (fake) => {
      const cold = (await (await post(fake, "/api/generate", { model: "llama3.2", prompt: "x", stream: false })).json()) as { load_duration: number }
      expect(cold.load_duration).toBeGreaterThanOrEqual(50_000_000)
      const warm = (await (await post(fake, "/api/generate", { model: "llama3.2", prompt: "x", stream: false })).json()) as { load_duration: number }
      expect(warm.load_duration).toBeLessThan(50_000_000)
      expect(fake.loads).toHaveLength(1)
    })
  })

  it("a model expires after keepAliveMs idle; keep_alive on the request overrides it", async () => {
    await withFake({ keepAliveMs: 20 }, async (fake) => {
      await post(fake, "/api/generate", { model: "llama3.2", prompt: "x", stream: false }).then((r) => r.json())
      await waitFor(() => fake.resident.length === 0)
      await post(fake, "/api/generate", { model: "llama3.2", prompt: "x", stream: false, keep_alive: -1 }).then((r) => r.json())
      const ps = (await (await fetch(fake.url + "/api/ps")).json()) as { models: Array<{ expires_at: string }> }
      expect(new Date(ps.models[0]?.expires_at ?? "").getUTCFullYear()).toBeGreaterThan(2300)
      await post(fake, "/api/generate", { model: "llama3.2", prompt: "x", stream: false, keep_alive: 0 }).then((r) => r.json())
      expect(fake.resident).toEqual([])
    })
  })
})

describe("FakeTarget: sleep and wake", () => {
  it("refuses connections while asleep, kills in-flight requests, and works again on the same port", async () => {
    await withFake({}, async (fake) => {
      const port = fake.port
      // a keep-alive connection exists before the sleep
      expect((await fetch(fake.url + "/api/version")).status).toBe(200)
      fake.hold()
      const inflight = post(fake, "/api/chat", { model: "llama3.2", messages: [{ role: "user", content: "x" }] })
      await waitFor(() => fake.held === 1)
      await fake.sleep()
      expect(await errorCode(inflight)).not.toBe("resolved")
      expect(await errorCode(fetch(fake.url + "/api/version"))).toBe("ECONNREFUSED")
      expect(await errorCode(fetch(fake.url + "/api/tags"))).toBe("ECONNREFUSED")
      fake.release()
      await fake.wake()
      expect(fake.port).toBe(port)
      const ollama = new Ollama({ host: fake.url })
      expect((await ollama.generate({ model: "llama3.2", prompt: "back" })).response).toBe("echo: back")
      // a sleep/wake cycle can repeat
      await fake.sleep()
      expect(await errorCode(fetch(fake.url + "/"))).toBe("ECONNREFUSED")
      await fake.wake()
      expect((await fetch(fake.url + "/")).status).toBe(200)
    })
  })

  it("kills a stream that is mid-way", async () => {
    await withFake({ tokenDelayMs: 5, chunks: 1000 }, async (fake) => {
      const res = await post(fake, "/api/generate", { model: "llama3.2", prompt: "x" })
      const reader = (res.body as ReadableStream<Uint8Array>).getReader()
      await reader.read()
      await fake.sleep()
      const rest = (async () => {
        for (;;) {
          const { done } = await reader.read()
          if (done) return "ended"
        }
      })()
      expect(await errorCode(rest)).not.toBe("resolved")
    })
  })
})

describe("FakeTarget: failNext", () => {
  it("mode status: the next request fails before headers, the one after works", async () => {
    await withFake({}, async (fake) => {
      fake.failNext("/api/chat", { mode: "status", status: 503, message: "server busy, please try again.  maximum pending requests exceeded" })
      const ollama = new Ollama({ host: fake.url })
      await expect(ollama.chat({ model: "llama3.2", messages: [{ role: "user", content: "x" }] })).rejects.toMatchObject({
        status_code: 503,
        error: "server busy, please try again.  maximum pending requests exceeded"
      })
      expect(fake.loads).toEqual([])
      expect((await ollama.chat({ model: "llama3.2", messages: [{ role: "user", content: "x" }] })).message.content).toBe("echo: x")
      expect(fake.count("/api/chat")).toBe(2)
    })
  })

  it("mode midstream: 200, N lines, then an error line and no done line", async () => {
    await withFake({}, async (fake) => {
      fake.failNext("/api/generate", { mode: "midstream", afterLines: 2, message: "an error was encountered while running the model" })
      const res = await post(fake, "/api/generate", { model: "llama3.2", prompt: "hello" })
      expect(res.status).toBe(200)
      const lines = ndjson(await res.text())
      expect(lines).toHaveLength(3)
      expect(lines[2]).toEqual({ error: "an error was encountered while running the model" })
      expect(lines.some((l) => l["done"] === true)).toBe(false)

      // the ollama client throws the error text
      fake.failNext("/api/chat", { mode: "midstream", afterLines: 1, message: "boom" })
      const ollama = new Ollama({ host: fake.url })
      const stream = await ollama.chat({ model: "llama3.2", messages: [{ role: "user", content: "x" }], stream: true })
      const consume = async (): Promise<void> => {
        for await (const part of stream) void part
      }
      await expect(consume()).rejects.toThrow("boom")

      // before any line, or not streamed: a plain 500
      fake.failNext("/api/generate", { mode: "midstream", afterLines: 0, message: "early" })
      const early = await post(fake, "/api/generate", { model: "llama3.2", prompt: "x" })
      expect(early.status).toBe(500)
      expect(early.headers.get("content-type")).toBe("application/json")
      expect(await early.json()).toEqual({ error: "early" })
      fake.failNext("/api/generate", { mode: "midstream", afterLines: 3, message: "late" })
      const single = await post(fake, "/api/generate", { model: "llama3.2", prompt: "x", stream: false })
      expect(single.status).toBe(500)
      expect(await single.json()).toEqual({ error: "late" })
      // a short stream still fails rather than finishing
      fake.failNext("/api/generate", { mode: "midstream", afterLines: 99, message: "never done" })
      const short = ndjson(await (await post(fake, "/api/generate", { model: "llama3.2", prompt: "x" })).text())
      expect(short.at(-1)).toEqual({ error: "never done" })
      expect(short).toHaveLength(5)
    })
  })

  it("mode reset: the socket is destroyed after N lines (or before headers)", async () => {
    await withFake({}, async (fake) => {
      fake.failNext("/api/generate", { mode: "reset", afterLines: 2 })
      const res = await post(fake, "/api/generate", { model: "llama3.2", prompt: "hello" })
      expect(res.status).toBe(200)
      const reader = (res.body as ReadableStream<Uint8Array>).getReader()
      let received = ""
      const readAll = async (): Promise<void> => {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) return
          received += new TextDecoder().decode(value)
        }
      }
      expect(await errorCode(readAll())).not.toBe("resolved")
      expect(received.split("\n").filter((l) => l !== "")).toHaveLength(2)

      fake.failNext("/api/tags", { mode: "reset", afterLines: 0 })
      expect(await errorCode(fetch(fake.url + "/api/tags"))).not.toBe("resolved")
      fake.failNext("/api/chat", { mode: "reset", afterLines: 0 })
      expect(await errorCode(post(fake, "/api/chat", { model: "llama3.2", messages: [{ role: "user", content: "x" }] }))).not.toBe("resolved")
      // and then everything works again
      expect((await fetch(fake.url + "/api/tags")).status).toBe(200)
      expect(fake.count("/api/tags")).toBe(2)
    })
  })
})

describe("FakeTarget: hold and release", () => {
  it("holds generation before its first byte until release()", async () => {
    await withFake({}, async (fake) => {
      fake.hold()
      let answered = 0
      const a = post(fake, "/api/chat", { model: "llama3.2", messages: [{ role: "user", content: "a" }] }).then((r) => {
        answered++
        return r.text()
      })
      const b = post(fake, "/api/generate", { model: "llama3.2", prompt: "b", stream: false }).then((r) => {
        answered++
        return r.json()
      })
      await waitFor(() => fake.held === 2)
      // other endpoints are not held
      expect((await fetch(fake.url + "/api/ps")).status).toBe(200)
      expect(answered).toBe(0)
      expect(fake.loads).toEqual(["llama3.2:latest"])
      fake.release()
      const [textA, bodyB] = await Promise.all([a, b])
      expect(ndjson(textA).map((l) => (l["message"] as { content: string }).content).join("")).toBe("echo: a")
      expect((bodyB as { response: string }).response).toBe("echo: b")
      expect(fake.held).toBe(0)
      // after release nothing is held any more
      expect((await (await post(fake, "/api/generate", { model: "llama3.2", prompt: "c", stream: false })).json()) as object).toMatchObject({ response: "echo: c" })
    })
  })

  it("records every call in order", async () => {
    await withFake({}, async (fake) => {
      await fetch(fake.url + "/api/tags")
      await post(fake, "/api/generate", { model: "llama3.2", prompt: "x", stream: false })
      await post(fake, "/api/generate", "{oops")
      expect(fake.calls.map((c) => [c.method, c.path])).toEqual([
        ["GET", "/api/tags"],
        ["POST", "/api/generate"],
        ["POST", "/api/generate"]
      ])
      expect(fake.calls[1]?.body).toEqual({ model: "llama3.2", prompt: "x", stream: false })
      expect(fake.calls[2]?.body).toBe("{oops")
      expect(fake.count("/api/generate")).toBe(2)
    })
  })

  it("addModel and removeModel change the inventory", async () => {
    await withFake({ models: [] }, async (fake) => {
      fake.addModel({ name: "qwen3", capabilities: ["completion", "tools", "thinking"] })
      const ollama = new Ollama({ host: fake.url })
      expect((await ollama.list()).models.map((m) => m.name)).toEqual(["qwen3:latest"])
      const thinking = await ollama.chat({ model: "qwen3", messages: [{ role: "user", content: "hi" }] })
      expect(thinking.message.thinking).toBe("Thinking about: hi")
      expect(thinking.message.content).toBe("echo: hi")
      const tool = await ollama.chat({
        model: "qwen3",
        think: false,
        messages: [{ role: "user", content: 'call get_weather {"city":"Tokyo"}' }],
        tools: [{ type: "function", function: { name: "get_weather", description: "w", parameters: { type: "object", properties: {} } } }]
      })
      expect(tool.message.tool_calls?.[0]?.function).toMatchObject({ name: "get_weather", arguments: { city: "Tokyo" } })
      fake.removeModel("QWEN3:latest")
      expect((await ollama.list()).models).toEqual([])
    })
  })
})

describe("FakeTarget: OpenAI-compatible routes", () => {
  let fake: FakeTarget
  let openai: OpenAI
  beforeAll(async () => {
    fake = await startFakeTarget({ maxLoaded: 2 })
    openai = new OpenAI({ baseURL: fake.url + "/v1", apiKey: "ignored", maxRetries: 0 })
  })
  afterAll(() => fake.close())

  it("lists and retrieves models", async () => {
    const page = await openai.models.list()
    expect(page.data.map((m) => m.id)).toEqual(["llama3.2:latest", "all-minilm:latest"])
    expect(page.data[0]).toMatchObject({ object: "model", owned_by: "library" })
    const one = await openai.models.retrieve("llama3.2")
    expect(one.id).toBe("llama3.2")
    const res = await fetch(fake.url + "/v1/models/nope")
    expect(res.status).toBe(404)
    expect(await res.json()).toEqual({ error: { message: "model 'nope:latest' not found", type: "not_found_error", param: null, code: null } })
  })

  it("chat completions, not streamed", async () => {
    const c = await openai.chat.completions.create({ model: "llama3.2", messages: [{ role: "user", content: "Hello" }] })
    expect(c.id).toMatch(/^chatcmpl-\d+$/)
    expect(c.object).toBe("chat.completion")
    expect(c.model).toBe("llama3.2")
    expect(c.system_fingerprint).toBe("fp_ollama")
    expect(c.choices[0]?.message.content).toBe("echo: Hello")
    expect(c.choices[0]?.finish_reason).toBe("stop")
    expect(c.usage?.completion_tokens).toBe(4)
  })

  it("chat completions streamed in the v0.32.10+ layout", async () => {
    const res = await post(fake, "/v1/chat/completions", {
      model: "llama3.2",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "Hello" }]
    })
    expect(res.headers.get("content-type")).toBe("text/event-stream")
    const text = await res.text()
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true)
    const frames = text
      .split("\n\n")
      .filter((f) => f !== "" && f !== "data: [DONE]")
      .map((f) => {
        expect(f.startsWith("data: ")).toBe(true)
        return JSON.parse(f.slice(6)) as { id: string; choices: Array<{ delta: Record<string, unknown>; finish_reason: string | null }>; usage?: unknown }
      })
    expect(frames[0]?.choices[0]?.delta["role"]).toBe("assistant")
    expect(frames[1]?.choices[0]?.delta["role"]).toBeUndefined()
    const content = frames.flatMap((f) => f.choices.map((c) => c.delta["content"] ?? "")).join("")
    expect(content).toBe("echo: Hello")
    const finish = frames.at(-2)
    expect(finish?.choices[0]).toEqual({ index: 0, delta: {}, finish_reason: "stop" })
    expect(frames.at(-1)?.choices).toEqual([])
    expect(frames.at(-1)?.usage).toEqual({ prompt_tokens: 6, completion_tokens: 4, total_tokens: 10 })
    expect(new Set(frames.map((f) => f.id)).size).toBe(1)

    const stream = await openai.chat.completions.create({ model: "llama3.2", stream: true, messages: [{ role: "user", content: "Hi" }] })
    let joined = ""
    for await (const chunk of stream) joined += chunk.choices[0]?.delta.content ?? ""
    expect(joined).toBe("echo: Hi")
  })

  it("completions and embeddings", async () => {
    const c = await openai.completions.create({ model: "llama3.2", prompt: "abc" })
    expect(c.choices[0]?.text).toBe("echo: abc")
    expect(c.object).toBe("text_completion")
    const e = await openai.embeddings.create({ model: "all-minilm", input: ["a", "b"], encoding_format: "float" })
    expect(e.data).toHaveLength(2)
    expect(e.data[0]?.embedding).toHaveLength(8)
    const native = (await (await post(fake, "/api/embed", { model: "all-minilm", input: "a" })).json()) as { embeddings: number[][] }
    expect(e.data[0]?.embedding).toEqual(native.embeddings[0])
    const b64 = (await (await post(fake, "/v1/embeddings", { model: "all-minilm", input: "a", encoding_format: "base64" })).json()) as {
      data: Array<{ embedding: string }>
    }
    const bytes = Buffer.from(b64.data[0]?.embedding ?? "", "base64")
    expect(bytes.length).toBe(32)
    expect(bytes.readFloatLE(0)).toBeCloseTo(native.embeddings[0]?.[0] ?? NaN, 6)
  })

  it("errors use the OpenAI envelope with the native status", async () => {
    const missing = await post(fake, "/v1/chat/completions", { model: "nope", messages: [{ role: "user", content: "x" }], stream: true })
    expect(missing.status).toBe(404)
    expect(missing.headers.get("content-type")).toBe("application/json")
    expect(await missing.json()).toEqual({ error: { message: "model 'nope' not found", type: "not_found_error", param: null, code: null } })
    const empty = await post(fake, "/v1/chat/completions", { model: "llama3.2", messages: [] })
    expect(empty.status).toBe(400)
    expect(await empty.json()).toEqual({ error: { message: "[] is too short - 'messages'", type: "invalid_request_error", param: null, code: null } })
    fake.failNext("/v1/chat/completions", { mode: "status", status: 503, message: "server busy, please try again.  maximum pending requests exceeded" })
    await expect(openai.chat.completions.create({ model: "llama3.2", messages: [{ role: "user", content: "x" }] })).rejects.toMatchObject({ status: 503 })
    const badEmbed = await post(fake, "/v1/embeddings", { model: "all-minilm", input: [] })
    expect(await badEmbed.json()).toEqual({ error: { message: "invalid input", type: "invalid_request_error", param: null, code: null } })
  })

  it("a mid-stream failure ends the SSE stream without [DONE]", async () => {
    fake.failNext("/v1/chat/completions", { mode: "midstream", afterLines: 2, message: "boom" })
    const res = await post(fake, "/v1/chat/completions", { model: "llama3.2", stream: true, messages: [{ role: "user", content: "Hello" }] })
    const text = await res.text()
    expect(res.status).toBe(200)
    expect(text.includes("[DONE]")).toBe(false)
    const frames = text.split("\n\n").filter((f) => f !== "")
    expect(frames).toHaveLength(3)
    expect(JSON.parse((frames[2] ?? "").slice(6))).toMatchObject({ model: "", choices: [{ index: 0, delta: { content: "" }, finish_reason: null }] })
  })
})

describe("FakeTarget: Anthropic, Responses and transcription routes", () => {
  let fake: FakeTarget
  beforeAll(async () => {
    fake = await startFakeTarget({ models: ["llama3.2"], chunks: 2 })
  })
  afterAll(() => fake.close())

  const sse = (text: string) =>
    text.split("\n\n").filter((f) => f !== "").map((f) => {
      const [event, data] = f.split("\n")
      return { event: event?.replace(/^event: /, ""), data: JSON.parse(data?.replace(/^data: /, "") ?? "null") as Record<string, unknown> }
    })

  it("/v1/messages: one message, usage from the native counts; a system prompt and max_tokens reach the chat", async () => {
    const r = await post(fake, "/v1/messages", { model: "llama3.2", max_tokens: 100, system: "be kind", messages: [{ role: "user", content: "hi" }] })
    expect(r.status).toBe(200)
    expect(r.headers.get("content-type")).toBe("application/json")
    const body = (await r.json()) as Record<string, unknown>
    expect(body).toMatchObject({ type: "message", role: "assistant", model: "llama3.2", stop_reason: "end_turn", content: [{ type: "text", text: "echo: hi" }] })
    expect(String(body["id"])).toMatch(/^msg_[0-9a-f]{24}$/)
    expect(body["usage"]).toMatchObject({ input_tokens: expect.any(Number), output_tokens: 2 })
    const cut = await post(fake, "/v1/messages", { model: "llama3.2", max_tokens: 1, messages: [{ role: "user", content: "hi" }] })
    expect(await cut.json()).toMatchObject({ stop_reason: "max_tokens" })
  })

  it("/v1/messages streamed: event: lines in Anthropic's order", async () => {
    const r = await post(fake, "/v1/messages", { model: "llama3.2", max_tokens: 100, stream: true, messages: [{ role: "user", content: "hi" }] })
    expect(r.headers.get("content-type")).toBe("text/event-stream")
    const events = sse(await r.text())
    expect(events.map((e) => e.event)).toEqual([
      "message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"
    ])
    expect(events.every((e) => e.data["type"] === e.event)).toBe(true)
  })

  it("/v1/messages errors: Anthropic's envelope with the native status", async () => {
    const missing = await post(fake, "/v1/messages", { model: "nope", max_tokens: 5, messages: [{ role: "user", content: "hi" }] })
    expect(missing.status).toBe(404)
    const body = (await missing.json()) as Record<string, unknown>
    expect(body).toMatchObject({ type: "error", error: { type: "not_found_error", message: "model 'nope' not found" } })
    expect(String(body["request_id"])).toMatch(/^req_[0-9a-f]{24}$/)
    expect(await (await post(fake, "/v1/messages", "")).json()).toMatchObject({ error: { type: "invalid_request_error", message: "EOF" } })
  })

  it("/v1/responses: a response object, and streamed events with sequence numbers", async () => {
    const plain = (await (await post(fake, "/v1/responses", { model: "llama3.2", input: "hi" })).json()) as Record<string, unknown>
    expect(plain).toMatchObject({ object: "response", status: "completed", output: [{ type: "message", content: [{ type: "output_text", text: "echo: hi" }] }] })
    const events = sse(await (await post(fake, "/v1/responses", { model: "llama3.2", input: "hi", stream: true })).text())
    expect(events[0]?.event).toBe("response.created")
    expect(events.at(-1)?.event).toBe("response.completed")
    expect(events.map((e) => e.data["sequence_number"])).toEqual(events.map((_, i) => i))
    const bad = await post(fake, "/v1/responses", { model: "llama3.2", input: [{ content: "x" }] })
    expect(await bad.json()).toEqual({ error: { message: "input[0]: input item missing required 'type' field", type: "invalid_request_error", param: null, code: null } })
  })

  it("/v1/audio/transcriptions: a multipart form in, {text} (or plain text) out", async () => {
    const form = new FormData()
    form.set("model", "llama3.2")
    form.set("file", new Blob(["sound"]), "a.wav")
    const r = await fetch(fake.url + "/v1/audio/transcriptions", { method: "POST", body: form })
    expect(await r.json()).toEqual({ text: "echo: What exact words are spoken in this audio?" })
    form.set("response_format", "text")
    const text = await fetch(fake.url + "/v1/audio/transcriptions", { method: "POST", body: form })
    expect(text.headers.get("content-type")).toBe("text/plain")
    expect(await text.text()).toBe("echo: What exact words are spoken in this audio?")
    const json = await post(fake, "/v1/audio/transcriptions", "{}")
    expect((await json.json() as { error: { message: string } }).error.message).toBe(
      "failed to parse multipart form: request Content-Type isn't multipart/form-data"
    )
  })
})
