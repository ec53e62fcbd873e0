/**
 * The `node:sqlite` SqlClient under Deno, as a `deno run` process: what it writes Node reads,
 * and the two write the same file at once without SQLITE_BUSY.
 */
import { describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import { Chunk, Effect, Option, Sink, Stream } from "effect"
import { spawn } from "node:child_process"
import * as path from "node:path"
import { createInterface } from "node:readline"
import { tempDir, withDb } from "./support/sqlite.ts"

const root = new URL("..", import.meta.url).pathname
const deno = path.join(root, "node_modules/.bin/deno")
const checkScript = path.join(root, "test/support/sqlite-deno-check.ts")


describe("under Deno", () => {
  /** `deno run -A test/support/sqlite-deno-check.ts <args>`; its stdout lines, as they come. */
  const runCheck = (args: ReadonlyArray<string>) =>
    Effect.acquireRelease(
      Effect.sync(() => spawn(deno, ["run", "-A", checkScript, ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] })),
      (child) => Effect.sync(() => child.exitCode === null && child.kill())
    ).pipe(Effect.map((child) => {
      let stderr = ""
      child.stderr.on("data", (chunk) => (stderr += chunk))
      const lines = Stream.async<string, Error>((emit) => {
        createInterface({ input: child.stdout }).on("line", (line) => emit.single(line))
        child.once("close", (code) =>
          code === 0 ? emit.end() : emit.fail(new Error(`deno exited with ${code}:\n${stderr}`)))
      })
      return lines.pipe(Stream.map((line) => JSON.parse(line) as Record<string, unknown>))
    }))

  it.live("opens, migrates, writes and reads a file with deno run", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const filename = path.join(dir, "deno", "check.db")
      const output = yield* Stream.runCollect(yield* runCheck([filename]))
      expect(Chunk.toReadonlyArray(output)).toEqual([{
        runtime: "deno",
        filename,
        journalMode: "wal",
        busyTimeout: 5000,
        count: 1,
        first: { id: 1, text: "hello from the store", done: 1 }
      }])
      // What Deno wrote, Node reads.
      const rows = yield* withDb({ filename }, Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT text FROM notes`))
      expect(rows).toEqual([{ text: "hello from the store" }])
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("writes alongside another process on the same file without SQLITE_BUSY", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const filename = path.join(dir, "shared.db")
      const lines = yield* runCheck([filename, "4000"])
      // Deno has created the schema and is about to write 4000 rows, one transaction each;
      // ours (400) land in between (ids interleave), each waiting on the other's lock.
      const [ready, rest] = yield* Stream.peel(lines, Sink.head())
      expect(ready).toEqual(Option.some({ ready: true }))
      const ours = withDb(
        { filename },
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          for (let i = 1; i <= 400; i++) {
            yield* sql.withTransaction(sql`INSERT INTO notes ${sql.insert({ text: `note ${i} from node`, done: false })}`)
          }
        })
      )
      const [, theirs] = yield* Effect.all([ours, Stream.runCollect(rest)], { concurrency: "unbounded" })
      expect(Chunk.toReadonlyArray(theirs)).toHaveLength(1)
      const counts = yield* withDb(
        { filename },
        Effect.flatMap(
          SqlClient.SqlClient,
          (sql) => sql`SELECT done, count(*) AS n FROM notes GROUP BY done ORDER BY done`
        )
      )
      expect(counts).toEqual([{ done: 0, n: 400 }, { done: 1, n: 4000 }])
    }).pipe(Effect.scoped), { timeout: 60_000 })
})
