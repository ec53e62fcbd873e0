/**
 * An Ollama answer stream folded into what the same request answers with `stream: false`
 * (Ollama's own rules), as async generate and chat jobs store it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { fold } from "../src/jobs/fold.ts"

const lines = (...chunks: ReadonlyArray<unknown>) => chunks.map((chunk) => JSON.stringify(chunk)).join("\n") + "\n"

describe("fold", () => {
  it("generate: the last chunk, with every chunk's response and thinking, and all logprobs", () => {
    const stream = lines(
      { model: "m", created_at: "t1", response: "", thinking: "Let me", done: false },
      { model: "m", created_at: "t2", response: "Hel", thinking: " think", done: false, logprobs: [{ token: "Hel" }] },
      { model: "m", created_at: "t3", response: "lo", done: false, logprobs: [{ token: "lo" }] },
      { model: "m", created_at: "t4", response: "", done: true, done_reason: "stop", context: [1, 2], eval_count: 2 }
    )
    expect(fold("/api/generate", stream, {})).toEqual(Either.right({
      model: "m",
      created_at: "t4",
      response: "Hello",
      done: true,
      done_reason: "stop",
      context: [1, 2],
      eval_count: 2,
      thinking: "Let me think",
      logprobs: [{ token: "Hel" }, { token: "lo" }]
    }))
  })

  it("generate: no thinking and no logprobs are left out, as Go's omitempty leaves them", () => {
    const folded = fold("/api/generate", lines({ response: "a", done: false }, { response: "b", done: true }), {})
    expect(folded).toEqual(Either.right({ response: "ab", done: true }))
  })

  it("chat: message content and thinking concatenated; tool calls collected when the request had tools", () => {
    const stream = lines(
      { model: "m", message: { role: "assistant", content: "", tool_calls: [{ function: { name: "a" } }] }, done: false },
      { model: "m", message: { role: "assistant", content: "Sure", thinking: "hm" }, done: false },
      { model: "m", message: { role: "assistant", content: "!", tool_calls: [{ function: { name: "b" } }] }, done: false },
      { model: "m", message: { role: "assistant", content: "" }, done: true, done_reason: "stop" }
    )
    expect(fold("/api/chat", stream, { tools: [{ type: "function" }] })).toEqual(Either.right({
      model: "m",
      message: {
        role: "assistant",
        content: "Sure!",
        thinking: "hm",
        tool_calls: [{ function: { name: "a" } }, { function: { name: "b" } }]
      },
      done: true,
      done_reason: "stop"
    }))
    // Without tools in the request, the last chunk's message stands (with the text folded).
    const withoutTools = fold("/api/chat", stream, {})
    expect(Either.isRight(withoutTools) && (withoutTools.right.message as Record<string, unknown>)["tool_calls"]).toBeUndefined()
  })

  it("an error line is the target's own failure; garbage, an empty or unfinished stream is a broken answer", () => {
    expect(fold("/api/generate", lines({ response: "a", done: false }, { error: "model runner has unexpectedly stopped" }), {}))
      .toEqual(Either.left({ message: "model runner has unexpectedly stopped", broken: false }))
    expect(fold("/api/generate", "<html>", {})).toEqual(Either.left({ message: `the target's answer is not NDJSON: "<html>"`, broken: true }))
    expect(fold("/api/generate", "[1]\n", {})).toEqual(Either.left({ message: `the target's answer is not NDJSON: "[1]"`, broken: true }))
    expect(fold("/api/generate", "", {})).toEqual(Either.left({ message: "the target's answer is empty", broken: true }))
    expect(fold("/api/chat", lines({ message: { content: "a" }, done: false }), {}))
      .toEqual(Either.left({ message: "the target's answer ended before it was done", broken: true }))
  })
})
