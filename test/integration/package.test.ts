/**
 * The package as users get it. `npm pack` makes the tarball (its `prepack` script builds
 * `dist/`); it is installed into an empty project as `npm install` does, and through a local
 * registry (test/support/registry.ts) as `npx foreman-effect` and `deno run -A
 * npm:foreman-effect` fetch it. Nothing here runs the checkout's sources: every command is
 * the installed one. The installs reach the npm registry for foreman's dependencies, as a
 * user's do, so the tests that install have minutes, not the default 30 s. POSIX only.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, dirname, join } from "node:path"
import { Ollama } from "ollama"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type Finished, type ForemanProcess, root, run, runtimes, startCommand, stopProcess } from "../support/process.ts"
import { type LocalRegistry, startRegistry } from "../support/registry.ts"

const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  version: string
  engines: { node: string }
  devDependencies: Record<string, string>
}
const deno = runtimes.deno.command
/** The oldest Node the package says it runs on (`engines`), e.g. "22.16". */
const minimumNode = /^>=(\d+\.\d+)$/.exec(manifest.engines.node)![1]!

const succeeded = (result: Finished, what: string) => {
  if (result.status !== 0) throw new Error(`${what} exited ${result.status}:\n${result.stdout}\n${result.stderr}`)
  return result
}

/** The README's program under `heading`, with the fake target's URL for the GPU box's. */
const readmeProgram = (heading: string, targetUrl: string) => {
  const readme = readFileSync(join(root, "README.md"), "utf8")
  const at = readme.indexOf(heading)
  const code = at === -1 ? null : /```ts\n([\s\S]*?)```/.exec(readme.slice(at))
  if (code === null) throw new Error(`README: no program under "${heading}"`)
  return code[1]!.replaceAll("http://my-gpu-box:11434", targetUrl)
}
const servicesProgram = (targetUrl: string) => readmeProgram("Only the services, from your own program", targetUrl)
// On port 0 here: a free one, not the user's 11435.
const brokerProgram = (targetUrl: string) => {
  const program = readmeProgram("The whole broker, on Node, with the built-in plugins", targetUrl)
  if (!program.includes("port: 11435")) throw new Error("README: the whole broker no longer sets port 11435")
  return program.replace("port: 11435", "port: 0")
}
/** The README's typed client of foreman's own API (type-checked with the other programs). */
const clientProgram = () => readmeProgram("### `GET /foreman/openapi.json`", "")
/** Long enough for an install from the registry on a slow day. */
const installing = { timeout: 240_000 }

/** What the program printed last (Effect's default logger writes foreman's log lines before it). */
const lastLine = (output: string) => output.trim().split("\n").at(-1)!

/** A chat through foreman at `url` with the real client, compared with the target's own answer. */
const chatsLikeTheTarget = async (url: string, target: FakeTarget) => {
  const request = { model: "llama3.2", messages: [{ role: "user", content: "from the installed package" }] }
  const through = await new Ollama({ host: url }).chat(request)
  const direct = await new Ollama({ host: target.url }).chat(request)
  expect(through.done).toBe(true)
  expect(through.message).toEqual(direct.message)
}

