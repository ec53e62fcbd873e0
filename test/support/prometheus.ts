/**
 * A strict parser of the Prometheus text exposition format 0.0.4, for tests: it reads what
 * Prometheus reads and throws, naming the line, on anything Prometheus's own parser rejects
 * or a scrape would misread, and on what the format forbids though parsers let it pass:
 * - names: metric `[a-zA-Z_:][a-zA-Z0-9_:]*`, label `[a-zA-Z_][a-zA-Z0-9_]*`;
 * - label values quoted, with only `\\`, `\"` and `\n` escapes; HELP text with only `\\` and `\n`;
 * - values Go floats (`+Inf`, `-Inf`, `NaN` included), an optional integer timestamp;
 * - at most one HELP and one TYPE per family, TYPE before the family's first sample, a
 *   family's lines together (a family name never comes back after another family);
 * - no series twice, no label twice in a sample;
 * - counters non-negative; histograms: `_bucket` with a valid `le`, buckets cumulative in
 *   `le` order, a `le="+Inf"` bucket equal to `_count`, `_sum` and `_count` for every label
 *   set; summaries: `quantile` in [0, 1], `_sum` and `_count` for every label set.
 * No npm parser fits: parse-prometheus-text-format is not maintained and lets most of these
 * through (and merges the label sets of a labelled histogram).
 */

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped"

export interface Sample {
  /** The sample's own name: `x`, `x_bucket`, `x_sum` or `x_count`. */
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
  readonly timestampMs?: number
}

export interface MetricFamily {
  readonly name: string
  readonly type: MetricType
  readonly help: string | undefined
  readonly samples: ReadonlyArray<Sample>
}

export class ParseError extends Error {
  constructor(line: number, text: string, reason: string) {
    super(`line ${line}: ${reason}: ${JSON.stringify(text)}`)
    this.name = "ParseError"
  }
}

