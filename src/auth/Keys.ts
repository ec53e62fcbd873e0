/**
 * API keys: who may call foreman, and with which role. The keys file (`--keys-file`) holds
 * each key's name, role, creation time and hash, never the key itself; `foreman-effect keys`
 * manages it. With no key in the file, keys are off (and foreman serves loopback only, see
 * `src/http/server.ts`). A running foreman reads the file again when it changes.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"

/** `admin`: everything. `user`: inference, listings and its own async jobs. */
export type Role = "user" | "admin"
export const roles: ReadonlyArray<Role> = ["user", "admin"]

/** Who a request comes from: a key's name and role. */
export interface Caller {
  readonly name: string
  readonly role: Role
  /** Which key: a name removed and added again is a new key, and does not own the old one's jobs. */
  readonly id: string
}

/** What an async job stores as its owner: the key's name and id (`alice#3f2a...`). */
export const ownerOf = (caller: Caller): string => `${caller.name}#${caller.id}`

/** The key's name in an owner (what logs and metrics show). */
export const ownerName = (owner: string): string => {
  const hash = owner.lastIndexOf("#")
  return hash === -1 ? owner : owner.slice(0, hash)
}

export interface KeysService {
  /** Whether keys are required: at least one key is in the file, as it is now. */
  readonly enabled: Effect.Effect<boolean>
  /**
   * The caller a presented key belongs to, if any (compared in constant time against every
   * stored hash); counts as the key's use for `keys list`'s "last used".
   */
  readonly verify: (key: string) => Effect.Effect<Option.Option<Caller>>
}

export class Keys extends Context.Tag("foreman/Keys")<Keys, KeysService>() {}
