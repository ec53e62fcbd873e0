/** The command line as a process: what a shell sees (exit codes, stdout and stderr whole). */
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import packageJson from "../package.json" with { type: "json" }
import { settings } from "../src/Config.ts"

describe("src/bin.ts as a process", () => {
  const root = path.resolve(import.meta.dirname, "..")
  const bin = (...args: Array<string>) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("FOREMAN_")))
    return spawnSync(path.join(root, "node_modules/.bin/node"), ["src/bin.ts", ...args], {
      cwd: root,
      env,
      encoding: "utf8",
      timeout: 20_000
    })
  }

  it("--help exits 0 and lists every flag, env variable and default", () => {
    const result = bin("--help")
    expect(result.status).toBe(0)
    for (const s of settings) {
      expect(result.stdout).toContain(s.flag)
      expect(result.stdout).toContain(`env: ${s.env}, default: ${s.default})`)
    }
  })

  it("a bad value exits non-zero with exactly one line on stderr", () => {
    const result = bin("--port", "abc")
    expect(result.status).toBe(1)
    expect(result.stdout).toBe("")
    expect(result.stderr).toBe("Invalid --port (FOREMAN_PORT): expected an integer from 0 to 65535, got \"abc\"\n")
  })

  it("an unknown plugin stops start-up with exactly one line on stderr", () => {
    const result = bin("--plugins", "openai,bogus", "--port", "0", "--db", ":memory:")
    expect(result.status).toBe(1)
    expect(result.stdout).toBe("")
    expect(result.stderr).toBe(
      "Invalid --plugins (FOREMAN_PLUGINS): unknown plugin \"bogus\"; known: openai, anthropic, metrics, or none\n"
    )
  })

  it("the entry npx runs is an executable that starts the Node first on PATH, with no flags", () => {
    // Flags on this line would reach only the launchers that honour it (not Deno, not `node bin/...`).
    expect(readFileSync(path.join(root, "bin/foreman-effect.js"), "utf8").split("\n")[0]).toBe("#!/usr/bin/env node")
    // As npx runs it: the file itself, with the project's Node first on PATH.
    const result = spawnSync(path.join(root, "bin/foreman-effect.js"), ["--version"], {
      cwd: root,
      env: { ...process.env, PATH: `${path.join(root, "node_modules/.bin")}${path.delimiter}${process.env.PATH ?? ""}` },
      encoding: "utf8",
      timeout: 20_000
    })
    expect(result.error).toBeUndefined()
    expect(result.stderr).toBe("")
    expect(result.stdout).toContain(packageJson.version)
    expect(result.status).toBe(0)
  })

  it("an unknown flag exits non-zero with exactly one line on stderr", () => {
    const result = bin("--bogus")
    expect(result.status).toBe(1)
    expect(result.stderr).toBe("Unknown argument \"--bogus\" (see foreman-effect --help)\n")
  })
})