const metricNameRe = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const labelNameRe = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const floatRe = /^(?:[+-]?(?:Inf|inf)|NaN|nan|[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)$/
const types = new Set<string>(["counter", "gauge", "histogram", "summary", "untyped"])

interface Building {
  readonly name: string
  type: MetricType | undefined
  help: string | undefined
  readonly samples: Array<Sample>
}

export const parse = (text: string): Array<MetricFamily> => {
  if (text !== "" && !text.endsWith("\n")) throw new ParseError(0, text.slice(-40), "the text does not end with a line feed")
  const lines = text === "" ? [] : text.slice(0, -1).split("\n")
  const families: Array<Building> = []
  const seen = new Set<string>()
  let current: Building | undefined

  const familyFor = (name: string, at: number, line: string): Building => {
    if (current !== undefined && current.name === name) return current
    if (seen.has(name)) throw new ParseError(at, line, `the lines of ${name} are not together`)
    seen.add(name)
    current = { name, type: undefined, help: undefined, samples: [] }
    families.push(current)
    return current
  }

  /** The family a sample name belongs to: the current one through its suffixes, else its own. */
  const ownerOf = (name: string): string => {
    if (current !== undefined) {
      const type = current.type
      const base = current.name
      if (name === base) return base
      if ((type === "histogram" || type === "summary") && (name === `${base}_sum` || name === `${base}_count`)) return base
      if (type === "histogram" && name === `${base}_bucket`) return base
    }
    return name
  }

  lines.forEach((line, index) => {
    const at = index + 1
    if (line.trim() === "") return
    if (line.startsWith("#")) {
      const meta = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(line)
      if (meta === null) return // a comment
      const [, keyword, name, rest = ""] = meta as unknown as [string, "HELP" | "TYPE", string, string | undefined]
      if (!metricNameRe.test(name)) throw new ParseError(at, line, "invalid metric name")
      const family = familyFor(name, at, line)
      if (keyword === "HELP") {
        if (family.help !== undefined) throw new ParseError(at, line, `second HELP for ${name}`)
        family.help = unescapeHelp(rest, at, line)
      } else {
        if (family.type !== undefined) throw new ParseError(at, line, `second TYPE for ${name}`)
        if (family.samples.length > 0) throw new ParseError(at, line, `TYPE for ${name} after its samples`)
        const type = rest.trim()
        if (!types.has(type)) throw new ParseError(at, line, `unknown type ${JSON.stringify(type)}`)
        family.type = type as MetricType
      }
      return
    }
    const sample = parseSample(line, at)
    const family = familyFor(ownerOf(sample.name), at, line)
    family.samples.push(sample)
  })

  return families.map((family, index) => {
    const done: MetricFamily = { name: family.name, type: family.type ?? "untyped", help: family.help, samples: family.samples }
    check(done, index)
    return done
  })
}

const parseSample = (line: string, at: number): Sample => {
  let i = 0
  const fail = (reason: string): never => {
    throw new ParseError(at, line, reason)
  }
  const blanks = () => {
    while (line[i] === " " || line[i] === "\t") i++
  }
  const nameMatch = /^[^\s{]+/.exec(line)
  const name = nameMatch?.[0] ?? fail("no metric name")
  if (!metricNameRe.test(name)) fail("invalid metric name")
  i = name.length
  blanks()
  const labels: Record<string, string> = {}
  if (line[i] === "{") {
    i++
    for (;;) {
      blanks()
      if (line[i] === "}") break
      const labelMatch = /^[^\s=,}]+/.exec(line.slice(i))
      const label = labelMatch?.[0] ?? fail("no label name")
      if (!labelNameRe.test(label)) fail(`invalid label name ${JSON.stringify(label)}`)
      if (Object.hasOwn(labels, label)) fail(`label ${label} twice`)
      i += label.length
      blanks()
      if (line[i] !== "=") fail(`no = after label ${label}`)
      i++
      blanks()
      if (line[i] !== "\"") fail(`label ${label}'s value is not quoted`)
      i++
      let value = ""
      for (;;) {
        const c = line[i]
        if (c === undefined) fail(`label ${label}'s value is not closed`)
        i++
        if (c === "\"") break
        if (c === "\\") {
          const e = line[i++]
          if (e === "\\") value += "\\"
          else if (e === "\"") value += "\""
          else if (e === "n") value += "\n"
          else fail(`invalid escape \\${e ?? ""} in label ${label}`)
        } else value += c
      }
      labels[label] = value
      blanks()
      if (line[i] === ",") i++
      else if (line[i] !== "}") fail("expected , or } after a label")
    }
    i++
  }
  const rest = line.slice(i).trim().split(/[ \t]+/)
  if (rest.length === 0 || rest[0] === "" || rest.length > 2) fail("expected a value and an optional timestamp")
  const valueText = rest[0]!
  if (!floatRe.test(valueText)) fail(`invalid value ${JSON.stringify(valueText)}`)
  const value = Number(valueText.replace(/^([+-]?)inf$/i, "$1Infinity").replace(/^nan$/i, "NaN"))
  if (rest[1] !== undefined) {
    if (!/^-?\d+$/.test(rest[1])) fail(`invalid timestamp ${JSON.stringify(rest[1])}`)
    return { name, labels, value, timestampMs: Number(rest[1]) }
  }
  return { name, labels, value }
}

const unescapeHelp = (text: string, at: number, line: string): string => {
  let out = ""
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (c !== "\\") {
      out += c
      continue
    }
    const e = text[++i]
    if (e === "\\") out += "\\"
    else if (e === "n") out += "\n"
    else throw new ParseError(at, line, `invalid escape \\${e ?? ""} in HELP`)
  }
  return out
}

/** The labels of a sample without the one a histogram or summary adds, as a key. */
const seriesKey = (labels: Readonly<Record<string, string>>, without?: string) =>
  JSON.stringify(Object.entries(labels).filter(([k]) => k !== without).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))

