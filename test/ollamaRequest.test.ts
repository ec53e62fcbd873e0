import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { BadRequest, ModelNotFound } from "../src/Errors.ts"
import { missingModelError } from "../src/ollama/errors.ts"
import { decodeJobRequest, type JobEndpoint } from "../src/ollama/request.ts"

const encoder = new TextEncoder()
const bytes = (body: string | Uint8Array) => typeof body === "string" ? encoder.encode(body) : body

type Expected =
  | { readonly bad: string }
  | { readonly notFound: string }
  | { readonly model: string; readonly stream: boolean }

interface Case {
  readonly name: string
  readonly endpoint: JobEndpoint
  readonly body: string | Uint8Array
  readonly expected: Expected
}

/** A plain picture of the outcome (vitest's `toEqual` does not compare error messages). */
const outcome = (result: ReturnType<typeof decodeJobRequest>) =>
  Either.match(result, {
    onLeft: (error) => ({ error: error._tag, message: error.message }),
    onRight: ({ model, stream }) => ({ model, stream })
  })

const check = ({ body, endpoint, expected }: Case) => {
  const result = decodeJobRequest(endpoint, bytes(body))
  if ("bad" in expected) {
    expect(outcome(result)).toStrictEqual({ error: "BadRequest", message: expected.bad })
    expect(Either.isLeft(result) && result.left).toBeInstanceOf(BadRequest)
  } else if ("notFound" in expected) {
    expect(outcome(result)).toStrictEqual({ error: "ModelNotFound", message: expected.notFound })
    expect(Either.isLeft(result) && result.left).toBeInstanceOf(ModelNotFound)
    // the error carries the model as sent, which is what the message quotes
    expect(Either.isLeft(result) && result.left._tag === "ModelNotFound" && `model '${result.left.model}' not found`)
      .toBe(expected.notFound)
  } else {
    expect(outcome(result)).toStrictEqual({ model: expected.model, stream: expected.stream })
    expect(Either.isRight(result) && result.right.endpoint).toBe(endpoint)
  }
}

const table = (title: string, cases: ReadonlyArray<Case>) =>
  describe(title, () => {
    for (const c of cases) it(`${c.endpoint} ${c.name}`, () => check(c))
  })

const generate = "/api/generate" as const
const chat = "/api/chat" as const
const embed = "/api/embed" as const
const embeddings = "/api/embeddings" as const
const endpoints = [generate, chat, embed, embeddings] as const
const structs = {
  [generate]: "GenerateRequest",
  [chat]: "ChatRequest",
  [embed]: "EmbedRequest",
  [embeddings]: "EmbeddingRequest"
} as const

table(
  "empty body",
  endpoints.flatMap((endpoint) => [
    { name: "no bytes", endpoint, body: "", expected: { bad: "missing request body" } },
    { name: "only whitespace", endpoint, body: " \r\n\t ", expected: { bad: "missing request body" } }
  ])
)

table("a null body is an empty request, then the missing-model rules apply", [
  { name: "null", endpoint: generate, body: "null", expected: { notFound: "model '' not found" } },
  { name: "null", endpoint: chat, body: " null\n", expected: { bad: "model is required" } },
  { name: "null", endpoint: embed, body: "null", expected: { notFound: "model '' not found" } },
  { name: "null", endpoint: embeddings, body: "null", expected: { bad: "model is required" } },
  { name: "null then garbage", endpoint: generate, body: "nullx", expected: { notFound: "model '' not found" } }
])

table("only the first JSON value is read", [
  { name: "a second object", endpoint: generate, body: `{"model":"llama3"}{"model":"x"}`, expected: { model: "llama3", stream: true } },
  { name: "garbage", endpoint: generate, body: `{"model":"llama3"} garbage`, expected: { model: "llama3", stream: true } },
  { name: "a truncated second value", endpoint: chat, body: `{"model":"llama3"}\n{"mo`, expected: { model: "llama3", stream: true } },
  {
    name: "brackets and escaped quotes inside strings",
    endpoint: generate,
    body: String.raw`{"prompt":"}]{[\"\\\"}","model":"m","x":["]}\\"]} trailing "`,
    expected: { model: "m", stream: true }
  },
  {
    name: "invalid UTF-8 inside a string (Go keeps it as U+FFFD)",
    endpoint: generate,
    body: new Uint8Array([...encoder.encode(`{"model":"m","prompt":"`), 0xff, 0xc3, ...encoder.encode(`"}`)]),
    expected: { model: "m", stream: true }
  }
])

