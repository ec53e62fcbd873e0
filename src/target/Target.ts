/**
 * A target is a value: one Ollama server foreman stands in front of, with everything foreman
 * keeps about it (its client, inventory and poller, its slots and residency, its health in
 * the inventory's state, its Wake-on-LAN). `Targets` holds one per configured target
 * (`--target`, or the targets file), the first being the `primary`.
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Arr from "effect/Array"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as fs from "node:fs"
import { isIP } from "node:net"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { ForemanConfig, hostOf, isTargetName, parseHttpUrl, parseTargetList } from "../Config.ts"
import { describeCause, TargetsFileInvalid } from "../Errors.ts"
import * as Waker from "./Waker.ts"
import * as WakeOnLan from "./WakeOnLan.ts"
import type { Events } from "../events/Events.ts"
import * as Inventory from "../inventory/Inventory.ts"
import * as TargetClient from "./TargetClient.ts"

/**
 * What the scheduler learns about a target as it uses it. Mutable, and changed by the
 * Scheduler alone, in its synchronous steps.
 */
export interface Residency {
  /**
   * Units (`unitOf`: a model with its load options) foreman itself ran last here, one per model
   * (the target holds one runner per model), and until when the target is assumed to keep them.
   */
  readonly lastRun: Map<string, number>
  /**
   * Since when the target has been serving (its last wake). Waiting while it slept is not
   * starvation: max-wait aging counts from here.
   */
  servingSince: number
}

/** The jobs a target runs at once. `running` is the Scheduler's, like `Residency`. */
export interface Slots {
  /** How many jobs may be in flight here at once (`--concurrency`). */
  readonly size: number
  /** The jobs holding a slot, by id (the scheduler's tickets). */
  readonly running: Map<string, SlotHolder>
}

/** A job holding a slot, as far as the target's state needs it: what it loaded. */
export interface SlotHolder {
  readonly id: string
  /** The model's normalised key. */
  readonly model: string
  /** The model with the job's load-affecting options, if any (the policy's `unitOf`). */
  readonly unit?: string | undefined
}

/** How to wake a target that sleeps: its network card's MAC, and where the magic packet goes. */
export interface Wake {
  readonly mac: WakeOnLan.Mac
  readonly address: string
  readonly port: number
}

export interface Target {
  /** How foreman names it: `--target NAME=URL`'s name, else the host of its URL (`127.0.0.1`, `laptop`). */
  readonly name: string
  /**
   * How a caller without an admin key sees it named: its name if one was given, else
   * `target-N` (its place in the configuration), since a host is an address.
   */
  readonly publicName: string
  /** Its base URL, without a trailing slash. */
  readonly url: string
  readonly client: TargetClient.TargetClientService
  /** Its models and resident models, and its health (`reachable`, failures, job faults). */
  readonly inventory: Inventory.InventoryService
  /** Its poller: polls now, then every `--poll-interval`, forever (`Poller.layer` runs it). */
  readonly polling: Effect.Effect<void>
  /** How many models it keeps loaded at once (`--max-loaded-models`). */
  readonly maxLoaded: number
  readonly slots: Slots
  readonly residency: Residency
  /** How to wake it (Wake-on-LAN), if it can be woken. */
  readonly wake?: Wake | undefined
  /** Its wakes so far (with `wake`): the Waker's, which health reads. */
  readonly wakeStatus?: Waker.WakeStatus | undefined
}

/** A target as the configuration describes it. */
export interface TargetSpec {
  readonly name?: string | undefined
  /** Whether `name` was given rather than taken from the URL's host (default: given if present). */
  readonly named?: boolean | undefined
  /** Its place in the configuration, from 1 (`publicName`'s `target-N`). */
  readonly index?: number | undefined
  /** Its own `--concurrency`. */
  readonly concurrency?: number | undefined
  /** Its own `--max-loaded-models`. */
  readonly maxLoadedModels?: number | undefined
  readonly wake?: Wake | undefined
}

/** A target's name when none is given: the host of its URL. */
export const nameOf = hostOf

