/**
 * The edges a user of an Ollama proxy runs into: bad input answered in Ollama's words,
 * streams passed through as they come, failures mid-stream, callers that hang up, a target
 * that stays asleep, model management. Foreman stays up and its queue intact throughout.
 */
import { Duration } from "effect"
import { Ollama } from "ollama"
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type RunningForeman, startForeman } from "../support/foreman.ts"

const post = (url: string, body: string, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  fetch(url, { method: "POST", body, headers: { "content-type": "application/json", ...headers }, ...(signal ? { signal } : {}) })

const lines = (text: string) => text.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line))

describe("bad input gets Ollama's status and an {\"error\"} body, and foreman stays healthy", () => {
  let target: FakeTarget
  let foreman: RunningForeman

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"] })
    foreman = await startForeman({ target: target.url, maxBodySize: 1024 })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
  })
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  const cases: ReadonlyArray<{ name: string; path: string; body: string; status: number; error: string; method?: string; headers?: Record<string, string> }> = [
    { name: "empty body", path: "/api/chat", body: "", status: 400, error: "missing request body" },
    { name: "truncated JSON", path: "/api/chat", body: `{"model":"llama3.2"`, status: 400, error: "unexpected EOF" },
    { name: "not JSON", path: "/api/generate", body: "xyz", status: 400, error: "invalid character 'x' looking for beginning of value" },
    {
      name: "wrong type",
      path: "/api/generate",
      body: `{"model":"llama3.2","prompt":3}`,
      status: 400,
      error: "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string"
    },
    { name: "chat without model", path: "/api/chat", body: `{"messages":[]}`, status: 400, error: "model is required" },
    { name: "generate without model", path: "/api/generate", body: `{"prompt":"hi"}`, status: 404, error: "model '' not found" },
    { name: "embeddings without model", path: "/api/embeddings", body: `{"prompt":"hi"}`, status: 400, error: "model is required" },
    { name: "invalid model name", path: "/api/chat", body: `{"model":"a//b"}`, status: 400, error: "invalid model name" },
    { name: "embed with a bad input", path: "/api/embed", body: `{"model":"llama3.2","input":3}`, status: 400, error: "invalid input type" },
    {
      name: "a body over --max-body-size",
      path: "/api/generate",
      body: JSON.stringify({ model: "llama3.2", prompt: "x".repeat(2000) }),
      status: 413,
      error: "request body too large (limit 1024 bytes)"
    },
    {
      name: "a bad priority header",
      path: "/api/chat",
      body: `{"model":"llama3.2","messages":[]}`,
      headers: { "x-foreman-priority": "urgent" },
      status: 400,
      error: `invalid X-Foreman-Priority "urgent": expected one of interactive, normal, batch`
    },
    // Other unknown paths pass through to the target (forward.test.ts); foreman's own stay its 404.
    { name: "unknown path under /foreman", path: "/foreman/nope", body: "{}", status: 404, error: "404 page not found" },
    { name: "known path, wrong method", path: "/api/chat", body: "", method: "GET", status: 405, error: "405 method not allowed" },
    { name: "tags with the wrong method", path: "/api/tags", body: "{}", method: "POST", status: 405, error: "405 method not allowed" }
  ]

  for (const c of cases) {
    it(c.name, async () => {
      const response = await fetch(foreman.url + c.path, {
        method: c.method ?? "POST",
        headers: c.headers ?? {},
        ...(c.method === "GET" ? {} : { body: c.body })
      })
      expect(response.status).toBe(c.status)
      expect(await response.json()).toEqual({ error: c.error })
    })
  }

  it("a chunked body (no Content-Length) over --max-body-size is refused as it passes the limit", async () => {
    const chunk = new TextEncoder().encode(" ".repeat(512))
    let sent = 0
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode(`{"model":"llama3.2","prompt":"`))
        if (sent++ < 8) controller.enqueue(chunk)
        else controller.close()
      }
    })
    const response = await fetch(`${foreman.url}/api/generate`, { method: "POST", body, duplex: "half" } as RequestInit)
    expect(response.status).toBe(413)
    expect(await response.json()).toEqual({ error: "request body too large (limit 1024 bytes)" })
  })

  it("CORS: local browser origins are allowed as Ollama allows them, others are not", async () => {
    const preflight = (origin: string) =>
      fetch(`${foreman.url}/api/chat`, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type" }
      })
    const local = await preflight("http://localhost:3000")
    expect(local.status).toBe(204)
    expect(local.headers.get("access-control-allow-origin")).toBe("http://localhost:3000")
    const webview = await preflight("vscode-webview://abc")
    expect(webview.headers.get("access-control-allow-origin")).toBe("vscode-webview://abc")
    const foreign = await preflight("https://evil.example")
    expect(foreign.headers.get("access-control-allow-origin")).toBeNull()
    const tags = await fetch(`${foreman.url}/api/tags`, { headers: { origin: "http://127.0.0.1:8080" } })
    expect(tags.headers.get("access-control-allow-origin")).toBe("http://127.0.0.1:8080")
  })

  it("none of it reached the target's generation routes, and foreman still serves", async () => {
    expect(target.count("/api/chat") + target.count("/api/generate") + target.count("/api/embed")).toBe(0)
    expect((await foreman.health()).status).toBe("ok")
    const reply = await new Ollama({ host: foreman.url }).generate({ model: "llama3.2", prompt: "still there?" })
    expect(reply.done).toBe(true)
  })
})

