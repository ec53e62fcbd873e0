import { describe, expect, it } from "@effect/vitest"
import { Either, Option } from "effect"
import * as ModelName from "../src/ollama/ModelName.ts"

const full = (name: ModelName.ModelName) => `${name.host}/${name.namespace}/${name.model}:${name.tag}`

describe("ModelName.parse: valid names, defaults filled in", () => {
  const cases: ReadonlyArray<readonly [raw: string, expected: string]> = [
    ["llama3", "registry.ollama.ai/library/llama3:latest"],
    ["llama3:8b", "registry.ollama.ai/library/llama3:8b"],
    ["llama3.2:3b-instruct-q4_K_M", "registry.ollama.ai/library/llama3.2:3b-instruct-q4_K_M"],
    ["user/model", "registry.ollama.ai/user/model:latest"],
    ["user-name_1/model:v1.0", "registry.ollama.ai/user-name_1/model:v1.0"],
    ["library/llama3:latest", "registry.ollama.ai/library/llama3:latest"],
    ["registry.ollama.ai/library/llama3:latest", "registry.ollama.ai/library/llama3:latest"],
    ["hf.co/org/repo:Q4_K_M", "hf.co/org/repo:Q4_K_M"],
    // a ":" before the last "/" belongs to the host: a port
    ["localhost:5000/ns/m:tag", "localhost:5000/ns/m:tag"],
    ["localhost:5000/ns/m", "localhost:5000/ns/m:latest"],
    ["my_host-1.example.com/ns/m", "my_host-1.example.com/ns/m:latest"],
    // an optional scheme before the host is dropped (any scheme, as Ollama does)
    ["https://hf.co/org/repo", "hf.co/org/repo:latest"],
    ["http://localhost:5000/ns/m:t", "localhost:5000/ns/m:t"],
    // Ollama quirk: a scheme with nothing after it leaves the default host
    ["http:///ns/m", "registry.ollama.ai/ns/m:latest"],
    // case is kept
    ["LLAMA3:Latest", "registry.ollama.ai/library/LLAMA3:Latest"],
    // parts may start with "_" or a digit, and model/tag may hold "." "-" "_" after that
    ["_m", "registry.ollama.ai/library/_m:latest"],
    ["0model..x--y__z:_1.-_", "registry.ollama.ai/library/0model..x--y__z:_1.-_"],
    // whitespace around the whole name is trimmed (Go's unicode.IsSpace, NEL included)
    ["  llama3 \n", "registry.ollama.ai/library/llama3:latest"],
    ["\u0085llama3\u00a0", "registry.ollama.ai/library/llama3:latest"],
    // maximum lengths
    [`${"h".repeat(350)}/ns/m`, `${"h".repeat(350)}/ns/m:latest`],
    [`${"n".repeat(80)}/m`, `registry.ollama.ai/${"n".repeat(80)}/m:latest`],
    ["m".repeat(80), `registry.ollama.ai/library/${"m".repeat(80)}:latest`],
    [`m:${"t".repeat(80)}`, `registry.ollama.ai/library/m:${"t".repeat(80)}`]
  ]
  for (const [raw, expected] of cases) {
    it(JSON.stringify(raw).slice(0, 60), () => {
      expect(Option.map(ModelName.parse(raw), full)).toEqual(Option.some(expected))
    })
  }
})

describe("ModelName.parse: invalid names", () => {
  const cases: ReadonlyArray<readonly [raw: string, why: string]> = [
    ["", "empty"],
    ["   ", "only whitespace"],
    ["\ufeffllama3", "U+FEFF is not whitespace to Go"],
    ["a//b", "empty namespace"],
    ["/m", "empty namespace before the model"],
    ["ns/", "empty model"],
    ["m:", "empty tag"],
    [":tag", "empty model before the tag"],
    ["//ns/m", "host is \"/\""],
    ["a/b/c/d", "too many parts (host holds a /)"],
    ["m@sha256-0123456789abcdef", "digest form"],
    ["m:tag@sha256-01", "digest after a tag"],
    [".m", "model starts with ."],
    ["-m", "model starts with -"],
    ["m:.t", "tag starts with ."],
    ["m:-t", "tag starts with -"],
    ["-host/ns/m", "host starts with -"],
    ["ns/.m", "model starts with . after a namespace"],
    ["ns.x/m", "namespace with ."],
    ["ns:x/m", "namespace with : (a port needs a host)"],
    ["localhost:5000/m", "one slash: the port is in the namespace"],
    ["m:t:x", "model with :"],
    ["m:tag/x", "a : before the last / is not a tag"],
    ["my model", "space"],
    ["mödel", "non-ASCII"],
    ["m!", "punctuation"],
    ["m+build", "build suffix"],
    [`${"h".repeat(351)}/ns/m`, "host longer than 350"],
    [`${"n".repeat(81)}/m`, "namespace longer than 80"],
    ["m".repeat(81), "model longer than 80"],
    [`m:${"t".repeat(81)}`, "tag longer than 80"]
  ]
  for (const [raw, why] of cases) {
    it(`${JSON.stringify(raw).slice(0, 40)}: ${why}`, () => {
      expect(ModelName.parse(raw)).toEqual(Option.none())
    })
  }

  it("parseUntrimmed does not trim (the source suffix is stripped before the check)", () => {
    expect(ModelName.parseUntrimmed(" llama3")).toEqual(Option.none())
    expect(Option.isSome(ModelName.parseUntrimmed("llama3"))).toBe(true)
  })
})

