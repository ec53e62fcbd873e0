/**
 * Every setting of foreman in one table: its flag, env variable, default, description and
 * parser. The Effect `Config` (`foremanConfig`), the typed defaults (`defaultSettings`), the
 * CLI's typed options and its help text are all derived from that table, so a setting is
 * added by adding one field to `ForemanSettings` and one entry to `settingSpecs` below (the
 * compiler insists on both).
 */
import * as os from "node:os"
import * as path from "node:path"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Record from "effect/Record"

export interface ForemanSettings {
  /**
   * The Ollama servers foreman fronts: one base URL (normalised without a trailing slash), or
   * several as `name=URL` entries joined by commas (`parseTargetList` reads it). The flag may
   * be given more than once.
   */
  readonly target: string
  /**
   * A JSON file of targets with per-target settings (`""`: none, spelled `none`); when given, its targets are
   * the ones foreman fronts and `target` is not used.
   */
  readonly targetsFile: string
  readonly host: string
  /**
   * Browser origins allowed besides Ollama's defaults (`OLLAMA_ORIGINS` patterns: exact, or
   * with one `*`; `*` alone allows every origin).
   */
  readonly origins: ReadonlyArray<string>
  /** 0 = pick a free port. */
  readonly port: number
  readonly pollInterval: Duration.Duration
  /** SQLite file for async jobs; `:memory:` keeps them in memory only. */
  readonly db: string
  readonly concurrency: number
  /** How many models the target keeps loaded at once (Ollama's OLLAMA_MAX_LOADED_MODELS as it behaves on that box). */
  readonly maxLoadedModels: number
  readonly maxQueue: number
  readonly maxWait: Duration.Duration
  /** Plugin names in the order given; `none` gives `[]`. */
  readonly plugins: ReadonlyArray<string>
  /** How many times an async job may be started at the target before it fails for good. */
  readonly maxAttempts: number
  /** How long an async job may wait for the target before it fails as expired. */
  readonly jobTtl: Duration.Duration
  /** How long finished async jobs are kept. */
  readonly retention: Duration.Duration
  /** How long a sync caller waits (queue + target asleep) before a 503. */
  readonly requestTimeout: Duration.Duration
  /** TCP connect timeout to the target (a sleeping laptop does not answer SYNs). */
  readonly connectTimeout: Duration.Duration
  /**
   * How long the target may send nothing, while a job waits for its answer (a model load
   * included) or between two of its chunks, before the attempt is given up.
   */
  readonly stallTimeout: Duration.Duration
  /** In bytes. */
  readonly maxBodySize: number
  readonly logLevel: LogLevel.LogLevel
  readonly logFormat: "pretty" | "json" | "logfmt"
  /**
   * The API keys file (`foreman-effect keys` manages it); missing or empty at start = keys are
   * off (once a process has had keys, they stay on until it restarts).
   */
  readonly keysFile: string
  /** With no key in the keys file, serve other machines anyway (ignored while keys are on). */
  readonly allowUnauthenticated: boolean
}

/** The public face of one setting: what the help text and the README show. */
export interface SettingInfo {
  readonly key: keyof ForemanSettings
  /** With its dashes: `--port`. */
  readonly flag: string
  readonly env: string
  /** As a user would type it. */
  readonly default: string
  /** The value's name in usage lines: `--port PORT`; `""` for a switch, which takes none. */
  readonly placeholder: string
  readonly description: string
}

/** One setting as the table holds it. */
export interface SettingSpec<A> extends Omit<SettingInfo, "key"> {
  /** The flag may be given more than once: its values are joined by commas before parsing. */
  readonly repeated?: true
  /**
   * A switch: the flag alone turns it on (`--allow-unauthenticated`; `=false` turns it off);
   * its env variable and default are text as for any other setting (`true`, `false`).
   */
  readonly switch?: true
  /** Completes "expected …" in the error for a bad value. */
  readonly expected: string
  /** `None` for a value the setting refuses. */
  readonly parse: (raw: string) => Option.Option<A>
}

// ---------------------------------------------------------------------------------------------
// Value parsers
// ---------------------------------------------------------------------------------------------

