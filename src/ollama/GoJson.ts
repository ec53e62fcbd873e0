/**
 * Go's `encoding/json` the way Ollama's handlers meet a request body: gin's `ShouldBindJSON`,
 * which is `json.NewDecoder(body).Decode(&req)` into a struct. Only the first JSON value is
 * read (trailing bytes are never looked at), keys match struct fields case-insensitively, the
 * last spelling wins, `null` only unsets pointers, slices and interfaces, and every failure is
 * worded as Go's `err.Error()` prints it, since Ollama answers that text verbatim. The
 * native request rules (`request.ts`) and the OpenAI plugin both decode with this.
 *
 * Bodies can be tens of MiB of base64 images, so a body is parsed once: the end of a top-level
 * object is found by jumping from quote to quote and only that slice goes to `JSON.parse`. A
 * port of Go's scanner runs only when that fails (or the value is not an object): it finds
 * where any other value ends, and names a syntax error exactly the way Go does.
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import { goQuote } from "./ModelName.ts"

/** Go's `io.EOF` text: the body held nothing but whitespace. */
export const EOF = "EOF"

// ---------------------------------------------------------------------------------------------
// Go types of the fields a caller checks
// ---------------------------------------------------------------------------------------------

/** Annotation: the Go type a schema stands for, as `reflect.Type.String()` prints it. */
const GoType = Symbol.for("foreman/GoType")
/** Annotation: the Go type has its own `UnmarshalJSON`, whose error stops decoding at once. */
const Unmarshaler = Symbol.for("foreman/GoUnmarshaler")

export const string = Schema.String.annotations({ [GoType]: "string" })
export const boolPointer = Schema.Boolean.annotations({ [GoType]: "*bool" })
export const any = Schema.Unknown.annotations({ [GoType]: "interface {}" })

/**
 * A field of the struct whose type foreman does not check (the target will): it is still
 * filled the way Go fills it (spellings, last one wins, `null` by the Go type's rule).
 */
export const unchecked = (goType: string) => Schema.Unknown.annotations({ [GoType]: goType })

/** A Go slice, `[]T`. */
export const slice = <S extends Schema.Schema.Any>(item: S, goType: string) =>
  Schema.Array(item).annotations({ [GoType]: goType })

type Fields = Record<string, Schema.Schema.Any>
type OptionalFields<F extends Fields> = { readonly [K in keyof F]: Schema.optionalWith<F[K], { exact: true }> }

/**
 * A Go struct, `goType` as Go prints it (`api.GenerateRequest`). Every field is optional: Go
 * leaves a missing one at its zero value. `unmarshaler`: the type decodes through its own
 * `UnmarshalJSON` (an error inside it stops decoding and wins over earlier ones).
 */
export const struct = <F extends Fields>(goType: string, fields: F, options?: { readonly unmarshaler?: boolean }) => {
  const optional = Object.fromEntries(
    Object.entries(fields).map(([name, schema]) => [name, Schema.optionalWith(schema, { exact: true })])
  ) as OptionalFields<F>
  return Schema.Struct(optional).annotations({ [GoType]: goType, [Unmarshaler]: options?.unmarshaler === true })
}

const goTypeOf = (ast: SchemaAST.AST): string =>
  Option.getOrElse(SchemaAST.getAnnotation<string>(ast, GoType), () => "interface {}")

/** `reflect.Type.Name()`: the type without its package. */
const goName = (goType: string) => goType.slice(goType.lastIndexOf(".") + 1)

// ---------------------------------------------------------------------------------------------
// Small pieces of Go's behaviour
// ---------------------------------------------------------------------------------------------

/**
 * Go's `foldName`: upper-cased per rune via `ToUpper(ToLower(r))`. Besides ASCII only four
 * runes fold into ASCII letters: ſ → S, K (Kelvin) → K, ı and İ → I.
 */
export const foldName = (key: string): string => {
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

/**
 * An object with the struct field `name` set to `value`, every spelling Go would read as that
 * field (`Stream`, `STREAM`, ...) dropped first, so the value cannot be overridden when
 * the target decodes it.
 */
export const setField = (body: Readonly<Record<string, unknown>>, name: string, value: unknown): Record<string, unknown> => {
  const folded = foldName(name)
  const out: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(body)) {
    if (foldName(key) !== folded) out[key] = item
  }
  out[name] = value
  return out
}

/** The JSON type name Go's `UnmarshalTypeError` prints. */
export const jsonType = (u: unknown): string =>
  typeof u === "string"
    ? "string"
    : typeof u === "number"
    ? "number"
    : typeof u === "boolean"
    ? "bool"
    : Array.isArray(u)
    ? "array"
    : "object"