describe("ModelName.key", () => {
  it("is the same for every spelling of one model", () => {
    const spellings = [
      "llama3",
      "llama3:latest",
      "library/llama3:latest",
      "registry.ollama.ai/library/llama3:latest",
      "LLAMA3:Latest",
      "Registry.Ollama.AI/Library/Llama3",
      "https://registry.ollama.ai/library/llama3",
      " llama3 "
    ]
    for (const raw of spellings) {
      expect(ModelName.keyOf(raw)).toEqual(Option.some("registry.ollama.ai/library/llama3:latest"))
    }
  })

  it("tells different tags, namespaces and hosts apart", () => {
    const keys = ["llama3", "llama3:8b", "user/llama3", "hf.co/library/llama3", "localhost:5000/library/llama3"]
      .map((raw) => Option.getOrThrow(ModelName.keyOf(raw)))
    expect(new Set(keys).size).toBe(keys.length)
  })

  it("keyOf is None for an invalid name, and does not strip source suffixes", () => {
    expect(ModelName.keyOf("not a name")).toEqual(Option.none())
    expect(ModelName.keyOf("gpt-oss:cloud")).toEqual(Option.some("registry.ollama.ai/library/gpt-oss:cloud"))
  })
})

describe("ModelName.display", () => {
  const cases: ReadonlyArray<readonly [raw: string, expected: string]> = [
    ["llama3", "llama3:latest"],
    ["llama3:8b", "llama3:8b"],
    ["registry.ollama.ai/library/llama3:latest", "llama3:latest"],
    // defaults are recognised in any case; the rest keeps its spelling
    ["Registry.Ollama.AI/Library/Llama3:Latest", "Llama3:Latest"],
    ["user/model", "user/model:latest"],
    ["registry.ollama.ai/user/model:q4", "user/model:q4"],
    ["hf.co/org/repo:Q4_K_M", "hf.co/org/repo:Q4_K_M"],
    ["example.com/library/m", "example.com/library/m:latest"],
    ["localhost:5000/ns/m", "localhost:5000/ns/m:latest"]
  ]
  for (const [raw, expected] of cases) {
    it(`${raw} → ${expected}`, () => {
      expect(Option.map(ModelName.parse(raw), ModelName.display)).toEqual(Option.some(expected))
    })
  }
})

describe("ModelName.source", () => {
  const cases: ReadonlyArray<readonly [raw: string, source: ModelName.Source, name: string]> = [
    ["llama3", "default", "llama3"],
    ["llama3:8b", "default", "llama3:8b"],
    ["gpt-oss:cloud", "cloud", "gpt-oss"],
    ["gpt-oss:CLOUD", "cloud", "gpt-oss"],
    ["gpt-oss:120b-cloud", "cloud", "gpt-oss:120b"],
    ["gpt-oss:20B-Cloud", "cloud", "gpt-oss:20B"],
    ["user/m:cloud", "cloud", "user/m"],
    ["llama3:local", "local", "llama3"],
    ["Llama3:LOCAL", "local", "Llama3"],
    ["llama3:8b:local", "local", "llama3:8b"],
    [" llama3:cloud \n", "cloud", "llama3"],
    ["llama3: cloud", "cloud", "llama3"],
    // no ":" at all, or a "/" after it (a port), is not a suffix
    ["cloud", "default", "cloud"],
    ["localhost:5000/ns/m-cloud", "default", "localhost:5000/ns/m-cloud"],
    ["m-cloud", "default", "m-cloud"],
    ["", "default", ""]
  ]
  for (const [raw, source, name] of cases) {
    it(`${JSON.stringify(raw)} → ${source} ${JSON.stringify(name)}`, () => {
      expect(ModelName.source(raw)).toEqual(Either.right({ source, name }))
    })
  }

  const conflicts: ReadonlyArray<readonly [raw: string, message: string]> = [
    ["llama3:local:cloud", "use either :local or :cloud, not both: \"llama3:local:cloud\""],
    ["llama3:cloud:local", "use either :local or :cloud, not both: \"llama3:cloud:local\""],
    ["gpt-oss:20b-cloud:local", "use either :local or :cloud, not both: \"gpt-oss:20b-cloud:local\""],
    // Ollama refuses two suffixes even when they agree
    ["m:cloud:cloud", "use either :local or :cloud, not both: \"m:cloud:cloud\""],
    // the trimmed name, quoted the way Go's %q does
    [" we\"ird:local:cloud ", "use either :local or :cloud, not both: \"we\\\"ird:local:cloud\""]
  ]
  for (const [raw, message] of conflicts) {
    it(`${JSON.stringify(raw)} is refused`, () => {
      expect(ModelName.source(raw)).toEqual(Either.left(message))
    })
  }
})

describe("ModelName.goQuote (Go's %q)", () => {
  const cases: ReadonlyArray<readonly [raw: string, expected: string]> = [
    ["llama3", "\"llama3\""],
    ["a\"b\\c", "\"a\\\"b\\\\c\""],
    ["\u0007\b\f\n\r\t\v", "\"\\a\\b\\f\\n\\r\\t\\v\""],
    ["\u0001\u001f\u007f", "\"\\x01\\x1f\\x7f\""],
    ["modèle 😀", "\"modèle 😀\""],
    ["\u0085\u00a0\u200b", "\"\\u0085\\u00a0\\u200b\""],
    ["\u{e0001}", "\"\\U000e0001\""],
    ["\ud800", "\"\ufffd\""]
  ]
  for (const [raw, expected] of cases) {
    it(`${JSON.stringify(raw)} → ${expected}`, () => {
      expect(ModelName.goQuote(raw)).toBe(expected)
    })
  }
})
