import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { NodeContext } from "@effect/platform-node"
import { afterEach, beforeEach, describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Console, Duration, Effect, Exit, LogLevel, Option, TestClock } from "effect"
import packageJson from "../package.json" with { type: "json" }
import { hashKey, KeysFileError, readKeys } from "../src/auth/KeysFile.ts"
import { run, StartupError } from "../src/cli.ts"
import { defaultKeysPath, type ForemanSettings, settings } from "../src/Config.ts"

interface Outcome {
  readonly exit: Exit.Exit<void, unknown>
  readonly stdout: ReadonlyArray<string>
  readonly stderr: ReadonlyArray<string>
  /** What launch was given; `None` when it was not called. */
  readonly launched: Option.Option<ForemanSettings>
}

/** Runs the command line in-process, with `env` as the environment, and records what it did. */
const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const stdout: Array<string> = []
    const stderr: Array<string> = []
    let launched = Option.none<ForemanSettings>()
    const original = yield* Effect.console
    const recording: Console.Console = {
      ...original,
      log: (...parts) => Effect.sync(() => void stdout.push(parts.join(" "))),
      error: (...parts) => Effect.sync(() => void stderr.push(parts.join(" ")))
    }
    const exit = yield* run(["node", "foreman-effect", ...args], (s) => Effect.sync(() => void (launched = Option.some(s))))
      .pipe(
        Effect.withConsole(recording),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
        Effect.provide(NodeContext.layer),
        Effect.exit
      )
    return { exit, stdout, stderr, launched } satisfies Outcome
  })

const launchedWith = (outcome: Outcome): ForemanSettings => {
  expect(outcome.stderr).toEqual([])
  expect(Exit.isSuccess(outcome.exit)).toBe(true)
  return Option.getOrThrow(outcome.launched)
}

