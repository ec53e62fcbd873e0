/**
 * The command line: `foreman-effect [flags]`. Each setting of the table in `Config.ts` is a
 * typed @effect/cli option, generated from its entry: the flag's text, falling back
 * (`Options.withFallbackConfig`) to the env variable's text and then to the default, parsed
 * by the table's own parser. So precedence is flag > env > default, and names, defaults,
 * validation and wording stay in Config.ts. `--help` and `--version` are two boolean options
 * of the same command line; the help text is written from the table.
 */
import * as CliConfig from "@effect/cli/CliConfig"
import type * as Span from "@effect/cli/HelpDoc/Span"
import * as Options from "@effect/cli/Options"
import * as Usage from "@effect/cli/Usage"
import type * as CliApp from "@effect/cli/CliApp"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as FiberId from "effect/FiberId"
import * as HashSet from "effect/HashSet"
import * as Inspectable from "effect/Inspectable"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Record from "effect/Record"
import * as Schema from "effect/Schema"
import { fileURLToPath } from "node:url"
import {
  type ForemanSettings,
  parseSetting,
  type SettingInfo,
  type SettingSpec,
  settings,
  settingSpecs,
  settingText
} from "./Config.ts"
import { type Role, roles } from "./auth/Keys.ts"
import * as KeysFile from "./auth/KeysFile.ts"
import { isError } from "./Errors.ts"

const name = "foreman-effect"
const summary = "a job broker in front of an Ollama server"

const Manifest = Schema.parseJson(Schema.Struct({ name: Schema.String, version: Schema.String }))

/**
 * foreman's own version, from its package.json: the one above `src/` in a checkout, above
 * `dist/src/` in the installed package.
 */
const ownVersion = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  for (const candidate of ["../package.json", "../../package.json"]) {
    const manifest = yield* fs.readFileString(fileURLToPath(new URL(candidate, import.meta.url))).pipe(
      Effect.flatMap(Schema.decodeUnknown(Manifest)),
      Effect.option
    )
    if (Option.isSome(manifest) && manifest.value.name === name) return manifest.value.version
  }
  return "unknown"
})

/**
 * Start-up was refused (bad flag or value), or a `keys` command was; `message` has already
 * been written to stderr.
 */
export class StartupError extends Data.TaggedError("StartupError")<{ readonly message: string }> {}

// --- logging -------------------------------------------------------------------------------

/**
 * One JSON line per entry, in the shape of Effect's `Logger.jsonLogger` (message, logLevel,
 * timestamp, cause, annotations, spans, fiberId), at a fraction of its cost: a job's log
 * line is on every request's path, and the generic logger's circular-safe, redacting
 * stringify of every value cost about a tenth of a millisecond per job. Values that plain
 * `JSON.stringify` cannot write (cycles, bigints) fall back to Effect's stringify.
 */
export const jsonLogger = Logger.make(({ annotations, cause, date, fiberId, logLevel, message, spans }) => {
  const now = date.getTime()
  const annotationsObject: Record<string, unknown> = {}
  for (const [key, value] of annotations) annotationsObject[key] = isError(value) ? errorJson(value) : value
  const spansObject: Record<string, number> = {}
  for (const span of spans) spansObject[span.label] = now - span.startTime
  const messages = Array.isArray(message) ? message : [message]
  const entry = {
    message: messages.length === 1 ? toJson(messages[0]) : messages.map(toJson),
    logLevel: logLevel.label,
    timestamp: date.toISOString(),
    cause: Cause.isEmpty(cause) ? undefined : Cause.pretty(cause, { renderErrorCause: true }),
    annotations: annotationsObject,
    spans: spansObject,
    fiberId: FiberId.threadName(fiberId)
  }
  let line: string
  try {
    line = JSON.stringify(entry)
  } catch {
    line = Inspectable.stringifyCircular(entry)
  }
  // Straight to stdout (Node and Deno both have it), without `console.log`'s formatting.
  process.stdout.write(line + "\n")
})

