/**
 * One foreman process per database file. Two processes on one file would each re-queue and
 * run the other's jobs, on their own targets. The lock is SQLite's own file lock on a
 * companion file (`<db>.lock`), taken in exclusive locking mode and held while the scope is
 * open: the operating system drops it when the process ends, however it ends (SIGKILL
 * included), so it never goes stale as a PID file does; and the database itself stays
 * readable by other tools (the sqlite3 shell) while foreman runs.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { DatabaseInUse, isError } from "../../Errors.ts"
import { fileOf } from "./SqliteClient.ts"

/** The path with its links resolved, as far as it exists (the database may not yet). */
const realPath = (file: string): string => {
  try {
    return fs.realpathSync(file)
  } catch {
    const dir = path.dirname(file)
    return dir === file ? file : path.join(realPath(dir), path.basename(file))
  }
}

const isBusy = (cause: unknown) =>
  isError(cause) && ((cause as { errcode?: unknown }).errcode === 5 || /database is locked/i.test(cause.message))

/**
 * Holds the lock of `filename` until the scope closes; fails with `DatabaseInUse` at once if
 * another process (or another store in this one) holds it. Nothing for `:memory:`.
 */
export const acquire = (filename: string): Effect.Effect<void, DatabaseInUse, Scope.Scope> => {
  const file = fileOf(filename)
  if (file === undefined) return Effect.void
  // By the file's real path: a link to the database is the same database.
  const lockFile = `${realPath(path.resolve(file))}.lock`
  return Effect.acquireRelease(
    Effect.try({
      try: () => {
        fs.mkdirSync(path.dirname(lockFile), { recursive: true })
        const db = new DatabaseSync(lockFile)
        try {
          db.exec("PRAGMA busy_timeout = 0")
          db.exec("PRAGMA locking_mode = EXCLUSIVE")
          // The first write takes the exclusive lock; exclusive mode keeps it after the commit.
          db.exec("CREATE TABLE IF NOT EXISTS holder (pid INTEGER)")
          db.exec(`DELETE FROM holder; INSERT INTO holder VALUES (${process.pid})`)
        } catch (cause) {
          db.close()
          throw cause
        }
        return db
      },
      catch: (cause) =>
        new DatabaseInUse({
          path: path.resolve(file),
          message: isBusy(cause) ? "another foreman process uses it" : `its lock file ${lockFile} cannot be used: ${String(cause)}`
        })
    }),
    (db) => Effect.sync(() => db.close())
  ).pipe(Effect.asVoid)
}
