/**
 * Waking a target that sleeps (Wake-on-LAN), for as long as work waits that only it can serve.
 *
 * One loop per target that has a MAC: it waits until the scheduler says a job needs this
 * target and the target is unreachable (`needed`), sends the magic packet, then checks every
 * `readyEvery` whether the target answers; it sends again on a capped backoff (`resendSchedule`)
 * while the target stays silent and the job still waits, and stops as soon as either ends.
 * Readiness is a real answer from `/api/version` within `readyTimeout`: a half-open
 * connection to a suspended host, which takes a request and never answers, is not a host
 * awake. Once it answers, the inventory is polled, which resumes dispatch there.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { Target, Wake } from "./Target.ts"
import * as WakeOnLan from "./WakeOnLan.ts"

/** What health reports of a target's wakes. */
export interface WakeStatus {
  /** Magic packets sent so far. */
  packets: number
  /** When the last one was sent (epoch milliseconds). */
  lastAttemptAt: number | undefined
  /** When the target last answered after a wake began (epoch milliseconds). */
  lastWokeAt: number | undefined
  /** How long that wake took: the first packet of the wake to the first answer, in milliseconds. */
  lastWakeMillis: number | undefined
  /** Why the last packet could not be sent, if it could not. */
  lastError: string | undefined
}

export const emptyStatus = (): WakeStatus => ({
  packets: 0,
  lastAttemptAt: undefined,
  lastWokeAt: undefined,
  lastWakeMillis: undefined,
  lastError: undefined
})

/** Between packets while the target stays asleep: 2 s, doubling, at most 30 s. */
export const resendAfter = (packetsSoFar: number): Duration.Duration =>
  Duration.millis(Math.min(30_000, 2_000 * 2 ** Math.max(0, packetsSoFar - 1)))

/** How often to ask whether the target answers, while a wake is under way. */
export const readyEvery = Duration.millis(250)

/** How long `/api/version` may take to count as an answer. */
export const readyTimeout = Duration.seconds(2)

/** How often to look again whether a wake is needed, while none is. */
export const idleEvery = Duration.seconds(1)

export interface WakerOptions {
  /** Whether a job waits that only this target can serve while it is unreachable. */
  readonly needed: Effect.Effect<boolean>
  /** Sends one packet (default: `WakeOnLan.send`); tests and embedding applications may replace it. */
  readonly send?: (wake: Wake) => Effect.Effect<void, WakeOnLan.WakeFailed>
}

/** Whether the target gives a real answer now. */
const answers = (target: Target) =>
  target.client.version.pipe(
    Effect.timeout(readyTimeout),
    Effect.match({ onFailure: () => false, onSuccess: () => true })
  )

/**
 * The loop that wakes `target` when `options.needed` says so; it runs until interrupted.
 * `status` is updated as it goes.
 */
export const run = (target: Target, wake: Wake, status: WakeStatus, options: WakerOptions): Effect.Effect<never> => {
  const send = options.send ?? ((wake: Wake) => WakeOnLan.send(wake.mac, wake))
  /** One wake: packets on the backoff until the target answers or no job needs it. */
  const wakeOnce = Effect.gen(function*() {
    const began = yield* Clock.currentTimeMillis
    let sent = 0
    /**
     * Whether it is up: `/api/version` answers, and then its inventory's poll (`/api/tags`,
     * `/api/ps`) succeeds, which resumes dispatch there. Then the wake is over, and measured.
     */
    const woke = Effect.gen(function*() {
      if (!(yield* answers(target)) || !(yield* target.inventory.poll)) return false
      const at = yield* Clock.currentTimeMillis
      status.lastWokeAt = at
      status.lastWakeMillis = at - began
      yield* Effect.logInfo("target woke").pipe(Effect.annotateLogs({ target: target.name, wakeMs: at - began, packets: sent }))
      return true
    })
    while (yield* options.needed) {
      const now = yield* Clock.currentTimeMillis
      yield* send(wake).pipe(
        Effect.tap(() => Effect.sync(() => (status.lastError = undefined))),
        Effect.catchAll((error) => Effect.sync(() => (status.lastError = error.message)))
      )
      sent += 1
      status.packets += 1
      status.lastAttemptAt = now
      yield* Effect.logInfo("wake sent").pipe(
        Effect.annotateLogs({ target: target.name, mac: WakeOnLan.formatMac(wake.mac), packet: sent })
      )
      const resendAt = now + Duration.toMillis(resendAfter(sent))
      while ((yield* Clock.currentTimeMillis) < resendAt) {
        yield* Effect.sleep(readyEvery)
        if (yield* woke) return
        // No job needs it any more: it may have woken (the inventory's probe saw it first).
        if (!(yield* options.needed)) break
      }
    }
    // Not needed any more: because it answers (a wake the probe noticed first), or because the
    // job left.
    if (sent > 0) yield* woke
  })
  return Effect.forever(
    Effect.gen(function*() {
      if (yield* options.needed) yield* wakeOnce
      yield* Effect.sleep(idleEvery)
    })
  )
}