const errorJson = (error: Error) => ({ name: error.name, message: error.message })
const toJson = (value: unknown) => (isError(value) ? errorJson(value) : value)

// Stable instances, so that applying `withLogging` twice replaces rather than duplicates.
const formatLoggers = {
  pretty: Logger.prettyLoggerDefault,
  json: jsonLogger,
  logfmt: Logger.withConsoleLog(Logger.logfmtLogger)
} as const

/** Runs `self` with the log level and log format of the settings. */
export const withLogging = (logging: Pick<ForemanSettings, "logLevel" | "logFormat">) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  self.pipe(
    Effect.locallyWith(FiberRef.currentLoggers, (loggers) =>
      HashSet.add(
        HashSet.filter(
          loggers,
          (logger) => logger !== Logger.defaultLogger && !Object.values(formatLoggers).some((own) => own === logger)
        ),
        formatLoggers[logging.logFormat]
      )),
    Logger.withMinimumLogLevel(logging.logLevel)
  )

// --- the options ---------------------------------------------------------------------------

/** A setting's paragraph in the help. */
const helpLine = (setting: Pick<SettingInfo, "description" | "env" | "default">) =>
  `${setting.description} (env: ${setting.env}, default: ${setting.default})`

/**
 * One setting as an option: the flag's text, else the env variable's, else the default (the
 * last two are `settingText`), then the table's parser. A refused value is the table's
 * one-line complaint, whichever of the three it came from. It is a value rather than a failed
 * parse so that `--help` anywhere on the line still wins, and every complaint is reported.
 */
const optionOf = <A>(spec: SettingSpec<A>): Options.Options<Either.Either<A, string>> => {
  const name = spec.flag.slice("--".length)
  // A switch takes no value: present is `true` (or its `=true`/`=false`), absent falls back.
  const text: Options.Options<string> = spec.switch
    ? Options.boolean(name).pipe(
      Options.withDescription(helpLine(spec)),
      Options.withFallbackConfig(settingText(spec)),
      Options.map(String)
    )
    : spec.repeated
    // Given more than once: the values joined; not given: the env variable, then the default.
    ? Options.text(name).pipe(
      Options.withPseudoName(spec.placeholder),
      Options.withDescription(helpLine(spec)),
      Options.repeated,
      Options.mapEffect((values) => values.length > 0 ? Effect.succeed(values.join(",")) : Effect.orDie(settingText(spec)))
    )
    : Options.text(name).pipe(
      Options.withPseudoName(spec.placeholder),
      Options.withDescription(helpLine(spec)),
      Options.withFallbackConfig(settingText(spec))
    )
  return Options.map(text, (raw) => parseSetting(spec, raw))
}

// A mapped type cannot be mapped generically without help: one cast, checked by the
// `Specs<ForemanSettings>` type of `settingSpecs` (as for `foremanConfig`).
const settingsOptions = Options.all(
  Record.map(settingSpecs as Record.ReadonlyRecord<string, SettingSpec<unknown>>, optionOf) as {
    readonly [K in keyof ForemanSettings]: Options.Options<Either.Either<ForemanSettings[K], string>>
  }
)

const helpDescription = "Show this help."
const versionDescription = "Print the version."

/**
 * The whole command line. `--help` and `--version` are options of foreman's own rather than
 * `Command.run`'s built-ins: its built-in `--log-level` takes foreman's `--log-level` whenever
 * nothing else is on the line, and its help and errors are written in colour, several lines
 * long, with the library's notes under each flag.
 */
const commandLine = Options.all({
  help: Options.boolean("help").pipe(Options.withAlias("h"), Options.withDescription(helpDescription)),
  version: Options.boolean("version").pipe(Options.withDescription(versionDescription)),
  settings: settingsOptions
})

