/**
 * `/api/ps` through foreman follows the model switches its jobs cause: it is asked again right
 * after a job, not only at the next poll (here an hour away, so only that can explain it).
 */
import { Duration } from "effect"
import { Ollama } from "ollama"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type RunningForeman, startForeman } from "../support/foreman.ts"

describe("residency after a job", () => {
  let target: FakeTarget
  let foreman: RunningForeman

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2", "qwen3"], maxLoaded: 1 })
    foreman = await startForeman({ target: target.url, pollInterval: Duration.hours(1) })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"), { timeout: 15_000 })
  })
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  it("ollama.ps() through foreman shows the model a job just switched to, and not the one it evicted", async () => {
    const ollama = new Ollama({ host: foreman.url })
    const resident = async () => (await ollama.ps()).models.map((m) => m.name)
    expect(await resident()).toEqual([])
    const polls = target.calls.filter((c) => c.path === "/api/ps").length

    await ollama.chat({ model: "llama3.2", messages: [{ role: "user", content: "first" }] })
    await vi.waitFor(async () => expect(await resident()).toEqual(["llama3.2:latest"]), { timeout: 5_000 })
    await ollama.chat({ model: "qwen3", messages: [{ role: "user", content: "switch" }] })
    await vi.waitFor(async () => expect(await resident()).toEqual(["qwen3:latest"]), { timeout: 5_000 })
    // Asked after the jobs, by foreman (the client's own ps calls are answered from foreman's view).
    expect(target.calls.filter((c) => c.path === "/api/ps").length).toBeGreaterThan(polls)
    expect((await foreman.health()).resident).toEqual(["qwen3:latest"])
  })
})
