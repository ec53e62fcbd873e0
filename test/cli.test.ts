import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Console, Duration, Effect, Exit, LogLevel, Option } from "effect"
import packageJson from "../package.json" with { type: "json" }
import { run, StartupError } from "../src/cli.ts"
import { type ForemanSettings, settings } from "../src/Config.ts"

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
      expect(s.plugins).toEqual(["openai", "metrics"])
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
        expect(help).toContain(`${s.flag} ${s.placeholder}`)
        expect(help).toContain(`${s.description} (env: ${s.env}, default: ${s.default})`)
      }
      expect(help).toContain("--version")
    }))

  it.effect("--version prints the package version", () =>
    Effect.gen(function*() {
      const outcome = yield* cli(["--version"])
      expect(outcome.stdout).toEqual([packageJson.version])
      expect(outcome.launched).toEqual(Option.none())
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
