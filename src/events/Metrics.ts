/**
 * foreman's figures, as Effect `Metric`s updated by the core itself: the metrics plugin
 * only renders them, and an application embedding foreman reads the same values from
 * Effect's metric registry (`Metric.snapshot`).
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"

/** Seconds, from 5 ms to ~20 min: queue waits and job durations both span that range. */
const seconds = MetricBoundaries.exponential({ start: 0.005, factor: 2, count: 18 })

export const jobsTotal = Metric.counter("foreman_jobs_total", {
  description: "Jobs finished, by endpoint, model, status (HTTP status, failed, cancelled or expired) and the target that ran them.",
  incremental: true
})
export const queueDepth = Metric.gauge("foreman_queue_depth", { description: "Jobs waiting for a slot, by priority." })
export const jobsRunning = Metric.gauge("foreman_jobs_running", { description: "Jobs in flight at the target." })
export const jobQueueWaitSeconds = Metric.histogram(
  "foreman_job_queue_wait_seconds",
  seconds,
  "Time from a job's arrival to its start at the target."
)
export const jobDurationSeconds = Metric.histogram(
  "foreman_job_duration_seconds",
  seconds,
  "Time from a job's start at the target to its end."
)
export const modelSwapsTotal = Metric.counter("foreman_model_swaps_total", {
  description: "Jobs dispatched for a model that was not resident, or resident with other load options (num_ctx, ...): the model loads and reloads foreman caused.",
  incremental: true
})
/** Per target: each series has the `target` label, the target's name (`Target.name`). */
export const targetUp = Metric.gauge("foreman_target_up", { description: "1 while the target answers, 0 while it does not, by target." })
export const targetPollsTotal = Metric.counter("foreman_target_polls_total", {
  description: "Inventory polls of the target, by target and result (success or failure).",
  incremental: true
})
export const inventoryModels = Metric.gauge("foreman_inventory_models", { description: "Models in the target's last inventory, by target." })

/** `foreman_jobs_total` per label set, made once each: tagging builds and hashes a key per call. */
const jobCounters = new Map<string, Metric.Metric.Counter<number>>()
const jobCounter = (endpoint: string, model: string, status: string, caller: string | undefined, target: string | undefined) => {
  const id = `${endpoint}\u0000${model}\u0000${status}\u0000${caller ?? ""}\u0000${target ?? ""}`
  let counter = jobCounters.get(id)
  if (counter === undefined) {
    counter = Metric.taggedWithLabels(jobsTotal, [
      MetricLabel.make("endpoint", endpoint),
      MetricLabel.make("model", model),
      MetricLabel.make("status", status),
      // The key's name, with keys on (never the key).
      ...(caller === undefined ? [] : [MetricLabel.make("caller", caller)]),
      // The target that ran it (none for a job that never got a slot).
      ...(target === undefined ? [] : [MetricLabel.make("target", target)])
    ])
    jobCounters.set(id, counter)
  }
  return counter
}

/** Records a finished job in the counters and histograms. */
export const recordJob = (job: {
  readonly endpoint: string
  readonly model: string
  readonly status: number | string
  readonly caller?: string | undefined
  readonly target?: string | undefined
  readonly waitMs: number
  readonly durationMs: number
  readonly started: boolean
}) =>
  Effect.all([
    Metric.increment(jobCounter(job.endpoint, job.model, String(job.status), job.caller, job.target)),
    job.started ? Metric.update(jobQueueWaitSeconds, job.waitMs / 1000) : Effect.void,
    job.started ? Metric.update(jobDurationSeconds, job.durationMs / 1000) : Effect.void
  ], { discard: true })