const check = (family: MetricFamily, index: number) => {
  const fail = (reason: string): never => {
    throw new Error(`family ${index + 1} (${family.name}): ${reason}`)
  }
  const distinct = new Set<string>()
  for (const sample of family.samples) {
    const key = `${sample.name}${seriesKey(sample.labels)}`
    if (distinct.has(key)) fail(`series ${key} twice`)
    distinct.add(key)
  }
  switch (family.type) {
    case "counter":
    case "gauge":
    case "untyped":
      for (const sample of family.samples) {
        if (sample.name !== family.name) fail(`sample ${sample.name} in a ${family.type}`)
        if (family.type === "counter" && sample.value < 0) fail(`negative counter ${sample.value}`)
      }
      return
    case "histogram": {
      const groups = new Map<string, { buckets: Array<[number, number]>; sum?: number; count?: number }>()
      const group = (key: string) => groups.get(key) ?? groups.set(key, { buckets: [] }).get(key)!
      for (const sample of family.samples) {
        if (sample.name === family.name) fail("a histogram sample without a suffix")
        if (sample.name === `${family.name}_bucket`) {
          const le = sample.labels.le ?? fail("a bucket without le")
          if (!floatRe.test(le)) fail(`invalid le ${JSON.stringify(le)}`)
          group(seriesKey(sample.labels, "le")).buckets.push([Number(le.replace(/^\+?Inf$/i, "Infinity")), sample.value])
        } else {
          if (sample.labels.le !== undefined) fail(`le on ${sample.name}`)
          const g = group(seriesKey(sample.labels))
          if (sample.name.endsWith("_sum")) g.sum = sample.value
          else g.count = sample.value
        }
      }
      for (const [key, g] of groups) {
        if (g.sum === undefined || g.count === undefined) fail(`${key}: no _sum or no _count`)
        const sorted = [...g.buckets].sort(([a], [b]) => a - b)
        sorted.forEach(([, count], i) => {
          if (i > 0 && count < sorted[i - 1]![1]) fail(`${key}: buckets not cumulative`)
        })
        const inf = sorted.at(-1)
        if (inf === undefined || inf[0] !== Number.POSITIVE_INFINITY) fail(`${key}: no le="+Inf" bucket`)
        if (inf![1] !== g.count) fail(`${key}: le="+Inf" is ${inf![1]}, _count is ${g.count}`)
      }
      return
    }
    case "summary": {
      const groups = new Map<string, { sum?: number; count?: number }>()
      const group = (key: string) => groups.get(key) ?? groups.set(key, {}).get(key)!
      for (const sample of family.samples) {
        if (sample.name === family.name) {
          const q = Number(sample.labels.quantile ?? fail("a summary sample without quantile"))
          if (!(q >= 0 && q <= 1)) fail(`quantile ${sample.labels.quantile} outside [0, 1]`)
          group(seriesKey(sample.labels, "quantile"))
        } else {
          if (sample.labels.quantile !== undefined) fail(`quantile on ${sample.name}`)
          const g = group(seriesKey(sample.labels))
          if (sample.name.endsWith("_sum")) g.sum = sample.value
          else g.count = sample.value
        }
      }
      for (const [key, g] of groups) if (g.sum === undefined || g.count === undefined) fail(`${key}: no _sum or no _count`)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Reading values

/** Whether `labels` contains every pair of `subset`. */
const matches = (labels: Readonly<Record<string, string>>, subset: Readonly<Record<string, string>>) =>
  Object.entries(subset).every(([k, v]) => labels[k] === v)

/** The family of that name. */
export const family = (families: ReadonlyArray<MetricFamily>, name: string): MetricFamily | undefined =>
  families.find((f) => f.name === name)

/** The samples named `name` (`x`, `x_count`, ...) whose labels include `labels`. */
export const samples = (
  families: ReadonlyArray<MetricFamily>,
  name: string,
  labels: Readonly<Record<string, string>> = {}
): ReadonlyArray<Sample> => families.flatMap((f) => f.samples).filter((s) => s.name === name && matches(s.labels, labels))

/** The sum of those samples' values (0 when there are none: a series not yet created). */
export const sum = (families: ReadonlyArray<MetricFamily>, name: string, labels: Readonly<Record<string, string>> = {}) =>
  samples(families, name, labels).reduce((total, s) => total + s.value, 0)
