import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Either, Layer, LogLevel, Option } from "effect"
import {
  defaultDbPath,
  defaultKeysPath,
  defaultSettings,
  ForemanConfig,
  foremanConfig,
  formatConfigError,
  parseByteSize,
  parseDuration,
  parseSetting,
  settings,
  settingSpecs,
  settingText
} from "../src/Config.ts"

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

/** The settings as read from `env`, or the one-line complaint(s). */
const read = (env: Record<string, string>) =>
  foremanConfig.pipe(withEnv(env), Effect.mapError(formatConfigError), Effect.either)

describe("parseDuration", () => {
  const valid: ReadonlyArray<readonly [string, number]> = [
    ["500ms", 500],
    ["1s", 1_000],
    ["30s", 30_000],
    ["2m", 120_000],
    ["1h", 3_600_000],
    ["1d", 86_400_000],
    ["1m30s", 90_000],
    ["1h2m3s4ms", 3_723_004],
    ["1.5s", 1_500],
    ["0s", 0],
    [" 45s ", 45_000]
  ]
  it.each(valid)("%s is %d ms", (text, millis) => {
    expect(parseDuration(text).pipe(Option.map(Duration.toMillis))).toEqual(Option.some(millis))
  })

  it.each(["", "-1s", "30", "s", "1 s", "1x", "1S", "ten seconds", "1m-30s", "1.s", "NaNs"])("%j is refused", (text) => {
    expect(parseDuration(text)).toEqual(Option.none())
  })
})

describe("parseByteSize", () => {
  const valid: ReadonlyArray<readonly [string, number]> = [
    ["0", 0],
    ["65536", 65_536],
    ["100B", 100],
    ["512KiB", 512 * 1024],
    ["10MB", 10_000_000],
    ["64MiB", 64 * 2 ** 20],
    ["1GiB", 2 ** 30],
    ["1GB", 1e9],
    ["2kb", 2_000],
    ["1.5KiB", 1_536],
    ["64 MiB", 64 * 2 ** 20]
  ]
  it.each(valid)("%s is %d bytes", (text, bytes) => {
    expect(parseByteSize(text)).toEqual(Option.some(bytes))
  })

  it.each(["", "lots", "-1", "1.5", "10XB", "MiB", "1e6", "0.1B"])("%j is refused", (text) => {
    expect(parseByteSize(text)).toEqual(Option.none())
  })
})

