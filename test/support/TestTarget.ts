/**
 * An in-memory TargetClient for unit tests: models, residency and reachability are plain
 * state the test changes; every metadata call is counted.
 */
import { Duration, Effect, Layer, Ref } from "effect"
import { Readable } from "node:stream"
import { ForemanConfig, type ForemanSettings } from "../../src/Config.ts"
import { TargetError, TargetUnreachable } from "../../src/Errors.ts"
import { Events } from "../../src/events/Events.ts"
import * as Scheduler from "../../src/scheduler/Scheduler.ts"
import * as Target from "../../src/target/Target.ts"
import { TargetClient } from "../../src/target/TargetClient.ts"

export interface TestTargetState {
  readonly up: boolean
  readonly models: ReadonlyArray<string>
  readonly resident: ReadonlyArray<string>
  readonly tagsCalls: number
  readonly psCalls: number
  readonly jobCalls: number
}

export const url = "http://test-target:11434"

/** The error this target fails with while down. */
export const unreachable = () => new TargetUnreachable({ url, message: "connect ECONNREFUSED" })

export const make = (models: ReadonlyArray<string> = ["llama3.2:latest"]) =>
  Effect.gen(function*() {
    const state = yield* Ref.make<TestTargetState>({
      up: true,
      models,
      resident: [],
      tagsCalls: 0,
      psCalls: 0,
      jobCalls: 0
    })
    const down = unreachable()
    const call = <A>(count: keyof Pick<TestTargetState, "tagsCalls" | "psCalls" | "jobCalls">, f: (s: TestTargetState) => A) =>
      Ref.updateAndGet(state, (s) => ({ ...s, [count]: s[count] + 1 })).pipe(
        Effect.flatMap((s) => (s.up ? Effect.succeed(f(s)) : Effect.fail(down)))
      )
    const client = TargetClient.of({
      url,
      tags: call("tagsCalls", (s) => ({ models: s.models.map((name) => ({ name, model: name })) })),
      ps: call("psCalls", (s) => ({ models: s.resident.map((name) => ({ name, model: name })) })),
      version: call("tagsCalls", () => ({ version: "0.33.0" })).pipe(Effect.mapError((e): TargetUnreachable | TargetError => e)),
      job: () =>
        call("jobCalls", () => ({
          status: 200,
          contentType: "application/json; charset=utf-8",
          body: Readable.from([new TextEncoder().encode("{}")])
        })),
      raw: () => Effect.fail(down)
    })
    return { state, client, layer: Layer.succeed(TargetClient, client) }
  })

/**
 * The real Scheduler over one target of `models` (this in-memory one), polled once, in the
 * enclosing scope: what the scheduler's tests and benchmarks run on.
 */
export const scheduler = (models: ReadonlyArray<string>, settings: Partial<ForemanSettings>) =>
  Effect.gen(function*() {
    const target = yield* make(models)
    const context = yield* Layer.build(
      Scheduler.layer.pipe(
        Layer.provideMerge(Target.fromClients([target.client])),
        Layer.provideMerge(Events.layer),
        Layer.provide(ForemanConfig.make({ pollInterval: Duration.hours(1), ...settings }))
      )
    )
    const inventory = (yield* Effect.provide(Target.Targets, context)).primary.inventory
    const scheduler = yield* Effect.provide(Scheduler.Scheduler, context)
    yield* inventory.poll
    return { target, inventory, scheduler, context }
  })
