/**
 * Several targets (issue 17): each job goes where its model is (and is loaded, if it is
 * somewhere), `X-Foreman-Target` pins, a sleeping target's work waits for it while the other's
 * keeps flowing, and a target with a MAC is woken (Wake-on-LAN) while a job waits for it.
 * Two fake Ollama servers on 127.0.0.1, the real `ollama` client.
 */
import { Duration, Option } from "effect"
import * as dgram from "node:dgram"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Ollama } from "ollama"
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest"
import * as WakeOnLan from "../../src/target/WakeOnLan.ts"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type RunningForeman, startForeman } from "../support/foreman.ts"

const chat = (model: string) => ({ model, messages: [{ role: "user", content: "hi" }] })
const chats = (target: FakeTarget) => target.calls.filter((c) => c.path === "/api/chat").length
const post = (url: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${url}${path}`, { method: "POST", headers, body: JSON.stringify(body) })

describe("two targets", () => {
  let desk: FakeTarget
  let laptop: FakeTarget
  let foreman: RunningForeman
  let client: Ollama

  beforeAll(async () => {
    desk = await startFakeTarget({ models: ["llama3.2", "shared"], maxLoaded: 1 })
    laptop = await startFakeTarget({ models: ["shared", "qwen3"], maxLoaded: 1 })
    foreman = await startForeman({ target: `desk=${desk.url},laptop=${laptop.url}`, pollInterval: Duration.millis(100) })
    client = new Ollama({ host: foreman.url })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
  })
  afterEach(async () => {
    desk.release()
    laptop.release()
  })
  afterAll(async () => {
    await foreman?.close()
    await desk?.close()
    await laptop?.close()
  })

  it("a model one target has goes there", async () => {
    const [d, l] = [chats(desk), chats(laptop)]
    expect((await client.chat(chat("qwen3"))).message.content).toBe("echo: hi")
    expect((await client.chat(chat("llama3.2"))).message.content).toBe("echo: hi")
    expect([chats(desk) - d, chats(laptop) - l]).toEqual([1, 1])
    expect(desk.calls.filter((c) => c.path === "/api/chat").at(-1)?.body).toMatchObject({ model: "llama3.2" })
    expect(laptop.calls.filter((c) => c.path === "/api/chat").at(-1)?.body).toMatchObject({ model: "qwen3" })
  })

  it("a model both have goes where it is loaded; X-Foreman-Target pins it elsewhere", async () => {
    // Load `shared` on the laptop by pinning a job there.
    const pinned = await post(foreman.url, "/api/chat", { ...chat("shared"), stream: false }, { "x-foreman-target": "laptop" })
    expect(pinned.status).toBe(200)
    expect(laptop.resident).toContain("shared:latest")
    await vi.waitFor(async () => {
      const ps = await (await fetch(`${laptop.url}/api/ps`)).json() as { models: Array<{ name: string }> }
      expect(ps.models.map((m) => m.name)).toContain("shared:latest")
    })
    const [d, l] = [chats(desk), chats(laptop)]
    for (let i = 0; i < 3; i++) await client.chat(chat("shared"))
    expect([chats(desk) - d, chats(laptop) - l]).toEqual([0, 3])
    // Pinned to the desk, it goes there even so.
    const onDesk = await post(foreman.url, "/api/chat", { ...chat("shared"), stream: false }, { "X-Foreman-Target": "DESK" })
    expect(onDesk.status).toBe(200)
    expect(chats(desk) - d).toBe(1)
  })

  it("a pin to a target without the model is its 404; to no such target a 400 naming the targets", async () => {
    const missing = await post(foreman.url, "/api/chat", chat("qwen3"), { "x-foreman-target": "desk" })
    expect(missing.status).toBe(404)
    expect(await missing.json()).toEqual({ error: "model 'qwen3' not found" })
    const unknown = await post(foreman.url, "/api/chat", chat("qwen3"), { "x-foreman-target": "nas" })
    expect(unknown.status).toBe(400)
    expect(await unknown.json()).toEqual({ error: `unknown target "nas" in X-Foreman-Target: the targets are desk, laptop` })
    const none = await post(foreman.url, "/api/chat", chat("nope"))
    expect(none.status).toBe(404)
  })

  it("an async job is pinned by the header or the API's body field, and its view says so", async () => {
    const viaHeader = await post(foreman.url, "/api/chat", chat("shared"), { prefer: "respond-async", "x-foreman-target": "desk" })
    expect(viaHeader.status).toBe(202)
    const viaApi = await post(foreman.url, "/foreman/v1/jobs", { endpoint: "/api/chat", body: chat("shared"), target: "laptop" })
    expect(viaApi.status).toBe(202)
    const done = await Promise.all([viaHeader, viaApi].map(async (response) => {
      const location = response.headers.get("location")!
      return (await (await fetch(`${foreman.url}${location}?wait=30s`)).json()) as { status: string; target?: string }
    }))
    expect(done).toMatchObject([{ status: "succeeded", target: "desk" }, { status: "succeeded", target: "laptop" }])
    const unknown = await post(foreman.url, "/foreman/v1/jobs", { endpoint: "/api/chat", body: chat("shared"), target: "nas" })
    expect(unknown.status).toBe(400)
  })

  it("with the laptop asleep, the desk's work flows and the laptop-only model waits for it", async () => {
    await laptop.sleep()
    try {
      const waiting = client.chat(chat("qwen3"))
      // Health counts it as the laptop's: only the laptop has its model.
      await vi.waitFor(async () => {
        const targets = (await foreman.health())["targets"] as Array<{ name: string; queue?: { waiting: number } }>
        expect(targets.find((t) => t.name === "laptop")?.queue?.waiting).toBe(1)
        expect(targets.find((t) => t.name === "desk")?.queue?.waiting).toBe(0)
      })
      // `shared` is on the desk too: it runs there now rather than wait.
      const d = chats(desk)
      expect((await client.chat(chat("shared"))).message.content).toBe("echo: hi")
      expect((await client.chat(chat("llama3.2"))).message.content).toBe("echo: hi")
      expect(chats(desk) - d).toBe(2)
      const settled = await Promise.race([waiting.then(() => "answered"), new Promise((resolve) => setImmediate(() => resolve("waiting")))])
      expect(settled).toBe("waiting")
      await laptop.wake()
      expect((await waiting).message.content).toBe("echo: hi")
    } finally {
      await laptop.wake().catch(() => undefined)
    }
  })
})

describe("a job pinned to a target the next foreman does not have", () => {
  it("fails at start-up, saying why, rather than run elsewhere", async () => {
    const desk = await startFakeTarget({ models: ["llama3.2"] })
    const laptop = await startFakeTarget({ models: ["llama3.2"] })
    const dir = mkdtempSync(join(tmpdir(), "foreman-pin-"))
    const db = join(dir, "jobs.db")
    try {
      const first = await startForeman({ target: `desk=${desk.url},laptop=${laptop.url}`, db })
      await vi.waitFor(async () => expect((await first.health()).status).toBe("ok"))
      await laptop.sleep()
      const submitted = await post(first.url, "/api/chat", chat("llama3.2"), { prefer: "respond-async", "x-foreman-target": "laptop" })
      expect(submitted.status).toBe(202)
      const location = submitted.headers.get("location")!
      await first.close()
      const next = await startForeman({ target: `desk=${desk.url}`, db })
      try {
        const job = (await (await fetch(`${next.url}${location}`)).json()) as { status: string; error?: string }
        expect(job).toMatchObject({ status: "failed", error: `its target "laptop" is no longer configured` })
        expect(desk.calls.filter((c) => c.path === "/api/chat")).toHaveLength(0)
      } finally {
        await next.close()
      }
    } finally {
      await desk.close()
      await laptop.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("Wake-on-LAN", () => {
  let target: FakeTarget
  let foreman: RunningForeman | undefined
  let listener: dgram.Socket
  const packets: Array<Buffer> = []
  let dir: string

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"] })
    listener = dgram.createSocket("udp4")
    listener.on("message", (message) => packets.push(message))
    await new Promise<void>((resolve) => listener.bind(0, "127.0.0.1", resolve))
    dir = mkdtempSync(join(tmpdir(), "foreman-wol-"))
  })
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
    listener.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it("sends the magic packet for the target's MAC while a job waits for it asleep, and the job runs once it wakes", async () => {
    const file = join(dir, "targets.json")
    writeFileSync(file, JSON.stringify({
      targets: [{ name: "laptop", url: target.url, wake: { mac: "02:00:5e:10:00:01", address: "127.0.0.1", port: listener.address().port } }]
    }))
    foreman = await startForeman({ target: target.url, targetsFile: file, pollInterval: Duration.millis(100) })
    await vi.waitFor(async () => expect((await foreman!.health()).status).toBe("ok"))
    await target.sleep()
    await vi.waitFor(async () => expect((await foreman!.health()).status).toBe("degraded"))
    expect(packets).toHaveLength(0)
    const client = new Ollama({ host: foreman.url })
    const waiting = client.chat(chat("llama3.2"))
    await vi.waitFor(() => expect(packets.length).toBeGreaterThan(0), { timeout: 10_000 })
    const mac = WakeOnLan.readMagicPacket(packets[0]!)
    expect(Option.map(mac, WakeOnLan.formatMac)).toEqual(Option.some("02:00:5e:10:00:01"))
    await target.wake()
    expect((await waiting).message.content).toBe("echo: hi")
    // Health shows the wake: the packets, and how long it took.
    await vi.waitFor(async () => {
      const [laptop] = (await foreman!.health())["targets"] as Array<{ name: string; wake?: Record<string, unknown> }>
      expect(laptop?.name).toBe("laptop")
      expect(laptop?.wake?.["packets"]).toBe(packets.length)
      expect(laptop?.wake?.["lastWokeAt"]).toEqual(expect.any(String))
      expect(laptop?.wake?.["lastWakeMillis"]).toBeGreaterThan(0)
    })
  })

  it("sends nothing while no job waits, though the target sleeps", async () => {
    const before = packets.length
    // A poll of the sleeping target and a listing: no job.
    await target.sleep()
    await vi.waitFor(async () => expect((await foreman!.health()).status).toBe("degraded"))
    expect((await (await fetch(`${foreman!.url}/api/tags`)).json()).models).toHaveLength(1)
    const [laptop] = (await foreman!.health())["targets"] as Array<{ wake?: { packets: number } }>
    expect(laptop?.wake?.packets).toBe(before)
    await target.wake()
  })
})
