/**
 * A request's load: the options for which Ollama loads a model again (`needsReload` in
 * Ollama's `server/sched.go`), read as Ollama reads them, so that jobs group by what the
 * target can run without a reload.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as Json from "../src/Json.ts"
import { loadKey, numCtxOf } from "../src/ollama/loadOptions.ts"
import { decodeJobRequest, type JobEndpoint, loadOf } from "../src/ollama/request.ts"

const encoder = new TextEncoder()

const loadOfRequest = (endpoint: JobEndpoint, body: unknown): string => {
  const decoded = decodeJobRequest(endpoint, encoder.encode(JSON.stringify(body)))
  if (Either.isLeft(decoded)) throw new Error(decoded.left.message)
  return decoded.right.load
}

describe("loadKey", () => {
  it("no options, or none that loads: the target's defaults", () => {
    expect(loadKey({})).toBe("")
    expect(loadKey({ options: {} })).toBe("")
    expect(loadKey({ options: { temperature: 0.2, num_predict: 10, seed: 1, stop: ["x"], top_k: 5 } })).toBe("")
    // Gone from Ollama's options since 0.7.0: ignored there, so no reload.
    expect(loadKey({ options: { use_mlock: true, numa: true, low_vram: true, f16_kv: true } })).toBe("")
  })

  it("the runner's options and the context shift, sorted, whatever order they came in", () => {
    const options = {
      use_mmap: false,
      num_thread: 8,
      num_gpu: 20,
      num_ctx: 8192,
      num_batch: 256,
      main_gpu: 1,
      draft_num_predict: 2,
      temperature: 0
    }
    expect(loadKey({ options, shift: false })).toBe(
      "draft_num_predict=2,main_gpu=1,num_batch=256,num_ctx=8192,num_gpu=20,num_thread=8,use_mmap=false,shift=false"
    )
    expect(loadKey({ options: { num_ctx: 8192, num_batch: 256 } })).toBe(loadKey({ options: { num_batch: 256, num_ctx: 8192 } }))
  })

  it("as Ollama takes the values: integers truncated, num_ctx at least 4, a negative num_gpu as unset", () => {
    expect(loadKey({ options: { num_ctx: 8192.9 } })).toBe("num_ctx=8192")
    expect(loadKey({ options: { num_ctx: 1 } })).toBe("num_ctx=4")
    expect(loadKey({ options: { num_ctx: 0 } })).toBe("num_ctx=4")
    expect(loadKey({ options: { num_gpu: -1 } })).toBe("")
    expect(loadKey({ options: { num_gpu: 0 } })).toBe("num_gpu=0")
    expect(loadKey({ options: { num_thread: -0 } })).toBe("num_thread=0")
  })

  it("unset, null and wrongly typed values are the defaults (Ollama fails the last before loading anything)", () => {
    expect(loadKey({ options: { num_ctx: null, use_mmap: null } })).toBe("")
    expect(loadKey({ options: { num_ctx: "8192", use_mmap: "false", num_gpu: true } })).toBe("")
    expect(loadKey({ options: "num_ctx=8192" })).toBe("")
    expect(loadKey({ options: [8192] })).toBe("")
    expect(loadKey({ shift: "false" })).toBe("")
  })

  it("explicit values are never the defaults, even ones that may equal them", () => {
    expect(loadKey({ options: { num_ctx: 4096 } })).not.toBe(loadKey({}))
    expect(loadKey({ shift: true })).toBe("shift=true")
  })

  it("numCtxOf reads the num_ctx of a load back", () => {
    expect(numCtxOf("num_batch=256,num_ctx=8192,num_gpu=20")).toBe(8192)
    expect(numCtxOf("num_ctx=4")).toBe(4)
    expect(numCtxOf("num_batch=256")).toBeUndefined()
    expect(numCtxOf("")).toBeUndefined()
  })
})

describe("a request's load", () => {
  it("native routes read `options` (keys exact, as Go's map keeps them) and, for generate and chat, `shift`", () => {
    expect(loadOfRequest("/api/generate", { model: "m", prompt: "p", options: { num_ctx: 8192 }, shift: false }))
      .toBe("num_ctx=8192,shift=false")
    expect(loadOfRequest("/api/chat", { model: "m", messages: [], options: { num_ctx: 8192 } })).toBe("num_ctx=8192")
    expect(loadOfRequest("/api/embed", { model: "m", input: "x", options: { num_ctx: 512 }, shift: false })).toBe("num_ctx=512")
    expect(loadOfRequest("/api/embeddings", { model: "m", prompt: "x", options: { num_gpu: 0 } })).toBe("num_gpu=0")
    expect(loadOfRequest("/api/generate", { model: "m", options: { NUM_CTX: 8192 } })).toBe("")
  })

  it("the top-level fields as Go fills them: any spelling, the last one wins, null unsets", () => {
    expect(loadOfRequest("/api/generate", { model: "m", Options: { num_ctx: 8192 } })).toBe("num_ctx=8192")
    expect(loadOfRequest("/api/generate", { model: "m", options: { num_ctx: 8192 }, OPTIONS: { num_ctx: 2048 } })).toBe("num_ctx=2048")
    expect(loadOfRequest("/api/generate", { model: "m", options: { num_ctx: 8192 }, Options: null })).toBe("")
    expect(loadOfRequest("/api/chat", { model: "m", messages: [], Shift: false })).toBe("shift=false")
  })

  it("a stored async body gives the load the request had (a restarted foreman groups it as before)", () => {
    const body = { model: "m", prompt: "p", Options: { num_ctx: 8192, temperature: 1 }, shift: true }
    const stored = Json.encode({ ...body, stream: false })
    expect(loadOf("/api/generate", encoder.encode(stored))).toBe(loadOfRequest("/api/generate", body))
    expect(loadOf("/api/generate", encoder.encode(stored))).toBe("num_ctx=8192,shift=true")
  })

  it("other endpoints have none: Ollama's /v1 routes map no field to a load option", () => {
    const body = encoder.encode(JSON.stringify({ model: "m", messages: [], options: { num_ctx: 8192 } }))
    expect(loadOf("/v1/chat/completions", body)).toBe("")
    expect(loadOf("/api/generate", encoder.encode("not json"))).toBe("")
  })
})
