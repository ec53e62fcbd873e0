/** The job store on a real SQLite file: the rules the async jobs rely on. */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Option } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { JobStore } from "../src/jobs/JobStore.ts"
import * as SqlJobStore from "../src/jobs/SqlJobStore.ts"
import * as SqliteClient from "../src/jobs/sqlite/SqliteClient.ts"

const storeAt = (filename: string) => SqlJobStore.layer.pipe(Layer.provide(SqliteClient.layer({ filename })))

/** The store, open for the rest of the enclosing scope. */
const openStore = (filename: string) =>
  Layer.build(storeAt(filename)).pipe(Effect.map((context) => Context.get(context, JobStore)))

const newJob = (id: string, createdAt: number) => ({
  id,
  endpoint: "/api/generate" as const,
  model: "llama3.2",
  priority: "batch" as const,
  body: JSON.stringify({ model: "llama3.2", prompt: id, stream: false }),
  createdAt
})

const withTempDir = <A, E, R>(f: (dir: string) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "foreman-store-"))),
    f,
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

describe("SqlJobStore", () => {
  it.effect("keeps jobs across reopening, unfinished ones in arrival order", () =>
    withTempDir((dir) =>
      Effect.gen(function*() {
        const file = join(dir, "jobs.db")
        yield* Effect.gen(function*() {
          const store = yield* JobStore
          for (const id of ["a", "b", "c"]) yield* store.insert(newJob(id, 1000))
          yield* store.markRunning("b", 2000)
          yield* store.finish("c", { status: "succeeded", at: 3000, result: "{}" })
        }).pipe(Effect.provide(storeAt(file)))

        const reopened = yield* openStore(file)
        const unfinished = yield* reopened.unfinished
        expect(unfinished.map((j) => [j.id, j.status])).toEqual([["a", "queued"], ["b", "running"]])
      }).pipe(Effect.scoped)
    ))

  it.scoped("a finished job is never changed again", () =>
    Effect.gen(function*() {
      const store = yield* openStore(":memory:")
      yield* store.insert(newJob("x", 1))
      expect(yield* store.finish("x", { status: "succeeded", at: 2, result: `{"ok":true}` })).toBe(true)
      expect(yield* store.finish("x", { status: "cancelled", at: 3 })).toBe(false)
      yield* store.requeue("x")
      yield* store.markRunning("x", 4)
      const job = Option.getOrThrow(yield* store.get("x"))
      expect(job).toMatchObject({ status: "succeeded", result: `{"ok":true}`, finishedAt: 2, startedAt: null })
    }))

  it.scoped("a running job put back in the queue has no start time until it runs again", () =>
    Effect.gen(function*() {
      const store = yield* openStore(":memory:")
      yield* store.insert(newJob("x", 1))
      yield* store.markRunning("x", 2)
      expect(Option.getOrThrow(yield* store.get("x"))).toMatchObject({ status: "running", startedAt: 2 })
      yield* store.requeue("x")
      expect(Option.getOrThrow(yield* store.get("x"))).toMatchObject({ status: "queued", startedAt: null })
      yield* store.markRunning("x", 5)
      expect(Option.getOrThrow(yield* store.get("x"))).toMatchObject({ status: "running", startedAt: 5 })
      // Failed after its last attempt put it back: it started when that attempt did.
      yield* store.requeue("x")
      expect(yield* store.finish("x", { status: "failed", at: 9, error: "boom", startedAt: 7 })).toBe(true)
      expect(Option.getOrThrow(yield* store.get("x"))).toMatchObject({ status: "failed", startedAt: 7, finishedAt: 9 })
    }))

  it.scoped("prunes only jobs that finished before the cut-off", () =>
    Effect.gen(function*() {
      const store = yield* openStore(":memory:")
      for (const id of ["old", "recent", "waiting"]) yield* store.insert(newJob(id, 0))
      yield* store.finish("old", { status: "failed", at: 100, error: "boom" })
      yield* store.finish("recent", { status: "succeeded", at: 500, result: "{}" })
      expect(yield* store.prune(300)).toBe(1)
      expect(Option.isNone(yield* store.get("old"))).toBe(true)
      expect(Option.isSome(yield* store.get("recent"))).toBe(true)
      expect(Option.isSome(yield* store.get("waiting"))).toBe(true)
      expect(yield* store.counts).toEqual({ queued: 1, running: 0, succeeded: 1, failed: 0, cancelled: 0 })
    }))

  it.scoped("lists newest first, a page at a time, by status", () =>
    Effect.gen(function*() {
      const store = yield* openStore(":memory:")
      for (let i = 0; i < 5; i++) yield* store.insert(newJob(`j${i}`, i))
      yield* store.finish("j1", { status: "cancelled", at: 9 })
      const first = yield* store.list({ limit: 2 })
      expect(first.jobs.map((j) => j.id)).toEqual(["j4", "j3"])
      const second = yield* store.list({ limit: 2, cursor: first.nextCursor! })
      expect(second.jobs.map((j) => j.id)).toEqual(["j2", "j1"])
      const last = yield* store.list({ limit: 2, cursor: second.nextCursor! })
      expect(last).toEqual({ jobs: [expect.objectContaining({ id: "j0" })], nextCursor: undefined })
      expect((yield* store.list({ limit: 10, status: "cancelled" })).jobs.map((j) => j.id)).toEqual(["j1"])
    }))

  it.scoped("counts attempts", () =>
    Effect.gen(function*() {
      const store = yield* openStore(":memory:")
      yield* store.insert(newJob("a", 0))
      expect(yield* store.countAttempt("a")).toBe(1)
      expect(yield* store.countAttempt("a")).toBe(2)
    }))
})
