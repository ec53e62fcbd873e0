/**
 * The background poller (ADR-0007): polls the target at once, then every `pollInterval`.
 * While the target is unreachable it probes sooner, on a jittered exponential backoff
 * capped at the interval, so dispatch resumes within seconds of the laptop waking.
 */
import { Duration, Effect, Layer, Schedule } from "effect"
import { ForemanConfig } from "../Config.ts"
import { Inventory } from "./Inventory.ts"

/** The first probe after a failure; each further failure doubles it, up to the poll interval. */
export const firstProbe = Duration.millis(500)

/** The delay before the next poll, given the configured interval and the failures so far. */
export const nextDelay = (interval: Duration.Duration, consecutiveFailures: number): Duration.Duration =>
  consecutiveFailures === 0
    ? interval
    : Duration.min(interval, Duration.times(firstProbe, 2 ** Math.min(consecutiveFailures - 1, 30)))

export const schedule = (interval: Duration.Duration, inventory: Inventory["Type"]) =>
  Schedule.spaced(interval).pipe(
    Schedule.modifyDelayEffect((_, delay) =>
      inventory.get.pipe(Effect.map((state) => Duration.min(delay, nextDelay(interval, state.consecutiveFailures))))
    ),
    Schedule.jittered
  )

export const layer = Layer.scopedDiscard(
  Effect.gen(function*() {
    const { pollInterval } = yield* ForemanConfig
    const inventory = yield* Inventory
    yield* inventory.poll.pipe(Effect.repeat(schedule(pollInterval, inventory)), Effect.forkScoped)
  })
)
