/** Comparing two answers of the target to the same request: only the clock readings may differ. */
export const timeless = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(timeless)
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([key]) => key !== "created_at" && !key.endsWith("_duration"))
        .map(([key, inner]) => [key, timeless(inner)])
    )
  }
  return value
}

/** Drops, at any depth, the keys that differ between two identical calls (ids, clock readings). */
export const without = (keys: ReadonlyArray<string>) => {
  const drop = new Set(keys)
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(strip)
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).filter(([key]) => !drop.has(key)).map(([key, inner]) => [key, strip(inner)]))
    }
    return value
  }
  return strip
}

/** Every item of a stream, in order. */
export const collect = async <T>(stream: AsyncIterable<T>): Promise<Array<T>> => {
  const parts: Array<T> = []
  for await (const part of stream) parts.push(part)
  return parts
}

/** The rejection of a promise (fails the test if it resolves). */
export const rejection = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected the call to fail")
}
