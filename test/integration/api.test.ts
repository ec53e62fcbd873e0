/**
 * foreman's own API as an HttpApi: the typed client a dashboard or script gets from the one
 * definition, and the OpenAPI document, checked against the routes the README lists.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import { Duration, Effect, Either } from "effect"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest"
import { ConflictError, ForemanApi, NotFoundError } from "../../src/http/api/ForemanApi.ts"
import { type FakeTarget, startFakeTarget } from "../support/FakeTarget.ts"
import { type RunningForeman, startForeman } from "../support/foreman.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))

describe("foreman's own API", () => {
  let target: FakeTarget
  let foreman: RunningForeman
  const withClient = <A, E>(f: (client: Effect.Effect.Success<ReturnType<typeof makeClient>>) => Effect.Effect<A, E>) =>
    Effect.runPromise(makeClient().pipe(Effect.flatMap(f), Effect.provide(FetchHttpClient.layer)))
  const makeClient = () => HttpApiClient.make(ForemanApi, { baseUrl: foreman.url })

  beforeAll(async () => {
    target = await startFakeTarget({ models: ["llama3.2", { name: "all-minilm", capabilities: ["embedding"] }] })
    foreman = await startForeman({ target: target.url, pollInterval: Duration.millis(100) })
    await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"), { timeout: 15_000 })
  })
  afterEach(() => target.release())
  afterAll(async () => {
    await foreman?.close()
    await target?.close()
  })

  it("the typed client submits, waits for, lists and cancels jobs; errors come back as their classes", async () => {
    const done = await withClient((client) =>
      Effect.gen(function*() {
        const job = yield* client.jobs.submit({
          payload: { endpoint: "/api/generate", body: { model: "llama3.2", prompt: "hi" }, priority: "normal" }
        })
        expect(job).toMatchObject({ status: "running", endpoint: "/api/generate", model: "llama3.2", priority: "normal" })
        return yield* client.jobs.get({ path: { id: job.id }, urlParams: { wait: Duration.minutes(1) } })
      })
    )
    expect(done.status).toBe("succeeded")
    expect(done.result).toMatchObject({ model: "llama3.2", done: true })

    const page = await withClient((client) => client.jobs.list({ urlParams: { status: "succeeded", limit: 1 } }))
    expect(page.jobs.map((job) => job.id)).toEqual([done.id])

    const again = await withClient((client) => Effect.either(client.jobs.cancel({ path: { id: done.id } })))
    expect(Either.getLeft(again).pipe((left) => left._tag === "Some" ? left.value : undefined)).toBeInstanceOf(ConflictError)
    const missing = await withClient((client) => Effect.either(client.jobs.get({ path: { id: "no-such-job" }, urlParams: {} })))
    const missingError = Either.getLeft(missing)
    expect(missingError._tag === "Some" ? missingError.value : undefined).toEqual(new NotFoundError({ error: "job 'no-such-job' not found" }))

    const health = await withClient((client) => client.health.health())
    expect(health).toMatchObject({ status: "ok", target: target.url, reachable: true, models: 2 })
  })

  it("cancelling a queued job through the client", async () => {
    target.hold()
    const [running, queued] = await withClient((client) =>
      Effect.all([
        client.jobs.submit({ payload: { endpoint: "/api/chat", body: { model: "llama3.2", messages: [{ role: "user", content: "hi" }] } } }),
        client.jobs.submit({ payload: { endpoint: "/api/chat", body: { model: "llama3.2", messages: [{ role: "user", content: "hi" }] } } })
      ], { concurrency: 1 })
    )
    await vi.waitFor(async () => expect((await fetch(`${foreman.url}/foreman/v1/jobs/${running.id}`).then((r) => r.json())).status).toBe("running"))
    const cancelled = await withClient((client) => client.jobs.cancel({ path: { id: queued.id } }))
    expect(cancelled.status).toBe("cancelled")
    await withClient((client) => client.jobs.cancel({ path: { id: running.id } }))
  })

  it("serves its OpenAPI document, whose routes are the README's", async () => {
    const response = await fetch(`${foreman.url}/foreman/openapi.json`)
    expect(response.status).toBe(200)
    const document = (await response.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> }
    expect(document.openapi).toMatch(/^3\./)
    const served = Object.entries(document.paths)
      .flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`))
      .sort()
    expect(served).toEqual([
      "DELETE /foreman/v1/jobs/{id}",
      "GET /foreman/health",
      "GET /foreman/openapi.json",
      "GET /foreman/v1/jobs",
      "GET /foreman/v1/jobs/{id}",
      "POST /foreman/v1/jobs"
    ])
    // Every foreman route the README names, in its tables and headings, is in the document.
    const readme = readFileSync(`${root}/README.md`, "utf8")
    const named = new Set(
      [...readme.matchAll(/`(GET|POST|DELETE) (\/foreman\/[^\s`?[]*)/g)].map(([, method, path]) => `${method} ${path}`)
    )
    expect([...named].sort()).toEqual(served)
    // Errors are documented as they answer: {"error": "..."}.
    const submit = document.paths["/foreman/v1/jobs"]!["post"] as { responses: Record<string, { content: Record<string, { schema: unknown }> }> }
    expect(submit.responses["404"]!.content["application/json"]!.schema).toMatchObject({ properties: { error: { type: "string" } } })
    // Each route lists the statuses it can answer, and no others.
    const statuses = Object.fromEntries(Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.entries(operations).map(([method, operation]) => [
        `${method.toUpperCase()} ${path}`,
        Object.keys((operation as { responses: object }).responses).sort()
      ])
    ))
    expect(statuses).toEqual({
      "POST /foreman/v1/jobs": ["202", "400", "404", "413"],
      "GET /foreman/v1/jobs": ["200", "400"],
      "GET /foreman/v1/jobs/{id}": ["200", "400", "404"],
      "DELETE /foreman/v1/jobs/{id}": ["200", "404", "409"],
      "GET /foreman/health": ["200"],
      "GET /foreman/openapi.json": ["200"]
    })
  })
})
