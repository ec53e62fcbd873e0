/**
 * Decoding an Ollama job request body the way Ollama would (Go `encoding/json` through gin's
 * `ShouldBindJSON`, then the handler's own checks), so foreman refuses bad input before
 * queueing, with Ollama's status and text (reference §0, §3, §5.2). The bytes themselves are
 * forwarded untouched elsewhere; this module only looks at them.
 *
 * Bodies can be tens of MiB of base64 images, so the body is parsed once: the end of the first
 * JSON value is found by jumping from quote to quote, and only that slice goes to `JSON.parse`.
 * A port of Go's scanner runs only when that fails (or the body is not an object), to name
 * the error the way Go does.
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import { BadRequest, ModelNotFound } from "../Errors.ts"
import * as ModelName from "./ModelName.ts"

export type JobEndpoint = "/api/generate" | "/api/chat" | "/api/embed" | "/api/embeddings"

export interface JobRequest {
  readonly endpoint: JobEndpoint
  /** Exactly as the client sent it (`""` when absent). */
  readonly model: string
  /** generate/chat stream unless `stream` is an explicit `false`; embed/embeddings never stream. */
  readonly stream: boolean
  /** The parsed top-level object (`{}` for a `null` body). */
  readonly body: Record<string, unknown>
}

// ---------------------------------------------------------------------------------------------
// The fields foreman checks, as Go declares them
// ---------------------------------------------------------------------------------------------

/** Annotation: the Go type a field decodes into, as `reflect.Type.String()` prints it. */
const GoType = Symbol.for("foreman/GoType")

const exact = { exact: true } as const
const GoString = Schema.String.annotations({ [GoType]: "string" })
const GoBoolPointer = Schema.Boolean.annotations({ [GoType]: "*bool" })
const GoInterface = Schema.Unknown.annotations({ [GoType]: "interface {}" })

/**
 * `api.Message` decodes through its own `UnmarshalJSON` (it lower-cases `role`) via a local
 * `type Alias Message`, so a message that is not an object is reported as `api.Alias`.
 */
const Message = Schema.Struct({
  role: Schema.optionalWith(GoString, exact),
  content: Schema.optionalWith(GoString, exact)
}).annotations({ [GoType]: "api.Alias" })

const GenerateRequest = Schema.Struct({
  model: Schema.optionalWith(GoString, exact),
  prompt: Schema.optionalWith(GoString, exact),
  suffix: Schema.optionalWith(GoString, exact),
  system: Schema.optionalWith(GoString, exact),
  template: Schema.optionalWith(GoString, exact),
  stream: Schema.optionalWith(GoBoolPointer, exact)
}).annotations({ identifier: "GenerateRequest" })

const ChatRequest = Schema.Struct({
  model: Schema.optionalWith(GoString, exact),
  messages: Schema.optionalWith(Schema.Array(Message).annotations({ [GoType]: "[]api.Message" }), exact),
  stream: Schema.optionalWith(GoBoolPointer, exact)
}).annotations({ identifier: "ChatRequest" })

const EmbedRequest = Schema.Struct({
  model: Schema.optionalWith(GoString, exact),
  input: Schema.optionalWith(GoInterface, exact)
}).annotations({ identifier: "EmbedRequest" })

const EmbeddingRequest = Schema.Struct({
  model: Schema.optionalWith(GoString, exact),
  prompt: Schema.optionalWith(GoString, exact)
}).annotations({ identifier: "EmbeddingRequest" })

/** What the handlers go on to use, common to the four request types. */
interface Checked {
  readonly model?: string
  readonly stream?: boolean
  readonly input?: unknown
}

interface Field {
  readonly name: string
  /** Go zeroes a pointer, slice or interface on `null` and leaves a string alone. */
  readonly nullResets: boolean
}

interface Decoder {
  /** The Go struct name, as printed in `Go struct field <Struct>.<field>`. */
  readonly struct: string
  /** By Go's folded key: JSON keys match field names case-insensitively. */
  readonly fields: ReadonlyMap<string, Field>
  readonly decode: (input: unknown) => Either.Either<Checked, ParseResult.ParseError>
}

