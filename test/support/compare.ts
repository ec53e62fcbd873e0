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