describe("foremanConfig", () => {
  it.effect("an empty environment gives the documented defaults", () =>
    Effect.gen(function*() {
      const config = yield* foremanConfig.pipe(withEnv({}))
      expect(config).toEqual(defaultSettings)
      expect(config).toMatchObject({
        target: "http://127.0.0.1:11434",
        host: "127.0.0.1",
        port: 11435,
        concurrency: 1,
        maxQueue: 512,
        plugins: ["openai", "anthropic", "metrics"],
        maxBodySize: 64 * 2 ** 20,
        logFormat: "pretty",
        db: defaultDbPath()
      })
      expect(Duration.toMillis(config.pollInterval)).toBe(30_000)
      expect(Duration.toMillis(config.maxWait)).toBe(60_000)
      expect(Duration.toMillis(config.requestTimeout)).toBe(300_000)
      expect(Duration.toMillis(config.connectTimeout)).toBe(5_000)
      expect(config.logLevel).toBe(LogLevel.Info)
    }))

  it.effect("environment variables override the defaults", () =>
    Effect.gen(function*() {
      const config = yield* foremanConfig.pipe(
        withEnv({
          FOREMAN_TARGET: "https://gpu.lan:8443/ollama/",
          FOREMAN_HOST: "0.0.0.0",
          FOREMAN_PORT: "0",
          FOREMAN_POLL_INTERVAL: "1m30s",
          FOREMAN_DB: ":memory:",
          FOREMAN_CONCURRENCY: "4",
          FOREMAN_MAX_QUEUE: "10",
          FOREMAN_MAX_WAIT: "500ms",
          FOREMAN_PLUGINS: "metrics",
          FOREMAN_REQUEST_TIMEOUT: "1h",
          FOREMAN_CONNECT_TIMEOUT: "2s",
          FOREMAN_MAX_BODY_SIZE: "10MB",
          FOREMAN_LOG_LEVEL: "DEBUG",
          FOREMAN_LOG_FORMAT: "json"
        })
      )
      expect(config).toMatchObject({
        target: "https://gpu.lan:8443/ollama",
        host: "0.0.0.0",
        port: 0,
        db: ":memory:",
        concurrency: 4,
        maxQueue: 10,
        plugins: ["metrics"],
        maxBodySize: 10_000_000,
        logFormat: "json"
      })
      expect(Duration.toMillis(config.pollInterval)).toBe(90_000)
      expect(Duration.toMillis(config.maxWait)).toBe(500)
      expect(Duration.toMillis(config.requestTimeout)).toBe(3_600_000)
      expect(Duration.toMillis(config.connectTimeout)).toBe(2_000)
      expect(config.logLevel).toBe(LogLevel.Debug)
    }))

  it.effect("the target is stored without a trailing slash", () =>
    Effect.gen(function*() {
      expect((yield* foremanConfig.pipe(withEnv({ FOREMAN_TARGET: "http://laptop:11434/" }))).target)
        .toBe("http://laptop:11434")
      expect((yield* foremanConfig.pipe(withEnv({ FOREMAN_TARGET: "HTTP://Laptop" }))).target)
        .toBe("http://laptop")
    }))

  it.effect("\"none\" disables every plugin", () =>
    Effect.gen(function*() {
      expect((yield* foremanConfig.pipe(withEnv({ FOREMAN_PLUGINS: "none" }))).plugins).toEqual([])
      expect((yield* foremanConfig.pipe(withEnv({ FOREMAN_PLUGINS: " openai , metrics,openai" }))).plugins)
        .toEqual(["openai", "metrics"])
    }))

  const invalid: ReadonlyArray<readonly [string, string, string]> = [
    ["FOREMAN_PORT", "abc", "Invalid --port (FOREMAN_PORT): expected an integer from 0 to 65535, got \"abc\""],
    ["FOREMAN_PORT", "65536", "Invalid --port (FOREMAN_PORT): expected an integer from 0 to 65535, got \"65536\""],
    [
      "FOREMAN_POLL_INTERVAL",
      "-1s",
      "Invalid --poll-interval (FOREMAN_POLL_INTERVAL): expected a positive duration such as 500ms, 30s, 2m or 1m30s, got \"-1s\""
    ],
    [
      "FOREMAN_MAX_WAIT",
      "0s",
      "Invalid --max-wait (FOREMAN_MAX_WAIT): expected a positive duration such as 500ms, 30s, 2m or 1m30s, got \"0s\""
    ],
    [
      "FOREMAN_TARGET",
      "notaurl",
      "Invalid --target (FOREMAN_TARGET): expected an http:// or https:// URL such as http://127.0.0.1:11434, got \"notaurl\""
    ],
    [
      "FOREMAN_TARGET",
      "ftp://host",
      "Invalid --target (FOREMAN_TARGET): expected an http:// or https:// URL such as http://127.0.0.1:11434, got \"ftp://host\""
    ],
    [
      "FOREMAN_CONCURRENCY",
      "0",
      "Invalid --concurrency (FOREMAN_CONCURRENCY): expected an integer of at least 1, got \"0\""
    ],
    ["FOREMAN_MAX_QUEUE", "1.5", "Invalid --max-queue (FOREMAN_MAX_QUEUE): expected an integer of at least 1, got \"1.5\""],
    [
      "FOREMAN_MAX_BODY_SIZE",
      "lots",
      "Invalid --max-body-size (FOREMAN_MAX_BODY_SIZE): expected a positive size such as 65536, 512KiB, 10MB or 64MiB, got \"lots\""
    ],
    [
      "FOREMAN_PLUGINS",
      "",
      "Invalid --plugins (FOREMAN_PLUGINS): expected a comma-separated list of plugin names such as openai,metrics, or none, got \"\""
    ],
    [
      "FOREMAN_LOG_LEVEL",
      "loud",
      "Invalid --log-level (FOREMAN_LOG_LEVEL): expected one of all, trace, debug, info, warning, error, fatal, none, got \"loud\""
    ],
    [
      "FOREMAN_LOG_FORMAT",
      "xml",
      "Invalid --log-format (FOREMAN_LOG_FORMAT): expected one of pretty, json, logfmt, got \"xml\""
    ]
  ]
  it.effect.each(invalid)("%s=%j is refused in one line naming flag, variable and value", ([env, value, message]) =>
    Effect.gen(function*() {
      expect(yield* read({ [env]: value })).toEqual(Either.left(message))
    }))

  it.effect("every bad value is reported, one line each", () =>
    Effect.gen(function*() {
      const result = yield* read({ FOREMAN_PORT: "abc", FOREMAN_CONCURRENCY: "0" })
      expect(Either.getLeft(result).pipe(Option.map((text) => text.split("\n")))).toEqual(Option.some([
        "Invalid --port (FOREMAN_PORT): expected an integer from 0 to 65535, got \"abc\"",
        "Invalid --concurrency (FOREMAN_CONCURRENCY): expected an integer of at least 1, got \"0\""
      ]))
    }))
})

