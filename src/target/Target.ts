/**
 * A target is a value: one Ollama server foreman stands in front of, with everything foreman
 * keeps about it (its client, inventory and poller, its slots and residency, its health in
 * the inventory's state). `Targets` holds one per configured target. Today the configuration
 * names exactly one, `primary`; nothing else reaches for a target's URL.
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Arr from "effect/Array"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import { ForemanConfig } from "../Config.ts"
import type { Events } from "../events/Events.ts"
import * as Inventory from "../inventory/Inventory.ts"
import type { Waiting } from "../scheduler/policy.ts"
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
  /** The jobs holding a slot, by id. */
  readonly running: Map<string, Waiting>
}

export interface Target {
  /** How foreman names it: the host of its URL (`127.0.0.1`, `laptop`). */
  readonly name: string
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
}

/** A target's name: the host of its URL. */
export const nameOf = (url: string): string => {
  try {
    return new URL(url).hostname
  } catch {
    return url
  }
}

/** A target over a client: its inventory is made here, in the scope; its poller is not started. */
export const make = (client: TargetClient.TargetClientService, options: { readonly name?: string } = {}) =>
  Effect.gen(function*() {
    const config = yield* ForemanConfig
    const inventory = yield* Inventory.make(client)
    return {
      name: options.name ?? nameOf(client.url),
      url: client.url,
      client,
      inventory,
      polling: inventory.poll.pipe(Effect.repeat(Schedule.spaced(config.pollInterval)), Effect.asVoid),
      maxLoaded: config.maxLoadedModels,
      slots: { size: config.concurrency, running: new Map() },
      residency: { lastRun: new Map(), servingSince: yield* Clock.currentTimeMillis }
    } satisfies Target
  })

export interface TargetsService {
  /** Every configured target, in the configuration's order. */
  readonly all: Arr.NonEmptyReadonlyArray<Target>
  /** The first configured target (today, the only one). */
  readonly primary: Target
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
  return Targets.of({
    all,
    primary,
    lookup: all.length === 1
      ? primary.inventory.lookup
      : (key) =>
        Effect.gen(function*() {
          let unknown = false
          for (const target of all) {
            const found = yield* target.inventory.lookup(key)
            if (found === "found") return found
            if (found === "unknown") unknown = true
          }
          return unknown ? "unknown" as const : "missing" as const
        })
  })
}

/** Targets over the given clients (tests, or an application with clients of its own). */
export const fromClients = (
  clients: Arr.NonEmptyReadonlyArray<TargetClient.TargetClientService>
): Layer.Layer<Targets, never, ForemanConfig | Events> =>
  Layer.scoped(Targets, Effect.map(Effect.forEach(clients, (client) => make(client)), (all) => of(all as unknown as Arr.NonEmptyReadonlyArray<Target>)))

/** The configured targets (`--target`), over the runtime's `HttpClient`. */
export const layer: Layer.Layer<Targets, never, ForemanConfig | Events | HttpClient.HttpClient> = Layer.scoped(
  Targets,
  Effect.gen(function*() {
    const config = yield* ForemanConfig
    const urls: Arr.NonEmptyReadonlyArray<string> = [config.target]
    const all = yield* Effect.forEach(urls, (url) => Effect.flatMap(TargetClient.make(url), (client) => make(client)))
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
