/**
 * Ollama model names (reference §7): parsing, the case-insensitive identity foreman keys
 * models by, the display form of `/api/tags` and `/api/ps`, and the `:local` / `:cloud`
 * source suffixes. Pure functions; they follow `types/model/name.go` and
 * `internal/modelref/modelref.go` of Ollama.
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"

/** A parsed model name with the defaults filled in; each part keeps the client's spelling. */
export interface ModelName {
  readonly host: string
  readonly namespace: string
  readonly model: string
  readonly tag: string
}

export const defaultHost = "registry.ollama.ai"
export const defaultNamespace = "library"
export const defaultTag = "latest"

type Part = "host" | "namespace" | "model" | "tag"

const maxLength: Record<Part, number> = { host: 350, namespace: 80, model: 80, tag: 80 }

const isAlphanumericOrUnderscore = (c: number) =>
  (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f

/** Go's `isValidPart`: ASCII only, so counting UTF-16 units is counting bytes. */
const isValidPart = (part: Part, s: string): boolean => {
  if (s.length < 1 || s.length > maxLength[part]) return false
  if (!isAlphanumericOrUnderscore(s.charCodeAt(0))) return false
  for (let i = 1; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (isAlphanumericOrUnderscore(c) || c === 0x2d /* - */) continue
    if (c === 0x2e /* . */ && part !== "namespace") continue
    if (c === 0x3a /* : */ && part === "host") continue
    return false
  }
  return true
}

/** Go's `unicode.IsSpace` (not JavaScript's `trim` set: Go counts U+0085, not U+FEFF). */
const isSpace = (c: number) =>
  (c >= 0x09 && c <= 0x0d) || c === 0x20 || c === 0x85 || c === 0xa0 || c === 0x1680 ||
  (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000

/** Go's `strings.TrimSpace`. */
export const trimSpace = (s: string): string => {
  let start = 0
  let end = s.length
  while (start < end && isSpace(s.charCodeAt(start))) start++
  while (end > start && isSpace(s.charCodeAt(end - 1))) end--
  return start === 0 && end === s.length ? s : s.slice(start, end)
}

/**
 * Parses without trimming (Go's `ParseName` + `IsValid`): the name handlers check after the
 * source suffix is stripped. A separator with nothing on one side makes the name invalid.
 */
export const parseUntrimmed = (s: string): Option.Option<ModelName> => {
  let rest = s
  let tag = defaultTag
  // "/" cannot occur in a tag, so a ":" after the last "/" starts the tag (a host may have a port).
  const colon = s.lastIndexOf(":")
  if (colon > s.lastIndexOf("/")) {
    tag = s.slice(colon + 1)
    rest = s.slice(0, colon)
    if (tag === "" || rest === "") return Option.none()
  }
  let host = defaultHost
  let namespace = defaultNamespace
  let model = rest
  const slash = rest.lastIndexOf("/")
  if (slash >= 0) {
    model = rest.slice(slash + 1)
    const before = rest.slice(0, slash)
    if (model === "" || before === "") return Option.none()
    const slash2 = before.lastIndexOf("/")
    if (slash2 < 0) {
      namespace = before
    } else {
      namespace = before.slice(slash2 + 1)
      const hostPart = before.slice(0, slash2)
      if (namespace === "" || hostPart === "") return Option.none()
      // An optional scheme before the host is dropped; an empty host falls back to the default.
      const scheme = hostPart.indexOf("://")
      host = (scheme >= 0 ? hostPart.slice(scheme + 3) : hostPart) || defaultHost
    }
  }
  return isValidPart("host", host) && isValidPart("namespace", namespace) && isValidPart("model", model) &&
      isValidPart("tag", tag)
    ? Option.some({ host, namespace, model, tag })
    : Option.none()
}

/** `[scheme://][host/][namespace/]model[:tag]`, whitespace around it trimmed, defaults filled in. */
export const parse = (raw: string): Option.Option<ModelName> => parseUntrimmed(trimSpace(raw))

/** The case-insensitive identity: `llama3`, `LLAMA3:Latest` and `registry.ollama.ai/library/llama3:latest` agree. */
export const key = (name: ModelName): string =>
  `${name.host}/${name.namespace}/${name.model}:${name.tag}`.toLowerCase()

/** `key` of a raw name; `None` when it is not a valid name. Source suffixes are not stripped. */
export const keyOf = (raw: string): Option.Option<string> => Option.map(parse(raw), key)

/**
 * The display form of tags and ps: default host and namespace dropped, only the host dropped
 * for a custom namespace, everything kept for another host; the tag is always shown.
 */
export const display = (name: ModelName): string => {
  const prefix = name.host.toLowerCase() !== defaultHost
    ? `${name.host}/${name.namespace}/`
    : name.namespace.toLowerCase() !== defaultNamespace
    ? `${name.namespace}/`
    : ""
  return `${prefix}${name.model}:${name.tag}`
}

/** Where a request wants its model served from (`internal/modelref`). */
export type Source = "local" | "cloud" | "default"

const sourceSuffix = (raw: string): { readonly base: string; readonly source: Source } | undefined => {
  const colon = raw.lastIndexOf(":")
  if (colon < 0) return undefined
  const suffixRaw = trimSpace(raw.slice(colon + 1))
  const suffix = suffixRaw.toLowerCase()
  if (suffix === "cloud") return { base: raw.slice(0, colon), source: "cloud" }
  if (suffix === "local") return { base: raw.slice(0, colon), source: "local" }
  if (!suffixRaw.includes("/") && suffix.endsWith("-cloud")) {
    return { base: raw.slice(0, colon + 1) + suffixRaw.slice(0, -"-cloud".length), source: "cloud" }
  }
  return undefined
}

/**
 * §7 step 1: a trailing `:cloud` (any case) or a tag ending in `-cloud` asks for the cloud, a
 * trailing `:local` for a local model; the suffix is stripped from `name`. Two suffixes are
 * refused with Ollama's 400 text. `name` is the trimmed input; an empty one is left to the
 * caller (Ollama answers "model is required" or its per-endpoint equivalent).
 */
export const source = (raw: string): Either.Either<{ readonly source: Source; readonly name: string }, string> => {
  const trimmed = trimSpace(raw)
  const found = sourceSuffix(trimmed)
  if (found === undefined) return Either.right({ source: "default", name: trimmed })
  if (sourceSuffix(found.base) !== undefined) {
    return Either.left(`use either :local or :cloud, not both: ${goQuote(trimmed)}`)
  }
  return Either.right({ source: found.source, name: found.base })
}

const printable = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u
const hex = (n: number, width: number) => n.toString(16).padStart(width, "0")

/**
 * Go's `strconv.Quote` (what `%q` prints): `"` and `\` escaped, control characters as `\n`,
 * `\x01`, other unprintable runes as `\u00a0` / `\U000e0001`. A lone surrogate (JSON allows
 * one in an escape; Go decodes it as U+FFFD) is quoted as U+FFFD.
 */
export const goQuote = (s: string): string => {
  let out = "\""
  for (const ch of s) {
    let cp = ch.codePointAt(0)!
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd
    switch (cp) {
      case 0x22:
        out += "\\\""
        continue
      case 0x5c:
        out += "\\\\"
        continue
      case 0x07:
        out += "\\a"
        continue
      case 0x08:
        out += "\\b"
        continue
      case 0x0c:
        out += "\\f"
        continue
      case 0x0a:
        out += "\\n"
        continue
      case 0x0d:
        out += "\\r"
        continue
      case 0x09:
        out += "\\t"
        continue
      case 0x0b:
        out += "\\v"
        continue
    }
    const char = String.fromCodePoint(cp)
    if (printable.test(char)) out += char
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${hex(cp, 2)}`
    else if (cp < 0x10000) out += `\\u${hex(cp, 4)}`
    else out += `\\U${hex(cp, 8)}`
  }
  return out + "\""
}