const goTypeOf = (ast: SchemaAST.AST): string =>
  Option.getOrElse(SchemaAST.getAnnotation<string>(ast, GoType), () => "interface {}")

/**
 * Go's `foldName`: upper-cased per rune via `ToUpper(ToLower(r))`. Besides ASCII only four
 * runes fold into ASCII letters: ſ → S, K (Kelvin) → K, ı and İ → I.
 */
const foldName = (key: string): string => {
  let out = ""
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    out += c >= 0x61 && c <= 0x7a
      ? String.fromCharCode(c - 0x20)
      : c === 0x17f
      ? "S"
      : c === 0x212a
      ? "K"
      : c === 0x131 || c === 0x130
      ? "I"
      : key[i]
  }
  return out
}

const fieldsOf = (ast: SchemaAST.AST): ReadonlyMap<string, Field> => {
  if (!SchemaAST.isTypeLiteral(ast)) throw new Error("ollamaRequest: a request schema must be a struct")
  return new Map(ast.propertySignatures.map((ps) => {
    const name = String(ps.name)
    const goType = goTypeOf(ps.type)
    return [foldName(name), { name, nullResets: /^(\*|\[\]|interface )/.test(goType) }] as const
  }))
}

const decoderOf = <A extends Checked, I>(schema: Schema.Schema<A, I>): Decoder => ({
  struct: Option.getOrElse(SchemaAST.getIdentifierAnnotation(schema.ast), () => "Request"),
  fields: fieldsOf(schema.ast),
  decode: Schema.decodeUnknownEither(schema, { errors: "all" })
})

const decoders: Record<JobEndpoint, Decoder> = {
  "/api/generate": decoderOf(GenerateRequest),
  "/api/chat": decoderOf(ChatRequest),
  "/api/embed": decoderOf(EmbedRequest),
  "/api/embeddings": decoderOf(EmbeddingRequest)
}

const messageFields = fieldsOf(Message.ast)

const maxFieldName = Math.max(
  ...[...Object.values(decoders).map((decoder) => decoder.fields), messageFields]
    .flatMap((fields) => [...fields.values()].map((field) => field.name.length))
)

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * The checked fields of a parsed object under their declared names, in document order, the way
 * Go fills a struct: any spelling of the key, the last occurrence wins, `null` only unsets
 * pointers, slices and interfaces. Unknown keys are left out (Go ignores them).
 */
const normalize = (fields: ReadonlyMap<string, Field>, input: Record<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(input)) {
    // Folding keeps the length, so a longer key cannot match (and a huge one is not folded).
    if (key.length > maxFieldName) continue
    const field = fields.get(foldName(key))
    if (field === undefined) continue
    const value = input[key]
    if (value !== null) out[field.name] = value
    else if (field.nullResets) delete out[field.name]
  }
  return out
}

/** The JSON type name Go's `UnmarshalTypeError` prints. */
const jsonType = (u: unknown): string =>
  typeof u === "string"
    ? "string"
    : typeof u === "number"
    ? "number"
    : typeof u === "boolean"
    ? "bool"
    : Array.isArray(u)
    ? "array"
    : "object"

interface Leaf {
  readonly path: ReadonlyArray<PropertyKey>
  readonly ast: SchemaAST.AST
  readonly actual: unknown
}

const leaves = (issue: ParseResult.ParseIssue, path: ReadonlyArray<PropertyKey>, out: Array<Leaf>): void => {
  switch (issue._tag) {
    case "Pointer":
      return leaves(issue.issue, path.concat(issue.path), out)
    case "Composite":
      for (const inner of Array.isArray(issue.issues) ? issue.issues : [issue.issues]) leaves(inner, path, out)
      return
    case "Refinement":
    case "Transformation":
      return leaves(issue.issue, path, out)
    case "Type":
      out.push({ path, ast: issue.ast, actual: issue.actual })
      return
    default:
      // Missing / Unexpected / Forbidden: every field is optional and excess keys are ignored.
      return
  }
}

