/**
 * `--plugins` through the real command line: the default loads the OpenAI surface and
 * metrics; `none` loads neither, and everything else still works.
 */
import { Ollama } from "ollama"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type ForemanProcess, startProcess, stopProcess } from "../support/process.ts"

describe("--plugins", () => {
  let target: FakeTarget
  const started: Array<ForemanProcess> = []
  const start = async (...extra: Array<string>) => {
    const foreman = await startProcess("node", ["--target", target.url, "--port", "0", "--db", ":memory:", "--log-format", "json", ...extra])
    started.push(foreman)
    await vi.waitFor(async () => expect((await (await fetch(`${foreman.url}/foreman/health`)).json()).status).toBe("ok"))
    return foreman
  }

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"] })
  })
  afterAll(async () => {
    for (const foreman of started) await stopProcess(foreman.child, "SIGTERM")
    await target?.close()
  })

  it("by default serves /v1 and /metrics", async () => {
    const foreman = await start()
    const asked = target.count("/v1/models")
    const models = await fetch(`${foreman.url}/v1/models`)
    expect(models.status).toBe(200)
    // From foreman's cache: the target is not asked.
    expect(target.count("/v1/models")).toBe(asked)
    expect((await models.json()).data.map((m: { id: string }) => m.id)).toEqual(["llama3.2:latest"])
    const metrics = await fetch(`${foreman.url}/metrics`)
    expect(metrics.status).toBe(200)
    expect(await metrics.text()).toContain("foreman_target_up")
  })

  // Without a plugin its paths are unknown to foreman, so they pass through: /v1 is the
  // target's own (the target is asked), /metrics the target's 404.
  it("with none, /v1/models is the target's own, /metrics the target's 404, and everything else works", async () => {
    const foreman = await start("--plugins", "none")
    const asked = target.count("/v1/models")
    expect((await fetch(`${foreman.url}/v1/models`)).status).toBe(200)
    expect(target.count("/v1/models")).toBe(asked + 1)
    const metrics = await fetch(`${foreman.url}/metrics`)
    expect(metrics.status).toBe(404)
    expect(await metrics.text()).toBe("404 page not found")
    const client = new Ollama({ host: foreman.url })
    expect((await client.list()).models.map((m) => m.name)).toEqual(["llama3.2:latest"])
    const reply = await client.chat({ model: "llama3.2", messages: [{ role: "user", content: "still here" }] })
    expect(reply.done).toBe(true)
    expect((await fetch(`${foreman.url}/foreman/health`)).status).toBe(200)
  })

  it("one plugin alone", async () => {
    const foreman = await start("--plugins", "metrics")
    const asked = target.count("/v1/models")
    expect((await fetch(`${foreman.url}/v1/models`)).status).toBe(200)
    expect(target.count("/v1/models")).toBe(asked + 1)
    expect((await fetch(`${foreman.url}/metrics`)).status).toBe(200)
  })
})
