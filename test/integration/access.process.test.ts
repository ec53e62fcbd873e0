/**
 * API keys as an operator meets them: the command line refuses to serve other machines without
 * keys unless told to, and keys added or removed with `foreman-effect keys` while it runs count
 * at once. foreman listens on 0.0.0.0 here; the tests talk to it on 127.0.0.1 only.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type ForemanProcess, root, run, runtimes, startProcess, stopProcess } from "../support/process.ts"

describe("API keys, from the command line", () => {
  let target: FakeTarget
  let dir: string
  const started: Array<ForemanProcess> = []
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("FOREMAN_")))
  // Not spawnSync: the test's own connections to foreman must stay readable meanwhile.
  const cli = (args: ReadonlyArray<string>) => run(runtimes.node.command, ["src/bin.ts", ...args], { cwd: root, env })
  const serve = async (args: ReadonlyArray<string>) => {
    const foreman = await startProcess("node", ["--target", target.url, "--port", "0", "--db", ":memory:", "--log-format", "json", ...args])
    started.push(foreman)
    // It said where it listens (0.0.0.0); this machine reaches it on 127.0.0.1.
    return `http://127.0.0.1:${new URL(foreman.url).port}`
  }

  beforeAll(async () => {
    target = await startFakeTarget()
    dir = mkdtempSync(join(tmpdir(), "foreman-access-"))
  })
  afterEach(async () => {
    for (const foreman of started.splice(0)) await stopProcess(foreman.child, "SIGTERM")
  })
  afterAll(async () => {
    await target?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it("a non-loopback --host without keys refuses to start, in one line; --allow-unauthenticated starts it", async () => {
    const keysFile = join(dir, "none.json")
    const refused = await cli(["--target", target.url, "--host", "0.0.0.0", "--port", "0", "--db", ":memory:", "--keys-file", keysFile])
    expect(refused.status).toBe(1)
    expect(refused.stderr).toBe(
      "Refusing to serve --host 0.0.0.0 without API keys: add one (foreman-effect keys add NAME) or pass --allow-unauthenticated to serve everyone who can reach it\n"
    )
    // Refused before it listened: nothing on stdout says it did.
    expect(refused.stdout).not.toContain("foreman listening")
    const url = await serve(["--host", "0.0.0.0", "--keys-file", keysFile, "--allow-unauthenticated"])
    expect((await fetch(`${url}/api/version`)).status).toBe(200)
  })

  it("with keys it starts; keys added and removed while it runs count from the next request", async () => {
    const keysFile = join(dir, "keys.json")
    const add = async (name: string) => {
      const added = await cli(["keys", "add", name, "--keys-file", keysFile])
      expect(added.status).toBe(0)
      return added.stdout.trim().split("\n").at(-1)!
    }
    const alice = await add("alice")
    const url = await serve(["--host", "0.0.0.0", "--keys-file", keysFile])
    const tags = (key?: string) =>
      fetch(`${url}/api/tags`, key === undefined ? {} : { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status)
    expect(await tags()).toBe(401)
    expect(await tags(alice)).toBe(200)
    const bob = await add("bob")
    expect(await tags(bob)).toBe(200)
    expect((await cli(["keys", "remove", "alice", "--keys-file", keysFile])).status).toBe(0)
    expect(await tags(alice)).toBe(401)
    expect(await tags(bob)).toBe(200)
  })
})