describe("foreman-effect command line", () => {
  it.effect("no flags, no env: the defaults", () =>
    Effect.gen(function*() {
      const s = launchedWith(yield* cli([]))
      expect(s.target).toBe("http://127.0.0.1:11434")
      expect(s.port).toBe(11435)
      expect(Duration.toMillis(s.pollInterval)).toBe(30_000)
      expect(s.plugins).toEqual(["openai", "anthropic", "metrics"])
    }))

  it.effect("--target once per target, NAME=URL names one; the env variable takes them comma-separated", () =>
    Effect.gen(function*() {
      const s = launchedWith(yield* cli(["--target", "desk=http://desk:11434/", "--target", "http://laptop.lan:11434"]))
      expect(s.target).toBe("desk=http://desk:11434,laptop.lan=http://laptop.lan:11434")
      const env = launchedWith(yield* cli([], { FOREMAN_TARGET: "a=http://10.0.0.2:11434, b=http://10.0.0.3:11434" }))
      expect(env.target).toBe("a=http://10.0.0.2:11434,b=http://10.0.0.3:11434")
      // The flag still beats the env variable.
      expect(launchedWith(yield* cli(["--target", "http://x:1"], { FOREMAN_TARGET: "a=http://y:2" })).target).toBe("http://x:1")
      // Two targets of one name (two bare URLs on one host) are refused.
      const twice = yield* cli(["--target", "http://gpu:1", "--target", "http://gpu:2"])
      expect(twice.stderr.join("\n")).toContain("Invalid --target (FOREMAN_TARGET): expected")
      expect(Option.isNone(twice.launched)).toBe(true)
      const badName = yield* cli(["--target", "has space=http://gpu:1"])
      expect(Option.isNone(badName.launched)).toBe(true)
    }))

  it.effect("env overrides the default", () =>
    Effect.gen(function*() {
      const s = launchedWith(yield* cli([], { FOREMAN_PORT: "9000", FOREMAN_MAX_WAIT: "2m" }))
      expect(s.port).toBe(9000)
      expect(Duration.toMillis(s.maxWait)).toBe(120_000)
    }))

  it.effect("a flag overrides env", () =>
    Effect.gen(function*() {
      const s = launchedWith(
        yield* cli(["--port", "9001", "--target=http://gpu:11434/", "--plugins", "none"], {
          FOREMAN_PORT: "9000",
          FOREMAN_TARGET: "http://other:1",
          FOREMAN_CONCURRENCY: "3"
        })
      )
      expect(s.port).toBe(9001)
      expect(s.target).toBe("http://gpu:11434")
      expect(s.plugins).toEqual([])
      expect(s.concurrency).toBe(3)
    }))

  it.effect("every setting has a working flag", () =>
    Effect.gen(function*() {
      const s = launchedWith(
        yield* cli([
          "--target", "https://laptop.lan:11434",
          "--host", "0.0.0.0",
          "--port", "0",
          "--poll-interval", "500ms",
          "--db", ":memory:",
          "--concurrency", "2",
          "--max-queue", "5",
          "--max-wait", "1m30s",
          "--plugins", "openai",
          "--request-timeout", "1h",
          "--connect-timeout", "3s",
          "--max-body-size", "1GiB",
          "--log-level", "warning",
          "--log-format", "logfmt"
        ])
      )
      expect(s).toMatchObject({
        target: "https://laptop.lan:11434",
        host: "0.0.0.0",
        port: 0,
        db: ":memory:",
        concurrency: 2,
        maxQueue: 5,
        plugins: ["openai"],
        maxBodySize: 2 ** 30,
        logFormat: "logfmt"
      })
      expect(Duration.toMillis(s.pollInterval)).toBe(500)
      expect(Duration.toMillis(s.maxWait)).toBe(90_000)
      expect(Duration.toMillis(s.requestTimeout)).toBe(3_600_000)
      expect(Duration.toMillis(s.connectTimeout)).toBe(3_000)
      expect(s.logLevel).toBe(LogLevel.Warning)
    }))

  // @effect/cli's Command.run has a built-in --log-level that takes the flag when nothing else is
  // on the command line; foreman's options are parsed without it.
  it.effect("--log-level alone still reaches the settings, and beats env", () =>
    Effect.gen(function*() {
      expect(launchedWith(yield* cli(["--log-level", "debug"], { FOREMAN_LOG_LEVEL: "error" })).logLevel)
        .toBe(LogLevel.Debug)
      expect(launchedWith(yield* cli(["--log-level=trace"])).logLevel).toBe(LogLevel.Trace)
      expect(launchedWith(yield* cli(["--log-level", "ERROR"])).logLevel).toBe(LogLevel.Error)
      expect(launchedWith(yield* cli([], { FOREMAN_LOG_LEVEL: "none" })).logLevel).toBe(LogLevel.None)
    }))

  const invalid: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
    [["--port", "abc"], "Invalid --port (FOREMAN_PORT): expected an integer from 0 to 65535, got \"abc\""],
    [
      ["--poll-interval", "-1s"],
      "Invalid --poll-interval (FOREMAN_POLL_INTERVAL): expected a positive duration such as 500ms, 30s, 2m or 1m30s, got \"-1s\""
    ],
    [
      ["--target", "notaurl"],
      "Invalid --target (FOREMAN_TARGET): expected an http:// or https:// URL such as http://127.0.0.1:11434, got \"notaurl\""
    ],
    [["--concurrency", "0"], "Invalid --concurrency (FOREMAN_CONCURRENCY): expected an integer of at least 1, got \"0\""],
    [
      ["--max-body-size", "lots"],
      "Invalid --max-body-size (FOREMAN_MAX_BODY_SIZE): expected a positive size such as 65536, 512KiB, 10MB or 64MiB, got \"lots\""
    ],
    [
      ["--log-level", "loud"],
      "Invalid --log-level (FOREMAN_LOG_LEVEL): expected one of all, trace, debug, info, warning, error, fatal, none, got \"loud\""
    ],
    [["--prot", "1"], "Unknown argument \"--prot\" (see foreman-effect --help)"],
    [["serve"], "Unknown argument \"serve\" (see foreman-effect --help)"],
    [["--port"], "Invalid --port: give it once, with a value (--port PORT)"],
    [["--port", "1", "--port", "2"], "Invalid --port: give it once, with a value (--port PORT)"]
  ]
  it.effect.each(invalid)("%j stops start-up with one line on stderr", ([args, message]) =>
    Effect.gen(function*() {
      const outcome = yield* cli(args)
      expect(outcome.stderr).toEqual([message])
      expect(outcome.stdout).toEqual([])
      expect(outcome.launched).toEqual(Option.none())
      expect(outcome.exit).toEqual(Exit.fail(new StartupError({ message })))
    }))

  it.effect("a good flag hides a bad env value; a bad flag is reported even with a good env value", () =>
    Effect.gen(function*() {
      expect(launchedWith(yield* cli(["--port", "1"], { FOREMAN_PORT: "x" })).port).toBe(1)
      expect((yield* cli(["--port", "x"], { FOREMAN_PORT: "1" })).stderr).toEqual([
        "Invalid --port (FOREMAN_PORT): expected an integer from 0 to 65535, got \"x\""
      ])
    }))

  it.effect("every bad value, from flag or env, is reported, one line each in help order", () =>
    Effect.gen(function*() {
      const outcome = yield* cli(["--concurrency", "0"], { FOREMAN_PORT: "abc", FOREMAN_LOG_FORMAT: "xml" })
      expect(outcome.stderr.flatMap((text) => text.split("\n"))).toEqual([
        "Invalid --port (FOREMAN_PORT): expected an integer from 0 to 65535, got \"abc\"",
        "Invalid --concurrency (FOREMAN_CONCURRENCY): expected an integer of at least 1, got \"0\"",
        "Invalid --log-format (FOREMAN_LOG_FORMAT): expected one of pretty, json, logfmt, got \"xml\""
      ])
      expect(outcome.launched).toEqual(Option.none())
      expect(Exit.isFailure(outcome.exit)).toBe(true)
    }))

  it.effect("flags are matched as typed: --PORT is not --port", () =>
    Effect.gen(function*() {
      const outcome = yield* cli(["--PORT", "6"])
      expect(outcome.stderr).toEqual(["Unknown argument \"--PORT\" (see foreman-effect --help)"])
      expect(outcome.launched).toEqual(Option.none())
    }))

  it.effect("-h and --help win over anything else on the command line, a bad value included", () =>
    Effect.gen(function*() {
      for (const args of [["-h"], ["--port", "abc", "--help"], ["--version", "--help"]]) {
        const outcome = yield* cli(args)
        expect(Exit.isSuccess(outcome.exit)).toBe(true)
        expect(outcome.stderr).toEqual([])
        expect(outcome.launched).toEqual(Option.none())
        expect(outcome.stdout.join("\n")).toContain("--port PORT")
      }
    }))

  it.effect("a bad env value is reported the same way", () =>
    Effect.gen(function*() {
      const outcome = yield* cli([], { FOREMAN_MAX_WAIT: "soon" })
      expect(outcome.stderr).toEqual([
        "Invalid --max-wait (FOREMAN_MAX_WAIT): expected a positive duration such as 500ms, 30s, 2m or 1m30s, got \"soon\""
      ])
      expect(Exit.isFailure(outcome.exit)).toBe(true)
    }))

  it.effect("--help lists every flag with its description, env variable and default", () =>
    Effect.gen(function*() {
      const outcome = yield* cli(["--help"])
      expect(Exit.isSuccess(outcome.exit)).toBe(true)
      expect(outcome.launched).toEqual(Option.none())
      const help = outcome.stdout.join("\n")
      expect(help).not.toMatch(/\u001b\[/) // plain text, no ANSI escapes
      for (const s of settings) {
        // A switch takes no value: its flag stands alone.
        expect(help).toContain(s.placeholder === "" ? `\n${s.flag}\n` : `${s.flag} ${s.placeholder}`)
        expect(help).toContain(`${s.description} (env: ${s.env}, default: ${s.default})`)
      }
      expect(help).toContain("--version")
      for (const command of ["keys add NAME [--role user|admin]", "keys list", "keys remove NAME"]) {
        expect(help).toContain(`foreman-effect ${command}`)
      }
    }))

  it.effect("--keys-file and FOREMAN_KEYS_FILE name the keys file; it defaults to the data directory", () =>
    Effect.gen(function*() {
      expect(launchedWith(yield* cli([])).keysFile).toBe(defaultKeysPath())
      expect(launchedWith(yield* cli([], { FOREMAN_KEYS_FILE: "/etc/foreman/keys.json" })).keysFile)
        .toBe("/etc/foreman/keys.json")
      expect(launchedWith(yield* cli(["--keys-file", "/tmp/k.json"], { FOREMAN_KEYS_FILE: "/etc/k.json" })).keysFile)
        .toBe("/tmp/k.json")
    }))

  it.effect("--allow-unauthenticated is a switch: alone it is on; =false beats env; env and default otherwise", () =>
    Effect.gen(function*() {
      expect(launchedWith(yield* cli([])).allowUnauthenticated).toBe(false)
      expect(launchedWith(yield* cli(["--allow-unauthenticated"])).allowUnauthenticated).toBe(true)
      expect(launchedWith(yield* cli(["--allow-unauthenticated", "--port", "1"])).allowUnauthenticated).toBe(true)
      expect(launchedWith(yield* cli(["--allow-unauthenticated=true"])).allowUnauthenticated).toBe(true)
      expect(launchedWith(yield* cli([], { FOREMAN_ALLOW_UNAUTHENTICATED: "true" })).allowUnauthenticated).toBe(true)
      expect(
        launchedWith(yield* cli(["--allow-unauthenticated=false"], { FOREMAN_ALLOW_UNAUTHENTICATED: "true" }))
          .allowUnauthenticated
      ).toBe(false)
      const bad = yield* cli([], { FOREMAN_ALLOW_UNAUTHENTICATED: "maybe" })
      expect(bad.stderr).toEqual([
        "Invalid --allow-unauthenticated (FOREMAN_ALLOW_UNAUTHENTICATED): expected true or false, got \"maybe\""
      ])
      expect(bad.launched).toEqual(Option.none())
      const twice = yield* cli(["--allow-unauthenticated", "--allow-unauthenticated"])
      expect(twice.stderr).toEqual([
        "Invalid --allow-unauthenticated: give it once (--allow-unauthenticated, --allow-unauthenticated=true or " +
        "--allow-unauthenticated=false)"
      ])
    }))

  it.effect("--version prints the package version", () =>
    Effect.gen(function*() {
      const outcome = yield* cli(["--version"])
      expect(outcome.stdout).toEqual([packageJson.version])
      expect(outcome.launched).toEqual(Option.none())
    }))

  it.effect("a broken keys file at start is one line on stderr", () =>
    Effect.gen(function*() {
      const stderr: Array<string> = []
      const original = yield* Effect.console
      const message = "Invalid keys file /x/keys.json: keys: is missing"
      const error = new KeysFileError({ path: "/x/keys.json", message })
      const exit = yield* run(["node", "foreman-effect"], () => Effect.fail(error)).pipe(
        Effect.withConsole({ ...original, error: (...parts) => Effect.sync(() => void stderr.push(parts.join(" "))) }),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map())),
        Effect.provide(NodeContext.layer),
        Effect.exit
      )
      expect(stderr).toEqual([message])
      expect(exit).toEqual(Exit.fail(error))
    }))

  it.effect("a launch failure fails the run", () =>
    Effect.gen(function*() {
      const exit = yield* run(["node", "foreman-effect", "--log-level", "none"], () => Effect.fail("port in use")).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map())),
        Effect.provide(NodeContext.layer),
        Effect.exit
      )
      expect(exit).toEqual(Exit.fail("port in use"))
    }))
})

