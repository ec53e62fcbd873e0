/** Set-up shared by the SQLite client's tests (under Node, and the Deno ones). */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as SqliteClient from "../../src/jobs/sqlite/SqliteClient.ts"

/** A fresh directory under the temp dir, removed when the test's scope closes. */
export const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "foreman-sqlite-test-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** Runs `effect` against a client on `filename`; the database is closed afterwards. */
export const withDb = <A, E>(
  config: SqliteClient.SqliteClientConfig,
  effect: Effect.Effect<A, E, SqlClient.SqlClient | SqliteClient.SqliteClient>
) => Effect.provide(effect, SqliteClient.layer(config))
