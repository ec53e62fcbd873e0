/** The keys file and the `Keys` service read from it. */
import * as crypto from "node:crypto"
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "@effect/vitest"
import { DateTime, Duration, Effect, Exit, Layer, Logger, Option, Scope, TestClock } from "effect"
import { type Caller, Keys } from "../src/auth/Keys.ts"
import {
  addKey,
  generateKey,
  hashKey,
  KeysFileError,
  KeysLive,
  lastUsedPath,
  layerFile,
  listKeys,
  readKeys,
  removeKey,
  writeKeys
} from "../src/auth/KeysFile.ts"
import { ForemanConfig } from "../src/Config.ts"
import { vi } from "vitest"

// The real comparison, counted: `verify` must compare against every stored hash.
vi.mock("node:crypto", async (original) => {
  const actual = await original<typeof import("node:crypto")>()
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) }
})

let dir = ""
let file = ""
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "foreman-keys-"))
  file = path.join(dir, "keys.json")
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const modeOf = (target: string) => statSync(target).mode & 0o777

/** The `Keys` service of `file`, in the test's scope (so under the TestClock). */
const keysOf = (target: string) => Effect.flatMap(Layer.build(layerFile(target)), (context) => Effect.provide(Keys, context))

/** Runs `self` with its warnings and errors collected. */
const withWarnings = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      if (logLevel._tag === "Warning" || logLevel._tag === "Error") lines.push([message].flat().join(" "))
    })
    const result = yield* self.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    return { result, lines }
  })