const durationUnits: { readonly [unit: string]: number } = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const durationShape = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/
const durationPart = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g

/**
 * `"500ms"`, `"30s"`, `"2m"`, `"1h"`, `"1d"` and sums of them such as `"1m30s"`. A bare number,
 * a negative value or anything else gives `None` (`"0s"` is a valid, zero, duration).
 */
export const parseDuration = (s: string): Option.Option<Duration.Duration> => {
  const text = s.trim()
  if (!durationShape.test(text)) return Option.none()
  let millis = 0
  for (const [, amount, unit] of text.matchAll(durationPart)) millis += Number(amount) * durationUnits[unit!]!
  return Number.isFinite(millis) ? Option.some(Duration.millis(millis)) : Option.none()
}

const byteUnits: { readonly [unit: string]: number } = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40
}

/**
 * A byte count: `"65536"`, `"512KiB"`, `"10MB"`, `"64MiB"`, `"1GiB"` (MB = 10^6, MiB = 2^20;
 * units are case-insensitive). Anything else, or a fraction of a byte, gives `None`.
 */
export const parseByteSize = (s: string): Option.Option<number> => {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(s.trim())
  if (match === null) return Option.none()
  const unit = byteUnits[(match[2] || "b").toLowerCase()]
  if (unit === undefined) return Option.none()
  const bytes = Number(match[1]) * unit
  return Number.isSafeInteger(bytes) ? Option.some(bytes) : Option.none()
}

const parseInteger = (min: number, max: number) => (s: string): Option.Option<number> => {
  const text = s.trim()
  if (!/^\d+$/.test(text)) return Option.none()
  const n = Number(text)
  return Number.isSafeInteger(n) && n >= min && n <= max ? Option.some(n) : Option.none()
}

const parsePositiveDuration = (s: string): Option.Option<Duration.Duration> =>
  Option.filter(parseDuration(s), (d) => Duration.greaterThan(d, Duration.zero))

