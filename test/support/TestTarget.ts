/**
 * An in-memory TargetClient for unit tests: models, residency and reachability are plain
 * state the test changes; every metadata call is counted.
 */
import { Effect, Layer, Ref } from "effect"
import { Readable } from "node:stream"
import { TargetError, TargetUnreachable } from "../../src/Errors.ts"
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