/** A target over a client: its inventory is made here, in the scope; its poller is not started. */
export const make = (client: TargetClient.TargetClientService, options: TargetSpec = {}) =>
  Effect.gen(function*() {
    const config = yield* ForemanConfig
    const name = options.name ?? nameOf(client.url)
    const inventory = yield* Inventory.make(client, { name })
    return {
      name,
      publicName: options.name !== undefined && options.named !== false ? name : `target-${options.index ?? 1}`,
      url: client.url,
      client,
      inventory,
      polling: inventory.poll.pipe(Effect.repeat(Schedule.spaced(config.pollInterval)), Effect.asVoid),
      maxLoaded: options.maxLoadedModels ?? config.maxLoadedModels,
      slots: { size: options.concurrency ?? config.concurrency, running: new Map() },
      residency: { lastRun: new Map(), servingSince: yield* Clock.currentTimeMillis },
      ...(options.wake === undefined ? {} : { wake: options.wake, wakeStatus: Waker.emptyStatus() })
    } satisfies Target
  })

export interface TargetsService {
  /** Every configured target, in the configuration's order. */
  readonly all: Arr.NonEmptyReadonlyArray<Target>
  /** The first configured target (the only one, with one `--target`). */
  readonly primary: Target
  /**
   * The target of that name (names compare case-insensitively), or of that public name
   * (`target-N`, as callers without an admin key see it).
   */
  readonly byName: (name: string) => Option.Option<Target>
  /**
   * Checks a model on every target (each with its grace re-check): `found` on any of them;
   * else `unknown` if some target cannot tell (never reached), else `missing`.
   */
  readonly lookup: (key: string) => Effect.Effect<Inventory.Lookup>
}

export class Targets extends Context.Tag("foreman/Targets")<Targets, TargetsService>() {}

/** The service over targets already made. */
export const of = (all: Arr.NonEmptyReadonlyArray<Target>): TargetsService => {
  const primary = Arr.headNonEmpty(all)
  const names = new Map(all.map((target) => [target.name.toLowerCase(), target]))
  return Targets.of({
    all,
    primary,
    byName: (name) => {
      const key = name.trim().toLowerCase()
      return Option.fromNullable(names.get(key) ?? all.find((target) => target.publicName.toLowerCase() === key))
    },
    lookup: all.length === 1
      ? primary.inventory.lookup
      : (key) =>
        Effect.gen(function*() {
          // A cache that has it answers (no call to any target); else every target's live
          // re-check at once: each one that sleeps costs a connect timeout.
          const cached = yield* Effect.forEach(all, (target) => target.inventory.get)
          if (cached.some((state) => Inventory.hasModel(state, key))) return "found" as const
          const found = yield* Effect.forEach(all, (target) => target.inventory.lookup(key), { concurrency: "unbounded" })
          return found.includes("found") ? "found" as const : found.includes("unknown") ? "unknown" as const : "missing" as const
        })
  })
}

/** Targets over the given clients (tests, or an application with clients of its own). */
export const fromClients = (
  clients: Arr.NonEmptyReadonlyArray<TargetClient.TargetClientService>
): Layer.Layer<Targets, never, ForemanConfig | Events> =>
  Layer.scoped(Targets, Effect.map(Effect.forEach(clients, (client, i) => make(client, { index: i + 1 })), (all) => of(all as unknown as Arr.NonEmptyReadonlyArray<Target>)))

const PositiveInt = Schema.Int.pipe(Schema.greaterThanOrEqualTo(1))
const Name = Schema.String.pipe(Schema.filter((name) => isTargetName(name) || "a name of letters, digits, '.', '_' or '-'"))
const Url = Schema.String.pipe(
  Schema.filter((url) => Option.isSome(parseHttpUrl(url)) || "an http:// or https:// URL such as http://desk:11434")
)
const Mac = Schema.String.pipe(Schema.filter((mac) => Option.isSome(WakeOnLan.parseMac(mac)) || "a MAC address such as aa:bb:cc:dd:ee:ff"))

