/**
 * One foreman process per database: a second one on a `--db` that a live foreman holds
 * refuses to start, in one line, before it touches the jobs; a SIGKILLed one does not block
 * the next; `:memory:` is not shared and never refused.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ForemanConfig } from "../../src/Config.ts"
import { StoreLive } from "../../src/Foreman.ts"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type ForemanProcess, root, runtimes, startProcess, stopProcess } from "../support/process.ts"

/** The command line to its end: exit code and what it wrote on stderr. */
const runToExit = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(runtimes.node.command, ["src/bin.ts", ...args], { cwd: root, stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (chunk) => (stderr += chunk))
    child.once("error", reject)
    child.once("close", (code) => resolve({ code, stderr }))
  })

describe("one process per database", () => {
  let target: FakeTarget
  let dir: string
  const started: Array<ForemanProcess> = []
  const args = (db: string) => ["--target", target.url, "--port", "0", "--db", db, "--plugins", "none", "--log-format", "json"]

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2"] })
    dir = mkdtempSync(join(tmpdir(), "foreman-dblock-"))
  })
  afterAll(async () => {
    for (const foreman of started) await stopProcess(foreman.child, "SIGKILL")
    await target?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it("a second foreman on a live one's --db refuses to start in one line; after a SIGKILL the next starts", async () => {
    const db = join(dir, "jobs.db")
    const first = await startProcess("node", args(db))
    started.push(first)
    // Its queued job must stay its own.
    await target.sleep()
    const submitted = await fetch(`${first.url}/foreman/v1/jobs`, {
      method: "POST",
      body: JSON.stringify({ endpoint: "/api/generate", body: { model: "llama3.2", prompt: "mine" } })
    })
    expect(submitted.status).toBe(202)

    const second = await runToExit(args(db))
    expect(second.code).not.toBe(0)
    expect(second.stderr).toBe(
      `Cannot use --db ${db}: another foreman process uses it (one process per database: give this one its own --db)\n`
    )
    const { id } = await submitted.json()
    expect((await (await fetch(`${first.url}/foreman/v1/jobs/${id}`)).json()).status).toBe("queued")

    await stopProcess(first.child, "SIGKILL")
    await target.wake()
    const next = await startProcess("node", args(db))
    started.push(next)
    const job = await (await fetch(`${next.url}/foreman/v1/jobs/${id}?wait=30s`)).json()
    expect(job).toMatchObject({ status: "succeeded", result: { response: "echo: mine" } })
  })

  it("two foremen on :memory: both start", async () => {
    started.push(await startProcess("node", args(":memory:")))
    started.push(await startProcess("node", args(":memory:")))
  })

  it("embedded: a second store on the same file in one process fails with DatabaseInUse", async () => {
    const db = join(dir, "embedded.db")
    const store = StoreLive.pipe(Layer.provide(ForemanConfig.make({ db })))
    const exit = await Effect.gen(function*() {
      yield* Layer.build(store)
      return yield* Layer.build(store).pipe(Effect.exit)
    }).pipe(Effect.scoped, Effect.runPromise)
    expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("DatabaseInUse")
  })

  it("an SQLite URI names its file: file:PATH and PATH are one database, and one lock", async () => {
    const db = join(dir, "uri.db")
    const exit = await Effect.gen(function*() {
      yield* Layer.build(StoreLive.pipe(Layer.provide(ForemanConfig.make({ db: `file:${db}` }))))
      return yield* Layer.build(StoreLive.pipe(Layer.provide(ForemanConfig.make({ db })))).pipe(Effect.exit)
    }).pipe(Effect.scoped, Effect.runPromise)
    expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("DatabaseInUse")
  })
})