const keyOrder = (obj: unknown, key: PropertyKey | undefined): number =>
  isRecord(obj) && key !== undefined ? Object.keys(obj).indexOf(String(key)) : 0

/**
 * Go's message for the type error Go would report. Type errors are kept while decoding goes on
 * and the first in document order is reported, except inside `messages`: an element fails in
 * `Message.UnmarshalJSON`, whose error stops decoding at once and wins. Since Go 1.24 the field
 * path then names the inner field after the outer struct (`ChatRequest.messages.role`).
 */
const typeErrorMessage = (struct: string, input: Record<string, unknown>, issue: ParseResult.ParseIssue): string => {
  const found: Array<Leaf> = []
  leaves(issue, [], found)
  const rank = (leaf: Leaf): [number, number, number] => {
    if (leaf.path.length === 1) return [1, keyOrder(input, leaf.path[0]), 0]
    const index = Number(leaf.path[1])
    const element = (input[String(leaf.path[0])] as ReadonlyArray<unknown>)[index]
    return [0, index, keyOrder(element, leaf.path[2])]
  }
  const compare = (a: Leaf, b: Leaf) => {
    const [x, y] = [rank(a), rank(b)]
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]
  }
  const best = found.sort(compare)[0]
  // Every failure of these schemas is a Type issue at a field; anything else would be a bug here.
  if (best === undefined) return `json: cannot unmarshal into Go value of type api.${struct}`
  const field = best.path.filter((p) => typeof p === "string").join(".")
  // A pointer is allocated before its element is decoded, so Go names the element type.
  const goType = goTypeOf(best.ast).replace(/^\*/, "")
  return `json: cannot unmarshal ${jsonType(best.actual)} into Go struct field ${struct}.${field} of type ${goType}`
}

// ---------------------------------------------------------------------------------------------
// Reading the first JSON value like Go's json.Decoder
// ---------------------------------------------------------------------------------------------

const maxNestingDepth = 10000

/** Go's `isSpace`: JSON whitespace only. */
const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d

/** Go's `quoteChar`, for `invalid character 'x' ...`: the byte as a rune, quoted. */
const quoteChar = (c: number): string =>
  c === 0x27 ? "'\\''" : c === 0x22 ? "'\"'" : `'${ModelName.goQuote(String.fromCharCode(c)).slice(1, -1)}'`

// Scanner states (Go's `step` functions) and results.
const BeginValue = 0
const BeginValueOrEmpty = 1
const BeginStringOrEmpty = 2
const BeginString = 3
const EndValue = 4
const EndTop = 5
const InString = 6
const InStringEsc = 7
const EscU = 8
const EscU1 = 9
const EscU12 = 10
const EscU123 = 11
const Neg = 12
const One = 13
const Zero = 14
const Dot = 15
const Dot0 = 16
const Exp = 17
const ExpSign = 18
const Exp0 = 19
const T = 20
const Tr = 21
const Tru = 22
const F = 23
const Fa = 24
const Fal = 25
const Fals = 26
const N = 27
const Nu = 28
const Nul = 29
const Failed = 30

const Continue = 0
const ValueEnd = 1
const ScanError = 2
const ContainerEnd = 3

const ObjectKey = 0
const ObjectValue = 1
const ArrayValue = 2

const isDigit = (c: number) => c >= 0x30 && c <= 0x39
const isHex = (c: number) => isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)

/**
 * Go's `json.Decoder.readValue` over `encoding/json`'s scanner: where the first value ends
 * (the byte after it), or Go's error text. Trailing bytes after the value are never looked at.
 */
