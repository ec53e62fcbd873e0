/**
 * Schema migrations, declared as effects (no files to glob, so it works the same under
 * Node's type stripping, Deno and a bundle) and run by `@effect/sql`'s `Migrator`:
 *
 *   const migrations = {
 *     "0001_create_jobs": Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE TABLE jobs (...)`),
 *     "0002_jobs_by_status": Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE INDEX ...`)
 *   }
 *   Migrator.layer({ migrations }).pipe(Layer.provide(SqliteClient.layer({ filename })))
 *
 * Keys are `<id>_<name>`; ids are positive integers run in ascending order. The ids that ran
 * are recorded in a table of the database (`effect_sql_migrations` unless `table` says
 * otherwise), and only ids greater than the latest recorded one run, so never renumber or
 * edit a migration that has shipped: add a new one. All pending migrations run in one
 * transaction: a failing one (a defect, `MigrationError` "failed") leaves the database as it
 * was. One `sql` template holds one statement (the client refuses more).
 */
import * as Migrator from "@effect/sql/Migrator"
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

export { MigrationError } from "@effect/sql/Migrator"

export type Migrations = Readonly<Record<string, Effect.Effect<unknown, unknown, SqlClient>>>

export interface MigrateOptions {
  readonly migrations: Migrations
  /** Where the ran migrations are recorded. Default `effect_sql_migrations`. */
  readonly table?: string | undefined
}

const keyPattern = /^[0-9]+_.+$/

const runMigrator = Migrator.make({})

/** Runs the pending migrations; succeeds with the `[id, name]` of each one that ran. */
export const run = (
  options: MigrateOptions
): Effect.Effect<ReadonlyArray<readonly [id: number, name: string]>, Migrator.MigrationError | SqlError, SqlClient> =>
  Effect.suspend(() => {
    // `fromRecord` skips a key it cannot parse without a word; a typo must not skip a migration.
    const bad = Object.keys(options.migrations).filter((key) => !keyPattern.test(key))
    if (bad.length > 0) {
      return Effect.fail(
        new Migrator.MigrationError({
          reason: "import-error",
          message: `Migration keys must look like "0001_name": ${bad.map((key) => JSON.stringify(key)).join(", ")}`
        })
      )
    }
    const loader = Migrator.fromRecord(options.migrations as Record<string, Effect.Effect<void, unknown, SqlClient>>)
    return runMigrator(options.table === undefined ? { loader } : { loader, table: options.table })
  })

/** Runs the pending migrations while the layer is built. */
export const layer = (options: MigrateOptions): Layer.Layer<never, Migrator.MigrationError | SqlError, SqlClient> =>
  Layer.effectDiscard(run(options))