/** What Go's `%T` prints for a value decoded into `any`. */
export const dynamicType = (u: unknown): string =>
  u === null
    ? "<nil>"
    : typeof u === "string"
    ? "string"
    : typeof u === "number"
    ? "float64"
    : typeof u === "boolean"
    ? "bool"
    : Array.isArray(u)
    ? "[]interface {}"
    : "map[string]interface {}"

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

// ---------------------------------------------------------------------------------------------
// Reading the first JSON value like Go's json.Decoder
// ---------------------------------------------------------------------------------------------

const maxNestingDepth = 10000

/** Go's `isSpace`: JSON whitespace only. */
const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d

/** Go's `quoteChar`, for `invalid character 'x' ...`: the byte as a rune, quoted. */
const quoteChar = (c: number): string =>
  c === 0x27 ? "'\\''" : c === 0x22 ? "'\"'" : `'${goQuote(String.fromCharCode(c)).slice(1, -1)}'`

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

const parseSlice = (b: Uint8Array, start: number, end: number): Either.Either<unknown, string> => {
  try {
    return Either.right(JSON.parse(utf8.decode(b.subarray(start, end))))
  } catch {
    // Go's scanner accepted what JSON.parse refused: not expected to happen.
    return Either.left("invalid JSON")
  }
}

/** The first JSON value of the body, or Go's decoder error text (`EOF` for an empty body). */
export const readValue = (b: Uint8Array): Either.Either<unknown, string> => {
  let start = 0
  while (start < b.length && isSpace(b[start]!)) start++
  if (start === b.length) return Either.left(EOF)
  if (b[start] === 0x7b) {
    const end = objectEnd(b, start)
    // Not valid JSON after all when this fails: the scanner names the error.
    const parsed = end > 0 ? parseSlice(b, start, end) : undefined
    if (parsed !== undefined && Either.isRight(parsed)) return parsed
  }
  const scanned = scanFirstValue(b, start)
  return "error" in scanned ? Either.left(scanned.error) : parseSlice(b, start, scanned.end)
}

// ---------------------------------------------------------------------------------------------
// Filling a struct like Go's decodeState
// ---------------------------------------------------------------------------------------------

interface Shape {
  readonly goType: string
  readonly unmarshaler: boolean
  /** By Go's folded key: JSON keys match field names case-insensitively. */
  readonly fields: ReadonlyMap<string, Field>
  /** The longest field name, nested structs included: folding keeps the length. */
  readonly longest: number
}

interface Field {
  readonly name: string
  /** Go zeroes a pointer, slice, map or interface on `null` and leaves anything else alone. */
  readonly nullResets: boolean
  /** The element struct of a slice of structs, filled the same way. */
  readonly elements: Shape | undefined
}

const shapeOf = (ast: SchemaAST.AST): Shape => {
  if (!SchemaAST.isTypeLiteral(ast)) throw new Error("GoJson: a struct schema must be a Schema.Struct")
  const fields = new Map<string, Field>()
  let longest = 0
  for (const ps of ast.propertySignatures) {
    const name = String(ps.name)
    const item = SchemaAST.isTupleType(ps.type) ? ps.type.rest[0]?.type : undefined
    const elements = item !== undefined && SchemaAST.isTypeLiteral(item) ? shapeOf(item) : undefined
    fields.set(foldName(name), { name, nullResets: /^(\*|\[\]|map\[|interface )/.test(goTypeOf(ps.type)), elements })
    longest = Math.max(longest, name.length, elements?.longest ?? 0)
  }
  return {
    goType: goTypeOf(ast),
    unmarshaler: SchemaAST.getAnnotation<boolean>(ast, Unmarshaler).pipe(Option.getOrElse(() => false)),
    fields,
    longest
  }
}

/**
 * The struct's fields of a parsed object under their declared names, in document order, the
 * way Go fills a struct: any spelling of the key, the last occurrence wins, `null` only unsets
 * pointers, slices and interfaces (a `null` struct element is the zero struct). Unknown keys
 * are left out (Go ignores them).
 */
const normalize = (shape: Shape, input: Record<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(input)) {
    // Folding keeps the length, so a longer key cannot match (and a huge one is not folded).
    if (key.length > shape.longest) continue
    const field = shape.fields.get(foldName(key))
    if (field === undefined) continue
    const value = input[key]
    if (value === null) {
      if (field.nullResets) delete out[field.name]
    } else if (field.elements !== undefined && Array.isArray(value)) {
      const elements = field.elements
      out[field.name] = value.map((item: unknown) =>
        item === null ? {} : isRecord(item) ? normalize(elements, item) : item
      )
    } else {
      out[field.name] = value
    }
  }
  return out
}

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

