/**
 * The rest passes through (issue 16): a path neither foreman nor a plugin serves is forwarded
 * to the target as it was asked, and the target's answer comes back as it was sent, so a route
 * the next Ollama release adds works through foreman as it is. Such a call is not a job, it is
 * for admin keys only, and the origin and host rules hold for it. A known path with the wrong
 * method stays foreman's 405, and foreman's own `/foreman/*` its 404.
 */
import { Duration, Effect, Layer } from "effect"
import { createServer, type IncomingHttpHeaders, request as httpRequest } from "node:http"
import { mkdtempSync, rmSync } from "node:fs"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { OpenAiPlugin } from "../../plugins/openai/index.ts"
import { addKey } from "../../src/auth/KeysFile.ts"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type RunningForeman, startForeman } from "../support/foreman.ts"

interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

/**
 * A target with a route foreman has never heard of, `/api/experimental/future`, that answers
 * 201 with headers of its own; `/api/experimental/stream` sends one line and the second only
 * when the test says. It records what reached it exactly (the fake target records less).
 */
const startFutureTarget = async () => {
  const seen: Array<Seen> = []
  const waiting: Array<() => void> = []
  const server = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const url = request.url ?? "/"
      const path = url.split("?")[0]
      // foreman's own calls (its poll) are not what a test looks at.
      if (path === "/api/tags" || path === "/api/ps" || path === "/api/version") {
        return void response.writeHead(200, { "content-type": "application/json; charset=utf-8" }).end(`{"models":[]}`)
      }
      seen.push({ method: request.method!, url, headers: request.headers, body: Buffer.concat(chunks).toString("utf8") })
      if (path === "/api/experimental/future") {
        return void response.writeHead(201, {
          "content-type": "application/vnd.future+json",
          "x-future": "yes",
          "cache-control": "no-store",
          location: "/api/experimental/future/1",
          "access-control-allow-origin": "*"
        }).end(JSON.stringify({ future: true, unmodelled: { kept: [1, 2] } }))
      }
      if (path === "/api/experimental/stream") {
        response.writeHead(200, { "content-type": "application/x-ndjson" })
        response.write(`{"step":1}\n`)
        return void waiting.push(() => response.end(`{"step":2,"done":true}\n`))
      }
      response.writeHead(404, { "content-type": "text/plain" }).end("404 page not found")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    /** Lets the held stream finish, once it has started. */
    release: async () => {
      await vi.waitFor(() => expect(waiting.length).toBe(1))
      waiting.shift()!()
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

interface Reply {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

/** node:http, so that `Origin` and `Host` are ours to set. */
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

describe("a path foreman does not know is forwarded as it was asked, its answer returned as it was sent", () => {
  let target: Awaited<ReturnType<typeof startFutureTarget>>
  let foreman: RunningForeman

  beforeAll(async () => {
    target = await startFutureTarget()
    foreman = await startForeman({ target: target.url, maxBodySize: 1024 })
  })
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  it("method, path, query and body reach the target; status, content type, headers and body come back", async () => {
    const body = `{"question":"what comes next?","extra":[1,{"deep":true}]}`
    const response = await fetch(`${foreman.url}/api/experimental/future?x=1&y=%20z&y=2`, {
      method: "POST",
      body,
      headers: { "content-type": "application/json; charset=utf-8", accept: "application/json" }
    })
    expect(response.status).toBe(201)
    expect(response.headers.get("content-type")).toBe("application/vnd.future+json")
    expect(response.headers.get("x-future")).toBe("yes")
    expect(response.headers.get("cache-control")).toBe("no-store")
    expect(response.headers.get("location")).toBe("/api/experimental/future/1")
    expect(await response.text()).toBe(`{"future":true,"unmodelled":{"kept":[1,2]}}`)
    const seen = target.seen.at(-1)!
    expect(seen).toMatchObject({ method: "POST", url: "/api/experimental/future?x=1&y=%20z&y=2", body })
    expect(seen.headers["content-type"]).toBe("application/json; charset=utf-8")
    expect(seen.headers["accept"]).toBe("application/json")
    expect(seen.headers["host"]).toBe(new URL(target.url).host)
  })

  it("every method goes as it came, but OPTIONS, which foreman's CORS answers (as Ollama's does)", async () => {
    for (const method of ["GET", "PUT", "PATCH", "DELETE", "HEAD"]) {
      const response = await fetch(`${foreman.url}/api/experimental/future`, {
        method,
        ...(method === "PUT" || method === "PATCH" ? { body: "{}" } : {})
      })
      expect(response.status, method).toBe(201)
      expect(target.seen.at(-1)!.method).toBe(method)
    }
    const before = target.seen.length
    expect((await fetch(`${foreman.url}/api/experimental/future`, { method: "OPTIONS" })).status).toBe(204)
    expect(target.seen.length).toBe(before)
  })

  it("the answer streams: the target's first line arrives while it holds the second", async () => {
    const response = await fetch(`${foreman.url}/api/experimental/stream`)
    expect(response.headers.get("content-type")).toBe("application/x-ndjson")
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    expect(decoder.decode((await reader.read()).value)).toBe(`{"step":1}\n`)
    await target.release()
    let rest = ""
    for (let part = await reader.read(); !part.done; part = await reader.read()) rest += decoder.decode(part.value, { stream: true })
    expect(rest).toBe(`{"step":2,"done":true}\n`)
  })

  it("not a job: foreman's own headers, the caller's key and its priority are not passed on, nor acted on", async () => {
    const jobs = (await foreman.health())["jobs"]
    const response = await fetch(`${foreman.url}/api/experimental/future`, {
      method: "POST",
      body: "{}",
      headers: {
        authorization: "Bearer fk_not-for-the-target",
        "x-api-key": "fk_not-for-the-target",
        prefer: "respond-async",
        "x-foreman-priority": "batch",
        cookie: "session=1"
      }
    })
    // The target's answer, not a 202 with a job's Location.
    expect(response.status).toBe(201)
    expect(response.headers.get("location")).toBe("/api/experimental/future/1")
    const { headers } = target.seen.at(-1)!
    for (const name of ["authorization", "x-api-key", "prefer", "x-foreman-priority", "cookie"]) expect(headers[name], name).toBeUndefined()
    expect((await foreman.health())["jobs"]).toEqual(jobs)
  })

  it("a body over --max-body-size is foreman's 413, and does not reach the target", async () => {
    const before = target.seen.length
    const response = await fetch(`${foreman.url}/api/experimental/future`, { method: "POST", body: "x".repeat(2048) })
    expect(response.status).toBe(413)
    expect(await response.json()).toEqual({ error: "request body too large (limit 1024 bytes)" })
    expect(target.seen.length).toBe(before)
  })

  it("CORS stays foreman's: a local page gets its own origin back, not the target's `*`; a foreign one 403 and nothing forwarded", async () => {
    const host = new URL(foreman.url).host
    const local = await send(foreman.url, "GET", "/api/experimental/future", { host, origin: "http://localhost:3000" })
    expect(local.status).toBe(201)
    expect(local.headers["access-control-allow-origin"]).toBe("http://localhost:3000")
    const before = target.seen.length
    const foreign = await send(foreman.url, "POST", "/api/experimental/future", { host, origin: "https://evil.example", "content-type": "text/plain" }, "{}")
    expect(foreign.status).toBe(403)
    expect(JSON.parse(foreign.body)).toEqual({ error: `forbidden: origin "https://evil.example" is not allowed (--origins allows more)` })
    const rebound = await send(foreman.url, "GET", "/api/experimental/future", { host: "evil.example" })
    expect(rebound.status).toBe(403)
    expect(target.seen.length).toBe(before)
  })
})

describe("with Ollama's own fake: what foreman serves, what passes through", () => {
  let target: FakeTarget
  let bare: RunningForeman
  let withOpenAi: RunningForeman

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"] })
    bare = await startForeman({ target: target.url })
    withOpenAi = await startForeman({ target: target.url }, { plugins: OpenAiPlugin.layer })
    await vi.waitFor(async () => expect((await bare.health()).status).toBe("ok"))
    await vi.waitFor(async () => expect((await withOpenAi.health()).status).toBe("ok"))
  })
  afterAll(async () => {
    await bare?.close()
    await withOpenAi?.close()
    await target?.close()
  })

  it("a path the target does not know either: the target's own 404, as Ollama sends it", async () => {
    const response = await fetch(`${bare.url}/api/experimental/future`, { method: "POST", body: "{}" })
    expect(response.status).toBe(404)
    expect(response.headers.get("content-type")).toBe("text/plain")
    expect(await response.text()).toBe("404 page not found")
    expect(target.calls.at(-1)).toMatchObject({ method: "POST", path: "/api/experimental/future" })
  })

  it("a known path with the wrong method stays foreman's 405, and nothing reaches the target", async () => {
    const before = target.calls.length
    for (const [method, path] of [["GET", "/api/chat"], ["POST", "/api/tags"], ["PUT", "/api/generate"]] as const) {
      const response = await fetch(`${bare.url}${path}`, { method })
      expect(response.status, `${method} ${path}`).toBe(405)
      expect(await response.json()).toEqual({ error: "405 method not allowed" })
    }
    expect(target.calls.length).toBe(before)
  })

  it("foreman's own namespace is never forwarded: /foreman/* that does not exist is foreman's 404", async () => {
    const before = target.calls.length
    for (const path of ["/foreman", "/foreman/unknown", "/foreman/v2/jobs"]) {
      const response = await fetch(`${bare.url}${path}`)
      expect(response.status, path).toBe(404)
      expect(await response.json()).toEqual({ error: "404 page not found" })
    }
    expect(target.calls.length).toBe(before)
  })

  it("a plugin's routes win; without the plugin its paths are the target's own, and not jobs", async () => {
    const chat = { model: "llama3.2", messages: [{ role: "user" as const, content: "hi" }] }
    const async = (foreman: RunningForeman) =>
      fetch(`${foreman.url}/v1/chat/completions`, {
        method: "POST",
        body: JSON.stringify(chat),
        headers: { "content-type": "application/json", prefer: "respond-async" }
      })
    // Without the plugin: the target's own /v1 answers, there and then.
    const before = target.count("/v1/chat/completions")
    const forwarded = await async(bare)
    expect(forwarded.status).toBe(200)
    expect((await forwarded.json()).choices[0].message.content).toBe("echo: hi")
    expect(target.count("/v1/chat/completions")).toBe(before + 1)
    const completion = await new OpenAI({ baseURL: `${bare.url}/v1`, apiKey: "unused", maxRetries: 0 }).chat.completions.create(chat)
    expect(completion.choices[0]!.message.content).toBe("echo: hi")
    // The plugin's route: a job, so `Prefer: respond-async` makes it async.
    const accepted = await async(withOpenAi)
    expect(accepted.status).toBe(202)
    const job = await (await fetch(`${withOpenAi.url}${accepted.headers.get("location")}?wait=30s`)).json()
    expect(job.status).toBe("succeeded")
    // /v1/models: the plugin answers from foreman's cache; forwarded, the target is asked.
    const models = target.count("/v1/models")
    expect((await fetch(`${withOpenAi.url}/v1/models`)).status).toBe(200)
    expect(target.count("/v1/models")).toBe(models)
    expect((await fetch(`${bare.url}/v1/models`)).status).toBe(200)
    expect(target.count("/v1/models")).toBe(models + 1)
  })

  it("the target asleep: 503 with Retry-After at once, as the other pass-through routes (no waiting, it is not a job)", async () => {
    await target.sleep()
    try {
      const response = await fetch(`${bare.url}/api/experimental/future`)
      expect(response.status).toBe(503)
      expect(response.headers.get("retry-after")).not.toBeNull()
      expect((await response.json()).error).toMatch(/^foreman: the target http:\/\/127\.0\.0\.1:\d+ is unreachable: /)
      const v1 = await fetch(`${bare.url}/v1/models`)
      expect(v1.status).toBe(503)
      expect((await v1.json()).error).toMatchObject({ type: "api_error", message: expect.stringMatching(/is unreachable/) })
    } finally {
      await target.wake()
    }
  })
})

describe("with keys on, forwarded paths are for admin keys", () => {
  let target: FakeTarget
  let foreman: RunningForeman
  let dir: string
  const keys: Record<string, string> = {}
  const call = (path: string, key?: string, init: RequestInit = {}) =>
    fetch(`${foreman.url}${path}`, { ...init, headers: key === undefined ? {} : { authorization: `Bearer ${key}` } })

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "foreman-forward-keys-"))
    const keysFile = join(dir, "keys.json")
    keys["root"] = (await Effect.runPromise(addKey(keysFile, "root", "admin"))).key
    keys["alice"] = (await Effect.runPromise(addKey(keysFile, "alice", "user"))).key
    target = await startFakeTarget({ models: ["llama3.2"] })
    foreman = await startForeman({ target: target.url, keysFile, pollInterval: Duration.hours(1) }, { plugins: Layer.empty })
    // The first poll has reached the target: count from after it.
    await vi.waitFor(async () => expect((await (await call("/foreman/health")).json()).status).toBe("ok"))
  })
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it("no key: 401; a user key: 403, in the caller's dialect; neither reaches the target", async () => {
    const before = target.calls.length
    const none = await call("/api/experimental/future")
    expect(none.status).toBe(401)
    expect(none.headers.get("www-authenticate")).toBe("Bearer")
    expect(await none.json()).toEqual({ error: "unauthorized" })
    const user = await call("/api/experimental/future", keys["alice"])
    expect(user.status).toBe(403)
    expect(await user.json()).toEqual({ error: "forbidden: this route needs an admin key" })
    const userV1 = await call("/v1/models", keys["alice"])
    expect(userV1.status).toBe(403)
    expect(await userV1.json()).toEqual({
      error: { message: "forbidden: this route needs an admin key", type: "permission_error", param: null, code: null }
    })
    expect(target.calls.length).toBe(before)
  })

  it("an admin key: forwarded", async () => {
    const admin = await call("/api/experimental/future", keys["root"])
    expect(admin.status).toBe(404)
    expect(await admin.text()).toBe("404 page not found")
    expect(target.calls.at(-1)).toMatchObject({ method: "GET", path: "/api/experimental/future" })
    const models = await call("/v1/models", keys["root"])
    expect(models.status).toBe(200)
    expect((await models.json()).data.map((m: { id: string }) => m.id)).toEqual(["llama3.2:latest"])
  })

  it("foreman's own routes are unchanged: a user key still reads the tags", async () => {
    expect((await call("/api/tags", keys["alice"])).status).toBe(200)
  })
})
