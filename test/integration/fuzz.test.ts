/**
 * Hostile input, many times over: 1 200 requests built from a fixed seed across every route
 * (bad methods, paths, query values, headers and bodies: malformed, mistyped, deep, huge,
 * not UTF-8), plus malformed HTTP on a raw socket. The target answers every job with a 200,
 * so any 5xx is foreman's own. None may be a 5xx, none may hang, and foreman is healthy and
 * serving afterwards.
 */
import { request as httpRequest } from "node:http"
import { connect } from "node:net"
import { Duration, Layer } from "effect"
import { Ollama } from "ollama"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { AnthropicPlugin } from "../../plugins/anthropic/index.ts"
import { MetricsPlugin } from "../../plugins/metrics/index.ts"
import { OpenAiPlugin } from "../../plugins/openai/index.ts"
import { type BadTarget, startBadTarget } from "../support/BadTarget.ts"
import { type RunningForeman, startForeman } from "../support/foreman.ts"

/** mulberry32: a small seeded generator, so a failure can be replayed. */
const generator = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const maxBodySize = 64 * 1024

const routes = [
  "/", "/api/version", "/api/tags", "/api/ps", "/api/generate", "/api/chat", "/api/embed", "/api/embeddings",
  "/api/show", "/api/pull", "/api/push", "/api/create", "/api/copy", "/api/delete", `/api/blobs/sha256:${"a".repeat(64)}`,
  "/api/blobs/not-a-digest", "/foreman/health", "/foreman/v1/jobs", "/foreman/v1/jobs/00000000-0000-0000-0000-000000000000",
  "/v1/models", "/v1/models/llama3.2", "/v1/models/%00", "/v1/chat/completions", "/v1/completions", "/v1/embeddings",
  "/v1/messages", "/v1/messages/count_tokens", "/v1/responses", "/v1/audio/transcriptions", "/foreman/openapi.json",
  "/api/status", "/api/me", "/api/signout", "/api/experimental/web_search",
  "/metrics", "/nope", "/api/../foreman/v1/jobs", "/api/chat/", "//api/chat", "/%2e%2e/api/tags", `/${"x".repeat(6000)}`
]
const queries = ["", "?wait=30s", "?wait=abc", "?wait=-1s", "?wait=99999h", "?limit=0", "?limit=501", "?limit=abc", "?status=nope",
  "?status=queued&limit=1", "?cursor=abc", "?cursor=-5", "?a=%ZZ", "?wait=1ms&wait=2ms"]
const methods = ["GET", "POST", "POST", "POST", "DELETE", "HEAD", "PUT", "PATCH", "OPTIONS"]

const nested = (levels: number, open = "[", close = "]") => open.repeat(levels) + close.repeat(levels)

/** Bodies a client might send by mistake or on purpose. */
const bodies = (random: () => number): ReadonlyArray<() => Uint8Array | string> => [
  () => "",
  () => "null",
  () => "[]",
  () => "{",
  () => "}",
  () => "\uFEFF{}",
  () => `{"model":"llama3.2","prompt":"hi"}`,
  () => `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`,
  () => `{"model":"llama3.2","input":["a","b"]}`,
  () => `{"model":123}`,
  () => `{"model":"llama3.2","messages":"hi"}`,
  () => `{"model":"llama3.2","messages":[null,1,"x",{"role":7}]}`,
  () => `{"model":"llama3.2","stream":"yes","prompt":["x"]}`,
  () => `{"model":"llama3.2","options":${nested(5_000)}}`,
  () => `{"model":"llama3.2","options":${nested(10_001)}}`,
  () => nested(100_000, "{\"a\":", "}").replace(/\{"a":\}/, '{"a":1}'),
  () => `{"model":"${"a".repeat(300)}","prompt":"x"}`,
  () => `{"model":"../../etc/passwd","prompt":"x"}`,
  () => `{"model":"a:b:c:d","prompt":"x"}`,
  () => `{"model":"llama3.2","model":"other","prompt":"x"}`,
  () => `{"model":"llama3.2","prompt":"${"x".repeat(maxBodySize)}"}`,
  () => `{"model":"llama3.2","prompt":"\\ud800"}`,
  () => `{"model":"llama3.2","prompt":1e999}`,
  () => `{"endpoint":"/api/chat","body":{"model":"llama3.2","messages":[]}}`,
  () => `{"endpoint":"/api/nope","body":{}}`,
  () => `{"endpoint":"/api/generate","body":${nested(20_000)}}`,
  () => `{"endpoint":"/api/generate","body":{"model":"llama3.2","options":${nested(9_000)}},"priority":"urgent"}`,
  () => `{"endpoint":"/api/generate","body":"not an object","priority":7}`,
  () => `{"source":"llama3.2","destination":"x"}`,
  () => new Uint8Array([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x7b, 0x22]),
  () => Uint8Array.from({ length: 1 + Math.floor(random() * 512) }, () => Math.floor(random() * 256)),
  () => JSON.stringify({ model: "llama3.2", prompt: String.fromCharCode(...Array.from({ length: 64 }, () => Math.floor(random() * 0xd7ff))) })
]