interface Located {
  readonly leaf: Leaf
  /** Inside a type with its own `UnmarshalJSON`: its error stops decoding. */
  readonly fatal: boolean
  /** Where the value sits in the document, step by step (key order, array index). */
  readonly position: ReadonlyArray<number>
  /** The struct Go names: the innermost one entered without an `UnmarshalJSON` of its own. */
  readonly struct: string
}

const locate = (shape: Shape, input: Record<string, unknown>, leaf: Leaf): Located => {
  let node: unknown = input
  let struct = goName(shape.goType)
  let fatal = false
  // The struct whose field the next key names, and the element struct of the slice just named.
  let within: Shape | undefined = shape
  let elements: Shape | undefined
  const position: Array<number> = []
  for (const step of leaf.path) {
    if (typeof step === "number") {
      position.push(step)
      within = elements
      fatal ||= within?.unmarshaler === true
    } else {
      position.push(isRecord(node) ? Object.keys(node).indexOf(String(step)) : 0)
      // Go names the struct of the field being filled; the caller of an `UnmarshalJSON` puts
      // its own struct over whatever the inner decoding named.
      if (within !== undefined && !fatal) struct = goName(within.goType)
      elements = within?.fields.get(foldName(String(step)))?.elements
      within = undefined
    }
    node = (node as Record<PropertyKey, unknown> | undefined)?.[step]
  }
  return { leaf, fatal, position, struct }
}

const compareLocated = (a: Located, b: Located): number => {
  if (a.fatal !== b.fatal) return a.fatal ? -1 : 1
  for (let i = 0; i < Math.min(a.position.length, b.position.length); i++) {
    if (a.position[i] !== b.position[i]) return a.position[i]! - b.position[i]!
  }
  return a.position.length - b.position.length
}

/**
 * Go's message for the type error Go would report. Go keeps type errors while decoding goes
 * on and reports the first in document order, except inside a type with its own
 * `UnmarshalJSON` (`api.Message`): its error stops decoding at once and wins. Since Go 1.24
 * the field path names inner fields after the outer struct (`ChatRequest.messages.role`).
 */
const typeErrorMessage = (shape: Shape, input: Record<string, unknown>, issue: ParseResult.ParseIssue): string => {
  const found: Array<Leaf> = []
  leaves(issue, [], found)
  const best = found.map((leaf) => locate(shape, input, leaf)).sort(compareLocated)[0]
  // Every failure of these schemas is a Type issue at a field; anything else would be a bug here.
  if (best === undefined) return `json: cannot unmarshal into Go value of type ${shape.goType}`
  const field = best.leaf.path.filter((p) => typeof p === "string").join(".")
  // A pointer is allocated before its element is decoded, so Go names the element type.
  const goType = goTypeOf(best.leaf.ast).replace(/^\*/, "")
  return `json: cannot unmarshal ${jsonType(best.leaf.actual)} into Go struct field ${best.struct}.${field} of type ${goType}`
}

export interface Decoded<A> {
  /** The struct's fields as Go fills them, under their declared names. */
  readonly fields: A
  /** The first JSON value as parsed, every key kept (`{}` for a `null` body). */
  readonly body: Record<string, unknown>
}

/** The first value of a body and the struct's fields, or the text of Go's error. */
export type Decoder<A> = (bytes: Uint8Array) => Either.Either<Decoded<A>, string>

/**
 * `json.NewDecoder(body).Decode(&v)` for a `struct` schema: the first value of the body and
 * the struct's fields, or the text of Go's error (`EOF`, a syntax error, a type error).
 */
export const decoder = <A, I>(schema: Schema.Schema<A, I>): Decoder<A> => {
  const shape = shapeOf(schema.ast)
  const decode = Schema.decodeUnknownEither(schema, { errors: "all" })
  return (bytes) => {
    const value = readValue(bytes)
    if (Either.isLeft(value)) return Either.left(value.left)
    const parsed = value.right
    if (parsed !== null && !isRecord(parsed)) {
      return Either.left(`json: cannot unmarshal ${jsonType(parsed)} into Go value of type ${shape.goType}`)
    }
    // `null` leaves the struct at its zero value.
    const body = parsed ?? {}
    const input = normalize(shape, body)
    return decode(input).pipe(
      Either.mapBoth({
        onLeft: (error) => typeErrorMessage(shape, input, error.issue),
        onRight: (fields) => ({ fields, body })
      })
    )
  }
}
