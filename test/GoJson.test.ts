import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as GoJson from "../src/ollama/GoJson.ts"

const encoder = new TextEncoder()
const bytes = (body: string | Uint8Array) => typeof body === "string" ? encoder.encode(body) : body

describe("readValue: the first JSON value, like Go's json.Decoder", () => {
  it("nothing but JSON whitespace is Go's io.EOF", () => {
    for (const body of ["", " ", "\r\n\t "]) expect(GoJson.readValue(bytes(body))).toEqual(Either.left(GoJson.EOF))
    expect(GoJson.EOF).toBe("EOF")
  })

  it("other whitespace is not whitespace to Go", () => {
    expect(GoJson.readValue(bytes("\u00a0"))).toEqual(Either.left("invalid character 'Â' looking for beginning of value"))
    expect(GoJson.readValue(bytes("\ufeff{}"))).toEqual(Either.left("invalid character 'ï' looking for beginning of value"))
  })

  const firstValues: ReadonlyArray<readonly [string, unknown]> = [
    [`{"a":1}`, { a: 1 }],
    [` {"a":[1,{"b":"}"}]} {"c":2}`, { a: [1, { b: "}" }] }],
    [`{"a":1}x`, { a: 1 }],
    [`[1,2] garbage`, [1, 2]],
    [`"a\\"b"tail`, `a"b`],
    [`3x`, 3],
    [`-0.5e3,`, -500],
    [`nullx`, null],
    [`true false`, true],
    [`false`, false]
  ]
  for (const [body, value] of firstValues) {
    it(`${body} reads ${JSON.stringify(value)}; what follows is never looked at`, () => {
      expect(GoJson.readValue(bytes(body))).toEqual(Either.right(value))
    })
  }

  // The full table of scanner messages is in ollamaRequest.test.ts; these are one per path.
  const errors: ReadonlyArray<readonly [string, string]> = [
    [`{"a":1,}`, `invalid character '}' looking for beginning of object key string`],
    [`{"a" 1}`, `invalid character '1' after object key`],
    [`[1,]`, `invalid character ']' looking for beginning of value`],
    [`"abc`, "unexpected EOF"],
    [`{"a":[1,2`, "unexpected EOF"],
    [`1.`, "unexpected EOF"],
    [`-`, "unexpected EOF"],
    [`nul`, "unexpected EOF"],
    [`{"a":nul}`, `invalid character '}' in literal null (expecting 'l')`],
    [`"\t"`, String.raw`invalid character '\t' in string literal`],
    [`${"[".repeat(10001)}${"]".repeat(10001)}`, `invalid character '[' exceeded max depth`]
  ]
  for (const [body, message] of errors) {
    it(`${body.slice(0, 20)} is Go's ${JSON.stringify(message)}`, () => {
      expect(GoJson.readValue(bytes(body))).toEqual(Either.left(message))
    })
  }

  it("an object that looks whole but is not valid JSON is named by the scanner", () => {
    // the quote-to-quote jump finds an end; JSON.parse refuses; the scanner says why
    expect(GoJson.readValue(bytes(`{"a":01}`))).toEqual(Either.left(`invalid character '1' after object key:value pair`))
    expect(GoJson.readValue(bytes(`{"a":"\\x"}`))).toEqual(Either.left(`invalid character 'x' in string escape code`))
  })

  it("keeps invalid UTF-8 inside strings as U+FFFD, as Go does", () => {
    const body = new Uint8Array([...encoder.encode(`{"a":"`), 0xff, ...encoder.encode(`"}`)])
    expect(GoJson.readValue(body)).toEqual(Either.right({ a: "\ufffd" }))
  })

  it("reads tens of MiB of base64 in one pass, and a truncated copy is unexpected EOF", () => {
    const image = "QUJD".repeat(8 * 1024 * 1024) // 32 MiB
    const body = bytes(`{"images":["${image}"],"model":"m"}`)
    const read = GoJson.readValue(body)
    expect(Either.map(read, (value) => (value as { images: Array<string> }).images[0]!.length)).toEqual(Either.right(image.length))
    expect(GoJson.readValue(body.subarray(0, body.length - 5))).toEqual(Either.left("unexpected EOF"))
  })
})

describe("foldName: Go's case folding of keys", () => {
  it("upper-cases ASCII and folds the four runes Go folds into ASCII", () => {
    expect(GoJson.foldName("model")).toBe("MODEL")
    expect(GoJson.foldName("Stream_Options")).toBe("STREAM_OPTIONS")
    expect(GoJson.foldName("ſtream")).toBe("STREAM") // ſ U+017F
    expect(GoJson.foldName("\u212aeep")).toBe("KEEP") // Kelvin sign
    expect(GoJson.foldName("ınput")).toBe("INPUT") // dotless ı
    expect(GoJson.foldName("İnput")).toBe("INPUT") // dotted İ
  })

  it("leaves other runes alone, so they match only themselves", () => {
    expect(GoJson.foldName("mödel")).toBe("MöDEL")
    expect(GoJson.foldName("ﬁeld")).toBe("ﬁELD")
  })
})

