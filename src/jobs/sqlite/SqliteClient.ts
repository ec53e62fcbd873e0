/**
 * An `@effect/sql` `SqlClient` over Node's built-in `node:sqlite` (`DatabaseSync`), the
 * embedded default store. It loads on Node >= 22.16 (`StatementSync.columns`) and on Deno
 * 2.x, where better-sqlite3 (behind the official `@effect/sql-sqlite-node`) does not; it
 * follows that adapter's shape:
 * one connection, the SQLite statement compiler, a prepared-statement cache, and a
 * semaphore that gives a transaction the connection to itself.
 *
 * `node:sqlite` is synchronous: a statement blocks the event loop while it runs, and so
 * would SQLite's busy handler. Writers inside one process therefore queue on a semaphore
 * (shared by every client of the same file) instead of on SQLite's lock; `busy_timeout`
 * only ever waits for other processes. Transactions begin `IMMEDIATE`, so a transaction
 * takes the write lock up front and never fails half-way with `SQLITE_BUSY` when another
 * process wrote since it started reading.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as Client from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import * as Cache from "effect/Cache"
import * as Chunk from "effect/Chunk"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ConfigError } from "effect/ConfigError"
import * as fs from "node:fs"
import * as path from "node:path"
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite"
import { isError } from "../../Errors.ts"

export const TypeId: unique symbol = Symbol.for("foreman/SqliteClient")
export type TypeId = typeof TypeId

export interface SqliteClientConfig {
  /** A file path (its directory is created), or `":memory:"` for a throwaway database. */
  readonly filename: string
  readonly readonly?: boolean | undefined
  /** How long to wait for another process's lock (`PRAGMA busy_timeout`). Default 5 s. */
  readonly busyTimeout?: Duration.DurationInput | undefined
  /** Keep the rollback journal instead of switching a file to WAL. */
  readonly disableWAL?: boolean | undefined
  /** How a transaction starts. Default `BEGIN IMMEDIATE` (see the module comment). */
  readonly beginTransaction?: "BEGIN" | "BEGIN DEFERRED" | "BEGIN IMMEDIATE" | "BEGIN EXCLUSIVE" | undefined
  readonly prepareCacheSize?: number | undefined
  readonly prepareCacheTTL?: Duration.DurationInput | undefined
  readonly spanAttributes?: Record<string, unknown> | undefined
  /** Rename result columns, e.g. `String.snakeToCamel`. */
  readonly transformResultNames?: ((str: string) => string) | undefined
  /** Rename identifiers in queries, e.g. `String.camelToSnake`. */
  readonly transformQueryNames?: ((str: string) => string) | undefined
}

export interface SqliteClient extends Client.SqlClient {
  readonly [TypeId]: TypeId
  readonly config: SqliteClientConfig
  /** Not supported by SQLite. */
  readonly updateValues: never
}

export const SqliteClient = Context.GenericTag<SqliteClient>("foreman/SqliteClient")

const defaultBusyTimeout = Duration.seconds(5)
const streamChunkSize = 128

/**
 * The file a database name stands for: itself, or the path of an SQLite URI (`file:x.db`,
 * `file:///srv/x.db?cache=shared`, `%XX` escapes decoded); none for one in memory
 * (`:memory:`, `mode=memory`), nor for a URI naming another host (SQLite refuses it).
 */
export const fileOf = (filename: string): string | undefined => {
  if (filename === "" || filename === ":memory:") return undefined
  if (!filename.startsWith("file:")) return filename
  const [location = "", query = ""] = filename.slice("file:".length).split("#")[0]!.split("?", 2)
  if (new URLSearchParams(query).get("mode") === "memory") return undefined
  const authority = /^\/\/([^/]*)/.exec(location)
  if (authority !== null && authority[1] !== "" && authority[1]!.toLowerCase() !== "localhost") return undefined
  const local = (authority === null ? location : location.slice(authority[0].length)).replace(
    /(%[0-9A-Fa-f]{2})+/g,
    (escapes) => {
      try {
        return decodeURIComponent(escapes)
      } catch {
        return escapes
      }
    }
  )
  return local === "" || local === ":memory:" ? undefined : local
}


const describe = (cause: unknown): string => isError(cause) ? cause.message : String(cause)

const sqlError = (message: string) => (cause: unknown): SqlError =>
  new SqlError({ cause, message: `${message}: ${describe(cause)}` })

/**
 * `node:sqlite` binds only null, numbers, bigints, strings and byte arrays (Deno rejects
 * booleans too); map the other values a query is likely to carry.
 */
const bindable = (value: unknown): SQLInputValue => {
  if (typeof value === "boolean") return value ? 1 : 0
  if (value === undefined) return null
  if (value instanceof Date) return value.toISOString()
  return value as SQLInputValue
}

/** Anything but whitespace, semicolons and comments left after the first statement. */
const hasMoreStatements = (tail: string): boolean =>
  tail.replace(/\/\*[\s\S]*?(?:\*\/|$)/g, "").replace(/--[^\n]*/g, "").replace(/[\s;]/g, "").length > 0