// Flags are matched as typed: with @effect/cli's case-insensitive matching (0.77), `--PORT 6`
// was accepted and its value silently dropped.
const cliConfig = CliConfig.make({ isCaseSensitive: true })

/** The flags that may be given more than once. */
const repeatedFlags = new Set(settings.filter((s) => settingSpecs[s.key].repeated === true).map((s) => s.flag))

/**
 * `--target=URL` as `--target URL` for the flags that may be repeated: @effect/cli (0.77) reads
 * the `=` form of a single option but leaves it over for a repeated one.
 */
const splitRepeated = (args: ReadonlyArray<string>): ReadonlyArray<string> =>
  args.flatMap((arg) => {
    const equals = arg.indexOf("=")
    return equals > 0 && repeatedFlags.has(arg.slice(0, equals)) ? [arg.slice(0, equals), arg.slice(equals + 1)] : [arg]
  })

// --- help and complaints -------------------------------------------------------------------

/** Plain text of a span: no styling, so terminals, pipes and tests read the same. */
const spanText = (span: Span.Span): string => {
  switch (span._tag) {
    case "Text":
    case "URI":
      return span.value
    case "Sequence":
      return spanText(span.left) + spanText(span.right)
    case "Highlight":
    case "Strong":
    case "Weak":
      return spanText(span.value)
  }
}

const entry = (term: string, description: string) => `${term}\n\n  ${description}`

/** A setting as the help names it: `--port PORT`; a switch alone: `--allow-unauthenticated`. */
const usageOf = (setting: Pick<SettingInfo, "flag" | "placeholder">) =>
  setting.placeholder === "" ? setting.flag : `${setting.flag} ${setting.placeholder}`

/** The help: the usage line as @effect/cli writes the options' grammar, then the table. */
const helpText = (version: string): string =>
  [
    name,
    `${name} ${version} -- ${summary}`,
    "USAGE",
    ...Usage.enumerate(Options.getUsage(settingsOptions), cliConfig).map((usage) => `$ ${name} ${spanText(usage)}`),
    "OPTIONS",
    ...settings.map((s) => entry(usageOf(s), helpLine(s))),
    "Each flag falls back to its environment variable, then to its default.",
    entry("-h, --help", helpDescription),
    entry("--version", versionDescription),
    "COMMANDS",
    ...keysCommands.map(([usage, description]) => entry(`${name} ${usage}`, description)),
    `See ${name} keys --help.`
  ].join("\n\n")

/**
 * The complaint about the first argument no option took: a flag of the table there was given
 * without a value or twice; anything else is unknown (`--`, which ends the options, is skipped).
 */
const describeLeftover = (leftover: ReadonlyArray<string>): string => {
  const arg = leftover.find((arg) => arg !== "--") ?? "--"
  const setting = settings.find((s) => s.flag === arg.split("=")[0])
  return setting === undefined
    ? `Unknown argument ${JSON.stringify(arg)} (see ${name} --help)`
    : setting.placeholder === ""
    ? `Invalid ${setting.flag}: give it once (${setting.flag}, ${setting.flag}=true or ${setting.flag}=false)`
    : `Invalid ${setting.flag}: give it once, with a value (${usageOf(setting)})`
}

// --- the keys commands ---------------------------------------------------------------------

/** `keys add|list|remove`: usage and what each does, for both helps. */
const keysCommands: ReadonlyArray<readonly [usage: string, description: string]> = [
  [
    "keys add NAME [--role user|admin] [--keys-file PATH]",
    "Adds an API key named NAME (letters, digits, '.', '_', '-'; at most 64) with the role user (the " +
    "default) or admin, and prints it as the last line: it is shown only this once."
  ],
  ["keys list [--keys-file PATH]", "Lists the keys: name, role, when created, when last used."],
  ["keys remove NAME [--keys-file PATH]", "Removes the key named NAME; a running foreman refuses it at once."]
]

const roleDescription = "The new key's role: user (inference, listings, its own async jobs) or admin (everything)."