const scanFirstValue = (b: Uint8Array, start: number): { readonly end: number } | { readonly error: string } => {
  let state = BeginValue
  const stack: Array<number> = []
  let error = ""

  const fail = (c: number, context: string) => {
    state = Failed
    error = `invalid character ${quoteChar(c)} ${context}`
    return ScanError
  }
  const push = (c: number, parseState: number) => {
    stack.push(parseState)
    return stack.length <= maxNestingDepth ? Continue : fail(c, "exceeded max depth")
  }
  const pop = () => {
    stack.pop()
    state = stack.length === 0 ? EndTop : EndValue
    return ContainerEnd
  }
  // A top-level value ended before this byte; Go complains about a non-space byte only on the
  // next call, which the decoder never makes.
  const endTop = () => ValueEnd
  const endValue = (c: number): number => {
    const n = stack.length
    if (n === 0) {
      state = EndTop
      return endTop()
    }
    if (isSpace(c)) {
      state = EndValue
      return Continue
    }
    switch (stack[n - 1]) {
      case ObjectKey:
        if (c === 0x3a) {
          stack[n - 1] = ObjectValue
          state = BeginValue
          return Continue
        }
        return fail(c, "after object key")
      case ObjectValue:
        if (c === 0x2c) {
          stack[n - 1] = ObjectKey
          state = BeginString
          return Continue
        }
        if (c === 0x7d) return pop()
        return fail(c, "after object key:value pair")
      default:
        if (c === 0x2c) {
          state = BeginValue
          return Continue
        }
        if (c === 0x5d) return pop()
        return fail(c, "after array element")
    }
  }
  const beginValue = (c: number): number => {
    if (isSpace(c)) return Continue
    switch (c) {
      case 0x7b:
        state = BeginStringOrEmpty
        return push(c, ObjectKey)
      case 0x5b:
        state = BeginValueOrEmpty
        return push(c, ArrayValue)
      case 0x22:
        state = InString
        return Continue
      case 0x2d:
        state = Neg
        return Continue
      case 0x30:
        state = Zero
        return Continue
      case 0x74:
        state = T
        return Continue
      case 0x66:
        state = F
        return Continue
      case 0x6e:
        state = N
        return Continue
    }
    if (c >= 0x31 && c <= 0x39) {
      state = One
      return Continue
    }
    return fail(c, "looking for beginning of value")
  }
  const beginString = (c: number): number => {
    if (isSpace(c)) return Continue
    if (c === 0x22) {
      state = InString
      return Continue
    }
    return fail(c, "looking for beginning of object key string")
  }
  const zero = (c: number): number => {
    if (c === 0x2e) {
      state = Dot
      return Continue
    }
    if (c === 0x65 || c === 0x45) {
      state = Exp
      return Continue
    }
    return endValue(c)
  }
  const expSign = (c: number): number => {
    if (isDigit(c)) {
      state = Exp0
      return Continue
    }
    return fail(c, "in exponent of numeric literal")
  }
  const literal = (c: number, want: number, next: number, context: string): number => {
    if (c === want) {
      state = next
      return Continue
    }
    return fail(c, `in literal ${context} (expecting ${quoteChar(want)})`)
  }

  const step = (c: number): number => {
    switch (state) {
      case BeginValue:
        return beginValue(c)
      case BeginValueOrEmpty:
        if (isSpace(c)) return Continue
        return c === 0x5d ? endValue(c) : beginValue(c)
      case BeginStringOrEmpty:
        if (isSpace(c)) return Continue
        if (c === 0x7d) {
          stack[stack.length - 1] = ObjectValue
          return endValue(c)
        }
        return beginString(c)
      case BeginString:
        return beginString(c)
      case EndValue:
        return endValue(c)
      case EndTop:
        return endTop()
      case InString:
        if (c === 0x22) {
          state = EndValue
          return Continue
        }
        if (c === 0x5c) {
          state = InStringEsc
          return Continue
        }
        return c < 0x20 ? fail(c, "in string literal") : Continue
      case InStringEsc:
        switch (c) {
          case 0x62:
          case 0x66:
          case 0x6e:
          case 0x72:
          case 0x74:
          case 0x5c:
          case 0x2f:
          case 0x22:
            state = InString
            return Continue
          case 0x75:
            state = EscU
            return Continue
        }
        return fail(c, "in string escape code")
      case EscU:
      case EscU1:
      case EscU12:
      case EscU123:
        if (isHex(c)) {
          state = state === EscU123 ? InString : state + 1
          return Continue
        }
        return fail(c, "in \\u hexadecimal character escape")
      case Neg:
        if (c === 0x30) {
          state = Zero
          return Continue
        }
        if (c >= 0x31 && c <= 0x39) {
          state = One
          return Continue
        }
        return fail(c, "in numeric literal")
      case One:
        return isDigit(c) ? Continue : zero(c)
      case Zero:
        return zero(c)
      case Dot:
        if (isDigit(c)) {
          state = Dot0
          return Continue
        }
        return fail(c, "after decimal point in numeric literal")
      case Dot0:
        if (isDigit(c)) return Continue
        if (c === 0x65 || c === 0x45) {
          state = Exp
          return Continue
        }
        return endValue(c)
      case Exp:
        if (c === 0x2b || c === 0x2d) {
          state = ExpSign
          return Continue
        }
        return expSign(c)
      case ExpSign:
        return expSign(c)
      case Exp0:
        return isDigit(c) ? Continue : endValue(c)
      case T:
        return literal(c, 0x72, Tr, "true")
      case Tr:
        return literal(c, 0x75, Tru, "true")
      case Tru:
        return literal(c, 0x65, EndValue, "true")
      case F:
        return literal(c, 0x61, Fa, "false")
      case Fa:
        return literal(c, 0x6c, Fal, "false")
      case Fal:
        return literal(c, 0x73, Fals, "false")
      case Fals:
        return literal(c, 0x65, EndValue, "false")
      case N:
        return literal(c, 0x75, Nu, "null")
      case Nu:
        return literal(c, 0x6c, Nul, "null")
      case Nul:
        return literal(c, 0x6c, EndValue, "null")
      default:
        return ScanError
    }
  }

  for (let i = start; i < b.length; i++) {
    if (state === InString) {
      // Plain string bytes change nothing; skip them without a call each (base64 images).
      while (i < b.length && b[i]! !== 0x22 && b[i]! !== 0x5c && b[i]! >= 0x20) i++
      if (i === b.length) break
    }
    const result = step(b[i]!)
    if (result === ValueEnd) return { end: i }
    if (result === ContainerEnd && stack.length === 0) return { end: i + 1 }
    if (result === ScanError) return { error }
  }
  // At EOF Go steps once more with a space: a number or literal may end there. The caller has
  // seen a non-space byte, so anything short of a whole value is a truncated one.
  return step(0x20) === ValueEnd ? { end: b.length } : { error: "unexpected EOF" }
}