table("truncated JSON", [
  ...[`{`, `{"model":"ll`, `{"model":"llama3",`, `{"model":"llama3"`, `{"model"`, `{"a":[1,`, `[1,`, `"abc`, `tru`, `-`, `1.`, `1e`]
    .map((body) => ({ name: body, endpoint: generate, body, expected: { bad: "unexpected EOF" } }))
])

table("malformed JSON: Go's scanner messages", [
  ...([
    [`x`, `invalid character 'x' looking for beginning of value`],
    [`{"model":x}`, `invalid character 'x' looking for beginning of value`],
    [`{"a":[1,]}`, `invalid character ']' looking for beginning of value`],
    [`{"model" "x"}`, `invalid character '"' after object key`],
    [`{"a":1 "b":2}`, `invalid character '"' after object key:value pair`],
    [`{"a":01}`, `invalid character '1' after object key:value pair`],
    [`{'a':1}`, String.raw`invalid character '\'' looking for beginning of object key string`],
    [`{"a":1,}`, `invalid character '}' looking for beginning of object key string`],
    [`[1 2]`, `invalid character '2' after array element`],
    [`{"a":"\u0001"}`, String.raw`invalid character '\x01' in string literal`],
    [`{"a":"line\nbreak"}`, String.raw`invalid character '\n' in string literal`],
    [String.raw`{"a":"\x"}`, `invalid character 'x' in string escape code`],
    [String.raw`{"a":"\u12g4"}`, String.raw`invalid character 'g' in \u hexadecimal character escape`],
    [`{"a":-x}`, `invalid character 'x' in numeric literal`],
    [`{"a":1.e5}`, `invalid character 'e' after decimal point in numeric literal`],
    [`{"a":1e+}`, `invalid character '}' in exponent of numeric literal`],
    [`{"a":tru}`, `invalid character '}' in literal true (expecting 'e')`],
    [`{"a":fals}`, `invalid character '}' in literal false (expecting 'e')`],
    [`{"a":nul}`, `invalid character '}' in literal null (expecting 'l')`],
    [`{"a":nUll}`, `invalid character 'U' in literal null (expecting 'u')`],
    [`\ufeff{}`, `invalid character 'ï' looking for beginning of value`],
    [`{"a":é}`, `invalid character 'Ã' looking for beginning of value`],
    // the first byte of a UTF-8 sequence, taken as a Latin-1 rune
    [`{"a":\u00a0}`, `invalid character 'Â' looking for beginning of value`],
    [`{"a":\u200b}`, `invalid character 'â' looking for beginning of value`],
    [`${"[".repeat(10001)}`, `invalid character '[' exceeded max depth`]
  ] as const).map(([body, message]) => ({ name: body.slice(0, 30), endpoint: generate, body, expected: { bad: message } })),
  // a stray byte is taken as a Latin-1 rune; unprintable ones are escaped
  ...([[0x85, String.raw`'\u0085'`], [0xa0, String.raw`'\u00a0'`], [0xad, String.raw`'\u00ad'`], [0xff, "'ÿ'"]] as const).map((
    [byte, quoted]
  ) => ({
    name: `byte 0x${byte.toString(16)}`,
    endpoint: generate,
    body: new Uint8Array([...encoder.encode(`{"a":`), byte, ...encoder.encode(`}`)]),
    expected: { bad: `invalid character ${quoted} looking for beginning of value` }
  })),
  {
    name: "nesting up to 10000 levels is fine",
    endpoint: generate,
    body: `{"a":${"[".repeat(9999)}${"]".repeat(9999)},"model":"m"}`,
    expected: { model: "m", stream: true }
  }
])

