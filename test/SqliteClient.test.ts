/**
 * The `node:sqlite` SqlClient the job store sits on: queries, transactions, concurrent
 * writers, files that outlive the process, pragmas, migrations (the same client under Deno:
 * SqliteClient.deno.test.ts).
 */
import { describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Chunk, Effect, Exit, Layer, Ref, Stream, String as Str } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Migrator from "../src/jobs/sqlite/migrator.ts"
import * as SqliteClient from "../src/jobs/sqlite/SqliteClient.ts"
import { tempDir, withDb } from "./support/sqlite.ts"


const memory = { filename: ":memory:" }

const createPeople = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql`CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, age INTEGER)`
)

const count = (table: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(sql<{ n: number }>`SELECT count(*) AS n FROM ${sql(table)}`, ([row]) => row.n))

describe("SqliteClient", () => {
  it.scoped("runs parameterised queries through the sql template", () =>
    withDb(
      memory,
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createPeople
        yield* sql`INSERT INTO people ${sql.insert({ name: "ada", age: 36 })}`
        yield* sql`INSERT INTO people ${sql.insert([{ name: "grace", age: 85 }, { name: "alan", age: 41 }])}`
        // A value that looks like SQL is a parameter, not SQL.
        const evil = "x'); DROP TABLE people; --"
        yield* sql`INSERT INTO people (name, age) VALUES (${evil}, ${null})`

        const byName = yield* sql<{ id: number; age: number }>`SELECT id, age FROM people WHERE name = ${"grace"}`
        expect(byName).toEqual([{ id: 2, age: 85 }])

        yield* sql`UPDATE people SET age = ${37} WHERE name = ${"ada"}`
        const some = yield* sql<{ name: string; age: number }>`
          SELECT name, age FROM people WHERE name IN ${sql.in(["ada", "alan"])} ORDER BY name`
        expect(some).toEqual([{ name: "ada", age: 37 }, { name: "alan", age: 41 }])

        const inserted = yield* sql<{ id: number }>`INSERT INTO people ${sql.insert({ name: "edsger" })} RETURNING id`
        expect(inserted).toEqual([{ id: 5 }])
        expect(yield* count("people")).toBe(5)
        expect(yield* sql`SELECT age FROM people WHERE name = ${evil}`).toEqual([{ age: null }])
      })
    ))

  it.scoped("binds booleans as 1/0 and reads big integers on request", () =>
    withDb(
      memory,
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE flags (on_ INTEGER, big INTEGER)`
        yield* sql`INSERT INTO flags ${sql.insert({ on_: true, big: 2n ** 62n })}`
        expect(yield* sql`SELECT on_ FROM flags`).toEqual([{ on_: 1 }])
        const [row] = yield* sql<{ big: bigint }>`SELECT big FROM flags`.pipe(
          Effect.provideService(SqlClient.SafeIntegers, true)
        )
        expect(row.big).toBe(2n ** 62n)
      })
    ))

  it.scoped("offers values, raw results and streams", () =>
    withDb(
      memory,
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE n (i INTEGER)`
        const raw = yield* sql`INSERT INTO n ${sql.insert(Array.from({ length: 300 }, (_, i) => ({ i })))}`.raw
        expect(raw).toMatchObject({ changes: 300 })
        expect(yield* sql`SELECT i, i * 2 AS i FROM n WHERE i < 2 ORDER BY i`.values).toEqual([[0, 0], [1, 2]])
        // Rows come back as objects again after `values`.
        expect(yield* sql`SELECT i FROM n WHERE i = 1`).toEqual([{ i: 1 }])
        const streamed = yield* Stream.runCollect(sql<{ i: number }>`SELECT i FROM n ORDER BY i`.stream)
        expect(Chunk.toReadonlyArray(streamed).map((row) => row.i)).toEqual(Array.from({ length: 300 }, (_, i) => i))
      })
    ))

  it.scoped("renames columns both ways with the transform options", () =>
    withDb(
      { filename: ":memory:", transformQueryNames: Str.camelToSnake, transformResultNames: Str.snakeToCamel },
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE jobs (job_id TEXT, created_at INTEGER)`
        yield* sql`INSERT INTO jobs ${sql.insert({ jobId: "a", createdAt: 1 })}`
        expect(yield* sql`SELECT * FROM jobs`).toEqual([{ jobId: "a", createdAt: 1 }])
      })
    ))

  it.scoped("fails with SqlError on bad SQL, constraint violations and several statements at once", () =>
    withDb(
      memory,
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createPeople
        const missing = yield* Effect.flip(sql`SELECT * FROM nowhere`)
        expect(missing).toBeInstanceOf(SqlError)
        expect(missing.message).toContain("no such table: nowhere")

        yield* sql`INSERT INTO people ${sql.insert({ name: "ada" })}`
        const duplicate = yield* Effect.flip(sql`INSERT INTO people ${sql.insert({ name: "ada" })}`)
        expect(duplicate.message).toContain("UNIQUE constraint failed")

        // node:sqlite would run the first statement and drop the second without a word.
        const two = yield* Effect.flip(sql`CREATE TABLE a (x); CREATE TABLE b (y)`)
        expect(two.message).toContain("more than one statement")
        expect(yield* sql`SELECT name FROM sqlite_master WHERE name IN ('a', 'b')`).toEqual([])
        // A trailing semicolon or comment is not a second statement.
        expect(yield* sql`SELECT 1 AS one; -- done`).toEqual([{ one: 1 }])

        // A table that did not exist at first works once it does (failed prepares are not cached).
        yield* sql`CREATE TABLE nowhere (x)`
        expect(yield* sql`SELECT * FROM nowhere`).toEqual([])
      })
    ))

  it.scoped("commits a transaction and rolls it back on failure", () =>
    withDb(
      memory,
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createPeople
        yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO people ${sql.insert({ name: "ada" })}`
          yield* sql`INSERT INTO people ${sql.insert({ name: "grace" })}`
        }))
        expect(yield* count("people")).toBe(2)

        const failed = yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO people ${sql.insert({ name: "alan" })}`
          yield* sql`INSERT INTO people ${sql.insert({ name: "edsger" })}`
          return yield* Effect.fail("boom" as const)
        })).pipe(Effect.exit)
        expect(failed).toStrictEqual(Exit.fail("boom"))
        expect(yield* count("people")).toBe(2)

        // A failing statement inside rolls back the ones before it, and the connection is usable.
        const conflict = yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO people ${sql.insert({ name: "barbara" })}`
          yield* sql`INSERT INTO people ${sql.insert({ name: "ada" })}`
        })).pipe(Effect.flip)
        expect(conflict).toBeInstanceOf(SqlError)
        expect(yield* sql`SELECT name FROM people ORDER BY name`).toEqual([{ name: "ada" }, { name: "grace" }])

        // A defect rolls back too.
        yield* sql.withTransaction(
          Effect.zipRight(sql`INSERT INTO people ${sql.insert({ name: "niklaus" })}`, Effect.die("bug"))
        ).pipe(Effect.exit)
        expect(yield* count("people")).toBe(2)
      })
    ))

  it.scoped("nests transactions as savepoints", () =>
    withDb(
      memory,
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createPeople
        yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO people ${sql.insert({ name: "outer" })}`
          const inner = yield* sql.withTransaction(
            Effect.zipRight(sql`INSERT INTO people ${sql.insert({ name: "inner" })}`, Effect.fail("inner failed"))
          ).pipe(Effect.flip)
          expect(inner).toBe("inner failed")
          yield* sql.withTransaction(sql`INSERT INTO people ${sql.insert({ name: "kept" })}`)
        }))
        expect(yield* sql`SELECT name FROM people ORDER BY id`).toEqual([{ name: "outer" }, { name: "kept" }])

        // An outer failure undoes what a committed savepoint wrote.
        yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql.withTransaction(sql`INSERT INTO people ${sql.insert({ name: "gone" })}`)
          return yield* Effect.fail("outer failed")
        })).pipe(Effect.exit)
        expect(yield* count("people")).toBe(2)
      })
    ))

  it.scoped("serialises concurrent transactions: no lost updates, no SQLITE_BUSY", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* withDb(
        { filename: path.join(dir, "concurrent.db") },
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`CREATE TABLE seq (n INTEGER PRIMARY KEY, writer TEXT NOT NULL)`
          // Read-then-write with a yield in between: only isolation keeps `n` unique.
          const next = (writer: string) =>
            sql.withTransaction(Effect.gen(function*() {
              const [{ m }] = yield* sql<{ m: number }>`SELECT coalesce(max(n), 0) AS m FROM seq`
              yield* Effect.yieldNow()
              yield* sql`INSERT INTO seq ${sql.insert({ n: m + 1, writer })}`
            }))
          const writer = (name: string) => Effect.forEach(Array.from({ length: 250 }), () => next(name), { discard: true })
          yield* Effect.all([writer("a"), writer("b"), sql`SELECT count(*) FROM seq`], { concurrency: "unbounded" })

          const rows = yield* sql<{ n: number; writer: string }>`SELECT n, writer FROM seq ORDER BY n`
          expect(rows.map((row) => row.n)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1))
          expect(rows.filter((row) => row.writer === "a")).toHaveLength(250)
        })
      )
    }))

  it.scoped("lets two clients of one file in one process write concurrently", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      // A short busy timeout: were the clients to meet on SQLite's lock (which blocks the
      // event loop), this would fail with SQLITE_BUSY instead of waiting its turn.
      const config = { filename: path.join(dir, "shared.db"), busyTimeout: "200 millis" } as const
      const first = yield* Layer.build(SqliteClient.layer(config))
      const second = yield* Layer.build(SqliteClient.layer(config))
      const one = SqlClient.SqlClient.pipe(Effect.provide(first))
      const two = SqlClient.SqlClient.pipe(Effect.provide(second))
      const sqlA = yield* one
      const sqlB = yield* two
      yield* sqlA`CREATE TABLE t (writer TEXT, i INTEGER)`
      const writer = (sql: SqlClient.SqlClient, name: string) =>
        Effect.forEach(
          Array.from({ length: 100 }, (_, i) => i),
          (i) =>
            sql.withTransaction(
              Effect.zipRight(sql`INSERT INTO t ${sql.insert({ writer: name, i })}`, Effect.yieldNow())
            ),
          { discard: true }
        )
      yield* Effect.all([writer(sqlA, "a"), writer(sqlB, "b")], { concurrency: "unbounded" })
      expect(yield* sqlB`SELECT writer, count(*) AS n FROM t GROUP BY writer ORDER BY writer`).toEqual([
        { writer: "a", n: 100 },
        { writer: "b", n: 100 }
      ])
    }))

  it.scoped("keeps a file's rows across reopenings and closes it with its scope", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      // The parent directories do not exist yet, like the default --db on a fresh machine.
      const filename = path.join(dir, "data", "foreman", "jobs.db")
      yield* withDb(
        { filename },
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* createPeople
          yield* sql.withTransaction(sql`INSERT INTO people ${sql.insert([{ name: "ada" }, { name: "grace" }])}`)
        })
      )
      expect(fs.existsSync(filename)).toBe(true)
      // The last connection to close checkpoints the WAL into the file and removes it.
      expect(fs.existsSync(`${filename}-wal`)).toBe(false)

      const names = yield* withDb(
        { filename },
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ name: string }>`SELECT name FROM people ORDER BY id`)
      )
      expect(names).toEqual([{ name: "ada" }, { name: "grace" }])
    }))

  it.scoped("sets WAL, busy_timeout, foreign keys and synchronous=NORMAL on open", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const pragmas = Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const [{ journal_mode }] = yield* sql<{ journal_mode: string }>`PRAGMA journal_mode`
        const [{ timeout }] = yield* sql<{ timeout: number }>`PRAGMA busy_timeout`
        const [{ foreign_keys }] = yield* sql<{ foreign_keys: number }>`PRAGMA foreign_keys`
        const [{ synchronous }] = yield* sql<{ synchronous: number }>`PRAGMA synchronous`
        return { journal_mode, timeout, foreign_keys, synchronous }
      })
      expect(yield* withDb({ filename: path.join(dir, "a.db") }, pragmas)).toEqual({
        journal_mode: "wal",
        timeout: 5000,
        foreign_keys: 1,
        synchronous: 1
      })
      expect(yield* withDb({ filename: path.join(dir, "b.db"), busyTimeout: "1500 millis" }, pragmas)).toMatchObject({
        journal_mode: "wal",
        timeout: 1500
      })
      expect(yield* withDb({ filename: path.join(dir, "c.db"), disableWAL: true }, pragmas)).toMatchObject({
        journal_mode: "delete"
      })
      expect(yield* withDb(memory, pragmas)).toMatchObject({ journal_mode: "memory", foreign_keys: 1 })
    }))

  it.scoped("enforces foreign keys", () =>
    withDb(
      memory,
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE parent (id INTEGER PRIMARY KEY)`
        yield* sql`CREATE TABLE child (parent INTEGER NOT NULL REFERENCES parent (id))`
        const error = yield* Effect.flip(sql`INSERT INTO child ${sql.insert({ parent: 42 })}`)
        expect(error.message).toContain("FOREIGN KEY constraint failed")
      })
    ))

  it.scoped("gives each :memory: client a database of its own", () =>
    Effect.gen(function*() {
      yield* withDb(memory, createPeople)
      const tables = yield* withDb(
        memory,
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT name FROM sqlite_master WHERE type = 'table'`)
      )
      expect(tables).toEqual([])
    }))

  it.scoped("fails with SqlError when the file cannot be opened", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const notADirectory = path.join(dir, "plain-file")
      fs.writeFileSync(notADirectory, "")
      const error = yield* Effect.flip(withDb({ filename: path.join(notADirectory, "jobs.db") }, Effect.void))
      expect(error).toBeInstanceOf(SqlError)
      expect(error.message).toContain("Failed to open SQLite database")
    }))
})

describe("fileOf: the file a database name stands for", () => {
  it("a path is itself; an SQLite URI is its path; memory and other hosts are no file", () => {
    expect(SqliteClient.fileOf("/srv/jobs.db")).toBe("/srv/jobs.db")
    expect(SqliteClient.fileOf("file:/srv/jobs.db?cache=shared")).toBe("/srv/jobs.db")
    expect(SqliteClient.fileOf("file:///srv/jobs.db")).toBe("/srv/jobs.db")
    expect(SqliteClient.fileOf("file://localhost/srv/jobs.db")).toBe("/srv/jobs.db")
    expect(SqliteClient.fileOf("file:relative.db")).toBe("relative.db")
    expect(SqliteClient.fileOf("file:a%20b%C3%A9.db#x")).toBe("a bé.db")
    // A % that is no escape stays as written (SQLite opens `50%.db`).
    expect(SqliteClient.fileOf("file:50%.db")).toBe("50%.db")
    expect(SqliteClient.fileOf("file:%ff.db")).toBe("%ff.db")
    expect(SqliteClient.fileOf("file://otherhost/x.db")).toBeUndefined()
    expect(SqliteClient.fileOf("file://localhost")).toBeUndefined()
    expect(SqliteClient.fileOf("file::memory:")).toBeUndefined()
    expect(SqliteClient.fileOf("file:x.db?mode=memory")).toBeUndefined()
    expect(SqliteClient.fileOf(":memory:")).toBeUndefined()
    expect(SqliteClient.fileOf("")).toBeUndefined()
  })
})

describe("migrator", () => {
  const makeMigrations = (ran: Ref.Ref<ReadonlyArray<string>>) => {
    const migration = (name: string, statement: (sql: SqlClient.SqlClient) => Effect.Effect<unknown, unknown>) =>
      Effect.gen(function*() {
        yield* Ref.update(ran, (names) => [...names, name])
        yield* statement(yield* SqlClient.SqlClient)
      })
    return {
      "0001_create_jobs": migration("create_jobs", (sql) => sql`CREATE TABLE jobs (id TEXT PRIMARY KEY)`),
      "0002_add_status": migration("add_status", (sql) => sql`ALTER TABLE jobs ADD COLUMN status TEXT`),
      "0003_jobs_by_status": migration("jobs_by_status", (sql) => sql`CREATE INDEX jobs_by_status ON jobs (status)`)
    }
  }

  it.scoped("runs each migration once across reopenings", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const filename = path.join(dir, "migrated.db")
      const ran = yield* Ref.make<ReadonlyArray<string>>([])
      const all = makeMigrations(ran)
      const { "0003_jobs_by_status": third, ...firstTwo } = all

      expect(yield* withDb({ filename }, Migrator.run({ migrations: firstTwo }))).toEqual([
        [1, "create_jobs"],
        [2, "add_status"]
      ])
      expect(yield* withDb({ filename }, Migrator.run({ migrations: firstTwo }))).toEqual([])
      expect(yield* withDb({ filename }, Migrator.run({ migrations: { ...firstTwo, "0003_jobs_by_status": third } })))
        .toEqual([[3, "jobs_by_status"]])
      expect(yield* withDb({ filename }, Migrator.run({ migrations: all }))).toEqual([])
      expect(yield* Ref.get(ran)).toEqual(["create_jobs", "add_status", "jobs_by_status"])

      // Through the layer, as the store will use it.
      const StoreLive = Migrator.layer({ migrations: all }).pipe(Layer.provideMerge(SqliteClient.layer({ filename })))
      const recorded = yield* Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql`SELECT migration_id, name FROM effect_sql_migrations ORDER BY migration_id`
      ).pipe(Effect.provide(StoreLive))
      expect(recorded).toEqual([
        { migration_id: 1, name: "create_jobs" },
        { migration_id: 2, name: "add_status" },
        { migration_id: 3, name: "jobs_by_status" }
      ])
      expect(yield* Ref.get(ran)).toHaveLength(3)
    }))

  it.scoped("leaves the database as it was when a migration fails", () =>
    withDb(
      memory,
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const migrations: Migrator.Migrations = {
          "0001_create_jobs": sql`CREATE TABLE jobs (id TEXT PRIMARY KEY)`,
          "0002_broken": sql`ALTER TABLE nowhere ADD COLUMN x TEXT`
        }
        const exit = yield* Effect.exit(Migrator.run({ migrations, table: "foreman_migrations" }))
        expect(Exit.isFailure(exit)).toBe(true)
        expect(yield* sql`SELECT name FROM sqlite_master WHERE name = 'jobs'`).toEqual([])
        expect(yield* sql`SELECT * FROM foreman_migrations`).toEqual([])
      })
    ))

  it.scoped("refuses a migration key it cannot order", () =>
    withDb(
      memory,
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const error = yield* Effect.flip(Migrator.run({ migrations: { "create_jobs": sql`CREATE TABLE jobs (id TEXT)` } }))
        expect(error).toBeInstanceOf(Migrator.MigrationError)
        expect(error.message).toContain(`"create_jobs"`)
      })
    ))
})