interface Prepared {
  readonly statement: StatementSync
  /** Whether the statement returns rows. */
  readonly reader: boolean
}

/**
 * `DatabaseSync.prepare` compiles the first statement and silently drops the rest; refuse
 * such text (as better-sqlite3 does) so that a migration with two statements in one `sql`
 * template does not half-run.
 */
const prepare = (db: DatabaseSync, sql: string): Prepared => {
  const statement = db.prepare(sql)
  const source = statement.sourceSQL
  if (source.length < sql.length && sql.startsWith(source) && hasMoreStatements(sql.slice(source.length))) {
    throw new Error("The SQL text holds more than one statement; run them one at a time")
  }
  return { statement, reader: statement.columns().length > 0 }
}

/** One write semaphore per database file in this process, shared by all its clients. */
const fileLocks = new Map<string, { readonly semaphore: Effect.Semaphore; refs: number }>()

const writeLock = (filename: string): Effect.Effect<Effect.Semaphore, never, Scope.Scope> => {
  const file = fileOf(filename)
  if (file === undefined) return Effect.makeSemaphore(1)
  const key = path.resolve(file)
  return Effect.acquireRelease(
    Effect.sync(() => {
      const entry = fileLocks.get(key) ?? { semaphore: Effect.unsafeMakeSemaphore(1), refs: 0 }
      entry.refs += 1
      fileLocks.set(key, entry)
      return entry.semaphore
    }),
    () =>
      Effect.sync(() => {
        const entry = fileLocks.get(key)
        if (entry !== undefined && --entry.refs === 0) fileLocks.delete(key)
      })
  )
}

const open = (options: SqliteClientConfig): Effect.Effect<DatabaseSync, SqlError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        const { filename } = options
        const readonly = options.readonly === true
        const file = fileOf(filename)
        if (file !== undefined && !readonly) fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true })
        const db = new DatabaseSync(filename, { readOnly: readonly })
        try {
          // First, so that switching to WAL below waits for another process's lock.
          const busyMs = Math.max(0, Math.round(Duration.toMillis(options.busyTimeout ?? defaultBusyTimeout)))
          db.exec(`PRAGMA busy_timeout = ${busyMs}`)
          if (!readonly && options.disableWAL !== true) db.exec("PRAGMA journal_mode = WAL")
          db.exec("PRAGMA foreign_keys = ON")
          db.exec("PRAGMA synchronous = NORMAL")
        } catch (cause) {
          db.close()
          throw cause
        }
        return db
      },
      catch: sqlError(`Failed to open SQLite database "${options.filename}"`)
    }),
    (db) =>
      Effect.try(() => {
        if (db.isOpen) db.close()
      }).pipe(Effect.ignoreLogged)
  )