export const parseHttpUrl = (s: string): Option.Option<string> => {
  const text = s.trim()
  if (!URL.canParse(text)) return Option.none()
  const url = new URL(text)
  const usable = (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "" &&
    url.search === "" && url.hash === ""
  return usable ? Option.some(url.href.replace(/\/+$/, "")) : Option.none()
}

/** One `--target` entry: a name (the URL's host when not given) and a base URL. */
export interface TargetEntry {
  readonly name: string
  readonly url: string
  /** Whether the name was given (`NAME=URL`) rather than taken from the URL's host. */
  readonly named: boolean
}

/** A target's name: letters, digits, `.`, `_`, `-`, starting with a letter or digit. */
export const isTargetName = (name: string): boolean => /^[a-z0-9][a-z0-9._-]{0,62}$/i.test(name)

/** The host of a target's URL: its name when none is given. */
export const hostOf = (url: string): string => {
  try {
    return new URL(url).hostname.replace(/^\[(.*)\]$/, "$1")
  } catch {
    return url
  }
}

/**
 * `--target`'s text as targets: `URL` or `NAME=URL`, several joined by commas. Names must
 * differ (two bare URLs on one host need names); `None` for anything else.
 */
export const parseTargetList = (s: string): Option.Option<ReadonlyArray<TargetEntry>> => {
  const entries: Array<TargetEntry> = []
  for (const item of s.split(",")) {
    const text = item.trim()
    const equals = text.indexOf("=")
    // A URL may hold `=` only after its host (a query, which a base URL has none of anyway).
    const named = equals > 0 && !text.slice(0, equals).includes("/")
    const name = named ? text.slice(0, equals).trim() : undefined
    const url = parseHttpUrl(named ? text.slice(equals + 1) : text)
    if (Option.isNone(url) || (name !== undefined && !isTargetName(name))) return Option.none()
    entries.push({ name: name ?? hostOf(url.value), url: url.value, named: name !== undefined })
  }
  const names = new Set(entries.map((entry) => entry.name.toLowerCase()))
  return names.size === entries.length ? Option.some(entries) : Option.none()
}

/** The normalised text of a target list: a lone bare URL as itself, else `name=URL,...`. */
const formatTargetList = (entries: ReadonlyArray<TargetEntry>, bare: boolean): string =>
  bare && entries.length === 1 ? entries[0]!.url : entries.map((entry) => `${entry.name}=${entry.url}`).join(",")

const parseTargets = (s: string): Option.Option<string> =>
  Option.map(parseTargetList(s), (entries) => formatTargetList(entries, entries.length === 1 && !/^\s*[^/=]+=/.test(s)))

const parseNonEmpty = (s: string): Option.Option<string> => {
  const text = s.trim()
  return text === "" ? Option.none() : Option.some(text)
}

const parsePluginList = (s: string): Option.Option<ReadonlyArray<string>> => {
  const text = s.trim().toLowerCase()
  if (text === "none") return Option.some([])
  const names = text.split(",").map((name) => name.trim())
  return names.every((name) => /^[a-z0-9][a-z0-9_-]*$/.test(name))
    ? Option.some([...new Set(names)])
    : Option.none()
}

const parseOriginList = (s: string): Option.Option<ReadonlyArray<string>> => {
  const text = s.trim()
  if (text.toLowerCase() === "none") return Option.some([])
  const patterns = text.split(",").map((pattern) => pattern.trim())
  const valid = (pattern: string) =>
    pattern === "*" || (/^[a-z][a-z0-9+.-]*:\/\/[^\s*]*\*?[^\s*]*$/i.test(pattern))
  return patterns.every(valid) ? Option.some([...new Set(patterns)]) : Option.none()
}

const oneOf = <A>(choices: ReadonlyArray<readonly [string, A]>) => (s: string): Option.Option<A> => {
  const text = s.trim().toLowerCase()
  const found = choices.find(([name]) => name === text)
  return found === undefined ? Option.none() : Option.some(found[1])
}

const parseBoolean = oneOf([["true", true], ["1", true], ["yes", true], ["false", false], ["0", false], ["no", false]])

const logLevels = LogLevel.allLevels.map((level) => [level._tag.toLowerCase(), level] as const)
const logFormats = (["pretty", "json", "logfmt"] as const).map((format) => [format, format] as const)

/**
 * Where foreman keeps its database unless told otherwise: the user's data dir
 * (`$XDG_DATA_HOME` or `~/.local/share` on Linux and other Unixes, `~/Library/Application
 * Support` on macOS, `%APPDATA%` on Windows) + `foreman-effect/foreman.db`.
 */
export const defaultDbPath = (
  platform: string = process.platform,
  env: { readonly [name: string]: string | undefined } = process.env,
  home: string = os.homedir()
): string => dataFilePath("foreman.db", platform, env, home)

/** Where the keys file is unless told otherwise: next to the default database, `keys.json`. */
export const defaultKeysPath = (
  platform: string = process.platform,
  env: { readonly [name: string]: string | undefined } = process.env,
  home: string = os.homedir()
): string => dataFilePath("keys.json", platform, env, home)

const dataFilePath = (
  file: string,
  platform: string,
  env: { readonly [name: string]: string | undefined },
  home: string
): string => {
  if (platform === "win32") {
    const appData = env["APPDATA"] || path.win32.join(home, "AppData", "Roaming")
    return path.win32.join(appData, "foreman-effect", file)
  }
  const xdg = env["XDG_DATA_HOME"]
  const dataDir = platform === "darwin"
    ? path.posix.join(home, "Library", "Application Support")
    : xdg !== undefined && path.posix.isAbsolute(xdg)
    ? xdg
    : path.posix.join(home, ".local", "share")
  return path.posix.join(dataDir, "foreman-effect", file)
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

/** A table of settings: one spec per field of `S`, of that field's type. */
export type Specs<S> = { readonly [K in keyof S]: SettingSpec<S[K]> }

const positiveDuration = "a positive duration such as 500ms, 30s, 2m or 1m30s"

/**
 * The table itself, for what is generated from it: `foremanConfig` here, the command line's
 * options in `cli.ts`. Its order is the order of the help text and the README table.
 */
export const settingSpecs: Specs<ForemanSettings> = {
  target: {
    flag: "--target",
    env: "FOREMAN_TARGET",
    default: "http://127.0.0.1:11434",
    placeholder: "URL",
    repeated: true,
    description: "Base URL of the Ollama server that foreman fronts; NAME=URL names it. Give it once per " +
      "target for several (the env variable: comma-separated).",
    expected: "an http:// or https:// URL such as http://127.0.0.1:11434",
    parse: parseTargets
  },
  targetsFile: {
    flag: "--targets-file",
    env: "FOREMAN_TARGETS_FILE",
    default: "none",
    placeholder: "PATH",
    description: "JSON file of targets with settings of their own (name, url, concurrency, maxLoadedModels, " +
      "wake: {mac, address, port}); when given, --target is not used.",
    expected: "a file path, or none",
    parse: (s) => s.trim().toLowerCase() === "none" ? Option.some("") : parseNonEmpty(s)
  },
  host: {
    flag: "--host",
    env: "FOREMAN_HOST",
    default: "127.0.0.1",
    placeholder: "HOST",
    description: "Address to listen on; 0.0.0.0 listens on every interface.",
    expected: "a host name or IP address",
    parse: (s) => Option.filter(parseNonEmpty(s), (host) => !/\s/.test(host))
  },
  port: {
    flag: "--port",
    env: "FOREMAN_PORT",
    default: "11435",
    placeholder: "PORT",
    description: "TCP port to listen on; 0 picks a free port.",
    expected: "an integer from 0 to 65535",
    parse: parseInteger(0, 65535)
  },
  origins: {
    flag: "--origins",
    env: "FOREMAN_ORIGINS",
    default: "none",
    placeholder: "LIST",
    description: "Browser origins allowed besides Ollama's local ones, comma-separated, * as a wildcard " +
      "(http://192.168.1.*, chrome-extension://*); * allows every origin. Others get 403.",
    expected: "none, *, or a comma-separated list of origins such as https://chat.example.com,app://*",
    parse: parseOriginList
  },
  pollInterval: {
    flag: "--poll-interval",
    env: "FOREMAN_POLL_INTERVAL",
    default: "30s",
    placeholder: "DURATION",
    description: "How often to read the target's models (/api/tags, /api/ps); e.g. 500ms, 30s, 2m.",
    expected: positiveDuration,
    parse: parsePositiveDuration
  },
  db: {
    flag: "--db",
    env: "FOREMAN_DB",
    default: defaultDbPath(),
    placeholder: "PATH",
    description: "SQLite file that keeps async jobs; :memory: keeps them in memory only.",
    expected: "a file path or :memory:",
    parse: parseNonEmpty
  },
  concurrency: {
    flag: "--concurrency",
    env: "FOREMAN_CONCURRENCY",
    default: "1",
    placeholder: "N",
    description: "How many jobs may run on the target at once.",
    expected: "an integer of at least 1",
    parse: parseInteger(1, Number.MAX_SAFE_INTEGER)
  },
  maxLoadedModels: {
    flag: "--max-loaded-models",
    env: "FOREMAN_MAX_LOADED_MODELS",
    default: "1",
    placeholder: "N",
    description: "How many models the target holds in memory at once; jobs for other models wait instead of forcing one out.",
    expected: "an integer of at least 1",
    parse: parseInteger(1, Number.MAX_SAFE_INTEGER)
  },
  maxQueue: {
    flag: "--max-queue",
    env: "FOREMAN_MAX_QUEUE",
    default: "512",
    placeholder: "N",
    description: "How many callers may wait; beyond that requests get 503 with Retry-After (stored async jobs do not count against it, and are never refused).",
    expected: "an integer of at least 1",
    parse: parseInteger(1, Number.MAX_SAFE_INTEGER)
  },
  maxWait: {
    flag: "--max-wait",
    env: "FOREMAN_MAX_WAIT",
    default: "60s",
    placeholder: "DURATION",
    description: "A job that has waited this long is served next, whatever its model.",
    expected: positiveDuration,
    parse: parsePositiveDuration
  },
  maxAttempts: {
    flag: "--max-attempts",
    env: "FOREMAN_MAX_ATTEMPTS",
    default: "5",
    placeholder: "N",
    description: "An async job that failed at the target this many times fails for good.",
    expected: "an integer of at least 1",
    parse: parseInteger(1, Number.MAX_SAFE_INTEGER)
  },
  jobTtl: {
    flag: "--job-ttl",
    env: "FOREMAN_JOB_TTL",
    default: "24h",
    placeholder: "DURATION",
    description: "How long an async job may wait (e.g. for a sleeping target) before it fails as expired.",
    expected: positiveDuration,
    parse: parsePositiveDuration
  },
  retention: {
    flag: "--retention",
    env: "FOREMAN_RETENTION",
    default: "7d",
    placeholder: "DURATION",
    description: "How long finished async jobs are kept before they are deleted.",
    expected: positiveDuration,
    parse: parsePositiveDuration
  },
  plugins: {
    flag: "--plugins",
    env: "FOREMAN_PLUGINS",
    default: "openai,anthropic,metrics",
    placeholder: "LIST",
    description: "Comma-separated plugins to enable; none disables them all.",
    expected: "a comma-separated list of plugin names such as openai,metrics, or none",
    parse: parsePluginList
  },
  requestTimeout: {
    flag: "--request-timeout",
    env: "FOREMAN_REQUEST_TIMEOUT",
    default: "5m",
    placeholder: "DURATION",
    description: "How long a waiting caller is held (queue and sleeping target included) before a 503; also how long an async job sent with stream: false (the OpenAI and Anthropic routes; it comes whole) may take to answer, per attempt.",
    expected: positiveDuration,
    parse: parsePositiveDuration
  },
  connectTimeout: {
    flag: "--connect-timeout",
    env: "FOREMAN_CONNECT_TIMEOUT",
    default: "5s",
    placeholder: "DURATION",
    description: "TCP connect timeout to the target (a sleeping laptop does not answer).",
    expected: positiveDuration,
    parse: parsePositiveDuration
  },
  stallTimeout: {
    flag: "--stall-timeout",
    env: "FOREMAN_STALL_TIMEOUT",
    default: "5m",
    placeholder: "DURATION",
    description: "How long the target may send nothing while a job waits for its answer (a model load " +
      "included) or between two of its chunks; then the attempt is given up and its slot freed.",
    expected: positiveDuration,
    parse: parsePositiveDuration
  },
  maxBodySize: {
    flag: "--max-body-size",
    env: "FOREMAN_MAX_BODY_SIZE",
    default: "64MiB",
    placeholder: "SIZE",
    description: "Largest request body accepted: bytes, or with a unit (512KiB, 10MB, 64MiB, 1GiB).",
    expected: "a positive size such as 65536, 512KiB, 10MB or 64MiB",
    parse: (s) => Option.filter(parseByteSize(s), (bytes) => bytes > 0)
  },
  logLevel: {
    flag: "--log-level",
    env: "FOREMAN_LOG_LEVEL",
    default: "info",
    placeholder: "LEVEL",
    description: "Least severe log level written: all, trace, debug, info, warning, error, fatal or none.",
    expected: "one of all, trace, debug, info, warning, error, fatal, none",
    parse: oneOf(logLevels)
  },
  logFormat: {
    flag: "--log-format",
    env: "FOREMAN_LOG_FORMAT",
    default: "pretty",
    placeholder: "FORMAT",
    description: "Log line format: pretty, json or logfmt.",
    expected: "one of pretty, json, logfmt",
    parse: oneOf(logFormats)
  },
  keysFile: {
    flag: "--keys-file",
    env: "FOREMAN_KEYS_FILE",
    default: defaultKeysPath(),
    placeholder: "PATH",
    description: "JSON file of the API keys (see the keys commands); with no key in it, keys are off. " +
      "A running foreman reads it again when it changes.",
    expected: "a file path",
    parse: parseNonEmpty
  },
  allowUnauthenticated: {
    flag: "--allow-unauthenticated",
    env: "FOREMAN_ALLOW_UNAUTHENTICATED",
    default: "false",
    placeholder: "",
    switch: true,
    description: "With no API key in the keys file, serve other machines anyway (a --host other than loopback " +
      "refuses to start without keys otherwise): everyone who can reach the port may then use it.",
    expected: "true or false",
    parse: parseBoolean
  }
}

/** The table: every setting's flag, env variable, default and description, in help order. */
export const settings: ReadonlyArray<SettingInfo> = Object.entries(settingSpecs).map(
  ([key, { default: defaultValue, description, env, flag, placeholder }]) => ({
    key: key as keyof ForemanSettings,
    flag,
    env,
    default: defaultValue,
    placeholder,
    description
  })
)

/** The one-line complaint about a bad value; it names the flag, the env variable and the value. */
export const invalidValueMessage = (spec: Pick<SettingSpec<unknown>, "flag" | "env" | "expected">, raw: string) =>
  `Invalid ${spec.flag} (${spec.env}): expected ${spec.expected}, got ${JSON.stringify(raw)}`

/** One setting's value from its text, or the one-line complaint. */
export const parseSetting = <A>(spec: SettingSpec<A>, raw: string): Either.Either<A, string> =>
  Either.fromOption(spec.parse(raw), () => invalidValueMessage(spec, raw))

/** One setting's text: its env variable, else the table's default. Never fails. */
export const settingText = (spec: SettingSpec<unknown>): Config.Config<string> =>
  Config.string(spec.env).pipe(Config.withDefault(spec.default))

const configOf = <A>(spec: SettingSpec<A>): Config.Config<A> =>
  settingText(spec).pipe(
    Config.mapOrFail((raw) => Either.mapLeft(parseSetting(spec, raw), (message) => ConfigError.InvalidData([], message)))
  )

// A mapped type cannot be mapped generically without help: one cast each, checked by the
// `Specs<S>` type of the argument.
const configFromSpecs = <S>(table: Specs<S>): Config.Config<S> =>
  Config.all(Record.map(table as Record.ReadonlyRecord<string, SettingSpec<unknown>>, configOf)) as Config.Config<S>

const defaultsFromSpecs = <S>(table: Specs<S>): S =>
  Record.map(table as Record.ReadonlyRecord<string, SettingSpec<unknown>>, (spec) =>
    Option.getOrThrowWith(
      spec.parse(spec.default),
      () => new Error(`foreman bug: ${invalidValueMessage(spec, spec.default)} (the default)`)
    )) as S

/**
 * The Effect `Config` of every setting, keyed by the env variable names (`FOREMAN_PORT`, ...).
 * Missing keys take the table's default; bad values fail with `ConfigError.InvalidData` whose
 * message is the one-line complaint (see `formatConfigError`).
 */
export const foremanConfig: Config.Config<ForemanSettings> = configFromSpecs(settingSpecs)

/** The defaults of the table, parsed. */
export const defaultSettings: ForemanSettings = defaultsFromSpecs(settingSpecs)

/** A `ConfigError` as the lines a user should read: one per bad or missing value. */
export const formatConfigError = (error: ConfigError.ConfigError): string => {
  const lines = new Set<string>()
  const walk = (e: ConfigError.ConfigError): void => {
    switch (e._op) {
      case "And":
      case "Or":
        walk(e.left)
        walk(e.right)
        return
      case "MissingData":
        lines.add(`Missing ${e.path.join(".")}: ${e.message}`)
        return
      default:
        lines.add(e.message)
    }
  }
  walk(error)
  return [...lines].join("\n")
}

export class ForemanConfig extends Context.Tag("foreman/Config")<ForemanConfig, ForemanSettings>() {
  /** Every setting from the current `ConfigProvider` (the environment by default). */
  static readonly layer: Layer.Layer<ForemanConfig, ConfigError.ConfigError> = Layer.effect(
    ForemanConfig,
    foremanConfig
  )

  /** The defaults with some values replaced; for tests and for embedding. */
  static readonly make = (overrides: Partial<ForemanSettings> = {}): Layer.Layer<ForemanConfig> =>
    Layer.succeed(ForemanConfig, { ...defaultSettings, ...overrides })
}
