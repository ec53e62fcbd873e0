/**
 * Web pages must not drive foreman: a request with a foreign `Origin` (CSRF: a form post or a
 * `text/plain` fetch needs no preflight) and, on a loopback listener, a request whose `Host`
 * is not local (DNS rebinding) get 403 on every route before anything reaches the target.
 * Local web UIs, same-origin pages and `--origins` keep working.
 */
import { request as httpRequest } from "node:http"
import { Duration, Layer } from "effect"
import { Ollama } from "ollama"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { MetricsPlugin } from "../../plugins/metrics/index.ts"
import { OpenAiPlugin } from "../../plugins/openai/index.ts"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type RunningForeman, startForeman } from "../support/foreman.ts"

interface Reply {
  readonly status: number
  readonly headers: Record<string, string | Array<string> | undefined>
  readonly body: string
}

/**
 * node:http, so that the `Host` header is ours to set (fetch sets its own). One connection
 * per request: a 403 before the body is read ends the connection after it.
 */
const send = (url: string, method: string, path: string, headers: Record<string, string>, body?: string) =>
  new Promise<Reply>((resolve, reject) => {
    const { hostname, port } = new URL(url)
    const request = httpRequest({ hostname, port, method, path, headers, agent: false }, (response) => {
      let text = ""
      response.setEncoding("utf8")
      response.on("data", (chunk) => (text += chunk))
      response.on("end", () => resolve({ status: response.statusCode!, headers: response.headers, body: text }))
    })
    request.once("error", reject)
    request.end(body)
  })

const digest = `sha256:${"0".repeat(64)}`
const chat = JSON.stringify({ model: "llama3.2", messages: [{ role: "user", content: "hi" }] })
const generate = JSON.stringify({ model: "llama3.2", prompt: "hi" })

/** Every route foreman serves (plugins included) and one it does not. */
const routes: ReadonlyArray<readonly [method: string, path: string, body: string | undefined]> = [
  ["GET", "/", undefined],
  ["HEAD", "/", undefined],
  ["GET", "/api/version", undefined],
  ["GET", "/api/tags", undefined],
  ["GET", "/api/ps", undefined],
  ["POST", "/api/generate", generate],
  ["POST", "/api/chat", chat],
  ["POST", "/api/embed", JSON.stringify({ model: "llama3.2", input: "hi" })],
  ["POST", "/api/embeddings", JSON.stringify({ model: "llama3.2", prompt: "hi" })],
  ["POST", "/api/show", JSON.stringify({ model: "llama3.2" })],
  ["POST", "/api/pull", JSON.stringify({ model: "x" })],
  ["POST", "/api/push", JSON.stringify({ model: "x" })],
  ["POST", "/api/create", JSON.stringify({ model: "x", from: "llama3.2" })],
  ["POST", "/api/copy", JSON.stringify({ source: "llama3.2", destination: "y" })],
  ["DELETE", "/api/delete", JSON.stringify({ model: "llama3.2" })],
  ["HEAD", `/api/blobs/${digest}`, undefined],
  ["POST", `/api/blobs/${digest}`, "bytes"],
  ["GET", "/foreman/health", undefined],
  ["GET", "/foreman/v1/jobs", undefined],
  ["POST", "/foreman/v1/jobs", JSON.stringify({ endpoint: "/api/generate", body: JSON.parse(generate) })],
  ["GET", "/foreman/v1/jobs/some-id", undefined],
  ["DELETE", "/foreman/v1/jobs/some-id", undefined],
  ["GET", "/v1/models", undefined],
  ["GET", "/v1/models/llama3.2", undefined],
  ["POST", "/v1/chat/completions", chat],
  ["POST", "/v1/completions", generate],
  ["POST", "/v1/embeddings", JSON.stringify({ model: "llama3.2", input: "hi" })],
  ["GET", "/metrics", undefined],
  ["GET", "/no/such/route", undefined],
  ["OPTIONS", "/api/chat", undefined]
]