const keysHelpText = (version: string): string =>
  [
    `${name} keys`,
    `${name} ${version} -- manage the API keys of the keys file`,
    "USAGE",
    ...keysCommands.map(([usage]) => `$ ${name} ${usage}`),
    "COMMANDS",
    ...keysCommands.map(([usage, description]) => entry(usage.replace(/ \[.*$/, ""), description)),
    "OPTIONS",
    entry("--role ROLE", `${roleDescription} (default: user)`),
    entry(usageOf(settingSpecs.keysFile), helpLine(settingSpecs.keysFile)),
    entry("-h, --help", helpDescription)
  ].join("\n\n")

const keysFileOption = optionOf(settingSpecs.keysFile)
const helpOption = Options.boolean("help").pipe(Options.withAlias("h"), Options.withDescription(helpDescription))

/** The options of the keys commands (`--role` is for `add` only); a name is what no option took. */
const keysCommandLine = Options.all({
  help: helpOption,
  keysFile: keysFileOption,
  role: Options.text("role").pipe(Options.withPseudoName("ROLE"), Options.optional)
})

const keysCommandNames = ["add", "list", "remove"] as const

const isKeysCommand = (word: string | undefined): word is typeof keysCommandNames[number] =>
  keysCommandNames.some((command) => command === word)

const parseRole = (raw: string): Either.Either<Role, string> => {
  const role = roles.find((role) => role === raw.trim().toLowerCase())
  return role === undefined
    ? Either.left(`Invalid --role: expected ${roles.join(" or ")}, got ${JSON.stringify(raw)}`)
    : Either.right(role)
}

/** A time as the list shows it: ISO 8601 in UTC, to the second. */
const shortIso = (at: DateTime.Utc) => DateTime.formatIso(at).replace(/\.\d+Z$/, "Z")

/** Rows in columns two spaces apart; the last column is not padded. */
const columns = (rows: ReadonlyArray<ReadonlyArray<string>>): ReadonlyArray<string> => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)))
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  "))
}

/**
 * `foreman-effect keys ...` (`args` after `keys`): one human line, or the table, on stdout; a
 * refusal as one line on stderr, failing with `StartupError`.
 */
const keysCommand = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const refuse = (message: string) =>
      Console.error(message).pipe(Effect.zipRight(Effect.fail(new StartupError({ message }))))
    const [command, ...rest] = args
    if (command === undefined || command === "-h" || command === "--help") {
      return yield* Console.log(keysHelpText(yield* ownVersion))
    }
    if (!isKeysCommand(command)) {
      return yield* refuse(`Unknown keys command ${JSON.stringify(command)}: expected add, list or remove (see ${name} keys --help)`)
    }
    const [, leftover, parsed] = yield* Options.processCommandLine(keysCommandLine, rest, cliConfig).pipe(
      Effect.catchAll(() => refuse(`Invalid command line (see ${name} keys --help)`))
    )
    if (parsed.help) return yield* Console.log(keysHelpText(yield* ownVersion))
    const flag = leftover.find((arg) => arg.startsWith("-") && arg !== "--")
    if (flag !== undefined) {
      const known = ["--keys-file", "--role"].includes(flag.split("=")[0]!)
      return yield* refuse(
        known
          ? `Invalid ${flag.split("=")[0]}: give it once, with a value (see ${name} keys --help)`
          : `Unknown argument ${JSON.stringify(flag)} (see ${name} keys --help)`
      )
    }
    if (command !== "add" && Option.isSome(parsed.role)) {
      return yield* refuse(`Invalid --role: only keys add takes it (see ${name} keys --help)`)
    }
    const names = leftover.filter((arg) => arg !== "--")
    const usage = keysCommands.find(([line]) => line.startsWith(`keys ${command} `))![0]
    if (command === "list" ? names.length > 0 : names.length !== 1) {
      return yield* refuse(`Usage: ${name} ${usage}`)
    }
    const file = parsed.keysFile
    if (Either.isLeft(file)) return yield* refuse(file.left)

    // Every refusal of the keys file's operations is one line already.
    const done = <A>(self: Effect.Effect<A, { readonly message: string }>) =>
      Effect.catchAll(self, (error) => refuse(error.message))
    switch (command) {
      case "add": {
        const role = parseRole(Option.getOrElse(parsed.role, () => "user"))
        if (Either.isLeft(role)) return yield* refuse(role.left)
        const { key } = yield* done(KeysFile.addKey(file.right, names[0]!, role.right))
        yield* Console.log(
          `Added key ${JSON.stringify(names[0])} (${role.right}) to ${file.right}. Keep it now: it is shown only this once.`
        )
        return yield* Console.log(key)
      }
      case "list": {
        const keys = yield* done(KeysFile.listKeys(file.right))
        if (keys.length === 0) return yield* Console.log(`No keys in ${file.right}: keys are off.`)
        const rows = keys.map((key) => [
          key.name,
          key.role,
          shortIso(key.createdAt),
          Option.match(key.lastUsed, { onNone: () => "never", onSome: shortIso })
        ])
        return yield* Console.log(columns([["NAME", "ROLE", "CREATED", "LAST USED"], ...rows]).join("\n"))
      }
      case "remove": {
        yield* done(KeysFile.removeKey(file.right, names[0]!))
        return yield* Console.log(`Removed key ${JSON.stringify(names[0])} from ${file.right}.`)
      }
    }
  })