const headerSets = (random: () => number): ReadonlyArray<() => Record<string, string>> => [
  () => ({}),
  () => ({ prefer: "respond-async" }),
  () => ({ prefer: "respond-async, wait=5" }),
  () => ({ "x-foreman-priority": ["interactive", "normal", "batch", "urgent", ""][Math.floor(random() * 5)]! }),
  () => ({ "content-type": "text/plain" }),
  () => ({ "content-type": "application/json; charset=latin1" }),
  () => ({ origin: "https://evil.example" }),
  () => ({ origin: "http://localhost:3000" }),
  () => ({ origin: "null" }),
  () => ({ host: "evil.example" }),
  () => ({ host: "" }),
  () => ({ accept: "text/event-stream" }),
  () => ({ "access-control-request-method": "POST", origin: "http://localhost:5173" })
]

interface Outcome {
  readonly status: number
  readonly error?: string
}

/**
 * A body goes with its `Content-Length`: Node's client frames a DELETE's body neither by length
 * nor by chunks, so the server would read it as a second, malformed request on the connection
 * (malformed HTTP is the raw socket's part below).
 */
const send = (url: string, method: string, path: string, headers: Record<string, string>, body: Uint8Array | string) =>
  new Promise<Outcome>((resolve) => {
    const { hostname, port } = new URL(url)
    const withBody = method !== "GET" && method !== "HEAD"
    const framed = withBody ? { ...headers, "content-length": String(Buffer.byteLength(body)) } : headers
    const request = httpRequest({ hostname, port, method, path, headers: framed, agent: false, timeout: 30_000 }, (response) => {
      response.resume()
      response.once("end", () => resolve({ status: response.statusCode! }))
      response.once("error", (error) => resolve({ status: response.statusCode!, error: String(error) }))
    })
    request.once("timeout", () => request.destroy(new Error("no answer within 30 s")))
    request.once("error", (error) => resolve({ status: 0, error: String(error) }))
    request.end(withBody ? body : undefined)
  })

/**
 * Bytes straight onto a socket: whatever foreman answers (Node's parser answers bad HTTP and
 * closes). A connection foreman left open would hold the test until its own timeout.
 */
const raw = (port: number, text: string) =>
  new Promise<string>((resolve) => {
    const socket = connect(port, "127.0.0.1", () => socket.end(text))
    let reply = ""
    socket.setEncoding("utf8")
    socket.on("data", (chunk) => (reply += chunk))
    socket.once("close", () => resolve(reply))
    socket.once("error", () => {})
  })

describe("hostile input", () => {
  let target: BadTarget
  let foreman: RunningForeman

  beforeAll(async () => {
    target = await startBadTarget()
    foreman = await startForeman(
      { target: target.url, maxBodySize, stallTimeout: Duration.seconds(10) },
      { plugins: Layer.mergeAll(OpenAiPlugin.layer, AnthropicPlugin.layer, MetricsPlugin.layer) }
    )
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"), { timeout: 15_000 })
  }, 60_000)
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  }, 60_000)

  it("1 200 hostile requests: no 5xx, no hang; foreman healthy and serving afterwards", { timeout: 300_000 }, async () => {
    const random = generator(20261201)
    const pick = <A>(items: ReadonlyArray<A>) => items[Math.floor(random() * items.length)]!
    const bodyMakers = bodies(random)
    const headerMakers = headerSets(random)
    const requests = Array.from({ length: 1_200 }, (_, i) => {
      const method = pick(methods)
      const path = pick(routes) + pick(queries)
      const headers = Object.assign({}, pick(headerMakers)(), random() < 0.2 ? pick(headerMakers)() : {})
      const body = pick(bodyMakers)()
      return { i, method, path, headers, body }
    })
    const failures: Array<string> = []
    let next = 0
    const worker = async () => {
      while (next < requests.length) {
        const { body, headers, i, method, path } = requests[next++]!
        const outcome = await send(foreman.url, method, path, headers, body)
        if (outcome.status === 0 || outcome.status >= 500) {
          const shown = typeof body === "string" ? body.slice(0, 120) : `${body.byteLength} bytes`
          failures.push(`#${i} ${method} ${path.slice(0, 80)} ${JSON.stringify(headers)} ${shown} -> ${outcome.status} ${outcome.error ?? ""}`)
        }
      }
    }
    await Promise.all(Array.from({ length: 8 }, worker))

    const { port } = new URL(foreman.url)
    for (const text of [
      "GARBAGE\r\n\r\n",
      "GET / HTTP/9.9\r\n\r\n",
      "GET /api/tags HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n",
      "POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n",
      "POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "POST http://127.0.0.1/api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}",
      "GET * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
      "GET /api/tags HTTP/1.0\r\n\r\n",
      `GET /${"a".repeat(20_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
      `GET /api/tags HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${"b".repeat(20_000)}\r\n\r\n`,
      "POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"model\":"
    ]) {
      const reply = await raw(Number(port), text)
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(reply)?.[1] ?? 0)
      if (status >= 500) failures.push(`raw ${JSON.stringify(text.slice(0, 60))} -> ${reply.slice(0, 120)}`)
    }

    expect(failures).toEqual([])
    expect(await foreman.health()).toMatchObject({ status: "ok", jobFaults: 0 })
    const reply = await new Ollama({ host: foreman.url }).generate({ model: "llama3.2", prompt: "still here" })
    expect(reply.response).toBe("echo: still here")
  })
})