/** The targets file: `{"targets": [{name, url, concurrency?, maxLoadedModels?, wake?}]}`. */
export const TargetsFile = Schema.Struct({
  targets: Schema.NonEmptyArray(Schema.Struct({
    name: Schema.optional(Name),
    url: Url,
    concurrency: Schema.optional(PositiveInt),
    maxLoadedModels: Schema.optional(PositiveInt),
    wake: Schema.optional(Schema.Struct({
      mac: Mac,
      address: Schema.optionalWith(Schema.String.pipe(Schema.filter((a) => isIP(a) !== 0 || "an IP address")), {
        default: () => WakeOnLan.defaultBroadcast
      }),
      port: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 65535)), { default: () => WakeOnLan.defaultPort })
    }))
  }))
})

/** A target's URL and spec, as the configuration gives them. */
interface Configured extends TargetSpec {
  readonly url: string
}

/** The targets a targets file describes, or why not (one line). */
export const readTargetsFile = (file: string): Effect.Effect<Arr.NonEmptyReadonlyArray<Configured>, TargetsFileInvalid> =>
  Effect.gen(function*() {
    const invalid = (message: string) => new TargetsFileInvalid({ path: file, message })
    const text = yield* Effect.try({ try: () => fs.readFileSync(file, "utf8"), catch: (cause) => invalid(describeCause(cause)) })
    const json = yield* Effect.try({ try: (): unknown => JSON.parse(text), catch: () => invalid("not JSON") })
    const decoded = yield* Schema.decodeUnknown(TargetsFile)(json, { onExcessProperty: "error" }).pipe(
      Effect.mapError((error) => invalid(ParseResult.TreeFormatter.formatErrorSync(error).replace(/\s*\n\s*/g, " ")))
    )
    const entries = Arr.map(decoded.targets, (entry): Configured => {
      const url = Option.getOrThrow(parseHttpUrl(entry.url))
      return {
        url,
        name: entry.name ?? hostOf(url),
        named: entry.name !== undefined,
        concurrency: entry.concurrency,
        maxLoadedModels: entry.maxLoadedModels,
        wake: entry.wake === undefined
          ? undefined
          : { mac: Option.getOrThrow(WakeOnLan.parseMac(entry.wake.mac)), address: entry.wake.address, port: entry.wake.port }
      }
    })
    const names = new Set(entries.map((entry) => entry.name!.toLowerCase()))
    if (names.size !== entries.length) return yield* invalid("two targets have the same name")
    return entries
  })

/** The configured targets (`--targets-file`, else `--target`). */
export const configured = Effect.gen(function*() {
  const config = yield* ForemanConfig
  if (config.targetsFile !== "") return yield* readTargetsFile(config.targetsFile)
  // The setting was checked when it was read; an embedding application's own value too.
  return Option.getOrElse(
    parseTargetList(config.target),
    () => [{ name: hostOf(config.target), url: config.target, named: false }]
  ) as Arr.NonEmptyReadonlyArray<Configured>
})

/** The configured targets, over the runtime's `HttpClient`. */
export const layer: Layer.Layer<Targets, TargetsFileInvalid, ForemanConfig | Events | HttpClient.HttpClient> = Layer.scoped(
  Targets,
  Effect.gen(function*() {
    const entries = yield* configured
    const all = yield* Effect.forEach(entries, (entry, i) =>
      Effect.flatMap(TargetClient.make(entry.url), (client) => make(client, { ...entry, index: i + 1 })))
    return of(all as unknown as Arr.NonEmptyReadonlyArray<Target>)
  })
)

/**
 * The primary target's client and inventory as the `TargetClient` and `Inventory` services,
 * for plugins and applications written against one target.
 */
export const primaryLayer: Layer.Layer<TargetClient.TargetClient | Inventory.Inventory, never, Targets> = Layer.effectContext(
  Effect.map(Targets, ({ primary }) =>
    Context.make(TargetClient.TargetClient, primary.client).pipe(Context.add(Inventory.Inventory, primary.inventory)))
)
