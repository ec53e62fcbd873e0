/**
 * The command line: `foreman-effect [flags]`. Each setting of the table in `Config.ts` is a
 * typed @effect/cli option: its flag's text, falling back (`Options.withFallbackConfig`) to
 * its env variable's text and then to its default, parsed by the table's own parser
 * (`Options.mapEffect`). So precedence is flag > env > default, and names, defaults,
 * validation and wording stay in Config.ts. `--help` and `--version` are two boolean options
 * parsed first, as @effect/cli's built-ins are; the help text is written from the table.
 */
import * as CliConfig from "@effect/cli/CliConfig"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import type * as Span from "@effect/cli/HelpDoc/Span"
import * as Usage from "@effect/cli/Usage"
import * as ValidationError from "@effect/cli/ValidationError"
import type * as CliApp from "@effect/cli/CliApp"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
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

/** Start-up was refused (bad flag or value); `message` has already been written to stderr. */
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

// --- the options ---------------------------------------------------------------------------

/** A setting's paragraph in the help. */
const helpLine = (setting: Pick<SettingInfo, "description" | "env" | "default">) =>
  `${setting.description} (env: ${setting.env}, default: ${setting.default})`

/**
 * One setting as an option: the flag's text, else the env variable's, else the default (all
 * in `settingText`), then the table's parser; a refused value fails with the table's
 * one-line complaint, whichever of the three it came from.
 */
const optionOf = <A>(spec: SettingSpec<A>): Options.Options<A> =>
  Options.text(spec.flag.slice("--".length)).pipe(
    Options.withPseudoName(spec.placeholder),
    Options.withDescription(helpLine(spec)),
    Options.withFallbackConfig(settingText(spec)),
    Options.mapEffect((raw) =>
      Either.mapLeft(parseSetting(spec, raw), (message) => ValidationError.invalidValue(HelpDoc.p(message)))
    )
  )

// A mapped type cannot be mapped generically without help: one cast, checked by the
// `Specs<ForemanSettings>` type of `settingSpecs` (the same as `foremanConfig`'s).
const settingsOptions: Options.Options<ForemanSettings> = Options.all(
  Record.map(settingSpecs as Record.ReadonlyRecord<string, SettingSpec<unknown>>, optionOf) as {
    readonly [K in keyof ForemanSettings]: Options.Options<ForemanSettings[K]>
  }
)

/** What @effect/cli's built-ins would be, kept to the two foreman documents. */
const builtIns = Options.all({
  help: Options.boolean("help").pipe(Options.withAlias("h"), Options.withDescription("Show this help.")),
  version: Options.boolean("version").pipe(Options.withDescription("Print the version."))
})

// Flags are matched as typed (`--PORT` is not `--port`: the case-insensitive match of
// @effect/cli 0.77 found such a flag and then dropped its value).
const cliConfig = CliConfig.make({ isCaseSensitive: true })

// --- help and errors -------------------------------------------------------------------------

/** Plain text of a span: the terminal gets no styling, and tests and pipes read it as is. */
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

/** The lines of a help document: one per paragraph or header, in order. */
const docLines = (doc: HelpDoc.HelpDoc): Array<string> => {
  switch (doc._tag) {
    case "Empty":
      return []
    case "Header":
    case "Paragraph":
      return [spanText(doc.value)]
    case "Sequence":
      return [...docLines(doc.left), ...docLines(doc.right)]
    case "Enumeration":
      return doc.elements.flatMap(docLines)
    case "DescriptionList":
      return doc.definitions.flatMap(([term, description]) => [spanText(term), ...docLines(description)])
  }
}

const entry = (term: string, description: string) => `${term}\n\n  ${description}`

/** The help: usage as @effect/cli writes the options' grammar, then every setting of the table. */
const helpText = (version: string): string =>
  [
    name,
    `${name} ${version} -- ${summary}`,
    "USAGE",
    ...Usage.enumerate(Options.getUsage(settingsOptions), cliConfig).map((usage) => `$ ${name} ${spanText(usage)}`),
    "OPTIONS",
    ...settings.map((s) => entry(`${s.flag} ${s.placeholder}`, helpLine(s))),
    "Each flag falls back to its environment variable, then to its default.",
    entry("-h, --help", "Show this help."),
    entry("--version", "Print the version.")
  ].join("\n\n")

/** The complaint about the first argument no option took (`--` ends the options, and is no complaint). */
const describeLeftover = (leftover: ReadonlyArray<string>): string => {
  const arg = leftover.find((arg) => arg !== "--") ?? "--"
  const setting = settings.find((s) => s.flag === arg.split("=")[0])
  return setting !== undefined
    ? `Invalid ${setting.flag}: give it once, with a value (${setting.flag} ${setting.placeholder})`
    : `Unknown argument ${JSON.stringify(arg)} (see ${name} --help)`
}

// --- the command ---------------------------------------------------------------------------

/**
 * Parses `argv` (as `process.argv`: runtime and script first), reads the settings and runs
 * `launch` with them, under the configured log level and format. `--help` and `--version`
 * print and succeed without launching.
 *
 * Every failure is reported before the returned effect fails, so run it with
 * `runMain({ disableErrorReporting: true })`: a bad command line or value as one line on
 * stderr (one per bad value; failing with `StartupError`), a launch failure through the logger.
 */
export const run = <E, R>(
  argv: ReadonlyArray<string>,
  launch: (settings: ForemanSettings) => Effect.Effect<void, E, R>
): Effect.Effect<void, E | StartupError, R | CliApp.CliApp.Environment> =>
  Effect.gen(function*() {
    const args = argv.slice(2)
    const refuse = (message: string) =>
      Console.error(message).pipe(Effect.zipRight(Effect.fail(new StartupError({ message }))))

    // As @effect/cli does with its built-ins: they are looked for first, among any arguments.
    const [, , asked] = yield* Options.processCommandLine(builtIns, args, cliConfig).pipe(
      Effect.orElseSucceed(() => [Option.none(), [], { help: false, version: false }] as const)
    )
    if (asked.help) return yield* Console.log(helpText(yield* ownVersion))
    if (asked.version) return yield* Console.log(yield* ownVersion)

    const [, leftover, settingsRead] = yield* Options.processCommandLine(settingsOptions, args, cliConfig).pipe(
      Effect.catchAll((error) => refuse(docLines(error.error).join("\n")))
    )
    if (leftover.length > 0) return yield* refuse(describeLeftover(leftover))

    yield* launch(settingsRead).pipe(
      Effect.tapErrorCause((cause) => {
        if (Cause.isInterruptedOnly(cause)) return Effect.void
        // A launch that refuses the settings (e.g. an unknown plugin) says so in one line.
        const refused = Cause.failureOption(cause).pipe(Option.filter((e) => e instanceof StartupError))
        return Option.isSome(refused) ? Console.error(refused.value.message) : Effect.logError(`${name} stopped`, cause)
      }),
      withLogging(settingsRead)
    )
  })