table(
  "a top-level value that is not an object",
  endpoints.flatMap((endpoint) =>
    ([[`[1]`, "array"], [`"x"`, "string"], [`3`, "number"], [`3x`, "number"], [`true`, "bool"]] as const).map((
      [body, type]
    ) => ({
      name: body,
      endpoint,
      body,
      expected: { bad: `json: cannot unmarshal ${type} into Go value of type api.${structs[endpoint]}` }
    }))
  )
)

table("keys match case-insensitively, like Go", [
  { name: "Model", endpoint: generate, body: `{"Model":"llama3"}`, expected: { model: "llama3", stream: true } },
  { name: "MODEL, STREAM", endpoint: chat, body: `{"MODEL":"llama3","STREAM":false}`, expected: { model: "llama3", stream: false } },
  // Go folds ſ (U+017F) to S
  { name: "ſtream", endpoint: generate, body: `{"model":"m","ſtream":false}`, expected: { model: "m", stream: false } },
  { name: "the last spelling wins", endpoint: generate, body: `{"model":"a","Model":"b"}`, expected: { model: "b", stream: true } }
])

const typeError = (endpoint: JobEndpoint, body: string, message: string, name = body.slice(0, 50)): Case => ({
  name,
  endpoint,
  body,
  expected: { bad: `json: cannot unmarshal ${message}` }
})

table("wrong field types: Go's UnmarshalTypeError", [
  ...endpoints.map((endpoint) =>
    typeError(endpoint, `{"model":1}`, `number into Go struct field ${structs[endpoint]}.model of type string`)
  ),
  typeError(generate, `{"model":"m","prompt":["a"]}`, "array into Go struct field GenerateRequest.prompt of type string"),
  typeError(generate, `{"model":"m","system":{}}`, "object into Go struct field GenerateRequest.system of type string"),
  typeError(generate, `{"model":"m","suffix":true}`, "bool into Go struct field GenerateRequest.suffix of type string"),
  typeError(generate, `{"model":"m","template":2}`, "number into Go struct field GenerateRequest.template of type string"),
  typeError(generate, `{"model":"m","stream":"false"}`, "string into Go struct field GenerateRequest.stream of type bool"),
  typeError(chat, `{"model":"m","stream":0}`, "number into Go struct field ChatRequest.stream of type bool"),
  typeError(chat, `{"model":"m","messages":{}}`, "object into Go struct field ChatRequest.messages of type []api.Message"),
  typeError(chat, `{"model":"m","messages":"hi"}`, "string into Go struct field ChatRequest.messages of type []api.Message"),
  // api.Message decodes through its own UnmarshalJSON (a local `type Alias Message`)
  typeError(chat, `{"model":"m","messages":[1]}`, "number into Go struct field ChatRequest.messages of type api.Alias"),
  typeError(chat, `{"model":"m","messages":[[]]}`, "array into Go struct field ChatRequest.messages of type api.Alias"),
  typeError(chat, `{"model":"m","messages":[{"role":1}]}`, "number into Go struct field ChatRequest.messages.role of type string"),
  typeError(
    chat,
    `{"model":"m","messages":[{"role":"user","Content":["a"]}]}`,
    "array into Go struct field ChatRequest.messages.content of type string"
  ),
  typeError(embeddings, `{"model":"m","prompt":false}`, "bool into Go struct field EmbeddingRequest.prompt of type string"),
  // Go keeps decoding after a type error and reports the first one in the document
  typeError(generate, `{"prompt":1,"model":2}`, "number into Go struct field GenerateRequest.prompt of type string"),
  typeError(generate, `{"model":2,"prompt":1}`, "number into Go struct field GenerateRequest.model of type string"),
  typeError(
    chat,
    `{"model":"m","messages":[{"content":true,"role":1}]}`,
    "bool into Go struct field ChatRequest.messages.content of type string"
  ),
  // ...but a message's own UnmarshalJSON error stops decoding and wins over earlier ones
  typeError(
    chat,
    `{"model":1,"messages":[{"role":"user"},{"content":2},{"role":3}]}`,
    "number into Go struct field ChatRequest.messages.content of type string"
  ),
  typeError(
    chat,
    `{"model":1,"messages":{}}`,
    "number into Go struct field ChatRequest.model of type string",
    "a non-array messages is an ordinary type error"
  )
])