describe("passthrough", () => {
  let target: FakeTarget
  let foreman: RunningForeman

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2", "qwen3"], tokenDelayMs: 30, chunks: 6 })
    foreman = await startForeman({ target: target.url })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
  })
  afterEach(() => target.release())
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  it("forwards each NDJSON line as it arrives, not buffered", async () => {
    // The target sends each line after the first only once the caller has the one before: a
    // buffered line would never reach the caller.
    target.pace()
    const response = await post(`${foreman.url}/api/chat`, JSON.stringify({ model: "llama3.2", messages: [{ role: "user", content: "stream it" }] }))
    expect(response.headers.get("content-type")).toBe("application/x-ndjson")
    const decoder = new TextDecoder()
    let text = ""
    const reader = response.body!.getReader()
    const reading = (async () => {
      for (let part = await reader.read(); !part.done; part = await reader.read()) text += decoder.decode(part.value, { stream: true })
    })()
    const received = () => text.split("\n").length - 1
    for (let n = 1; n <= 7; n++) {
      await vi.waitFor(() => expect(received()).toBe(n), { timeout: 5000, interval: 5 })
      if (n < 7) target.step()
    }
    await reading
    const all = lines(text)
    expect(all.length).toBe(7)
    expect(all.at(-1).done).toBe(true)
  })

  it("non-stream bodies are byte-identical, unmodelled fields included", async () => {
    const body = JSON.stringify({ model: "llama3.2", prompt: "same bytes" })
    const direct = new Uint8Array(await (await post(`${target.url}/api/embeddings`, body)).arrayBuffer())
    const proxied = await post(`${foreman.url}/api/embeddings`, body)
    expect(proxied.headers.get("content-type")).toBe("application/json; charset=utf-8")
    expect(new Uint8Array(await proxied.arrayBuffer())).toEqual(direct)

    const show = JSON.stringify({ model: "llama3.2" })
    const showDirect = await (await post(`${target.url}/api/show`, show)).text()
    expect(await (await post(`${foreman.url}/api/show`, show)).text()).toBe(showDirect)
  })

  it("a failure after bytes were sent ends the stream with an NDJSON error line", async () => {
    target.failNext("/api/generate", { mode: "midstream", afterLines: 2, message: "an error was encountered while running the model" })
    const response = await post(`${foreman.url}/api/generate`, JSON.stringify({ model: "llama3.2", prompt: "fail midway" }))
    expect(response.status).toBe(200)
    const all = lines(await response.text())
    expect(all.length).toBe(3)
    expect(all.at(-1)).toEqual({ error: "an error was encountered while running the model" })
    expect(all.some((line) => line.done === true)).toBe(false)
  })

  it("a connection reset mid-stream also ends with an error line, and foreman keeps serving", async () => {
    target.failNext("/api/chat", { mode: "reset", afterLines: 2 })
    const response = await post(`${foreman.url}/api/chat`, JSON.stringify({ model: "llama3.2", messages: [{ role: "user", content: "reset" }] }))
    const all = lines(await response.text())
    expect(all.length).toBe(3)
    expect(typeof all.at(-1).error).toBe("string")
    const ok = await new Ollama({ host: foreman.url }).chat({ model: "llama3.2", messages: [{ role: "user", content: "again" }] })
    expect(ok.done).toBe(true)
  })

  it("a target error before the first byte is passed on with its status and text", async () => {
    target.failNext("/api/chat", { mode: "status", status: 500, message: "model requires more system memory" })
    const response = await post(`${foreman.url}/api/chat`, JSON.stringify({ model: "llama3.2", messages: [{ role: "user", content: "x" }] }))
    expect(response.status).toBe(500)
    expect(await response.json()).toEqual({ error: "model requires more system memory" })
  })

  it("a connection reset before the first byte is retried, not failed", async () => {
    target.failNext("/api/generate", { mode: "reset", afterLines: 0 })
    const before = target.count("/api/generate")
    const reply = await new Ollama({ host: foreman.url }).generate({ model: "llama3.2", prompt: "retry me" })
    expect(reply.done).toBe(true)
    expect(target.count("/api/generate")).toBe(before + 2)
  })

  it("a caller that hangs up while queued is removed from the queue; one that hangs up while running aborts upstream", async () => {
    target.hold()
    const running = new AbortController()
    const queued = new AbortController()
    const first = post(`${foreman.url}/api/generate`, JSON.stringify({ model: "llama3.2", prompt: "first" }), {}, running.signal).catch((e) => e)
    await vi.waitFor(() => expect(target.held).toBe(1))
    const second = post(`${foreman.url}/api/generate`, JSON.stringify({ model: "llama3.2", prompt: "second" }), {}, queued.signal).catch((e) => e)
    await vi.waitFor(async () => expect((await foreman.health()).queueDepth).toBe(1))

    queued.abort()
    await second
    await vi.waitFor(async () => expect((await foreman.health()).queueDepth).toBe(0))
    expect((await foreman.health()).running).toBe(1)

    running.abort()
    await first
    // The upstream request was aborted: the target no longer holds it, and the slot is free.
    await vi.waitFor(() => expect(target.held).toBe(0))
    await vi.waitFor(async () => expect((await foreman.health()).running).toBe(0))
    target.release()
    const generations = target.calls.filter((call) => call.path === "/api/generate").map((call) => (call.body as { prompt: string }).prompt)
    expect(generations).not.toContain("second")
  })

  it("with one slot, a second job waits for the first", async () => {
    target.hold()
    const client = new Ollama({ host: foreman.url })
    const a = client.generate({ model: "llama3.2", prompt: "a" })
    await vi.waitFor(() => expect(target.held).toBe(1))
    const b = client.generate({ model: "llama3.2", prompt: "b" })
    await vi.waitFor(async () => expect((await foreman.health()).queueDepth).toBe(1))
    expect(target.held).toBe(1)
    target.release()
    await Promise.all([a, b])
    expect((await foreman.health()).queueDepth).toBe(0)
  })

  it("model management is passed through and refreshes the inventory", async () => {
    const client = new Ollama({ host: foreman.url })
    const progress = await client.pull({ model: "gemma3", stream: false })
    expect(progress.status).toBe("success")
    await vi.waitFor(async () => expect((await client.list()).models.map((m) => m.name)).toContain("gemma3:latest"))
    await client.copy({ source: "gemma3", destination: "my-gemma" })
    await vi.waitFor(async () => expect((await client.list()).models.map((m) => m.name)).toContain("my-gemma:latest"))
    await client.delete({ model: "my-gemma" })
    await vi.waitFor(async () => expect((await client.list()).models.map((m) => m.name)).not.toContain("my-gemma:latest"))
    const missing = await client.delete({ model: "my-gemma" }).catch((e) => e)
    expect(missing.status_code).toBe(404)
    expect(missing.error).toBe("model 'my-gemma' not found")
  })
})