describe("web origins and hosts", () => {
  let target: FakeTarget
  let foreman: RunningForeman

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"] })
    foreman = await startForeman(
      { target: target.url, pollInterval: Duration.hours(1) },
      { plugins: Layer.mergeAll(OpenAiPlugin.layer, MetricsPlugin.layer) }
    )
    // The first poll reaches the target by itself; count from after it.
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"), { timeout: 15_000 })
  })
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  const local = () => new URL(foreman.url).host

  it.each(routes)("%s %s from a foreign origin: 403, and nothing reaches the target", async (method, path, body) => {
    const before = target.calls.length
    const reply = await send(foreman.url, method, path, {
      host: local(),
      origin: "https://evil.example",
      "content-type": "text/plain",
      ...(method === "OPTIONS" ? { "access-control-request-method": "POST" } : {})
    }, body)
    expect(reply.status).toBe(403)
    expect(reply.headers["access-control-allow-origin"]).toBeUndefined()
    if (method !== "HEAD") {
      const error = JSON.parse(reply.body).error
      const message = path.startsWith("/v1/") ? error.message : error
      expect(message).toBe(`forbidden: origin "https://evil.example" is not allowed (--origins allows more)`)
      if (path.startsWith("/v1/")) expect(error.type).toBe("permission_error")
    }
    expect(target.calls.length).toBe(before)
  })

  it.each(routes)("%s %s with a Host that is not local: 403, and nothing reaches the target", async (method, path, body) => {
    const before = target.calls.length
    const reply = await send(foreman.url, method, path, { host: "evil.example:11435" }, body)
    expect(reply.status).toBe(403)
    if (method !== "HEAD") {
      const error = JSON.parse(reply.body).error
      expect(path.startsWith("/v1/") ? error.message : error).toBe(
        `forbidden: host "evil.example:11435" is not local (a request to foreman on a loopback address must name a local host)`
      )
    }
    expect(target.calls.length).toBe(before)
  })

  it("a local web UI is served, with CORS headers, and its preflight answered", async () => {
    const preflight = await send(foreman.url, "OPTIONS", "/api/chat", {
      host: local(),
      origin: "http://localhost:3000",
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type"
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers["access-control-allow-origin"]).toBe("http://localhost:3000")
    const reply = await send(foreman.url, "POST", "/api/chat", { host: local(), origin: "http://localhost:3000" }, chat)
    expect(reply.status).toBe(200)
    expect(reply.headers["access-control-allow-origin"]).toBe("http://localhost:3000")
  })

  it("a page of foreman's own origin is served, whatever the name it was reached by", async () => {
    const host = `gpu-box.local:${new URL(foreman.url).port}`
    const reply = await send(foreman.url, "POST", "/api/chat", { host, origin: `http://${host}` }, chat)
    expect(reply.status).toBe(200)
  })

  it("local names and addresses pass the Host rule", async () => {
    for (const host of ["localhost:11435", "[::1]:11435", "192.168.1.5", "gpu-box.local", "ollama.internal"]) {
      expect((await send(foreman.url, "GET", "/api/tags", { host })).status, host).toBe(200)
    }
  })

  it("the ollama and openai clients, and curl-like requests without Origin, are unaffected", async () => {
    const reply = await new Ollama({ host: foreman.url }).chat({ model: "llama3.2", messages: [{ role: "user", content: "hi" }] })
    expect(reply.done).toBe(true)
    const completion = await new OpenAI({ baseURL: `${foreman.url}/v1`, apiKey: "unused" }).chat.completions.create({
      model: "llama3.2",
      messages: [{ role: "user", content: "hi" }]
    })
    expect(completion.choices[0]!.message.content).toBe("echo: hi")
    expect((await send(foreman.url, "POST", "/api/generate", { host: local() }, generate)).status).toBe(200)
  })
})

describe("--origins", () => {
  let target: FakeTarget
  const started: Array<RunningForeman> = []
  const start = async (origins: ReadonlyArray<string>) => {
    const foreman = await startForeman({ target: target.url, origins })
    started.push(foreman)
    return foreman
  }

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"] })
  })
  afterAll(async () => {
    for (const foreman of started) await foreman.close()
    await target?.close()
  })

  it("adds origins to Ollama's defaults", async () => {
    const foreman = await start(["https://chat.example.com", "http://192.168.1.*"])
    const host = new URL(foreman.url).host
    const tags = (origin: string) => send(foreman.url, "GET", "/api/tags", { host, origin })
    expect((await tags("https://chat.example.com")).status).toBe(200)
    expect((await tags("https://chat.example.com")).headers["access-control-allow-origin"]).toBe("https://chat.example.com")
    expect((await tags("http://192.168.1.20:3000")).status).toBe(200)
    expect((await tags("http://localhost:3000")).status).toBe(200)
    expect((await tags("https://evil.example")).status).toBe(403)
  })

  it("* allows every origin; the Host rule still holds", async () => {
    const foreman = await start(["*"])
    const host = new URL(foreman.url).host
    expect((await send(foreman.url, "GET", "/api/tags", { host, origin: "https://evil.example" })).status).toBe(200)
    expect((await send(foreman.url, "GET", "/api/tags", { host: "evil.example", origin: "https://evil.example" })).status).toBe(403)
  })
})
