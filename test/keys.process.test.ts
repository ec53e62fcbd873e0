/** `foreman-effect keys` as a process: what a shell sees (exit codes, stdout and stderr whole). */
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"

describe("foreman-effect keys as a process", () => {
  const root = path.resolve(import.meta.dirname, "..")
  let dir = ""
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "foreman-keys-process-"))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  const bin = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("FOREMAN_")))
    return spawnSync(path.join(root, "node_modules/.bin/node"), ["src/bin.ts", "keys", ...args], {
      cwd: root,
      env: { ...clean, ...env },
      encoding: "utf8",
      timeout: 20_000
    })
  }

  it("add, list and remove: exit 0, the key alone on the last line; an error: exit 1, one line on stderr", () => {
    const file = path.join(dir, "conf", "keys.json")
    const added = bin(["add", "alice", "--role", "admin"], { FOREMAN_KEYS_FILE: file })
    expect(added.stderr).toBe("")
    expect(added.status).toBe(0)
    const lines = added.stdout.split("\n")
    expect(lines.at(-1)).toBe("")
    const key = lines.at(-2)!
    expect(key).toMatch(/^fk_[A-Za-z0-9_-]{43}$/)
    expect(readFileSync(file, "utf8")).not.toContain(key)
    if (process.platform !== "win32") expect(statSync(file).mode & 0o777).toBe(0o600)

    const listed = bin(["list", "--keys-file", file])
    expect(listed.status).toBe(0)
    expect(listed.stdout).toMatch(/^NAME {3}ROLE {3}CREATED {15}LAST USED\nalice  admin  \S+Z  never\n$/)

    const twice = bin(["add", "alice", "--keys-file", file])
    expect(twice.status).toBe(1)
    expect(twice.stdout).toBe("")
    expect(twice.stderr).toBe(`A key named "alice" is already in ${file} (remove it first to replace it)\n`)

    const removed = bin(["remove", "alice", "--keys-file", file])
    expect(removed.status).toBe(0)
    expect(removed.stdout).toBe(`Removed key "alice" from ${file}.\n`)
    const again = bin(["remove", "alice", "--keys-file", file])
    expect(again.status).toBe(1)
    expect(again.stderr).toBe(`No key named "alice" in ${file}\n`)
  })
})

describe("foreman-effect keys, several at once", () => {
  const root = path.resolve(import.meta.dirname, "..")
  it("six keys added at the same moment are six keys in the file", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "foreman-keys-race-"))
    try {
      const file = path.join(dir, "keys.json")
      const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("FOREMAN_")))
      const names = ["r1", "r2", "r3", "r4", "r5", "r6"]
      const codes = await Promise.all(names.map((name) =>
        new Promise<number | null>((resolve) => {
          const child = spawn(path.join(root, "node_modules/.bin/node"), ["src/bin.ts", "keys", "add", name, "--keys-file", file], {
            cwd: root,
            env: clean,
            stdio: "ignore"
          })
          child.once("exit", resolve)
        })
      ))
      expect(codes).toEqual(names.map(() => 0))
      const stored = (JSON.parse(readFileSync(file, "utf8")) as { keys: Array<{ name: string }> }).keys.map((key) => key.name)
      expect(stored.sort()).toEqual(names)
      expect(existsSync(`${file}.lock`)).toBe(false)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