describe("the package as npm pack makes it", () => {
  let work: string
  let tarball: string
  let target: FakeTarget
  let env: NodeJS.ProcessEnv
  let app: string
  const started: Array<ForemanProcess> = []
  const serve = async (command: string, args: ReadonlyArray<string>, options: { cwd: string; env?: NodeJS.ProcessEnv }) => {
    const foreman = await startCommand(command, [...args, "--target", target.url, "--port", "0", "--plugins", "none", "--log-format", "json"], {
      cwd: options.cwd,
      env: options.env ?? env,
      group: true
    })
    started.push(foreman)
    return foreman
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "foreman-package-"))
    target = await startFakeTarget({ models: ["llama3.2"] })
    // Node 24 (this process's) first on PATH, as a user who has it; foreman's default
    // database goes under a temporary data directory, not the user's.
    env = {
      ...process.env,
      PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`,
      XDG_DATA_HOME: join(work, "data"),
      DENO_DIR: join(work, "deno"),
      npm_config_audit: "false",
      npm_config_fund: "false",
      npm_config_update_notifier: "false"
    }
    const packed = succeeded(await run("npm", ["pack", "--json", "--pack-destination", work], { cwd: root, env }), "npm pack")
    tarball = join(work, (JSON.parse(packed.stdout) as Array<{ filename: string }>)[0]!.filename)

    app = join(work, "app")
    mkdirSync(app)
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))
    const pinned = (name: string) => `${name}@${manifest.devDependencies[name]}`
    succeeded(
      await run(
        "npm",
        ["install", tarball, ...["effect", "@effect/platform", "@effect/platform-node", "typescript"].map(pinned), "@types/node@24", "@types/ws@8"],
        { cwd: app, env }
      ),
      "npm install"
    )
    writeFileSync(join(app, "tsconfig.json"), JSON.stringify({ compilerOptions: { module: "nodenext", strict: true, noEmit: true } }))
    writeFileSync(join(app, "main.ts"), servicesProgram(target.url))
    writeFileSync(join(app, "broker.ts"), brokerProgram(target.url))
    writeFileSync(join(app, "client.ts"), clientProgram())
  }, 300_000)

  afterAll(async () => {
    for (const foreman of started) await stopProcess(foreman.child, "SIGTERM")
    await target?.close()
    if (work !== undefined) rmSync(work, { recursive: true, force: true })
  })

  it("holds the build with declarations and the command line, and no TypeScript sources", async () => {
    const listed = succeeded(await run("tar", ["-tzf", tarball], { cwd: work, env }), "tar").stdout.trim().split("\n")
    const files = listed.map((path) => path.replace(/^package\//, ""))
    expect(files).toContain("bin/foreman-effect.js")
    for (const entry of ["src/index", "src/bin", "plugins/openai/index", "plugins/anthropic/index", "plugins/metrics/index"]) {
      expect(files).toContain(`dist/${entry}.js`)
      expect(files).toContain(`dist/${entry}.d.ts`)
    }
    expect(files.filter((path) => path.endsWith(".ts") && !path.endsWith(".d.ts"))).toEqual([])
  })

  it("npx foreman-effect --help and --version", async () => {
    const help = succeeded(await run("npx", ["foreman-effect", "--help"], { cwd: app, env }), "npx foreman-effect --help")
    expect(help.stdout).toContain("--target")
    expect(help.stdout).toContain("FOREMAN_TARGET")
    const version = succeeded(await run("npx", ["foreman-effect", "--version"], { cwd: app, env }), "npx foreman-effect --version")
    expect(version.stdout.trim()).toBe(manifest.version)
  })

  it("npx foreman-effect --target URL serves chats", async () => {
    const foreman = await serve("npx", ["foreman-effect", "--db", join(work, "npx.db")], { cwd: app })
    await chatsLikeTheTarget(foreman.url, target)
  })

  it("the README's programs pass strict tsc (nodenext); the services one runs under Node", installing, async () => {
    succeeded(await run("npx", ["tsc", "-p", "."], { cwd: app, env }), "tsc")
    const ran = succeeded(await run(process.execPath, ["main.ts"], { cwd: app, env }), "node main.ts")
    const direct = await (await fetch(`${target.url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({ model: "llama3.2", prompt: "hi", stream: false })
    })).json() as { response: string }
    expect(JSON.parse(lastLine(ran.stdout)).response).toBe(direct.response)
  })

  it("the types are foreman's own: tsc rejects a job with an unknown priority", installing, async () => {
    const wrong = servicesProgram(target.url).replace(`priority: "normal"`, `priority: "urgent"`)
    expect(wrong).toContain(`priority: "urgent"`)
    writeFileSync(join(app, "wrong.ts"), wrong)
    const checked = await run("npx", ["tsc", "-p", ".", "--noEmit"], { cwd: app, env }).finally(() => rmSync(join(app, "wrong.ts")))
    expect(checked.status).not.toBe(0)
    expect(checked.stdout).toMatch(/wrong\.ts.*"urgent"/)
  })

  it("the README's whole broker runs under Node with the plugins from their own entries", async () => {
    const broker = await startCommand(process.execPath, ["broker.ts"], {
      cwd: app,
      env,
      // Effect's default logger: `... foreman listening` then `  url: http://...`.
      listening: (stdout) => /foreman listening\s+url: (http:\/\/\S+)/.exec(stdout)?.[1]
    })
    started.push(broker)
    const url = broker.url
    await vi.waitFor(async () => expect((await (await fetch(`${url}/foreman/health`)).json()).status).toBe("ok"))
    const models = await (await fetch(`${url}/v1/models`)).json() as { data: Array<{ id: string }> }
    expect(models.data.map((m) => m.id)).toEqual(["llama3.2:latest"])
    expect(await (await fetch(`${url}/metrics`)).text()).toContain("foreman_target_up")
    const message = await fetch(`${url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "llama3.2", max_tokens: 16, messages: [{ role: "user", content: "hi" }] })
    })
    expect(await message.json()).toMatchObject({ type: "message", role: "assistant" })
    await chatsLikeTheTarget(url, target)
    // It holds the default database (one process per database): the next program needs it.
    await stopProcess(broker.child, "SIGTERM")
  })

  it("the services program runs under Deno", async () => {
    const ran = succeeded(await run(deno, ["run", "-A", "main.ts"], { cwd: app, env }), "deno run -A main.ts")
    expect(JSON.parse(lastLine(ran.stdout))).toMatchObject({ model: "llama3.2", done: true })
  })

  it("deno run -A of the installed command line serves chats", async () => {
    const foreman = await serve(deno, ["run", "-A", "npm:foreman-effect", "--db", join(work, "deno.db")], { cwd: app })
    await chatsLikeTheTarget(foreman.url, target)
  })

  it("on a Node older than it needs, the command line says so in one line", installing, async () => {
    const old = await oldNode(work, env)
    const result = await run(old.path, [join(app, "node_modules/foreman-effect/bin/foreman-effect.js"), "--help"], { cwd: app, env })
    expect(result.status).toBe(1)
    expect(result.stdout).toBe("")
    expect(result.stderr).toBe(`foreman-effect needs Node >= ${minimumNode} (this is Node ${old.version})\n`)
  })

  it("the oldest Node that engines allows serves chats and keeps an async job in SQLite", installing, async () => {
    const dir = join(work, "oldest-node")
    mkdirSync(dir)
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "oldest-node", private: true }))
    succeeded(await run("npm", ["install", `node@${minimumNode}`], { cwd: dir, env }), `npm install node@${minimumNode}`)
    const node = join(dir, "node_modules/.bin/node")
    const foreman = await serve(node, [join(app, "node_modules/foreman-effect/bin/foreman-effect.js"), "--db", join(dir, "jobs.db")], {
      cwd: app
    })
    await chatsLikeTheTarget(foreman.url, target)
    const submitted = await fetch(`${foreman.url}/foreman/v1/jobs`, {
      method: "POST",
      body: JSON.stringify({ endpoint: "/api/generate", body: { model: "llama3.2", prompt: "kept" } })
    })
    expect(submitted.status).toBe(202)
    const job = await (await fetch(`${foreman.url}${submitted.headers.get("location")}?wait=30s`)).json()
    expect(job).toMatchObject({ status: "succeeded", result: { response: expect.stringContaining("kept") } })
  })

  describe("from a registry", () => {
    let registry: LocalRegistry
    let registryEnv: NodeJS.ProcessEnv
    beforeAll(async () => {
      registry = await startRegistry(tarball)
      // A user's first run: nothing cached, neither by npm nor by Deno.
      registryEnv = {
        ...env,
        npm_config_registry: registry.url,
        NPM_CONFIG_REGISTRY: registry.url,
        npm_config_cache: join(work, "registry-npm-cache"),
        DENO_DIR: join(work, "registry-deno")
      }
    })
    afterAll(() => registry?.close())

    it("npx --yes foreman-effect in an empty folder", installing, async () => {
      const empty = mkdtempSync(join(work, "npx-"))
      const help = succeeded(await run("npx", ["--yes", "foreman-effect", "--help"], { cwd: empty, env: registryEnv }), "npx --yes foreman-effect")
      expect(help.stdout).toContain("--target")
      expect(registry.served).toContain(`/foreman-effect/-/foreman-effect-${manifest.version}.tgz`)
    })

    it("the README's install lines for an Effect application resolve, and its programs type-check", installing, async () => {
      // An empty folder, as the README's user starts from.
      const project = mkdtempSync(join(work, "embed-"))
      const readme = readFileSync(join(root, "README.md"), "utf8")
      const section = readme.slice(readme.indexOf("## Embedding foreman in an Effect application"))
      const lines = /```sh\n([\s\S]*?)```/.exec(section)![1]!.trim().split("\n")
      expect(lines[0]).toMatch(/^npm install foreman-effect /)
      for (const line of lines) {
        const installed = succeeded(await run("sh", ["-c", line], { cwd: project, env: registryEnv }), line)
        expect(installed.stderr).not.toContain("ERESOLVE")
      }
      const lock = JSON.parse(readFileSync(join(project, "package-lock.json"), "utf8")) as {
        packages: Record<string, { version: string }>
      }
      // One copy of effect, on the 3.x line.
      const effects = Object.keys(lock.packages).filter((path) => path.endsWith("node_modules/effect"))
      expect(effects).toEqual(["node_modules/effect"])
      expect(lock.packages["node_modules/effect"]!.version).toMatch(/^3\./)
      expect(JSON.parse(readFileSync(join(project, "package.json"), "utf8")).type).toBe("module")
      // With the TypeScript the README's line installs (the latest), not the one pinned above.
      writeFileSync(join(project, "tsconfig.json"), JSON.stringify({ compilerOptions: { module: "nodenext", strict: true, noEmit: true } }))
      writeFileSync(join(project, "main.ts"), servicesProgram(target.url))
      writeFileSync(join(project, "broker.ts"), brokerProgram(target.url))
      writeFileSync(join(project, "client.ts"), clientProgram())
      succeeded(await run("npx", ["tsc", "-p", "."], { cwd: project, env: registryEnv }), "tsc (latest)")
    })

    it("on an older Node, npx -p node@24 runs the command with a Node from the registry", installing, async () => {
      const old = await oldNode(work, env)
      const empty = mkdtempSync(join(work, "old-node-"))
      const onOldNode = { ...registryEnv, PATH: `${dirname(old.path)}${delimiter}${process.env.PATH ?? ""}` }
      const refused = await run("npx", ["--yes", "foreman-effect", "--version"], { cwd: empty, env: onOldNode })
      expect(refused.stderr).toContain(`foreman-effect needs Node >= ${minimumNode} (this is Node ${old.version})`)
      const version = succeeded(
        await run("npx", ["--yes", "-p", "node@24", "-p", "foreman-effect", "foreman-effect", "--version"], { cwd: empty, env: onOldNode }),
        "npx -p node@24 -p foreman-effect foreman-effect"
      )
      expect(version.stdout.trim()).toBe(manifest.version)
    })

    it("deno run -A npm:foreman-effect, with only the Deno binary, serves chats", installing, async () => {
      const empty = mkdtempSync(join(work, "deno-"))
      const foreman = await serve(deno, ["run", "-A", "npm:foreman-effect", "--db", join(empty, "jobs.db")], { cwd: empty, env: registryEnv })
      await chatsLikeTheTarget(foreman.url, target)
    })
  })
})

/**
 * A Node older than foreman needs: the machine's own where it has one (these machines have
 * Node 20), otherwise Node 20 from the npm registry.
 */
let found: Promise<{ readonly path: string; readonly version: string }> | undefined
const oldNode = (work: string, env: NodeJS.ProcessEnv) => (found ??= findOldNode(work, env))
const findOldNode = async (work: string, env: NodeJS.ProcessEnv) => {
  const tooOld = (version: string) => {
    const [major, minor] = version.replace(/^v/, "").split(".").map(Number) as [number, number]
    const [needMajor, needMinor] = minimumNode.split(".").map(Number) as [number, number]
    return major < needMajor || (major === needMajor && minor < needMinor)
  }
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir.includes("node_modules")) continue
    const probe = await run(join(dir, "node"), ["--version"], { cwd: work, env }).catch(() => undefined)
    if (probe?.status === 0 && tooOld(probe.stdout.trim())) return { path: join(dir, "node"), version: probe.stdout.trim().slice(1) }
  }
  const dir = join(work, "node20")
  mkdirSync(dir)
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "node20", private: true }))
  succeeded(await run("npm", ["install", "node@20"], { cwd: dir, env }), "npm install node@20")
  const path = join(dir, "node_modules/.bin/node")
  const version = succeeded(await run(path, ["--version"], { cwd: dir, env }), "node --version").stdout.trim().slice(1)
  return { path, version }
}
