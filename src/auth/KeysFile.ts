/**
 * The keys file and the `Keys` service read from it.
 *
 * The file (`--keys-file`, JSON): `{"keys": [{"name", "role", "hash": "sha256:<hex>",
 * "createdAt": ISO}]}`. A key is `fk_` + 32 random bytes in base64url and only its SHA-256 is
 * stored: a key that random cannot be guessed from its hash, so a slow password hash would
 * only cost time on every request. The file is written whole (a temp file in its directory,
 * then a rename), readable by its owner only.
 *
 * The server never writes it: it notes when each key was last used in a file of its own next
 * to it (`<keys file>.used`, name -> ISO time), at most once per `flushEvery` and at shutdown,
 * so the `keys` commands and a running foreman never write the same file.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import {
  closeSync,
  fchownSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync
} from "node:fs"
import * as path from "node:path"
import * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { ForemanConfig } from "../Config.ts"
import { type Caller, Keys, type KeysService, type Role } from "./Keys.ts"
import { isError } from "../Errors.ts"

// ---------------------------------------------------------------------------------------------
// The format
// ---------------------------------------------------------------------------------------------

/** A key's name: what `keys list` shows and what the server knows a caller by. */
export const keyNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

const KeyName = Schema.String.pipe(
  Schema.pattern(keyNamePattern, { message: () => "expected a name of 1 to 64 letters, digits, '.', '_' or '-'" })
)
const RoleSchema: Schema.Schema<Role> = Schema.Literal("user", "admin")
const KeyHash = Schema.String.pipe(
  Schema.pattern(/^sha256:[0-9a-f]{64}$/, { message: () => "expected \"sha256:\" and 64 lowercase hex digits" })
)

/** One key as the file holds it: never the key itself. */
export const StoredKey = Schema.Struct({
  name: KeyName,
  role: RoleSchema,
  hash: KeyHash,
  createdAt: Schema.DateTimeUtc
})
export type StoredKey = typeof StoredKey.Type

export const KeysDocument = Schema.Struct({ keys: Schema.Array(StoredKey) }).pipe(
  Schema.filter((document) => {
    const seen = new Set<string>()
    for (const key of document.keys) {
      if (seen.has(key.name)) return `the name "${key.name}" is given twice`
      seen.add(key.name)
    }
    return true
  })
)
export type KeysDocument = typeof KeysDocument.Type

const KeysJson = Schema.parseJson(KeysDocument, { space: 2 })

/** The sidecar: each key's name and when the server last saw it. */
const LastUsedJson = Schema.parseJson(Schema.Record({ key: Schema.String, value: Schema.DateTimeUtc }), { space: 2 })

/** Where the server notes when each key was last used. */
export const lastUsedPath = (keysFile: string): string => `${keysFile}.used`

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** The keys file could not be read, decoded or written; `message` is one line naming it. */
export class KeysFileError extends Schema.TaggedError<KeysFileError>()("KeysFileError", {
  path: Schema.String,
  message: Schema.String
}) {}

export class InvalidKeyName extends Schema.TaggedError<InvalidKeyName>()("InvalidKeyName", {
  name: Schema.String
}) {
  override get message() {
    return `Invalid key name ${JSON.stringify(this.name)}: expected 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`
  }
}

export class DuplicateKeyName extends Schema.TaggedError<DuplicateKeyName>()("DuplicateKeyName", {
  name: Schema.String,
  path: Schema.String
}) {
  override get message() {
    return `A key named ${JSON.stringify(this.name)} is already in ${this.path} (remove it first to replace it)`
  }
}

export class UnknownKeyName extends Schema.TaggedError<UnknownKeyName>()("UnknownKeyName", {
  name: Schema.String,
  path: Schema.String
}) {
  override get message() {
    return `No key named ${JSON.stringify(this.name)} in ${this.path}`
  }
}

// ---------------------------------------------------------------------------------------------
// Keys and hashes
// ---------------------------------------------------------------------------------------------

/** A new key: `fk_` and 32 random bytes (256 bits) in base64url. */
export const generateKey = (): string => `fk_${randomBytes(32).toString("base64url")}`

const digestOf = (key: string): Buffer => createHash("sha256").update(key, "utf8").digest()

/** What the file stores of a key: `sha256:` and its SHA-256 in hex. */
export const hashKey = (key: string): string => `sha256:${digestOf(key).toString("hex")}`