describe("keys and hashes", () => {
  it("a key is fk_ and 32 random bytes in base64url, new each time", () => {
    const keys = Array.from({ length: 20 }, generateKey)
    for (const key of keys) {
      expect(key).toMatch(/^fk_[A-Za-z0-9_-]{43}$/)
      expect(Buffer.from(key.slice(3), "base64url")).toHaveLength(32)
    }
    expect(new Set(keys).size).toBe(keys.length)
  })

  it("the file stores sha256: and the key's SHA-256 in hex", () => {
    expect(hashKey("abc")).toBe("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
  })
})

describe("the keys file", () => {
  it.effect("add writes the name, role, hash and creation time, never the key", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2025-06-01T12:00:00Z"))
      const { key } = yield* addKey(file, "alice", "admin")
      const text = readFileSync(file, "utf8")
      expect(text).not.toContain(key)
      expect(JSON.parse(text)).toEqual({
        keys: [{ name: "alice", role: "admin", hash: hashKey(key), createdAt: "2025-06-01T12:00:00.000Z" }]
      })
    }))

  it.effect("a missing file is no keys; the directory is created on the first add", () =>
    Effect.gen(function*() {
      const nested = path.join(dir, "a", "b", "keys.json")
      expect(yield* readKeys(nested)).toEqual([])
      yield* addKey(nested, "alice", "user")
      expect((yield* readKeys(nested)).map((k) => k.name)).toEqual(["alice"])
    }))

  it.effect.skipIf(process.platform === "win32")("the file is readable by its owner only", () =>
    Effect.gen(function*() {
      yield* addKey(file, "alice", "user")
      expect(modeOf(file)).toBe(0o600)
      // Rewritten whole, it is so again, even if someone loosened it.
      chmodSync(file, 0o644)
      yield* addKey(file, "bob", "user")
      expect(modeOf(file)).toBe(0o600)
    }))

  it.effect("writes leave no temp file behind, whether they succeed or fail", () =>
    Effect.gen(function*() {
      yield* addKey(file, "alice", "user")
      yield* addKey(file, "bob", "admin")
      yield* removeKey(file, "alice")
      expect(readdirSync(dir)).toEqual(["keys.json"])

      // The rename fails (the path is a directory): the old file stays, no temp remains.
      const blocked = path.join(dir, "blocked")
      mkdirSync(path.join(blocked, "inside"), { recursive: true })
      const error = yield* Effect.flip(writeKeys(blocked, []))
      expect(error).toBeInstanceOf(KeysFileError)
      expect(error.message).toMatch(new RegExp(`^Cannot write ${blocked}: `))
      expect(readdirSync(dir).sort()).toEqual(["blocked", "keys.json"])
      expect(readdirSync(blocked)).toEqual(["inside"])
    }))

  it.effect("a duplicate name, a bad name and an unknown name are refused, the file unchanged", () =>
    Effect.gen(function*() {
      yield* addKey(file, "alice", "user")
      const before = readFileSync(file, "utf8")
      expect((yield* Effect.flip(addKey(file, "alice", "admin"))).message).toBe(
        `A key named "alice" is already in ${file} (remove it first to replace it)`
      )
      for (const name of ["", "a b", "-x", ".hidden", "ü", "x".repeat(65), "a/b"]) {
        expect((yield* Effect.flip(addKey(file, name, "user")))._tag).toBe("InvalidKeyName")
      }
      expect((yield* Effect.flip(removeKey(file, "bob"))).message).toBe(`No key named "bob" in ${file}`)
      expect(readFileSync(file, "utf8")).toBe(before)
      yield* addKey(file, "A-z_0.9", "user")
      yield* addKey(file, "x".repeat(64), "user")
    }))

  const broken: ReadonlyArray<readonly [string, string, string]> = [
    ["not JSON", "{\"keys\": [", ""],
    ["no keys array", "{}", "keys: is missing"],
    ["a role that is not one", "{\"keys\":[{\"name\":\"a\",\"role\":\"root\",\"hash\":\"HASH\",\"createdAt\":\"2025-01-01T00:00:00Z\"}]}", "keys.0.role: "],
    ["a bad hash", "{\"keys\":[{\"name\":\"a\",\"role\":\"user\",\"hash\":\"md5:00\",\"createdAt\":\"2025-01-01T00:00:00Z\"}]}", "keys.0.hash: expected \"sha256:\" and 64 lowercase hex digits"],
    ["a bad time", "{\"keys\":[{\"name\":\"a\",\"role\":\"user\",\"hash\":\"HASH\",\"createdAt\":\"yesterday\"}]}", "keys.0.createdAt: "],
    [
      "a name given twice",
      "{\"keys\":[{\"name\":\"a\",\"role\":\"user\",\"hash\":\"HASH\",\"createdAt\":\"2025-01-01T00:00:00Z\"},{\"name\":\"a\",\"role\":\"admin\",\"hash\":\"HASH\",\"createdAt\":\"2025-01-01T00:00:00Z\"}]}",
      "the name \"a\" is given twice"
    ]
  ]
  it.effect.each(broken)("a broken file (%s) stops start-up with one line naming it", ([, text, detail]) =>
    Effect.gen(function*() {
      writeFileSync(file, text.replaceAll("HASH", hashKey("k")))
      const exit = yield* Effect.exit(Effect.scoped(keysOf(file)))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = yield* Effect.flip(Effect.scoped(keysOf(file)))
      expect(error).toBeInstanceOf(KeysFileError)
      expect(error.message).toMatch(new RegExp(`^Invalid keys file ${file}: `))
      expect(error.message).toContain(detail)
      expect(error.message).not.toContain("\n")
    }))
})

/** The caller's name and role (its id is a prefix of the hash, checked on its own below). */
const who = Option.map(({ name, role }: Caller) => ({ name, role }))

