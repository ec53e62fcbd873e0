/**
 * Durable async jobs: the record kept for each, and the store that keeps them. The job is
 * written before the caller hears "202 Accepted", so an accepted job survives a restart.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { Priority } from "../scheduler/policy.ts"

export const JobStatus = Schema.Literal("queued", "running", "succeeded", "failed", "cancelled")
export type JobStatus = typeof JobStatus.Type

export const finished = (status: JobStatus): boolean =>
  status === "succeeded" || status === "failed" || status === "cancelled"

export interface JobRecord {
  readonly id: string
  /** Arrival order, kept across restarts: re-queued jobs keep their place. */
  readonly seq: number
  readonly status: JobStatus
  /** The target path the job calls. */
  readonly endpoint: string
  /** The model as the caller sent it. */
  readonly model: string
  readonly priority: Priority
  /** The request body sent to the target (JSON text, `stream` forced off). */
  readonly body: string
  /** Epoch milliseconds. */
  readonly createdAt: number
  readonly startedAt: number | null
  readonly finishedAt: number | null
  /** How many times the target answered the job (a first byte, or an error status). */
  readonly attempts: number
  /** The target's final JSON body, as text. */
  readonly result: string | null
  readonly error: string | null
  /** The key that submitted it (`name#id`, see `ownerOf`); `null` with keys off (such jobs are admin's). */
  readonly owner: string | null
  /** The target it must run on (`X-Foreman-Target`); `null`: wherever it is routed. */
  readonly target: string | null
}

export interface NewJob {
  readonly id: string
  readonly endpoint: string
  readonly model: string
  readonly priority: Priority
  readonly body: string
  readonly createdAt: number
  readonly owner?: string | undefined
  readonly target?: string | undefined
}

export interface JobPage {
  readonly jobs: ReadonlyArray<JobRecord>
  /** Pass as `cursor` for the next (older) page; absent on the last page. */
  readonly nextCursor: number | undefined
}

export interface JobStoreService {
  readonly insert: (job: NewJob) => Effect.Effect<JobRecord>
  readonly get: (id: string) => Effect.Effect<Option.Option<JobRecord>>
  /** Newest first. `cursor` is the `seq` below which to continue. */
  readonly list: (
    query: { readonly status?: JobStatus; readonly owner?: string; readonly limit: number; readonly cursor?: number }
  ) => Effect.Effect<JobPage>
  /** Queued or running jobs, oldest first (to re-queue on start). */
  readonly unfinished: Effect.Effect<ReadonlyArray<JobRecord>>
  /** The job was dispatched to the target. */
  readonly markRunning: (id: string, at: number) => Effect.Effect<void>
  /** The target answered: one more attempt. */
  readonly countAttempt: (id: string) => Effect.Effect<number>
  /** Back in the queue (a retry, or a restart found it running). */
  readonly requeue: (id: string) => Effect.Effect<void>
  /**
   * Ends the job, unless it has already ended: a finished job is never changed again.
   * Returns whether this call ended it.
   */
  readonly finish: (
    id: string,
    outcome: {
      readonly status: "succeeded" | "failed" | "cancelled"
      readonly at: number
      readonly result?: string
      readonly error?: string
      /** When its last attempt was sent to the target (a job put back in the queue has none). */
      readonly startedAt?: number | undefined
    }
  ) => Effect.Effect<boolean>
  /** Deletes jobs that finished before `before`; returns how many. */
  readonly prune: (before: number) => Effect.Effect<number>
  readonly counts: Effect.Effect<Readonly<Record<JobStatus, number>>>
  /** The same, of one owner's jobs. */
  readonly countsOf: (owner: string) => Effect.Effect<Readonly<Record<JobStatus, number>>>
}

export class JobStore extends Context.Tag("foreman/JobStore")<JobStore, JobStoreService>() {}
