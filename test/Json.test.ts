/**
 * JSON written back out of values a client or the target sent: the same text as
 * `JSON.stringify`, at any depth, and the depth of a text found without recursion.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import * as Json from "../src/Json.ts"

const nested = (levels: number) => "[".repeat(levels) + "]".repeat(levels)

describe("Json.encode", () => {
  it("writes what JSON.stringify writes, for any JSON value", () => {
    FastCheck.assert(FastCheck.property(FastCheck.jsonValue(), (value) => Json.encode(value) === JSON.stringify(value)))
  })

  it("leaves out undefined fields and writes undefined array items and non-finite numbers as null, as JSON.stringify does", () => {
    const value = { a: undefined, b: [undefined, Number.NaN, Infinity, 1.5e300, -0], c: "\u2028\"\\", "": {} }
    expect(Json.encode(value)).toBe(JSON.stringify(value))
  })

  it("writes values nested far deeper than JSON.stringify can", () => {
    const deep = JSON.parse(nested(100_000))
    expect(() => JSON.stringify(deep)).toThrow(RangeError)
    expect(Json.encode(deep)).toBe(nested(100_000))
    const objects = JSON.parse('{"a":'.repeat(20_000) + "1" + "}".repeat(20_000))
    expect(Json.encode(objects)).toBe('{"a":'.repeat(20_000) + "1" + "}".repeat(20_000))
  })
})

describe("Json.depth", () => {
  it("counts nesting outside strings", () => {
    expect(Json.depth("1")).toBe(0)
    expect(Json.depth('{"a":[1,{"b":[]}]}')).toBe(4)
    expect(Json.depth('{"a":"[[[[\\"[[[["}')).toBe(1)
    expect(Json.depth('["\\\\",[]]')).toBe(2)
    expect(Json.depth(nested(100_000))).toBe(100_000)
  })

  it("stops counting past the limit", () => {
    expect(Json.depth(nested(100_000), 10)).toBe(11)
  })
})