table("null, unknown fields and fields foreman does not check", [
  { name: "null fields are unset", endpoint: generate, body: `{"model":"m","prompt":null,"stream":null}`, expected: { model: "m", stream: true } },
  { name: "null model", endpoint: chat, body: `{"model":null}`, expected: { bad: "model is required" } },
  { name: "null messages", endpoint: chat, body: `{"model":"m","messages":null}`, expected: { model: "m", stream: true } },
  {
    name: "null message, null role",
    endpoint: chat,
    body: `{"model":"m","messages":[null,{"role":null,"content":"hi"}]}`,
    expected: { model: "m", stream: true }
  },
  {
    name: "unknown fields of any type",
    endpoint: chat,
    body: `{"model":"m","options":{"x":[1]},"tools":7,"whatever":null,"messages":[{"role":"user","x":{}}]}`,
    expected: { model: "m", stream: true }
  }
])

table("/api/embed input", [
  ...([`"text"`, `["a","b"]`, `[]`, `null`, `""`] as const).map((input) => ({
    name: `input ${input}`,
    endpoint: embed,
    body: `{"model":"m","input":${input}}`,
    expected: { model: "m", stream: false }
  })),
  ...([`1`, `true`, `{}`, `[1]`, `["a",2]`, `[null]`, `[["a"]]`] as const).map((input) => ({
    name: `input ${input}`,
    endpoint: embed,
    body: `{"model":"m","input":${input}}`,
    expected: { bad: "invalid input type" }
  })),
  { name: "input is checked before the model", endpoint: embed, body: `{"input":1}`, expected: { bad: "invalid input type" } },
  { name: "Input", endpoint: embed, body: `{"model":"m","Input":[1]}`, expected: { bad: "invalid input type" } }
])

table("missing model", [
  { name: "absent", endpoint: generate, body: `{"prompt":"hi"}`, expected: { notFound: "model '' not found" } },
  { name: "empty", endpoint: generate, body: `{"model":""}`, expected: { notFound: "model '' not found" } },
  { name: "absent", endpoint: chat, body: `{"messages":[]}`, expected: { bad: "model is required" } },
  { name: "empty", endpoint: chat, body: `{"model":""}`, expected: { bad: "model is required" } },
  { name: "absent", endpoint: embed, body: `{"input":"x"}`, expected: { notFound: "model '' not found" } },
  { name: "empty", endpoint: embed, body: `{"model":""}`, expected: { notFound: "model '' not found" } },
  { name: "absent", endpoint: embeddings, body: `{"prompt":"x"}`, expected: { bad: "model is required" } },
  { name: "empty", endpoint: embeddings, body: `{"model":""}`, expected: { bad: "model is required" } },
  { name: "only whitespace", endpoint: generate, body: `{"model":"  "}`, expected: { notFound: "model '  ' not found" } },
  { name: "only whitespace", endpoint: chat, body: `{"model":"  "}`, expected: { bad: "model is required" } }
])

table("model name syntax and source suffixes", [
  ...endpoints.flatMap((endpoint) => [
    { name: "a space", endpoint, body: `{"model":"my model"}`, expected: { bad: "invalid model name" } },
    { name: "a digest", endpoint, body: `{"model":"m@sha256-0123"}`, expected: { bad: "invalid model name" } }
  ]),
  { name: "empty namespace", endpoint: generate, body: `{"model":"a//b"}`, expected: { bad: "invalid model name" } },
  { name: "empty tag", endpoint: chat, body: `{"model":"m:"}`, expected: { bad: "invalid model name" } },
  { name: "nothing before :cloud", endpoint: chat, body: `{"model":":cloud"}`, expected: { bad: "invalid model name" } },
  // the name is checked after the suffix is stripped, without trimming again
  { name: "a space before :cloud", endpoint: chat, body: `{"model":"m :cloud"}`, expected: { bad: "invalid model name" } },
  {
    name: "both suffixes",
    endpoint: generate,
    body: `{"model":"llama3:local:cloud"}`,
    expected: { bad: `use either :local or :cloud, not both: "llama3:local:cloud"` }
  },
  {
    name: "both suffixes",
    endpoint: embed,
    body: `{"model":"gpt-oss:20b-cloud:local"}`,
    expected: { bad: `use either :local or :cloud, not both: "gpt-oss:20b-cloud:local"` }
  },
  { name: ":cloud", endpoint: chat, body: `{"model":"gpt-oss:cloud"}`, expected: { model: "gpt-oss:cloud", stream: true } },
  { name: "-cloud", endpoint: generate, body: `{"model":"gpt-oss:20b-cloud"}`, expected: { model: "gpt-oss:20b-cloud", stream: true } },
  { name: ":local", endpoint: embed, body: `{"model":"llama3:local"}`, expected: { model: "llama3:local", stream: false } },
  // the model comes back exactly as sent
  { name: "kept as sent", endpoint: generate, body: `{"model":" LLAMA3:Latest "}`, expected: { model: " LLAMA3:Latest ", stream: true } },
  { name: "full name", endpoint: chat, body: `{"model":"https://hf.co/org/repo:Q4_K_M"}`, expected: { model: "https://hf.co/org/repo:Q4_K_M", stream: true } }
])