interface Loaded {
  readonly caller: Caller
  readonly digest: Buffer
}

const loaded = (key: StoredKey): Loaded => ({
  // The id is a prefix of the hash: a key added again under the same name is another caller.
  caller: { name: key.name, role: key.role, id: key.hash.slice("sha256:".length, "sha256:".length + 16) },
  digest: Buffer.from(key.hash.slice("sha256:".length), "hex")
})

/**
 * The caller whose stored hash is the presented key's. Every hash is compared, in constant
 * time, whatever matched before: the time taken says nothing of which key, if any, matched.
 */
const match = (keys: ReadonlyArray<Loaded>, presented: string): Loaded | undefined => {
  const digest = digestOf(presented)
  let found: Loaded | undefined
  for (const key of keys) {
    const same = timingSafeEqual(key.digest, digest)
    found = same ? key : found
  }
  return found
}

// ---------------------------------------------------------------------------------------------
// Reading and writing
// ---------------------------------------------------------------------------------------------

const reason = (cause: unknown) => (isError(cause) ? cause.message : String(cause))

/** The first complaint of a decode, as `keys.0.hash: expected ...`. */
const firstIssue = (error: ParseResult.ParseError): string => {
  const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
  if (issue === undefined) return error.message
  return issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`
}

/** The file's text, or `None` when there is no file. */
const readText = (file: string) =>
  Effect.try({
    try: () => {
      const exists = statSync(file, { throwIfNoEntry: false }) !== undefined
      return exists ? Option.some(readFileSync(file, "utf8")) : Option.none()
    },
    catch: (cause) => new KeysFileError({ path: file, message: `Cannot read keys file ${file}: ${reason(cause)}` })
  })

/** The keys in `file`; no file means no keys. */
export const readKeys = (file: string): Effect.Effect<ReadonlyArray<StoredKey>, KeysFileError> =>
  readText(file).pipe(
    Effect.flatMap(Option.match({
      onNone: () => Effect.succeed<ReadonlyArray<StoredKey>>([]),
      onSome: (text) =>
        Schema.decodeUnknown(KeysJson)(text).pipe(
          Effect.map((document) => document.keys),
          Effect.mapError((error) =>
            new KeysFileError({ path: file, message: `Invalid keys file ${file}: ${firstIssue(error)}` })
          )
        )
    }))
  )

/**
 * Writes `text` to `file` whole or not at all: a temp file in the same directory (created if
 * missing), readable by its owner only, flushed to disk, then renamed over `file`.
 */
const writeAtomically = (given: string, text: string) =>
  Effect.gen(function*() {
    const attempt = <A>(f: () => A) =>
      Effect.try({
        try: f,
        catch: (cause) => new KeysFileError({ path: given, message: `Cannot write ${given}: ${reason(cause)}` })
      })
    // Through a symlink to the file it names: replacing the link would leave the real file
    // (the one a server may read) as it was.
    const file = yield* attempt(() => {
      try {
        return realpathSync(given)
      } catch {
        return given
      }
    })
    // The file keeps its owner: written by root (sudo) for a server running as another user, a
    // file only root may read would leave that server on the keys it read before.
    const before = statSync(file, { throwIfNoEntry: false })
    const directory = path.dirname(file)
    yield* attempt(() => mkdirSync(directory, { recursive: true, mode: 0o700 }))
    const temp = path.join(directory, `.${path.basename(file)}.${randomBytes(6).toString("hex")}.tmp`)
    yield* Effect.acquireUseRelease(
      attempt(() => openSync(temp, "wx", 0o600)),
      (fd) => attempt(() => {
        writeFileSync(fd, text)
        if (before !== undefined && typeof process.getuid === "function" && process.getuid() === 0) {
          fchownSync(fd, before.uid, before.gid)
        }
        fsyncSync(fd)
      }),
      (fd) => Effect.sync(() => closeSync(fd))
    ).pipe(
      Effect.zipRight(attempt(() => renameSync(temp, file))),
      Effect.tapError(() => Effect.sync(() => rmSync(temp, { force: true })))
    )
  })

/** Replaces the keys in `file`. */
export const writeKeys = (file: string, keys: ReadonlyArray<StoredKey>): Effect.Effect<void, KeysFileError> =>
  Schema.encode(KeysJson)({ keys }).pipe(
    Effect.orDie,
    Effect.flatMap((text) => writeAtomically(file, text + "\n"))
  )

/** When each key was last used, as the server last noted it; an unreadable note is no note. */
export const readLastUsed = (file: string): Effect.Effect<Readonly<Record<string, DateTime.Utc>>> =>
  readText(lastUsedPath(file)).pipe(
    Effect.flatMap(Option.match({
      onNone: () => Effect.succeed({}),
      onSome: (text) => Schema.decodeUnknown(LastUsedJson)(text)
    })),
    Effect.orElseSucceed(() => ({}))
  )

// ---------------------------------------------------------------------------------------------
// What the `keys` commands do
// ---------------------------------------------------------------------------------------------

/** Adds a key named `name`; the answer holds the key itself, which is stored nowhere. */
/**
 * Runs a read-modify-write of `file` alone: two `keys` commands at once would otherwise each
 * write what it read, and one's change would be lost (a removed key could come back). The lock
 * is a file created exclusively next to it (`<file>.lock`); one older than a minute is taken to
 * be left by a command that died, and broken.
 */
const exclusively = <A, E, R>(file: string, change: Effect.Effect<A, E, R>) => {
  // Next to the file itself, so that a command given a symlink to it takes the same lock.
  let real = file
  try {
    real = realpathSync(file)
  } catch {
    // not there yet: its own name
  }
  const lock = `${real}.lock`
  const take = Effect.try({
    try: () => {
      mkdirSync(path.dirname(lock), { recursive: true, mode: 0o700 })
      const stale = statSync(lock, { throwIfNoEntry: false })
      if (stale !== undefined && Date.now() - stale.mtimeMs > 60_000) rmSync(lock, { force: true })
      closeSync(openSync(lock, "wx", 0o600))
    },
    catch: (cause) => new KeysFileError({ path: file, message: `Cannot lock ${file} (${lock}): ${reason(cause)}` })
  })
  return Effect.acquireUseRelease(
    // Another command holds it for a few milliseconds: try again, for up to 5 s.
    take.pipe(Effect.retry(Schedule.spaced(Duration.millis(20)).pipe(Schedule.intersect(Schedule.recurs(250))))),
    () => change,
    () => Effect.sync(() => rmSync(lock, { force: true }))
  )
}

export const addKey = Effect.fn("Keys.add")(function*(file: string, name: string, role: Role) {
  if (!keyNamePattern.test(name)) return yield* new InvalidKeyName({ name })
  return yield* exclusively(file, added(file, name, role))
})

const added = (file: string, name: string, role: Role) => Effect.gen(function*() {
  const keys = yield* readKeys(file)
  if (keys.some((key) => key.name === name)) return yield* new DuplicateKeyName({ name, path: file })
  const key = generateKey()
  const stored: StoredKey = { name, role, hash: hashKey(key), createdAt: yield* DateTime.now }
  yield* writeKeys(file, [...keys, stored])
  return { key, stored }
})

/** Removes the key named `name`; a running foreman refuses it from its next request on. */
export const removeKey = Effect.fn("Keys.remove")(function*(file: string, name: string) {
  return yield* exclusively(
    file,
    Effect.gen(function*() {
      const keys = yield* readKeys(file)
      const removed = keys.find((key) => key.name === name)
      if (removed === undefined) return yield* new UnknownKeyName({ name, path: file })
      yield* writeKeys(file, keys.filter((key) => key !== removed))
      return removed
    })
  )
})

export interface KeyListing {
  readonly name: string
  readonly role: Role
  readonly createdAt: DateTime.Utc
  readonly lastUsed: Option.Option<DateTime.Utc>
}

/** The keys with when each was last used (a use noted before a key of the same name was added is not its). */
export const listKeys = Effect.fn("Keys.list")(function*(file: string) {
  const keys = yield* readKeys(file)
  const used = yield* readLastUsed(file)
  return keys.map((key): KeyListing => ({
    name: key.name,
    role: key.role,
    createdAt: key.createdAt,
    lastUsed: Option.fromNullable(used[key.name]).pipe(
      Option.filter((at) => DateTime.greaterThanOrEqualTo(at, key.createdAt))
    )
  }))
})

// ---------------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------------

/**
 * What identifies the file as it is now: a rename gives a new inode, a write a new size or
 * time. One `stat`, a few microseconds: cheap enough to ask on every request.
 */
const stampOf = (file: string): string => {
  try {
    const stat = statSync(file, { throwIfNoEntry: false })
    return stat === undefined ? "missing" : `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`
  } catch (cause) {
    return `unreadable: ${reason(cause)}`
  }
}

interface Snapshot {
  readonly stamp: string
  readonly keys: ReadonlyArray<Loaded>
}

/** The keys of `file` with its stamp, taken before reading: a change in between is seen next time. */
const load = (file: string, stamp: string) =>
  Effect.map(readKeys(file), (keys): Snapshot => ({ stamp, keys: keys.map(loaded) }))

export interface KeysFileOptions {
  /** How often the server writes down when each key was last used; a minute unless told. */
  readonly flushEvery?: Duration.DurationInput
}

/**
 * The `Keys` service of `file`: read at once (a broken file fails with `KeysFileError`), then
 * read again whenever it changes. A broken rewrite keeps the keys read before, with a warning.
 * Uses are noted in `<file>.used` every `flushEvery` and when the scope closes.
 */
export const makeKeys = (file: string, options: KeysFileOptions = {}) =>
  Effect.gen(function*() {
    const snapshot = yield* Ref.make(yield* load(file, stampOf(file)))
    const uses = yield* Ref.make(HashMap.empty<string, number>())
    /**
     * Whether this process has had keys to check. Then keys stay on until a restart, whatever
     * the file says: an emptied, deleted or unreadable file refuses every key rather than
     * opening foreman (behind a reverse proxy on this machine, every caller arrives on loopback).
     */
    let hadKeys = (yield* Ref.get(snapshot)).keys.length > 0

    const current = Effect.gen(function*() {
      const known = yield* Ref.get(snapshot)
      const stamp = stampOf(file)
      if (stamp === known.stamp) return known.keys
      const next = yield* load(file, stamp).pipe(
        Effect.catchAll((error) =>
          Effect.as(
            Effect.logWarning(`${error.message}; refusing every key until it can be read`),
            { stamp, keys: [] }
          )
        )
      )
      yield* Ref.set(snapshot, next)
      if (next.keys.length > 0) hadKeys = true
      return next.keys
    })

    const flush = Effect.gen(function*() {
      const pending = yield* Ref.getAndSet(uses, HashMap.empty())
      if (HashMap.isEmpty(pending)) return
      const names = new Set((yield* current).map((key) => key.caller.name))
      const noted = yield* readLastUsed(file)
      const next: Record<string, DateTime.Utc> = {}
      for (const [name, at] of Object.entries(noted)) if (names.has(name)) next[name] = at
      for (const [name, millis] of pending) if (names.has(name)) next[name] = DateTime.unsafeMake(millis)
      const text = yield* Schema.encode(LastUsedJson)(next).pipe(Effect.orDie)
      yield* writeAtomically(lastUsedPath(file), text + "\n").pipe(
        Effect.tapError(() => Ref.update(uses, (later) => HashMap.union(pending, later))),
        Effect.catchAll((error) => Effect.logWarning(`${error.message}; "last used" of keys not saved`))
      )
    })

    // The finalizer first: the scope closes in reverse, so the flushing fiber stops before it.
    yield* Effect.addFinalizer(() => flush)
    yield* flush.pipe(Effect.repeat(Schedule.spaced(options.flushEvery ?? Duration.minutes(1))), Effect.forkScoped)

    const service: KeysService = {
      enabled: Effect.map(current, (keys) => hadKeys || keys.length > 0),
      verify: (presented) =>
        Effect.gen(function*() {
          const found = match(yield* current, presented)
          if (found === undefined) return Option.none()
          const now = yield* Clock.currentTimeMillis
          yield* Ref.update(uses, HashMap.set(found.caller.name, now))
          return Option.some(found.caller)
        })
    }
    return service
  })

/** `Keys` from the keys file at `file`. */
export const layerFile = (file: string, options: KeysFileOptions = {}): Layer.Layer<Keys, KeysFileError> =>
  Layer.scoped(Keys, makeKeys(file, options))

/** `Keys` from `--keys-file`. */
export const KeysLive: Layer.Layer<Keys, KeysFileError, ForemanConfig> = Layer.scoped(
  Keys,
  Effect.flatMap(ForemanConfig, (config) => makeKeys(config.keysFile))
)