// --- the command ---------------------------------------------------------------------------

/**
 * Parses `argv` (as `process.argv`: runtime and script first), reads the settings and runs
 * `launch` with them, under the configured log level and format. `--help` and `--version`
 * print and succeed without launching.
 *
 * Every failure is reported before the returned effect fails, so run it with
 * `runMain({ disableErrorReporting: true })`: a bad command line as one line on stderr, bad
 * values as one line each (failing with `StartupError`), a launch failure through the logger.
 */
export const run = <E, R>(
  argv: ReadonlyArray<string>,
  launch: (settings: ForemanSettings) => Effect.Effect<void, E, R>
): Effect.Effect<void, E | StartupError, R | CliApp.CliApp.Environment> =>
  Effect.gen(function*() {
    const refuse = (message: string) =>
      Console.error(message).pipe(Effect.zipRight(Effect.fail(new StartupError({ message }))))

    // Every option has a fallback and every value parses to an `Either`, so the parse itself
    // has nothing left to refuse; its error channel is answered all the same.
    // `keys ...` manages the keys file; anything else is the server's command line.
    if (argv[2] === "keys") return yield* keysCommand(argv.slice(3))

    const [, leftover, parsed] = yield* Options.processCommandLine(commandLine, splitRepeated(argv.slice(2)), cliConfig).pipe(
      Effect.catchAll(() => refuse(`Invalid command line (see ${name} --help)`))
    )
    if (parsed.help) return yield* Console.log(helpText(yield* ownVersion))
    if (parsed.version) return yield* Console.log(yield* ownVersion)
    if (leftover.length > 0) return yield* refuse(describeLeftover(leftover))
    const read = Either.all(parsed.settings)
    if (Either.isLeft(read)) {
      return yield* refuse(Arr.getLefts(Record.values(parsed.settings)).join("\n"))
    }

    yield* launch(read.right).pipe(
      Effect.tapErrorCause((cause) => {
        if (Cause.isInterruptedOnly(cause)) return Effect.void
        // A launch that refuses the settings (e.g. an unknown plugin, a broken keys file) says
        // so in one line.
        const refused = Cause.failureOption(cause).pipe(
          Option.filter((e) => e instanceof StartupError || e instanceof KeysFile.KeysFileError)
        )
        return Option.isSome(refused) ? Console.error(refused.value.message) : Effect.logError(`${name} stopped`, cause)
      }),
      withLogging(read.right)
    )
  })