describe("foreman-effect keys", () => {
  let dir = ""
  let file = ""
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "foreman-keys-cli-"))
    file = path.join(dir, "keys.json")
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  /** The outcome of a command that should succeed: its stdout. */
  const succeeded = (outcome: Outcome) => {
    expect(outcome.stderr).toEqual([])
    expect(Exit.isSuccess(outcome.exit)).toBe(true)
    expect(outcome.launched).toEqual(Option.none())
    return outcome.stdout.flatMap((text) => text.split("\n"))
  }

  /** The outcome of a command that should fail: its one line on stderr. */
  const refused = (outcome: Outcome) => {
    expect(outcome.stdout).toEqual([])
    expect(outcome.stderr).toHaveLength(1)
    expect(outcome.stderr[0]).not.toContain("\n")
    expect(outcome.exit).toEqual(Exit.fail(new StartupError({ message: outcome.stderr[0]! })))
    expect(outcome.launched).toEqual(Option.none())
    return outcome.stderr[0]!
  }

  it.effect("add prints a line, then the key itself last; the file holds only its hash", () =>
    Effect.gen(function*() {
      const out = succeeded(yield* cli(["keys", "add", "alice", "--keys-file", file]))
      expect(out).toHaveLength(2)
      expect(out[0]).toBe(`Added key "alice" (user) to ${file}. Keep it now: it is shown only this once.`)
      const key = out.at(-1)!
      expect(key).toMatch(/^fk_[A-Za-z0-9_-]{43}$/)
      const stored = yield* readKeys(file)
      expect(stored.map((k) => [k.name, k.role, k.hash])).toEqual([["alice", "user", hashKey(key)]])
      expect(readFileSync(file, "utf8")).not.toContain(key)
    }))

  it.effect("add --role admin; FOREMAN_KEYS_FILE names the file; the flag beats it", () =>
    Effect.gen(function*() {
      const other = path.join(dir, "other.json")
      succeeded(yield* cli(["keys", "add", "--role", "admin", "root-box"], { FOREMAN_KEYS_FILE: file }))
      succeeded(yield* cli(["keys", "add", "bob", "--role=user", `--keys-file=${other}`], { FOREMAN_KEYS_FILE: file }))
      expect((yield* readKeys(file)).map((k) => [k.name, k.role])).toEqual([["root-box", "admin"]])
      expect((yield* readKeys(other)).map((k) => [k.name, k.role])).toEqual([["bob", "user"]])
    }))

  it.effect("list shows names, roles, created and last used; never a key or a hash", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2025-06-01T12:00:00Z"))
      const alice = succeeded(yield* cli(["keys", "add", "alice"], { FOREMAN_KEYS_FILE: file })).at(-1)!
      yield* TestClock.adjust(Duration.minutes(90))
      succeeded(yield* cli(["keys", "add", "bob", "--role", "admin"], { FOREMAN_KEYS_FILE: file }))
      writeFileSync(`${file}.used`, JSON.stringify({ alice: "2025-06-02T08:30:00.000Z" }))
      const out = succeeded(yield* cli(["keys", "list", "--keys-file", file]))
      expect(out).toEqual([
        "NAME   ROLE   CREATED               LAST USED",
        "alice  user   2025-06-01T12:00:00Z  2025-06-02T08:30:00Z",
        "bob    admin  2025-06-01T13:30:00Z  never"
      ])
      expect(out.join("\n")).not.toContain(alice)
      expect(out.join("\n")).not.toContain("sha256")
    }))

  it.effect("list with no file says keys are off", () =>
    Effect.gen(function*() {
      expect(succeeded(yield* cli(["keys", "list", "--keys-file", file]))).toEqual([`No keys in ${file}: keys are off.`])
    }))

  it.effect("remove takes the key out; an unknown name is refused", () =>
    Effect.gen(function*() {
      succeeded(yield* cli(["keys", "add", "alice", "--keys-file", file]))
      succeeded(yield* cli(["keys", "add", "bob", "--keys-file", file]))
      expect(succeeded(yield* cli(["keys", "remove", "alice", "--keys-file", file]))).toEqual([
        `Removed key "alice" from ${file}.`
      ])
      expect((yield* readKeys(file)).map((k) => k.name)).toEqual(["bob"])
      expect(refused(yield* cli(["keys", "remove", "alice", "--keys-file", file]))).toBe(`No key named "alice" in ${file}`)
    }))

  it.effect("--help and a bare keys print the keys help", () =>
    Effect.gen(function*() {
      for (const args of [["keys"], ["keys", "--help"], ["keys", "-h"], ["keys", "add", "--help"], ["keys", "list", "-h"]]) {
        const help = succeeded(yield* cli(args)).join("\n")
        expect(help).toContain("$ foreman-effect keys add NAME [--role user|admin] [--keys-file PATH]")
        expect(help).toContain("$ foreman-effect keys list [--keys-file PATH]")
        expect(help).toContain("$ foreman-effect keys remove NAME [--keys-file PATH]")
        expect(help).toContain("(env: FOREMAN_KEYS_FILE, default: ")
      }
    }))

  it.effect("keys commands ignore the server's settings, bad ones included", () =>
    Effect.gen(function*() {
      succeeded(yield* cli(["keys", "add", "alice"], { FOREMAN_KEYS_FILE: file, FOREMAN_PORT: "abc" }))
    }))

  it.effect("a duplicate name is refused, the file unchanged", () =>
    Effect.gen(function*() {
      succeeded(yield* cli(["keys", "add", "alice", "--keys-file", file]))
      const before = readFileSync(file, "utf8")
      expect(refused(yield* cli(["keys", "add", "alice", "--role", "admin", "--keys-file", file]))).toBe(
        `A key named "alice" is already in ${file} (remove it first to replace it)`
      )
      expect(readFileSync(file, "utf8")).toBe(before)
    }))

  it.effect("a broken keys file is refused in one line", () =>
    Effect.gen(function*() {
      writeFileSync(file, "{\"keys\": 3}")
      for (const args of [["keys", "list"], ["keys", "add", "x"], ["keys", "remove", "x"]]) {
        expect(refused(yield* cli([...args, "--keys-file", file]))).toMatch(new RegExp(`^Invalid keys file ${file}: keys: `))
      }
    }))

  const invalid: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
    [["keys", "frob"], "Unknown keys command \"frob\": expected add, list or remove (see foreman-effect keys --help)"],
    [["keys", "add"], "Usage: foreman-effect keys add NAME [--role user|admin] [--keys-file PATH]"],
    [["keys", "add", "a", "b"], "Usage: foreman-effect keys add NAME [--role user|admin] [--keys-file PATH]"],
    [["keys", "remove"], "Usage: foreman-effect keys remove NAME [--keys-file PATH]"],
    [["keys", "list", "x"], "Usage: foreman-effect keys list [--keys-file PATH]"],
    [
      ["keys", "add", "a b"],
      "Invalid key name \"a b\": expected 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
    ],
    [["keys", "add", "x", "--role", "root"], "Invalid --role: expected user or admin, got \"root\""],
    [["keys", "list", "--role", "admin"], "Invalid --role: only keys add takes it (see foreman-effect keys --help)"],
    [["keys", "add", "x", "--bogus"], "Unknown argument \"--bogus\" (see foreman-effect keys --help)"],
    [["keys", "add", "x", "--keys-file"], "Invalid --keys-file: give it once, with a value (see foreman-effect keys --help)"]
  ]
  it.effect.each(invalid)("%j is refused with one line on stderr, and writes nothing", ([args, message]) =>
    Effect.gen(function*() {
      expect(refused(yield* cli(args, { FOREMAN_KEYS_FILE: file }))).toBe(message)
      expect(existsSync(file)).toBe(false)
    }))
})