/**
 * Where a top-level object ends, assuming it is valid JSON: brackets are counted outside
 * strings, and strings are crossed by jumping to the next unescaped quote. `-1` when no end is
 * found or the nesting is deeper than Go allows.
 */
const objectEnd = (b: Uint8Array, start: number): number => {
  let depth = 0
  for (let i = start; i < b.length; i++) {
    const c = b[i]!
    if (c === 0x22) {
      let quote = i
      for (;;) {
        quote = b.indexOf(0x22, quote + 1)
        if (quote < 0) return -1
        let backslashes = 0
        while (b[quote - 1 - backslashes] === 0x5c) backslashes++
        if ((backslashes & 1) === 0) break
      }
      i = quote
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > maxNestingDepth) return -1
    } else if ((c === 0x7d || c === 0x5d) && --depth === 0) {
      return i + 1
    }
  }
  return -1
}

// Go keeps invalid UTF-8 inside strings as U+FFFD, as a non-fatal decoder does; a BOM is not
// whitespace to Go, so it must not be dropped silently.
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true })

type Parsed =
  | { readonly _tag: "Object"; readonly value: Record<string, unknown> }
  | { readonly _tag: "Null" }
  | { readonly _tag: "Other"; readonly jsonType: string }

/** The first JSON value of the body, or Go's decoder error text. */
const readFirstValue = (b: Uint8Array): Either.Either<Parsed, string> => {
  let start = 0
  while (start < b.length && isSpace(b[start]!)) start++
  // gin hands Go's io.EOF to the handler, which answers this.
  if (start === b.length) return Either.left("missing request body")
  if (b[start] === 0x7b) {
    const end = objectEnd(b, start)
    if (end > 0) {
      try {
        return Either.right({ _tag: "Object", value: JSON.parse(utf8.decode(b.subarray(start, end))) })
      } catch {
        // Not valid JSON after all: let the scanner name the error.
      }
    }
  }
  const scanned = scanFirstValue(b, start)
  if ("error" in scanned) return Either.left(scanned.error)
  switch (b[start]) {
    case 0x7b:
      // Go's scanner accepted what JSON.parse refused: not expected to happen.
      return Either.left("invalid JSON")
    case 0x6e:
      return Either.right({ _tag: "Null" })
    case 0x5b:
      return Either.right({ _tag: "Other", jsonType: "array" })
    case 0x22:
      return Either.right({ _tag: "Other", jsonType: "string" })
    case 0x74:
    case 0x66:
      return Either.right({ _tag: "Other", jsonType: "bool" })
    default:
      return Either.right({ _tag: "Other", jsonType: "number" })
  }
}

