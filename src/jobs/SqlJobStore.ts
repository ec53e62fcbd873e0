/**
 * The JobStore on `@effect/sql`: SQLite by default (`node:sqlite`, see `sqlite/`), any
 * `SqlClient` in principle. A broken database is a defect: the jobs API answers 500 and
 * the log says why, rather than every caller handling storage errors.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { priorities } from "../scheduler/policy.ts"
import { type JobRecord, JobStatus, JobStore, type JobStoreService } from "./JobStore.ts"
import * as Migrator from "./sqlite/migrator.ts"

export const migrations: Migrator.Migrations = {
  "0001_create_jobs": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`
      CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        model TEXT NOT NULL,
        priority TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        error TEXT
      )`
    yield* sql`CREATE INDEX jobs_status_seq ON jobs (status, seq)`
    yield* sql`CREATE INDEX jobs_finished_at ON jobs (finished_at)`
  }),
  // Jobs stored before keys existed have no owner: they are admin's.
  "0002_job_owner": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`ALTER TABLE jobs ADD COLUMN owner TEXT`
    yield* sql`CREATE INDEX jobs_owner_seq ON jobs (owner, seq)`
  }),
  // A job pinned to a target (`X-Foreman-Target`) stays pinned across restarts.
  "0003_job_target": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`ALTER TABLE jobs ADD COLUMN target TEXT`
  })
}

/** Runs the migrations this store needs (each once per database). */
export const migrate = Migrator.run({ migrations })

/** A column under its SQL name, as the record's field. */
const column = <S extends Schema.Schema.Any, const K extends string>(schema: S, name: K) => Schema.propertySignature(schema).pipe(Schema.fromKey(name))

/** A `jobs` row, decoded into the record the store hands out. */
const JobRow = Schema.Struct({
  seq: Schema.Number,
  id: Schema.String,
  status: JobStatus,
  endpoint: Schema.String,
  model: Schema.String,
  priority: Schema.Literal(...priorities),
  body: Schema.String,
  createdAt: column(Schema.Number, "created_at"),
  startedAt: column(Schema.NullOr(Schema.Number), "started_at"),
  finishedAt: column(Schema.NullOr(Schema.Number), "finished_at"),
  attempts: Schema.Number,
  result: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String),
  owner: Schema.NullOr(Schema.String),
  target: Schema.NullOr(Schema.String)
})

const decodeRows: (rows: unknown) => Effect.Effect<ReadonlyArray<JobRecord>, ParseResult.ParseError> = Schema.decodeUnknown(
  Schema.Array(JobRow)
)
const decodeAttempts = Schema.decodeUnknown(Schema.Array(Schema.Struct({ attempts: Schema.Number })))
const decodeCounts = Schema.decodeUnknown(Schema.Array(Schema.Struct({ status: JobStatus, n: Schema.Number })))

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* migrate

  const rows = <E>(query: Effect.Effect<ReadonlyArray<unknown>, E>) =>
    query.pipe(Effect.flatMap(decodeRows), Effect.orDie)

  const counted = <E>(query: Effect.Effect<ReadonlyArray<unknown>, E>) =>
    query.pipe(
      Effect.flatMap(decodeCounts),
      Effect.map((rs) => {
        const counts: Record<JobStatus, number> = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 }
        for (const r of rs) counts[r.status] = r.n
        return counts
      }),
      Effect.orDie
    )

  const get = (id: string) => rows(sql`SELECT * FROM jobs WHERE id = ${id}`).pipe(Effect.map((rs) => Option.fromNullable(rs[0])))

  const store: JobStoreService = {
    insert: (job) =>
      sql`INSERT INTO jobs ${
        sql.insert({
          id: job.id,
          status: "queued",
          endpoint: job.endpoint,
          model: job.model,
          priority: job.priority,
          body: job.body,
          created_at: job.createdAt,
          attempts: 0,
          owner: job.owner ?? null,
          target: job.target ?? null
        })
      }`.pipe(
        Effect.orDie,
        Effect.zipRight(get(job.id)),
        Effect.map(Option.getOrThrow)
      ),
    get,
    list: ({ cursor, limit, owner, status }) =>
      rows(
        sql`SELECT * FROM jobs WHERE 1 = 1
          ${status === undefined ? sql`` : sql`AND status = ${status}`}
          ${owner === undefined ? sql`` : sql`AND owner = ${owner}`}
          ${cursor === undefined ? sql`` : sql`AND seq < ${cursor}`}
          ORDER BY seq DESC LIMIT ${limit + 1}`
      ).pipe(
        Effect.map((jobs) => ({
          jobs: jobs.slice(0, limit),
          nextCursor: jobs.length > limit ? jobs[limit - 1]!.seq : undefined
        }))
      ),
    unfinished: rows(sql`SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY seq`),
    markRunning: (id, at) =>
      sql`UPDATE jobs SET status = 'running', started_at = ${at} WHERE id = ${id} AND status = 'queued'`.pipe(
        Effect.asVoid,
        Effect.orDie
      ),
    countAttempt: (id) =>
      sql`UPDATE jobs SET attempts = attempts + 1 WHERE id = ${id} RETURNING attempts`.pipe(
        Effect.flatMap(decodeAttempts),
        Effect.map((rs) => rs[0]?.attempts ?? 0),
        Effect.orDie
      ),
    requeue: (id) =>
      sql`UPDATE jobs SET status = 'queued', started_at = NULL WHERE id = ${id} AND status IN ('queued', 'running')`.pipe(
        Effect.asVoid,
        Effect.orDie
      ),
    finish: (id, outcome) =>
      sql`UPDATE jobs SET status = ${outcome.status}, finished_at = ${outcome.at},
            result = ${outcome.result ?? null}, error = ${outcome.error ?? null},
            started_at = COALESCE(started_at, ${outcome.startedAt ?? null})
          WHERE id = ${id} AND status IN ('queued', 'running') RETURNING id`.pipe(
        Effect.map((rs) => rs.length > 0),
        Effect.orDie
      ),
    prune: (before) =>
      sql`DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ${before} RETURNING id`.pipe(
        Effect.map((rs) => rs.length),
        Effect.orDie
      ),
    counts: counted(sql`SELECT status, COUNT(*) AS n FROM jobs GROUP BY status`),
    countsOf: (owner) => counted(sql`SELECT status, COUNT(*) AS n FROM jobs WHERE owner = ${owner} GROUP BY status`)
  }
  return JobStore.of(store)
})

/** The store over whatever `SqlClient` is provided. */
export const layer = Layer.effect(JobStore, make)
