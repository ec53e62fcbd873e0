/**
 * The scheduling policy: a pure function from the queue's state to the next job to start.
 * No I/O, no clock of its own, so every rule can be tested exhaustively. The Scheduler
 * service calls it whenever a slot frees up or the queue or the target's state changes.
 */

export type Priority = "interactive" | "normal" | "batch"
export const priorities: ReadonlyArray<Priority> = ["interactive", "normal", "batch"]

/** A job waiting for a slot, as far as the policy needs to know it. */
export interface Waiting {
  readonly id: string
  /** Arrival order; a retried job keeps its number and so its place. */
  readonly seq: number
  /** The model's normalised key (`ModelName.key`). */
  readonly model: string
  readonly priority: Priority
  /** Epoch milliseconds of the first enqueue. */
  readonly enqueuedAt: number
  readonly attempts: number
}

export interface PolicyInput {
  readonly waiting: ReadonlyArray<Waiting>
  /** Models of the jobs in flight at the target. */
  readonly running: ReadonlyArray<string>
  /** Models the target holds in memory now. */
  readonly resident: ReadonlyArray<string>
  readonly freeSlots: number
  readonly now: number
}

/** Picks the job to start next, or `undefined` to start nothing now. */
export type Policy = (input: PolicyInput) => Waiting | undefined

/** First come, first served: the oldest job by arrival. */
export const fifo: Policy = ({ freeSlots, waiting }) => {
  if (freeSlots <= 0) return undefined
  let best: Waiting | undefined
  for (const job of waiting) {
    if (best === undefined || job.seq < best.seq) best = job
  }
  return best
}