// ---------------------------------------------------------------------------------------------
// The handlers' checks
// ---------------------------------------------------------------------------------------------

const badRequest = (message: string) => Either.left(new BadRequest({ message }))

/**
 * The 404 for a model the target does not have, in the wording of the endpoint: generate/chat
 * quote the name as sent in single quotes, embed/embeddings use Go's `%q`.
 */
/** What each handler answers when `model` is missing or empty. */
const missingModel = (endpoint: JobEndpoint, model: string): BadRequest | ModelNotFound =>
  endpoint === "/api/generate" || endpoint === "/api/embed"
    ? new ModelNotFound({ model, message: `model '${model}' not found` })
    : new BadRequest({ message: "model is required" })

/** `/api/embed`'s `input`: absent, a string, or an array of strings. */
const isValidInput = (input: unknown): boolean =>
  input === undefined || typeof input === "string" ||
  (Array.isArray(input) && input.every((item) => typeof item === "string"))

/**
 * Decodes a job request body as Ollama would, failing with Ollama's text: `BadRequest` (400)
 * or, where Ollama answers 404 for a missing model, `ModelNotFound`.
 */
export const decodeJobRequest = (
  endpoint: JobEndpoint,
  bytes: Uint8Array
): Either.Either<JobRequest, BadRequest | ModelNotFound> => {
  const decoder = decoders[endpoint]
  const parsed = readFirstValue(bytes)
  if (Either.isLeft(parsed)) return badRequest(parsed.left)
  if (parsed.right._tag === "Other") {
    return badRequest(`json: cannot unmarshal ${parsed.right.jsonType} into Go value of type api.${decoder.struct}`)
  }
  const body = parsed.right._tag === "Object" ? parsed.right.value : {}

  const input = normalize(decoder.fields, body)
  if (Array.isArray(input.messages)) {
    input.messages = input.messages.map((message: unknown) =>
      message === null ? {} : isRecord(message) ? normalize(messageFields, message) : message
    )
  }
  const checked = decoder.decode(input)
  if (Either.isLeft(checked)) return badRequest(typeErrorMessage(decoder.struct, input, checked.left.issue))
  const fields = checked.right

  if (endpoint === "/api/embed" && !isValidInput(fields.input)) return badRequest("invalid input type")

  const model = fields.model ?? ""
  if (ModelName.trimSpace(model) === "") return Either.left(missingModel(endpoint, model))
  const source = ModelName.source(model)
  if (Either.isLeft(source)) return badRequest(source.left)
  if (Option.isNone(ModelName.parseUntrimmed(source.right.name))) return badRequest("invalid model name")

  const streams = endpoint === "/api/generate" || endpoint === "/api/chat"
  return Either.right({ endpoint, model, stream: streams && fields.stream !== false, body })
}
