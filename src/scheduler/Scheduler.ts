/**
 * The queue in front of the target. Jobs wait here for one of `concurrency` slots; a
 * single dispatcher fiber grants slots in the order the policy decides, and only while the
 * target is not known to be asleep (ADR-0002). The caller keeps running its own job: a slot
 * is a scoped lease, so whoever holds it (a sync request's fiber, an async job's fiber)
 * releases it by closing its scope, also when interrupted (a caller that disconnects).
 */
import { Clock, Context, Deferred, Effect, Layer, Option, Queue, Ref, type Scope, Stream } from "effect"
import { ForemanConfig } from "../Config.ts"
import { QueueFull } from "../Errors.ts"
import { Inventory } from "../inventory/Inventory.ts"
import * as ModelName from "../target/ModelName.ts"
import { fifo, type Policy, type Priority, type Waiting } from "./policy.ts"

/** A job's place in the queue. */
export type Ticket = Waiting

interface Entry {
  readonly ticket: Ticket
  readonly granted: Deferred.Deferred<void>
}

interface State {
  readonly waiting: ReadonlyArray<Entry>
  readonly running: ReadonlyMap<string, Ticket>
}

export interface QueueStats {
  readonly waiting: number
  readonly running: number
}

export interface SchedulerService {
  /** A new ticket: the next arrival number, now as its enqueue time. */
  readonly ticket: (model: string, priority: Priority) => Effect.Effect<Ticket>
  /**
   * Waits in the queue until the dispatcher grants a slot. The slot is held until the
   * enclosing scope closes; closing it while still queued removes the ticket. A ticket
   * with `attempts > 0` (a retry) is never refused for a full queue: it was accepted once.
   */
  readonly acquire: (ticket: Ticket) => Effect.Effect<void, QueueFull, Scope.Scope>
  readonly stats: Effect.Effect<QueueStats>
}

export class Scheduler extends Context.Tag("foreman/Scheduler")<Scheduler, SchedulerService>() {}

export const make = (policy: Policy) =>
  Effect.gen(function*() {
    const config = yield* ForemanConfig
    const inventory = yield* Inventory
    const state = yield* Ref.make<State>({ waiting: [], running: new Map() })
    const kick = yield* Queue.sliding<void>(1)
    const wake = Queue.offer(kick, undefined)
    let seq = 0

    const ticket = (model: string, priority: Priority) =>
      Clock.currentTimeMillis.pipe(Effect.map((now): Ticket => {
        seq += 1
        return { id: `j${seq}`, seq, model, priority, enqueuedAt: now, attempts: 0 }
      }))

    /** Leaves the queue or frees the slot, whichever the ticket holds; idempotent. */
    const leave = (id: string) =>
      Ref.update(state, (s) => {
        if (s.running.has(id)) {
          const running = new Map(s.running)
          running.delete(id)
          return { ...s, running }
        }
        const waiting = s.waiting.filter((entry) => entry.ticket.id !== id)
        return waiting.length === s.waiting.length ? s : { ...s, waiting }
      }).pipe(Effect.zipRight(wake))

    const enqueue = (ticket: Ticket) =>
      Effect.gen(function*() {
        const granted = yield* Deferred.make<void>()
        const accepted = yield* Ref.modify(state, (s) => {
          if (ticket.attempts === 0 && s.waiting.length >= config.maxQueue) return [false, s]
          return [true, { ...s, waiting: [...s.waiting, { ticket, granted }] }]
        })
        if (!accepted) return yield* new QueueFull({ limit: config.maxQueue })
        yield* wake
        return granted
      })

    const acquire = (ticket: Ticket) =>
      Effect.acquireRelease(enqueue(ticket), () => leave(ticket.id)).pipe(Effect.flatMap(Deferred.await))

    /** Grants slots while the policy picks jobs; returns when it picks none. */
    const dispatch = Effect.gen(function*() {
      const target = yield* inventory.get
      if (!target.reachable) return
      const residentKeys = target.resident.flatMap((m) => Option.toArray(ModelName.keyOf(m.model ?? m.name)))
      while (true) {
        const now = yield* Clock.currentTimeMillis
        const entry = yield* Ref.modify(state, (s): readonly [Entry | undefined, State] => {
          const running = [...s.running.values()].map((t) => t.model)
          const picked = policy({
            waiting: s.waiting.map((e) => e.ticket),
            running,
            resident: residentKeys,
            freeSlots: config.concurrency - s.running.size,
            now
          })
          if (picked === undefined) return [undefined, s]
          const chosen = s.waiting.find((e) => e.ticket.id === picked.id)!
          const nextRunning = new Map(s.running)
          nextRunning.set(picked.id, picked)
          return [chosen, { waiting: s.waiting.filter((e) => e !== chosen), running: nextRunning }]
        })
        if (entry === undefined) return
        yield* Deferred.succeed(entry.granted, undefined)
      }
    })

    yield* Queue.take(kick).pipe(Effect.zipRight(dispatch), Effect.forever, Effect.forkScoped)
    // The target's state changing (asleep -> awake) may unblock dispatch.
    yield* inventory.changes.pipe(Stream.runForEach(() => wake), Effect.forkScoped)

    return Scheduler.of({
      ticket,
      acquire,
      stats: Ref.get(state).pipe(Effect.map((s) => ({ waiting: s.waiting.length, running: s.running.size })))
    })
  })

export const layer = Layer.scoped(Scheduler, make(fifo))
