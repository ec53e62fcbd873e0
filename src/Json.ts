/**
 * JSON for values a client or the target sent, which can nest as deep as Go's decoder allows
 * (10 000 levels) and deeper: `JSON.parse` copes (V8's parser keeps its own stack), but
 * `JSON.stringify` recurses and overflows the call stack at a few thousand levels. What foreman
 * writes back out of such a value goes through `encode`, which keeps its stack on the heap.
 */

/**
 * `JSON.stringify(value)` for JSON data (what `JSON.parse` returns), without recursion: the
 * same text for objects, arrays, strings, finite numbers, booleans and null; `undefined` and
 * functions are left out of objects and are `null` in arrays, non-finite numbers are `null`.
 */
export const encode = (value: unknown): string => {
  const out: Array<string> = []
  // Work items: a value to write, or a piece of text to emit as it is.
  const stack: Array<{ readonly text: string } | { readonly value: unknown }> = [{ value }]
  while (stack.length > 0) {
    const item = stack.pop()!
    if ("text" in item) {
      out.push(item.text)
      continue
    }
    const v = item.value
    if (v === null || typeof v === "function" || typeof v === "symbol" || v === undefined) {
      out.push("null")
    } else if (typeof v === "string" || typeof v === "boolean") {
      out.push(JSON.stringify(v))
    } else if (typeof v === "number") {
      out.push(Number.isFinite(v) ? String(v) : "null")
    } else if (typeof v === "bigint") {
      out.push(v.toString())
    } else if (Array.isArray(v)) {
      stack.push({ text: "]" })
      for (let i = v.length - 1; i >= 0; i--) {
        stack.push({ value: v[i] })
        if (i > 0) stack.push({ text: "," })
      }
      out.push("[")
    } else {
      const entries = Object.entries(v as Record<string, unknown>).filter(([, field]) =>
        field !== undefined && typeof field !== "function" && typeof field !== "symbol"
      )
      stack.push({ text: "}" })
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, field] = entries[i]!
        stack.push({ value: field })
        stack.push({ text: `${i > 0 ? "," : ""}${JSON.stringify(key)}:` })
      }
      out.push("{")
    }
  }
  return out.join("")
}

/**
 * How deep the JSON text nests (brackets and braces outside strings), scanned without
 * recursion; it stops counting once past `limit`.
 */
export const depth = (text: string, limit: number = Number.POSITIVE_INFINITY): number => {
  let current = 0
  let deepest = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22) {
      // Skip the string: to the next quote not escaped by an odd run of backslashes.
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i)
        if (d === 0x5c) i++
        else if (d === 0x22) break
      }
    } else if (c === 0x7b || c === 0x5b) {
      if (++current > deepest && (deepest = current) > limit) return deepest
    } else if (c === 0x7d || c === 0x5d) {
      current--
    }
  }
  return deepest
}