describe("a target that stays asleep", () => {
  let target: FakeTarget
  let foreman: RunningForeman

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"] })
    foreman = await startForeman(
      { target: target.url, requestTimeout: Duration.millis(400), pollInterval: Duration.millis(100) },
      { testClock: true }
    )
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
    await target.sleep()
  })
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  it("answers a waiting caller 503 with Retry-After after the request timeout, and drops the job", async () => {
    let answered: Response | undefined
    const answer = post(`${foreman.url}/api/chat`, JSON.stringify({ model: "llama3.2", messages: [{ role: "user", content: "hello?" }] }))
      .then((response) => (answered = response))
    // The job found the target gone; foreman's clock has not moved since it arrived.
    await vi.waitFor(async () => expect((await foreman.health()).reachable).toBe(false), { interval: 20 })
    // Not before the timeout ...
    await foreman.adjust(Duration.millis(399))
    expect((await foreman.health()).queueDepth).toBe(1)
    expect(answered).toBeUndefined()
    // ... but at it.
    await foreman.adjust(Duration.millis(1))
    const response = await answer
    expect(response.status).toBe(503)
    expect(response.headers.get("retry-after")).toBe("5")
    const { error } = await response.json()
    expect(error).toMatch(/^foreman: no response within .*: the target is unreachable/)
    expect((await foreman.health()).queueDepth).toBe(0)
  })

  it("still lists the last inventory and answers /api/version from the last answer or 503", async () => {
    const tags = await (await fetch(`${foreman.url}/api/tags`)).json()
    expect(tags.models.map((m: { name: string }) => m.name)).toEqual(["llama3.2:latest"])
    const version = await fetch(`${foreman.url}/api/version`)
    expect(version.status).toBe(503)
  })
})