table("stream", [
  { name: "absent", endpoint: generate, body: `{"model":"m"}`, expected: { model: "m", stream: true } },
  { name: "true", endpoint: generate, body: `{"model":"m","stream":true}`, expected: { model: "m", stream: true } },
  { name: "false", endpoint: generate, body: `{"model":"m","stream":false}`, expected: { model: "m", stream: false } },
  { name: "absent", endpoint: chat, body: `{"model":"m"}`, expected: { model: "m", stream: true } },
  { name: "false", endpoint: chat, body: `{"model":"m","stream":false}`, expected: { model: "m", stream: false } },
  // a later null unsets an earlier false (Go zeroes the pointer)
  { name: "false then null", endpoint: chat, body: `{"model":"m","stream":false,"Stream":null}`, expected: { model: "m", stream: true } },
  { name: "true", endpoint: embed, body: `{"model":"m","stream":true}`, expected: { model: "m", stream: false } },
  { name: "absent", endpoint: embeddings, body: `{"model":"m"}`, expected: { model: "m", stream: false } }
])

describe("decodeJobRequest body", () => {
  it("is the parsed top-level object, unknown fields included", () => {
    const result = decodeJobRequest(generate, bytes(`{"model":"m","options":{"num_ctx":8192},"images":["aGk="]} tail`))
    expect(Either.map(result, (r) => r.body)).toEqual(
      Either.right({ model: "m", options: { num_ctx: 8192 }, images: ["aGk="] })
    )
  })

  it("handles a large image body in one pass", () => {
    const image = "QUJD".repeat(4 * 1024 * 1024) // 16 MiB of base64
    const body = bytes(JSON.stringify({ model: "llava", prompt: "describe", images: [image], stream: false }))
    const result = decodeJobRequest(generate, body)
    expect(Either.map(result, (r) => [r.model, r.stream, (r.body.images as Array<string>)[0]!.length])).toEqual(
      Either.right(["llava", false, image.length])
    )
    const truncated = decodeJobRequest(generate, body.subarray(0, body.length - 10))
    expect(outcome(truncated)).toStrictEqual({ error: "BadRequest", message: "unexpected EOF" })
  })
})

describe("missingModelError", () => {
  const cases: ReadonlyArray<readonly [JobEndpoint, string, string]> = [
    [generate, "llama3", "model 'llama3' not found"],
    [chat, "LLAMA3:Latest", "model 'LLAMA3:Latest' not found"],
    [embed, "llama3", `model "llama3" not found, try pulling it first`],
    [embeddings, "nomic-embed-text", `model "nomic-embed-text" not found, try pulling it first`],
    // Go's %q escapes quotes, backslashes and unprintable runes, and keeps printable Unicode
    [embed, "we\"ird\\mödel\u0007", `model "we\\"ird\\\\mödel\\a" not found, try pulling it first`]
  ]
  for (const [endpoint, model, message] of cases) {
    it(`${endpoint} ${model}`, () => {
      const error = missingModelError(endpoint, model)
      expect(error).toBeInstanceOf(ModelNotFound)
      expect({ model: error.model, message: error.message }).toStrictEqual({ model, message })
    })
  }
})