describe("Keys from the keys file", () => {
  it.scoped("verify: each key is its caller; anything else is no one", () =>
    Effect.gen(function*() {
      const alice = (yield* addKey(file, "alice", "admin")).key
      const bob = (yield* addKey(file, "bob", "user")).key
      const keys = yield* keysOf(file)
      expect(yield* keys.enabled).toBe(true)
      expect(who(yield* keys.verify(alice))).toEqual(Option.some({ name: "alice", role: "admin" }))
      expect(who(yield* keys.verify(bob))).toEqual(Option.some({ name: "bob", role: "user" }))
      for (const wrong of ["", "fk_", alice.slice(0, -1), alice + "x", hashKey(alice), generateKey()]) {
        expect(who(yield* keys.verify(wrong))).toEqual(Option.none())
      }
    }))

  it.scoped("verify compares against every stored hash, in constant time, whichever matches", () =>
    Effect.gen(function*() {
      const added = [
        yield* addKey(file, "a", "user"),
        yield* addKey(file, "b", "user"),
        yield* addKey(file, "c", "admin")
      ]
      const keys = yield* keysOf(file)
      const compare = vi.mocked(crypto.timingSafeEqual)
      for (const presented of [added[0]!.key, added[2]!.key, "fk_wrong"]) {
        compare.mockClear()
        yield* keys.verify(presented)
        expect(compare).toHaveBeenCalledTimes(3)
        for (const [stored, given] of compare.mock.calls) {
          expect((stored as Buffer).length).toBe(32)
          expect((given as Buffer).length).toBe(32)
        }
      }
    }))

  it.scoped("no file: keys are off and no key is anyone", () =>
    Effect.gen(function*() {
      const keys = yield* keysOf(file)
      expect(yield* keys.enabled).toBe(false)
      expect(who(yield* keys.verify(generateKey()))).toEqual(Option.none())
    }))

  it.scoped("a change of the file is seen by the next call, without a restart", () =>
    Effect.gen(function*() {
      const keys = yield* keysOf(file)
      expect(yield* keys.enabled).toBe(false)
      const alice = (yield* addKey(file, "alice", "user")).key
      expect(yield* keys.enabled).toBe(true)
      expect(who(yield* keys.verify(alice))).toEqual(Option.some({ name: "alice", role: "user" }))
      const bob = (yield* addKey(file, "bob", "admin")).key
      expect(who(yield* keys.verify(bob))).toEqual(Option.some({ name: "bob", role: "admin" }))
      yield* removeKey(file, "alice")
      expect(who(yield* keys.verify(alice))).toEqual(Option.none())
      expect(who(yield* keys.verify(bob))).toEqual(Option.some({ name: "bob", role: "admin" }))
      // Once it had keys, a deleted file does not turn them off (until a restart).
      rmSync(file)
      expect(yield* keys.enabled).toBe(true)
      expect(who(yield* keys.verify(bob))).toEqual(Option.none())
    }))

  it.scoped("a broken rewrite refuses every key, with one warning; a good one is read", () =>
    Effect.gen(function*() {
      const alice = (yield* addKey(file, "alice", "user")).key
      const keys = yield* keysOf(file)
      writeFileSync(file, "{\"keys\": [")
      const { lines, result } = yield* withWarnings(Effect.all([keys.verify(alice), keys.verify(alice), keys.enabled]))
      // Fails closed: keys stay on, and no key is anyone until the file can be read.
      expect(result).toEqual([Option.none(), Option.none(), true])
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(new RegExp(`^Invalid keys file ${file}: .*; refusing every key until it can be read$`))

      rmSync(file)
      const bob = (yield* addKey(file, "bob", "user")).key
      expect(who(yield* keys.verify(bob))).toEqual(Option.some({ name: "bob", role: "user" }))
      expect(who(yield* keys.verify(alice))).toEqual(Option.none())
    }))

  it.scoped("KeysLive reads --keys-file", () =>
    Effect.gen(function*() {
      const alice = (yield* addKey(file, "alice", "user")).key
      const context = yield* Layer.build(KeysLive.pipe(Layer.provide(ForemanConfig.make({ keysFile: file }))))
      const keys = yield* Effect.provide(Keys, context)
      expect(who(yield* keys.verify(alice))).toEqual(Option.some({ name: "alice", role: "user" }))
    }))
})

