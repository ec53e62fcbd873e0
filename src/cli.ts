/**
 * The command line: `foreman-effect [flags]`. Every setting of the table in `Config.ts` is an
 * optional text flag; the flags given are laid as a `ConfigProvider` (under their env-variable
 * keys) in front of the current one (the environment), and `foremanConfig` is read through
 * that. So precedence is flag > env > default, and validation and defaults stay in Config.ts.
 */
import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as Span from "@effect/cli/HelpDoc/Span"
import * as ValidationError from "@effect/cli/ValidationError"
import type * as CliApp from "@effect/cli/CliApp"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Cause from "effect/Cause"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as FiberId from "effect/FiberId"
import * as HashSet from "effect/HashSet"
import * as Inspectable from "effect/Inspectable"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Record from "effect/Record"
import * as Schema from "effect/Schema"
import { fileURLToPath } from "node:url"
import { type ForemanSettings, foremanConfig, formatConfigError, settings } from "./Config.ts"

const name = "foreman-effect"

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

/** Start-up was refused (bad flag or value); `message` has already been written to stderr. */
export class StartupError extends Data.TaggedError("StartupError")<{ readonly message: string }> {}

/**
 * Reads the settings: `flags` (env-variable name -> raw value) first, then the current
 * `ConfigProvider` (the environment unless replaced), then the defaults.
 */
export const loadSettings = (
  flags: ReadonlyMap<string, string>
): Effect.Effect<ForemanSettings, StartupError> =>
  Effect.configProviderWith((current) =>
    Effect.withConfigProvider(
      foremanConfig,
      ConfigProvider.fromMap(new Map(flags)).pipe(ConfigProvider.orElse(() => current))
    )
  ).pipe(Effect.mapError((error) => new StartupError({ message: formatConfigError(error) })))

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
  for (const [key, value] of annotations) annotationsObject[key] = value instanceof Error ? errorJson(value) : value
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
const toJson = (value: unknown) => (value instanceof Error ? errorJson(value) : value)

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

// --- the command ---------------------------------------------------------------------------

// Keyed by env-variable name: the parsed flags are directly the ConfigProvider's map.
const flagOptions = Record.fromEntries(
  settings.map((setting) =>
    [
      setting.env,
      Options.text(setting.flag.replace(/^--/, "")).pipe(
        Options.withPseudoName(setting.placeholder),
        Options.withDescription(`${setting.description} (env: ${setting.env}, default: ${setting.default})`),
        Options.optional
      )
    ] as const
  )
)

const footer = HelpDoc.blocks([
  HelpDoc.p("Each flag falls back to its environment variable, then to its default."),
  HelpDoc.descriptionList([
    [Span.text("-h, --help"), HelpDoc.p("Show this help.")],
    [Span.text("--version"), HelpDoc.p("Print the version.")]
  ])
])

// @effect/cli has a built-in `--log-level` (it sets the minimum level and re-runs without the
// flag), which wins over ours when the command line holds nothing else. So the value is also
// read from argv directly, and used when the parsed flags have none.
const scanLogLevel = (argv: ReadonlyArray<string>): Option.Option<string> => {
  let found = Option.none<string>()
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--") break
    const lower = arg.toLowerCase()
    if (lower === "--log-level" && i + 1 < argv.length) found = Option.some(argv[++i]!)
    else if (lower.startsWith("--log-level=")) found = Option.some(arg.slice("--log-level=".length))
  }
  return found
}

const stripAnsi = (text: string) => text.replace(/\u001b\[[0-9;]*m/g, "")

// Under every option @effect/cli writes these two paragraphs, which say nothing here (every
// flag is text, every flag is optional); dropping them halves the length of the help.
const helpNoise = /\n\n {2}(?:A user-defined piece of text|This setting is optional)\.(?=\n)/g

/**
 * The console while @effect/cli parses: help and version come out as plain text, and its
 * multi-line error rendering is dropped (the error is reported as one line by `run`).
 */
const parsingConsole = (terminal: Console.Console): Console.Console => {
  const plain = (args: ReadonlyArray<unknown>) =>
    args.map((arg) => (typeof arg === "string" ? stripAnsi(arg).replace(helpNoise, "").trimEnd() : arg))
  return {
    ...terminal,
    log: (...args) => terminal.log(...plain(args)),
    error: () => Effect.void,
    unsafe: { ...terminal.unsafe, log: (...args) => terminal.unsafe.log(...plain(args)), error: () => {} }
  }
}

const describeUsageError = (error: ValidationError.ValidationError): string => {
  const text = stripAnsi(HelpDoc.toAnsiText(error.error)).replace(/\s+/g, " ").trim()
  const unknown = /^Received unknown argument: '(.*)'$/.exec(text)
  if (unknown !== null) {
    const arg = unknown[1]!
    const setting = settings.find((s) => s.flag === arg.toLowerCase().replace(/=.*$/, ""))
    return setting !== undefined
      ? `Invalid ${setting.flag}: give it once, with a value (${setting.flag} ${setting.placeholder})`
      : `Unknown argument ${JSON.stringify(arg)} (see ${name} --help)`
  }
  return `${text} (see ${name} --help)`
}

/**
 * Parses `argv` (as `process.argv`: runtime and script first), reads the settings and runs
 * `launch` with them, under the configured log level and format. `--help` and `--version`
 * print and succeed without launching.
 *
 * Every failure is reported before the returned effect fails, so run it with
 * `runMain({ disableErrorReporting: true })`: a bad command line or value as one line on
 * stderr (failing with `StartupError`), a launch failure through the logger.
 */
export const run = <E, R>(
  argv: ReadonlyArray<string>,
  launch: (settings: ForemanSettings) => Effect.Effect<void, E, R>
): Effect.Effect<void, E | StartupError, R | CliApp.CliApp.Environment> =>
  Effect.consoleWith((terminal) => {
    const refuse = (message: string) =>
      terminal.error(message).pipe(Effect.zipRight(Effect.fail(new StartupError({ message }))))
    const logLevelArg = scanLogLevel(argv)

    const command = Command.make(name, flagOptions, (parsed) =>
      Effect.gen(function*() {
        const flags = new Map<string, string>()
        for (const [env, value] of Object.entries(parsed)) {
          if (Option.isSome(value)) flags.set(env, value.value)
        }
        const logLevelEnv = settings.find((s) => s.key === "logLevel")!.env
        if (!flags.has(logLevelEnv) && Option.isSome(logLevelArg)) flags.set(logLevelEnv, logLevelArg.value)

        const settingsRead = yield* loadSettings(flags).pipe(Effect.catchAll((e) => refuse(e.message)))
        yield* launch(settingsRead).pipe(
          Effect.tapErrorCause((cause) => {
            if (Cause.isInterruptedOnly(cause)) return Effect.void
            // A launch that refuses the settings (e.g. an unknown plugin) says so in one line.
            const refused = Cause.failureOption(cause).pipe(Option.filter((e) => e instanceof StartupError))
            return Option.isSome(refused) ? terminal.error(refused.value.message) : Effect.logError(`${name} stopped`, cause)
          }),
          withLogging(settingsRead)
        )
      }).pipe(Effect.withConsole(terminal))
    )

    return ownVersion.pipe(
      Effect.flatMap((version) =>
        Command.run(command, { name, version, summary: Span.text("a job broker in front of an Ollama server"), footer })(argv)
      ),
      Effect.withConsole(parsingConsole(terminal)),
      Effect.provide(CliConfig.layer({ showBuiltIns: false })),
      Effect.catchIf(ValidationError.isValidationError, (error) => refuse(describeUsageError(error)))
    )
  })
