/**
 * Opens a SQLite file through the `node:sqlite` client layer, runs a migration, writes rows
 * (one transaction each) and reads them back, and prints one JSON line. Run it with
 * `deno run -A test/support/sqlite-deno-check.ts [file] [inserts]` (or with Node) to see
 * that the store's client works on that runtime; test/SqliteClient.test.ts runs it under
 * Deno. Without a file argument it uses a fresh file under the temp dir and removes it
 * afterwards. With more than one insert it first prints `{"ready":true}` once the schema is
 * in place, so that another process can start writing alongside.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Console, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Migrator from "../../src/jobs/sqlite/migrator.ts"
import * as SqliteClient from "../../src/jobs/sqlite/SqliteClient.ts"

const given = process.argv[2] || undefined
const inserts = Number(process.argv[3] ?? "1")
const dir = given === undefined ? fs.mkdtempSync(path.join(os.tmpdir(), "foreman-sqlite-check-")) : undefined
const filename = given ?? path.join(dir!, "nested", "check.db")
const runtime = "Deno" in globalThis ? "deno" : "node"

const migrations: Migrator.Migrations = {
  "0001_create_notes": Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL, done INTEGER NOT NULL)`
  )
}

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  if (inserts > 1) yield* Console.log(JSON.stringify({ ready: true }))
  for (let i = 1; i <= inserts; i++) {
    const text = inserts === 1 ? "hello from the store" : `note ${i} from ${runtime}`
    yield* sql.withTransaction(sql`INSERT INTO notes ${sql.insert({ text, done: true })}`)
  }
  const [{ count }] = yield* sql<{ count: number }>`SELECT count(*) AS count FROM notes`
  const [first] = yield* sql<{ id: number; text: string; done: number }>`SELECT id, text, done FROM notes ORDER BY id LIMIT 1`
  const [{ journal_mode }] = yield* sql<{ journal_mode: string }>`PRAGMA journal_mode`
  const [{ timeout }] = yield* sql<{ timeout: number }>`PRAGMA busy_timeout`
  yield* Console.log(JSON.stringify({ runtime, filename, journalMode: journal_mode, busyTimeout: timeout, count, first }))
})

const StoreLive = Migrator.layer({ migrations }).pipe(
  Layer.provideMerge(SqliteClient.layer({ filename }))
)

await Effect.runPromise(program.pipe(Effect.provide(StoreLive))).finally(() => {
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true })
})