describe("settings", () => {
  it("lists every setting once, with a flag, an env variable, a default and a description", () => {
    expect(settings.map((s) => s.key).sort()).toEqual(Object.keys(defaultSettings).sort())
    for (const s of settings) {
      expect(s.flag).toMatch(/^--[a-z][a-z-]*$/)
      expect(s.env).toBe(`FOREMAN_${s.flag.slice(2).toUpperCase().replaceAll("-", "_")}`)
      expect(s.default).not.toBe("")
      expect(s.description).not.toBe("")
    }
  })

  it("holds the defaults of the external contract", () => {
    const defaults = Object.fromEntries(settings.map((s) => [s.flag, s.default]))
    expect(defaults).toMatchObject({
      "--target": "http://127.0.0.1:11434",
      "--host": "127.0.0.1",
      "--port": "11435",
      "--poll-interval": "30s",
      "--concurrency": "1",
      "--max-queue": "512",
      "--max-wait": "60s",
      "--plugins": "openai,anthropic,metrics",
      "--request-timeout": "5m",
      "--connect-timeout": "5s",
      "--max-body-size": "64MiB",
      "--log-level": "info",
      "--log-format": "pretty",
      "--allow-unauthenticated": "false"
    })
  })
})

describe("one setting (what the command line's options are made of)", () => {
  it.effect("settingText: the env variable's text, else the table's default", () =>
    Effect.gen(function*() {
      expect(yield* settingText(settingSpecs.maxWait).pipe(withEnv({ FOREMAN_MAX_WAIT: "soon" }))).toBe("soon")
      expect(yield* settingText(settingSpecs.maxWait).pipe(withEnv({}))).toBe("60s")
    }))

  it("parseSetting: the typed value, or the same one-line complaint as foremanConfig", () => {
    expect(parseSetting(settingSpecs.port, "9000")).toEqual(Either.right(9000))
    expect(parseSetting(settingSpecs.logLevel, "WARNING")).toEqual(Either.right(LogLevel.Warning))
    expect(parseSetting(settingSpecs.port, "abc")).toEqual(
      Either.left("Invalid --port (FOREMAN_PORT): expected an integer from 0 to 65535, got \"abc\"")
    )
  })

  it("the table and its public face list the same settings in the same order", () => {
    expect(Object.keys(settingSpecs)).toEqual(settings.map((s) => s.key))
  })
})