describe("jsonType and dynamicType: how Go names a decoded value", () => {
  const values: ReadonlyArray<readonly [unknown, string, string]> = [
    ["x", "string", "string"],
    [1.5, "number", "float64"],
    [true, "bool", "bool"],
    [[1], "array", "[]interface {}"],
    [{}, "object", "map[string]interface {}"]
  ]
  for (const [value, json, dynamic] of values) {
    it(`${JSON.stringify(value)}: ${json}, %T ${dynamic}`, () => {
      expect(GoJson.jsonType(value)).toBe(json)
      expect(GoJson.dynamicType(value)).toBe(dynamic)
    })
  }
  it("null is <nil> to %T", () => expect(GoJson.dynamicType(null)).toBe("<nil>"))
})

describe("decoder: filling a struct like json.NewDecoder(r).Decode(&v)", () => {
  const Item = GoJson.struct("shop.Item", { name: GoJson.string, tags: GoJson.slice(GoJson.string, "[]string") })
  const Note = GoJson.struct("shop.Alias", { text: GoJson.string }, { unmarshaler: true })
  const Order = GoJson.struct("shop.Order", {
    id: GoJson.string,
    rush: GoJson.boolPointer,
    paid: GoJson.unchecked("bool"),
    extra: GoJson.any,
    items: GoJson.slice(Item, "[]shop.Item"),
    notes: GoJson.slice(Note, "[]shop.Note")
  })
  const decode = GoJson.decoder(Order)
  const fields = (body: string) => Either.map(decode(bytes(body)), (decoded) => decoded.fields)
  const error = (body: string) => Either.flip(decode(bytes(body)))

  it("keeps the whole first value as the body, unknown keys and spellings included", () => {
    const decoded = decode(bytes(`{"ID":"a","x":{"y":[1]},"id":"b"} tail`))
    expect(Either.map(decoded, (d) => d.body)).toEqual(Either.right({ ID: "a", x: { y: [1] }, id: "b" }))
    expect(Either.map(decoded, (d) => d.fields)).toEqual(Either.right({ id: "b" }))
  })

  it("null is the zero struct; other top-level values are Go's type error with the package", () => {
    expect(decode(bytes("null"))).toEqual(Either.right({ fields: {}, body: {} }))
    expect(error(`[{}]`)).toEqual(Either.right("json: cannot unmarshal array into Go value of type shop.Order"))
    expect(error(`"x"`)).toEqual(Either.right("json: cannot unmarshal string into Go value of type shop.Order"))
    expect(error("")).toEqual(Either.right(GoJson.EOF))
    expect(error("{")).toEqual(Either.right("unexpected EOF"))
  })

  it("matches keys by Go's folding, nested structs too; the last spelling wins", () => {
    expect(fields(`{"Id":"a","ıd":"b","ITEMS":[{"NAME":"n","Tags":["t"]}]}`)).toEqual(
      Either.right({ id: "b", items: [{ name: "n", tags: ["t"] }] })
    )
  })

  it("null unsets pointers, slices and interfaces, and leaves strings and bools alone", () => {
    expect(fields(`{"id":"a","rush":true,"paid":true,"extra":1,"items":[],"Id":null,"Rush":null,"Paid":null,"Extra":null,"Items":null}`))
      .toEqual(Either.right({ id: "a", paid: true }))
    // a null element of a slice of structs is the zero struct
    expect(fields(`{"items":[null,{"name":null}]}`)).toEqual(Either.right({ items: [{}, {}] }))
  })

  it("an unchecked field is filled but its type is left to the target", () => {
    expect(fields(`{"paid":"yes"}`)).toEqual(Either.right({ paid: "yes" }))
  })

  it("a type error names the struct field and its Go type (a pointer's element type)", () => {
    expect(error(`{"id":1}`)).toEqual(Either.right("json: cannot unmarshal number into Go struct field Order.id of type string"))
    expect(error(`{"rush":"y"}`)).toEqual(Either.right("json: cannot unmarshal string into Go struct field Order.rush of type bool"))
    expect(error(`{"items":{}}`)).toEqual(Either.right("json: cannot unmarshal object into Go struct field Order.items of type []shop.Item"))
  })

  it("the first type error in document order wins, nested ones in their place", () => {
    expect(error(`{"rush":1,"id":2}`)).toEqual(Either.right("json: cannot unmarshal number into Go struct field Order.rush of type bool"))
    expect(error(`{"items":[{"tags":[1]}],"id":2}`)).toEqual(
      // Go names the innermost struct being filled, with the whole field path (Go 1.24)
      Either.right("json: cannot unmarshal number into Go struct field Item.items.tags of type string")
    )
    expect(error(`{"items":[7],"id":2}`)).toEqual(
      Either.right("json: cannot unmarshal number into Go struct field Order.items of type shop.Item")
    )
  })

  it("an error inside a type with its own UnmarshalJSON stops decoding and wins", () => {
    expect(error(`{"id":1,"notes":[{"text":"ok"},{"text":2},{"text":3}]}`)).toEqual(
      Either.right("json: cannot unmarshal number into Go struct field Order.notes.text of type string")
    )
    expect(error(`{"id":1,"notes":[true]}`)).toEqual(
      Either.right("json: cannot unmarshal bool into Go struct field Order.notes of type shop.Alias")
    )
  })
})