describe("a target slower than the request timeout", () => {
  it("answers 503 when the first byte does not come in time, and frees the slot", async () => {
    const target = await startFakeTarget({ models: ["llama3.2"] })
    const foreman = await startForeman({ target: target.url, requestTimeout: Duration.millis(300) })
    try {
      await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
      // The target takes the request and sends nothing until released: the timeout cannot lose
      // a race against it. (This wait is the HTTP client's, on the real clock.)
      target.hold()
      const response = await post(`${foreman.url}/api/generate`, JSON.stringify({ model: "llama3.2", prompt: "slow load" }))
      expect(response.status).toBe(503)
      expect((await response.json()).error).toBe(
        "foreman: no response within 300ms: the target did not start answering in time"
      )
      expect(await foreman.health()).toMatchObject({ running: 0, queueDepth: 0, status: "ok" })
      // The upstream request was given up: the target no longer holds it.
      await vi.waitFor(() => expect(target.held).toBe(0))
    } finally {
      target.release()
      await foreman.close()
      await target.close()
    }
  })
})

describe("a target that is not Ollama", () => {
  it("answering HTML to /api/tags is its error (502, not JSON), shown in health; foreman stays up", async () => {
    const { createServer } = await import("node:http")
    const server = createServer((_request, response) => {
      response.writeHead(200, { "content-type": "text/html" })
      response.end("<html><body>It works!</body></html>")
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const address = server.address()
    if (address === null || typeof address === "string") throw new Error("no port")
    const foreman = await startForeman({ target: `http://127.0.0.1:${address.port}` })
    try {
      await vi.waitFor(async () => {
        const health = await foreman.health()
        expect(health.status).toBe("degraded")
        expect(JSON.stringify(health)).toContain("target answered 502: unexpected /api/tags body from the target: not JSON")
      })
      expect((await fetch(`${foreman.url}/api/tags`)).status).toBe(200)
    } finally {
      await foreman.close()
      server.close()
    }
  })
})