const makeConnection = (db: DatabaseSync, options: SqliteClientConfig) =>
  Effect.gen(function*() {
    const prepareCache = yield* Cache.make({
      capacity: options.prepareCacheSize ?? 200,
      timeToLive: options.prepareCacheTTL ?? Duration.minutes(10),
      lookup: (sql: string) =>
        Effect.try({ try: () => prepare(db, sql), catch: sqlError("Failed to prepare statement") })
    })
    // A failure (say, a table a migration has not created yet) must not stick.
    const prepared = (sql: string) => Effect.tapError(prepareCache.get(sql), () => prepareCache.invalidate(sql))

    const runPrepared = (
      { reader, statement }: Prepared,
      params: ReadonlyArray<unknown>,
      raw: boolean
    ): Effect.Effect<ReadonlyArray<any>, SqlError> =>
      Effect.withFiberRuntime((fiber) =>
        Effect.try({
          try: () => {
            statement.setReadBigInts(Context.get(fiber.currentContext, Client.SafeIntegers))
            const args = params.map(bindable)
            if (reader) return statement.all(...args)
            const result = statement.run(...args)
            return raw ? result as unknown as ReadonlyArray<any> : []
          },
          catch: sqlError("Failed to execute statement")
        })
      )

    const run = (sql: string, params: ReadonlyArray<unknown>, raw: boolean) =>
      Effect.flatMap(prepared(sql), (statement) => runPrepared(statement, params, raw))

    const runValues = (sql: string, params: ReadonlyArray<unknown>) =>
      Effect.flatMap(prepared(sql), ({ reader, statement }) =>
        Effect.withFiberRuntime<ReadonlyArray<ReadonlyArray<unknown>>, SqlError>((fiber) =>
          Effect.try({
            try: () => {
              statement.setReadBigInts(Context.get(fiber.currentContext, Client.SafeIntegers))
              const args = params.map(bindable)
              if (!reader) {
                statement.run(...args)
                return []
              }
              statement.setReturnArrays(true)
              try {
                return statement.all(...args) as unknown as ReadonlyArray<ReadonlyArray<unknown>>
              } finally {
                statement.setReturnArrays(false)
              }
            },
            catch: sqlError("Failed to execute statement")
          })
        ))

    // Rows are read lazily, a chunk at a time, through a statement of its own (a cached
    // one may be reset by another query while the stream is open).
    const stream = (
      sql: string,
      params: ReadonlyArray<unknown>,
      transformRows: (<A extends object>(row: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined
    ): Stream.Stream<any, SqlError> =>
      Stream.unwrapScoped(Effect.gen(function*() {
        const safeIntegers = yield* Client.SafeIntegers
        const iterator = yield* Effect.acquireRelease(
          Effect.try({
            try: () => {
              const { statement } = prepare(db, sql)
              statement.setReadBigInts(safeIntegers)
              return statement.iterate(...params.map(bindable))
            },
            catch: sqlError("Failed to execute statement")
          }),
          (iterator) => Effect.sync(() => iterator.return?.())
        )
        let done = false
        const pull = Effect.suspend(() => {
          if (done) return Effect.fail(Option.none())
          return Effect.try({
            try: () => {
              const rows: Array<object> = []
              while (rows.length < streamChunkSize) {
                const next = iterator.next()
                if (next.done === true) {
                  done = true
                  break
                }
                rows.push(next.value)
              }
              return rows
            },
            catch: (cause) => Option.some(sqlError("Failed to read rows")(cause))
          }).pipe(Effect.flatMap((rows) =>
            rows.length === 0
              ? Effect.fail(Option.none())
              : Effect.succeed(Chunk.unsafeFromArray(transformRows ? transformRows(rows) : rows))
          ))
        })
        return Stream.repeatEffectChunkOption(pull)
      }))

    const connection: Connection = {
      execute(sql, params, transformRows) {
        const rows = run(sql, params, false)
        return transformRows ? Effect.map(rows, transformRows) : rows
      },
      executeRaw(sql, params) {
        return run(sql, params, true)
      },
      executeValues(sql, params) {
        return runValues(sql, params)
      },
      executeUnprepared(sql, params, transformRows) {
        const rows = Effect.flatMap(
          Effect.try({ try: () => prepare(db, sql), catch: sqlError("Failed to prepare statement") }),
          (prepared) => runPrepared(prepared, params ?? [], false)
        )
        return transformRows ? Effect.map(rows, transformRows) : rows
      },
      executeStream(sql, params, transformRows) {
        return stream(sql, params, transformRows)
      }
    }
    return connection
  })

/**
 * A client on one connection to `options.filename`, open until the scope closes. Fails with
 * `SqlError` when the file cannot be opened.
 */
export const make = (
  options: SqliteClientConfig
): Effect.Effect<SqliteClient, SqlError, Scope.Scope | Reactivity.Reactivity> =>
  Effect.gen(function*() {
    const compiler = Statement.makeCompilerSqlite(options.transformQueryNames)
    const transformRows = options.transformResultNames
      ? Statement.defaultTransforms(options.transformResultNames).array
      : undefined

    // Released after the database is closed (finalizers run in reverse).
    const semaphore = yield* writeLock(options.filename)
    const db = yield* open(options)
    const connection = yield* makeConnection(db, options)

    const acquirer = semaphore.withPermits(1)(Effect.succeed(connection))
    const transactionAcquirer = Effect.uninterruptibleMask((restore) =>
      Effect.as(
        Effect.zipRight(
          restore(semaphore.take(1)),
          Effect.tap(Effect.scope, (scope) =>
            Scope.addFinalizer(
              scope,
              // A failed COMMIT can leave the transaction open; never hand it to the next user.
              Effect.try(() => {
                if (db.isOpen && db.isTransaction) db.exec("ROLLBACK")
              }).pipe(Effect.ignoreLogged, Effect.zipRight(semaphore.release(1)))
            ))
        ),
        connection
      )
    )

    const client = yield* Client.make({
      acquirer,
      compiler,
      transactionAcquirer,
      beginTransaction: options.beginTransaction ?? "BEGIN IMMEDIATE",
      spanAttributes: [
        ...(options.spanAttributes ? Object.entries(options.spanAttributes) : []),
        ["db.system.name", "sqlite"]
      ],
      transformRows
    })

    return Object.assign(client as SqliteClient, {
      [TypeId]: TypeId as TypeId,
      config: options
    })
  })

const toContext = (client: SqliteClient) =>
  Context.make(SqliteClient, client).pipe(Context.add(Client.SqlClient, client))

export const layer = (
  config: SqliteClientConfig
): Layer.Layer<SqliteClient | Client.SqlClient, SqlError> =>
  Layer.scopedContext(Effect.map(make(config), toContext)).pipe(Layer.provide(Reactivity.layer))

export const layerConfig = (
  config: Config.Config.Wrap<SqliteClientConfig>
): Layer.Layer<SqliteClient | Client.SqlClient, ConfigError | SqlError> =>
  Layer.scopedContext(
    Config.unwrap(config).pipe(Effect.flatMap(make), Effect.map(toContext))
  ).pipe(Layer.provide(Reactivity.layer))