describe("defaultDbPath", () => {
  it("follows each platform's data directory", () => {
    expect(defaultDbPath("linux", {}, "/home/ada")).toBe("/home/ada/.local/share/foreman-effect/foreman.db")
    expect(defaultDbPath("linux", { XDG_DATA_HOME: "/data" }, "/home/ada")).toBe("/data/foreman-effect/foreman.db")
    // The XDG spec says a relative XDG_DATA_HOME is to be ignored.
    expect(defaultDbPath("linux", { XDG_DATA_HOME: "data" }, "/home/ada"))
      .toBe("/home/ada/.local/share/foreman-effect/foreman.db")
    expect(defaultDbPath("darwin", {}, "/Users/ada"))
      .toBe("/Users/ada/Library/Application Support/foreman-effect/foreman.db")
    expect(defaultDbPath("win32", { APPDATA: "C:\\Users\\ada\\AppData\\Roaming" }, "C:\\Users\\ada"))
      .toBe("C:\\Users\\ada\\AppData\\Roaming\\foreman-effect\\foreman.db")
  })
})

describe("defaultKeysPath", () => {
  it("is keys.json next to the default database", () => {
    expect(defaultKeysPath("linux", {}, "/home/ada")).toBe("/home/ada/.local/share/foreman-effect/keys.json")
    expect(defaultKeysPath("linux", { XDG_DATA_HOME: "/data" }, "/home/ada")).toBe("/data/foreman-effect/keys.json")
    expect(defaultKeysPath("darwin", {}, "/Users/ada"))
      .toBe("/Users/ada/Library/Application Support/foreman-effect/keys.json")
    expect(defaultKeysPath("win32", { APPDATA: "C:\\Users\\ada\\AppData\\Roaming" }, "C:\\Users\\ada"))
      .toBe("C:\\Users\\ada\\AppData\\Roaming\\foreman-effect\\keys.json")
    expect(defaultSettings.keysFile).toBe(defaultKeysPath())
  })
})

describe("the keys settings", () => {
  it.effect("FOREMAN_KEYS_FILE and FOREMAN_ALLOW_UNAUTHENTICATED", () =>
    Effect.gen(function*() {
      expect(yield* foremanConfig.pipe(withEnv({}))).toMatchObject({ keysFile: defaultKeysPath(), allowUnauthenticated: false })
      expect(yield* foremanConfig.pipe(withEnv({ FOREMAN_KEYS_FILE: "/etc/foreman/keys.json", FOREMAN_ALLOW_UNAUTHENTICATED: "TRUE" })))
        .toMatchObject({ keysFile: "/etc/foreman/keys.json", allowUnauthenticated: true })
      for (const [text, value] of [["1", true], ["yes", true], ["false", false], ["0", false], ["no", false]] as const) {
        expect((yield* foremanConfig.pipe(withEnv({ FOREMAN_ALLOW_UNAUTHENTICATED: text }))).allowUnauthenticated).toBe(value)
      }
      expect(yield* read({ FOREMAN_ALLOW_UNAUTHENTICATED: "maybe" })).toEqual(Either.left(
        "Invalid --allow-unauthenticated (FOREMAN_ALLOW_UNAUTHENTICATED): expected true or false, got \"maybe\""
      ))
      expect(yield* read({ FOREMAN_KEYS_FILE: " " })).toEqual(Either.left(
        "Invalid --keys-file (FOREMAN_KEYS_FILE): expected a file path, got \" \""
      ))
    }))
})

describe("ForemanConfig", () => {
  it.effect("make: the defaults with overrides", () =>
    Effect.gen(function*() {
      const config = yield* ForemanConfig
      expect(config).toEqual({ ...defaultSettings, port: 0, db: ":memory:" })
    }).pipe(Effect.provide(ForemanConfig.make({ port: 0, db: ":memory:" }))))

  it.effect("layer: reads the current ConfigProvider", () =>
    Effect.gen(function*() {
      const config = yield* ForemanConfig
      expect(config.maxQueue).toBe(3)
    }).pipe(Effect.provide(ForemanConfig.layer), withEnv({ FOREMAN_MAX_QUEUE: "3" })))

  it.effect("layer: fails with the one-line message", () =>
    Effect.gen(function*() {
      const error = yield* Layer.build(ForemanConfig.layer).pipe(Effect.scoped, Effect.flip, withEnv({ FOREMAN_PORT: "x" }))
      expect(formatConfigError(error)).toBe(
        "Invalid --port (FOREMAN_PORT): expected an integer from 0 to 65535, got \"x\""
      )
    }))
})
