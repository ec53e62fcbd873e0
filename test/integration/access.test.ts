/**
 * API keys with the real clients: who may call foreman, with which role, and whose async jobs
 * each key sees. The keys file is managed as `foreman-effect keys` does it, while foreman runs.
 */
import { Duration, Effect, Layer } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Anthropic from "@anthropic-ai/sdk"
import { Ollama } from "ollama"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { AnthropicPlugin } from "../../plugins/anthropic/index.ts"
import { MetricsPlugin } from "../../plugins/metrics/index.ts"
import { OpenAiPlugin } from "../../plugins/openai/index.ts"
import type { Role } from "../../src/auth/Keys.ts"
import { addKey, removeKey } from "../../src/auth/KeysFile.ts"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type RunningForeman, startForeman } from "../support/foreman.ts"

describe("API keys", () => {
  let target: FakeTarget
  let foreman: RunningForeman
  let dir: string
  let keysFile: string
  const keys: Record<string, string> = {}
  const add = async (name: string, role: Role) => {
    keys[name] = (await Effect.runPromise(addKey(keysFile, name, role))).key
    return keys[name]!
  }
  const call = (path: string, init: RequestInit & { key?: string; header?: "authorization" | "x-api-key" } = {}) => {
    const { header = "authorization", key, ...rest } = init
    const headers = new Headers(rest.headers)
    if (key !== undefined) headers.set(header, header === "authorization" ? `Bearer ${key}` : key)
    return fetch(`${foreman.url}${path}`, { ...rest, headers })
  }
  const ollama = (key?: string) =>
    new Ollama({ host: foreman.url, ...(key === undefined ? {} : { headers: { Authorization: `Bearer ${key}` } }) })
  const openai = (key: string) => new OpenAI({ baseURL: `${foreman.url}/v1`, apiKey: key, maxRetries: 0 })
  const chat = { model: "llama3.2", messages: [{ role: "user", content: "hello" }] }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "foreman-keys-"))
    keysFile = join(dir, "keys.json")
    await add("root", "admin")
    await add("alice", "user")
    await add("bob", "user")
    target = await startFakeTarget({ models: ["llama3.2", { name: "all-minilm", capabilities: ["embedding"] }] })
    foreman = await startForeman(
      // A short request timeout: a sync call while the target sleeps answers 503 soon.
      { target: target.url, keysFile, pollInterval: Duration.millis(100), requestTimeout: Duration.seconds(2) },
      { plugins: Layer.mergeAll(OpenAiPlugin.layer, AnthropicPlugin.layer, MetricsPlugin.layer) }
    )
    await vi.waitFor(async () => expect((await (await call("/foreman/health")).json()).status).toBe("ok"), { timeout: 15_000 })
  })
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it("no key or a wrong one: 401 with WWW-Authenticate, in the caller's dialect", async () => {
    for (const key of [undefined, "fk_wrong", keys["alice"]!.slice(0, -1)]) {
      const tags = await call("/api/tags", key === undefined ? {} : { key })
      expect(tags.status).toBe(401)
      expect(tags.headers.get("www-authenticate")).toBe("Bearer")
      expect(await tags.json()).toEqual({ error: "unauthorized" })
      const models = await call("/v1/models", key === undefined ? {} : { key })
      expect(models.status).toBe(401)
      expect(await models.json()).toEqual({
        error: { message: "unauthorized", type: "invalid_request_error", param: null, code: "invalid_api_key" }
      })
    }
    await expect(ollama().chat(chat)).rejects.toMatchObject({ status_code: 401, error: "unauthorized" })
    await expect(ollama("fk_wrong").list()).rejects.toMatchObject({ status_code: 401 })
    await expect(openai("fk_wrong").chat.completions.create(chat as never)).rejects.toMatchObject({ status: 401, code: "invalid_api_key" })
    // Anthropic's envelope on /v1/messages; its clients send the key as x-api-key.
    const messages = await call("/v1/messages", { method: "POST", body: "{}" })
    expect(messages.status).toBe(401)
    expect(await messages.json()).toMatchObject({ type: "error", error: { type: "authentication_error", message: "unauthorized" } })
    const anthropic = (key: string) => new Anthropic({ baseURL: foreman.url, apiKey: key, maxRetries: 0 })
    await expect(anthropic("fk_wrong").messages.create({ ...chat, max_tokens: 8 } as never)).rejects.toMatchObject({
      status: 401,
      error: { type: "error", error: { type: "authentication_error" } }
    })
    // Nothing reached the target.
    expect(target.calls.filter((c) => c.path === "/api/chat")).toHaveLength(0)
  })

  it("what is public: GET / and the status in /foreman/health", async () => {
    expect(await (await call("/")).text()).toBe("Ollama is running")
    expect((await call("/", { method: "HEAD" })).status).toBe(200)
    expect(await (await call("/foreman/health")).json()).toEqual({ status: "ok" })
    // The rest of foreman's own API is not.
    expect((await call("/foreman/v1/jobs")).status).toBe(401)
    expect((await call("/foreman/openapi.json")).status).toBe(401)
  })

  it("a user key: inference and listings work, model management is 403", async () => {
    const alice = keys["alice"]!
    const answer = await ollama(alice).chat(chat)
    expect(answer.message.content.length).toBeGreaterThan(0)
    expect((await ollama(alice).list()).models.map((m) => m.name)).toContain("llama3.2:latest")
    expect((await ollama(alice).ps()).models).toBeDefined()
    expect((await ollama(alice).embed({ model: "all-minilm", input: "x" })).embeddings).toHaveLength(1)
    const completion = await openai(alice).chat.completions.create(chat as never)
    expect(completion.choices[0]!.message.content!.length).toBeGreaterThan(0)
    expect((await openai(alice).models.list()).data.map((m) => m.id)).toContain("llama3.2:latest")
    // As Anthropic clients send it.
    expect((await call("/api/version", { key: alice, header: "x-api-key" })).status).toBe(200)
    const message = await new Anthropic({ baseURL: foreman.url, apiKey: alice, maxRetries: 0 }).messages.create({
      model: "llama3.2",
      max_tokens: 8,
      messages: [{ role: "user", content: "hello" }]
    })
    expect(message.content[0]).toMatchObject({ type: "text" })

    await expect(ollama(alice).pull({ model: "qwen3" })).rejects.toMatchObject({
      status_code: 403,
      error: "forbidden: this route needs an admin key"
    })
    await expect(ollama(alice).delete({ model: "llama3.2" })).rejects.toMatchObject({ status_code: 403 })
    await expect(ollama(alice).copy({ source: "llama3.2", destination: "x" })).rejects.toMatchObject({ status_code: 403 })
    await expect(ollama(alice).create({ model: "x", from: "llama3.2" })).rejects.toMatchObject({ status_code: 403 })
    await expect(ollama(alice).push({ model: "llama3.2" })).rejects.toMatchObject({ status_code: 403 })
    expect((await call("/api/blobs/sha256:00", { method: "HEAD", key: alice })).status).toBe(403)
    expect((await call("/metrics", { key: alice })).status).toBe(403)
    expect(target.calls.filter((c) => ["/api/pull", "/api/delete", "/api/copy", "/api/create", "/api/push"].includes(c.path))).toHaveLength(0)

    // Health without where the target is.
    const health = (await (await call("/foreman/health", { key: alice })).json()) as Record<string, unknown>
    expect(health).toMatchObject({ status: "ok", reachable: true, models: 2 })
    expect(health).not.toHaveProperty("target")
    expect(health).not.toHaveProperty("lastError")
  })

  it("an admin key: everything", async () => {
    const root = keys["root"]!
    expect((await ollama(root).chat(chat)).done).toBe(true)
    await ollama(root).copy({ source: "llama3.2", destination: "llama3.2-copy" })
    await ollama(root).delete({ model: "llama3.2-copy" })
    const metrics = await call("/metrics", { key: root })
    expect(metrics.status).toBe(200)
    // Jobs are counted by the key's name (never the key).
    const text = await metrics.text()
    expect(text).toMatch(/foreman_jobs_total\{[^}]*caller="alice"/)
    expect(text).not.toContain(keys["alice"]!)
    expect(((await (await call("/foreman/health", { key: root })).json()) as { target: string }).target).toBe(target.url)
  })

  it("async jobs belong to the key that submitted them: another user's is a 404", async () => {
    const [alice, bob, root] = [keys["alice"]!, keys["bob"]!, keys["root"]!]
    target.hold()
    try {
      const submitted = await call("/api/generate", {
        method: "POST",
        key: alice,
        headers: { prefer: "respond-async" },
        body: JSON.stringify({ model: "llama3.2", prompt: "mine" })
      })
      expect(submitted.status).toBe(202)
      const { id } = (await submitted.json()) as { id: string }
      const viaApi = await call("/foreman/v1/jobs", {
        method: "POST",
        key: alice,
        body: JSON.stringify({ endpoint: "/api/chat", body: chat })
      })
      const second = ((await viaApi.json()) as { id: string }).id

      for (const job of [id, second]) {
        expect(await (await call(`/foreman/v1/jobs/${job}`, { key: bob })).json()).toEqual({ error: `job '${job}' not found` })
        expect((await call(`/foreman/v1/jobs/${job}?wait=1s`, { key: bob })).status).toBe(404)
        expect((await call(`/foreman/v1/jobs/${job}`, { key: bob, method: "DELETE" })).status).toBe(404)
        expect((await call(`/foreman/v1/jobs/${job}`, { key: alice })).status).toBe(200)
        expect((await call(`/foreman/v1/jobs/${job}`, { key: root })).status).toBe(200)
      }
      const list = async (key: string) =>
        ((await (await call("/foreman/v1/jobs", { key })).json()) as { jobs: Array<{ id: string }> }).jobs.map((j) => j.id)
      expect(await list(bob)).not.toContain(id)
      expect(await list(alice)).toEqual(expect.arrayContaining([id, second]))
      expect(await list(root)).toEqual(expect.arrayContaining([id, second]))
      // Bob's DELETE changed nothing; Alice's own works.
      expect((await call(`/foreman/v1/jobs/${second}`, { key: alice, method: "DELETE" })).status).toBe(200)
      // Health counts a user key's own jobs only.
      const counts = async (key: string) =>
        Object.values(((await (await call("/foreman/health", { key })).json()) as { jobs: Record<string, number> }).jobs)
          .reduce((a, b) => a + b, 0)
      expect(await counts(bob)).toBe(0)
      expect(await counts(alice)).toBe(2)
      expect(await counts(root)).toBeGreaterThanOrEqual(2)
    } finally {
      target.release()
    }
  })

  it("health lists the sync requests waiting: an admin all, with their key's name; a user key its own", async () => {
    const [alice, bob, root] = [keys["alice"]!, keys["bob"]!, keys["root"]!]
    const generate = (key: string, prompt: string) =>
      call("/api/generate", { method: "POST", key, body: JSON.stringify({ model: "llama3.2", prompt, stream: false }) })
    type Waiting = { id: string; caller?: string; position: number; priority: string }
    const waiting = async (key: string) =>
      ((await (await call("/foreman/health", { key })).json()) as { queue: { waiting: Array<Waiting> } }).queue.waiting
    target.hold()
    const requests: Array<Promise<Response>> = []
    try {
      requests.push(generate(alice, "holds the slot"))
      await vi.waitFor(() => expect(target.held).toBe(1))
      requests.push(generate(bob, "bob waits"), generate(alice, "alice waits"))
      await vi.waitFor(async () => expect(await waiting(root)).toHaveLength(2))
      const all = await waiting(root)
      expect(all.map((w) => w.caller).sort()).toEqual(["alice", "bob"])
      expect(all.map((w) => w.position)).toEqual([1, 2])
      expect(all.every((w) => w.priority === "interactive")).toBe(true)
      // Each user key sees its own request, at its place in the whole queue.
      for (const [key, name] of [[alice, "alice"], [bob, "bob"]] as const) {
        const { caller, id, position } = all.find((w) => w.caller === name)!
        expect(await waiting(key)).toEqual([expect.objectContaining({ caller, id, position })])
      }
      expect(await (await call("/foreman/health")).json()).toEqual({ status: "ok" })
    } finally {
      target.release()
    }
    for (const response of await Promise.all(requests)) expect(response.status).toBe(200)
  })

  it("a user key does not learn where the target is from a 503; an admin does", async () => {
    await target.sleep()
    try {
      const show = (key: string) => call("/api/show", { method: "POST", key, body: JSON.stringify({ model: "llama3.2" }) })
      const asUser = await show(keys["alice"]!)
      expect(asUser.status).toBe(503)
      expect(await asUser.json()).toEqual({ error: "foreman: the target is unreachable" })
      const asAdmin = await show(keys["root"]!)
      expect(asAdmin.status).toBe(503)
      expect(((await asAdmin.json()) as { error: string }).error).toContain(target.url)
      // A sync job that waited for it: the wait is said, the transport's words (its address) are not.
      const waited = await openai(keys["alice"]!).chat.completions.create(chat as never).catch((e: unknown) => e)
      expect(waited).toMatchObject({ status: 503, error: { message: expect.stringMatching(/^foreman: no response within 2s: /) } })
      expect(JSON.stringify((waited as { error: unknown }).error)).not.toContain(new URL(target.url).host)
    } finally {
      await target.wake()
    }
  })

  it("Ollama's newer routes pass through: /api/status for any key, the account's routes for admins", async () => {
    const [alice, root] = [keys["alice"]!, keys["root"]!]
    const status = await call("/api/status", { key: alice })
    expect(status.status).toBe(200)
    expect(await status.json()).toEqual({ cloud: { disabled: false, source: "default" } })
    expect((await call("/api/me", { method: "POST", key: alice })).status).toBe(403)
    expect((await call("/api/signout", { method: "POST", key: alice })).status).toBe(403)
    const before = target.calls.filter((c) => c.path === "/api/me").length
    // The fake has no account: its own 404 comes back, and the call reached it.
    expect((await call("/api/me", { method: "POST", key: root })).status).toBe(404)
    expect(target.calls.filter((c) => c.path === "/api/me").length).toBe(before + 1)
    const search = await call("/api/experimental/web_search", { method: "POST", key: alice, body: JSON.stringify({ query: "x" }) })
    expect(search.status).toBe(404)
    expect(target.calls.some((c) => c.path === "/api/experimental/web_search")).toBe(true)
  })

  it("keys added or removed while foreman runs count from the next request", async () => {
    const carol = await add("carol", "user")
    expect((await call("/api/tags", { key: carol })).status).toBe(200)
    await Effect.runPromise(removeKey(keysFile, "carol"))
    expect((await call("/api/tags", { key: carol })).status).toBe(401)
    const dave = await add("dave", "admin")
    expect((await call("/metrics", { key: dave })).status).toBe(200)
  })
})