describe("last used", () => {
  const noon = Date.parse("2025-06-01T12:00:00Z")

  it.scoped("uses are written to <keys file>.used at most once a minute, and listed", () =>
    Effect.gen(function*() {
      // (The clock is set first: a jump of years would run the minutely flush that many times.)
      yield* TestClock.setTime(noon)
      const alice = (yield* addKey(file, "alice", "user")).key
      yield* addKey(file, "bob", "admin")
      const keys = yield* keysOf(file)
      yield* keys.verify(alice)
      expect(existsSync(lastUsedPath(file))).toBe(false)

      yield* TestClock.adjust(Duration.minutes(1))
      expect(JSON.parse(readFileSync(lastUsedPath(file), "utf8"))).toEqual({ alice: "2025-06-01T12:00:00.000Z" })
      if (process.platform !== "win32") expect(modeOf(lastUsedPath(file))).toBe(0o600)
      const listed = yield* listKeys(file)
      expect(listed.map((k) => [k.name, k.role, Option.map(k.lastUsed, DateTime.formatIso)])).toEqual([
        ["alice", "user", Option.some("2025-06-01T12:00:00.000Z")],
        ["bob", "admin", Option.none()]
      ])

      // A later use waits for the next minute; the keys file itself is never written.
      const keysText = readFileSync(file, "utf8")
      yield* TestClock.adjust(Duration.seconds(10))
      yield* keys.verify(alice)
      yield* TestClock.adjust(Duration.seconds(30))
      expect(JSON.parse(readFileSync(lastUsedPath(file), "utf8"))).toEqual({ alice: "2025-06-01T12:00:00.000Z" })
      yield* TestClock.adjust(Duration.seconds(30))
      expect(JSON.parse(readFileSync(lastUsedPath(file), "utf8"))).toEqual({ alice: "2025-06-01T12:01:10.000Z" })
      expect(readFileSync(file, "utf8")).toBe(keysText)
      expect(readdirSync(dir).sort()).toEqual(["keys.json", "keys.json.used"])
    }))

  it.effect("uses are written at shutdown, and merged with what an earlier run noted", () =>
    Effect.gen(function*() {
      const alice = (yield* addKey(file, "alice", "user")).key
      const bob = (yield* addKey(file, "bob", "user")).key
      yield* TestClock.setTime(noon)
      const first = yield* Scope.make()
      yield* keysOf(file).pipe(Effect.flatMap((keys) => keys.verify(alice)), Scope.extend(first))
      yield* Scope.close(first, Exit.void)
      expect(JSON.parse(readFileSync(lastUsedPath(file), "utf8"))).toEqual({ alice: "2025-06-01T12:00:00.000Z" })

      yield* TestClock.adjust(Duration.hours(1))
      yield* Effect.scoped(Effect.flatMap(keysOf(file), (keys) => keys.verify(bob)))
      expect(JSON.parse(readFileSync(lastUsedPath(file), "utf8"))).toEqual({
        alice: "2025-06-01T12:00:00.000Z",
        bob: "2025-06-01T13:00:00.000Z"
      })
    }))

  it.effect("a key removed and added again under its name was never used; a broken note is no note", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(noon)
      const alice = (yield* addKey(file, "alice", "user")).key
      yield* Effect.scoped(Effect.flatMap(keysOf(file), (keys) => keys.verify(alice)))
      yield* TestClock.adjust(Duration.minutes(5))
      yield* removeKey(file, "alice")
      yield* addKey(file, "alice", "admin")
      expect((yield* listKeys(file)).map((k) => k.lastUsed)).toEqual([Option.none()])

      writeFileSync(lastUsedPath(file), "not json")
      expect((yield* listKeys(file)).map((k) => k.name)).toEqual(["alice"])
    }))
})

describe("the keys file, as an operator may hold it", () => {
  it.scoped("a name removed and added again is another caller (its id is the new key's)", () =>
    Effect.gen(function*() {
      const first = (yield* addKey(file, "alice", "user")).key
      const keys = yield* keysOf(file)
      const before = Option.getOrThrow(yield* keys.verify(first))
      yield* removeKey(file, "alice")
      const second = (yield* addKey(file, "alice", "user")).key
      const after = Option.getOrThrow(yield* keys.verify(second))
      expect(after.name).toBe(before.name)
      expect(after.id).not.toBe(before.id)
      expect(before.id).toBe(hashKey(first).slice("sha256:".length, "sha256:".length + 16))
    }))

  it.scoped("through a symlink, the file it names is written, and the link stays", () =>
    Effect.gen(function*() {
      const real = path.join(path.dirname(file), "real", "keys.json")
      yield* addKey(real, "a", "user")
      const link = path.join(path.dirname(file), "link.json")
      symlinkSync(real, link)
      yield* addKey(link, "b", "user")
      expect(lstatSync(link).isSymbolicLink()).toBe(true)
      expect((yield* readKeys(real)).map((key) => key.name)).toEqual(["a", "b"])
    }))
})
