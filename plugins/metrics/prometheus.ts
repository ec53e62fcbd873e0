/**
 * Effect's metric registry in the Prometheus text exposition format, version 0.0.4: a pure
 * function from a `Metric.snapshot` to the text a scrape gets.
 *
 * How Effect's metric types map:
 * - a counter made with `incremental: true` is a `counter`; any other Effect counter may go
 *   down (`Metric.incrementBy(c, -1)`), which a Prometheus counter must never do, so it is a
 *   `gauge`;
 * - a gauge is a `gauge`;
 * - a histogram is a `histogram`: Effect's buckets are already cumulative; `le="+Inf"` is
 *   the observation count, as Prometheus requires (it also counts a NaN observation, which
 *   no finite bucket holds);
 * - a summary is a `summary` (`quantile` samples, NaN while a quantile has no data, `_sum`,
 *   `_count`);
 * - a frequency is a `counter` with one series per word in the label `key` (the label
 *   Effect's OpenTelemetry exporter uses).
 *
 * Names that Prometheus would reject are sanitised (invalid characters become `_`). What
 * cannot be expressed at all (two metrics of different types under one name, a name taken
 * by another histogram's `_bucket`/`_sum`/`_count`, two series with the same labels, e.g.
 * two keys that differ only in their description) is left out with a `# dropped` comment
 * line saying so, rather than failing the scrape; the one kept is the first in order of
 * name, type, labels and description, so a scrape does not depend on the registry's order.
 */
import * as MetricKeyType from "effect/MetricKeyType"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"
import type * as MetricKey from "effect/MetricKey"
import type * as MetricPair from "effect/MetricPair"

/** The `Content-Type` of the 0.0.4 text format. */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

export interface RenderOptions {
  /** Which metrics to render (default: all of them). */
  readonly filter?: ((key: MetricKey.MetricKey.Untyped) => boolean) | undefined
}

type Kind = "counter" | "gauge" | "histogram" | "summary"
type Labels = ReadonlyArray<readonly [name: string, value: string]>

interface Series {
  /** The labels rendered, `{a="1",b="2"}` or empty: a family's series are keyed by it. */
  readonly key: string
  readonly lines: ReadonlyArray<string>
}

interface Entry {
  readonly name: string
  readonly kind: Kind
  readonly labels: Labels
  readonly labelKey: string
  readonly help: string | undefined
  readonly state: MetricState.MetricState.Untyped
}

interface Family {
  readonly name: string
  readonly kind: Kind
  help: string | undefined
  readonly series: Map<string, Series>
}

/** Renders the metrics of a snapshot (`Metric.snapshot` / `Metric.unsafeSnapshot`). */
export const render = (snapshot: Iterable<MetricPair.MetricPair.Untyped>, options: RenderOptions = {}): string => {
  const families = new Map<string, Family>()
  const dropped: Array<string> = []

  // The registry's order is its hash map's: sorted, the same metrics always render the same way.
  const entries: Array<Entry> = []
  for (const pair of snapshot) {
    const key = pair.metricKey
    if (options.filter !== undefined && !options.filter(key)) continue
    const kind = kindOf(key, pair.metricState)
    if (kind === undefined) continue
    const labels = labelsOf(key.tags, kind, pair.metricState)
    const help = Option.getOrUndefined(key.description)
    entries.push({ name: metricName(key.name), kind, labels, labelKey: renderLabels(labels), help, state: pair.metricState })
  }
  entries.sort((a, b) =>
    compare(a.name, b.name) || compare(a.kind, b.kind) || compare(a.labelKey, b.labelKey) ||
    compare(a.help ?? "", b.help ?? "")
  )

  for (const { name, kind, labels, help, state } of entries) {
    const family = families.get(name)
    if (family !== undefined && family.kind !== kind) {
      dropped.push(`${name} (${kind}): ${name} is already a ${family.kind}`)
      continue
    }
    const target = family ?? { name, kind, help: undefined, series: new Map<string, Series>() }
    if (family === undefined) families.set(name, target)
    if (target.help === undefined && help !== undefined && help !== "") target.help = help
    for (const series of seriesOf(name, labels, state)) {
      if (target.series.has(series.key)) dropped.push(`${name}${series.key}: a series with these labels is already rendered`)
      else target.series.set(series.key, series)
    }
  }

  // `x_bucket`, `x_sum` and `x_count` belong to histogram or summary `x`: another family of that name would merge into it.
  const taken = new Map<string, string>()
  for (const family of families.values()) {
    if (family.kind === "histogram") taken.set(`${family.name}_bucket`, family.name)
    if (family.kind === "histogram" || family.kind === "summary") {
      taken.set(`${family.name}_sum`, family.name)
      taken.set(`${family.name}_count`, family.name)
    }
  }

  const out: Array<string> = []
  for (const family of [...families.values()].sort((a, b) => compare(a.name, b.name))) {
    const owner = taken.get(family.name)
    if (owner !== undefined) {
      dropped.push(`${family.name} (${family.kind}): the name belongs to ${owner}'s samples`)
      continue
    }
    if (family.help !== undefined) out.push(`# HELP ${family.name} ${escapeHelp(family.help)}`)
    out.push(`# TYPE ${family.name} ${family.kind}`)
    for (const series of [...family.series.values()].sort((a, b) => compare(a.key, b.key))) out.push(...series.lines)
  }
  for (const reason of dropped) out.push(`# dropped ${reason.replace(/\n/g, "\\n")}`)
  return out.length === 0 ? "" : out.join("\n") + "\n"
}

const kindOf = (key: MetricKey.MetricKey.Untyped, state: MetricState.MetricState.Untyped): Kind | undefined => {
  if (MetricState.isCounterState(state)) {
    return MetricKeyType.isCounterKey(key.keyType) && key.keyType.incremental ? "counter" : "gauge"
  }
  if (MetricState.isGaugeState(state)) return "gauge"
  if (MetricState.isHistogramState(state)) return "histogram"
  if (MetricState.isSummaryState(state)) return "summary"
  if (MetricState.isFrequencyState(state)) return "counter"
  return undefined
}

/** The label a metric type adds itself; a user label of that name is renamed `exported_<name>`, as Prometheus does. */
const reservedLabel = (kind: Kind, state: MetricState.MetricState.Untyped): string | undefined =>
  kind === "histogram" ? "le" : kind === "summary" ? "quantile" : MetricState.isFrequencyState(state) ? "key" : undefined

/** Sanitised, one value per name (the last tag wins, as the latest `Metric.tagged` should), sorted by name. */
const labelsOf = (
  tags: ReadonlyArray<{ readonly key: string; readonly value: string }>,
  kind: Kind,
  state: MetricState.MetricState.Untyped
): Labels => {
  const reserved = reservedLabel(kind, state)
  const byName = new Map<string, string>()
  for (const tag of tags) {
    const name = labelName(tag.key)
    byName.set(name === reserved ? `exported_${name}` : name, tag.value)
  }
  return [...byName.entries()].sort(([a], [b]) => compare(a, b))
}

const seriesOf = (name: string, labels: Labels, state: MetricState.MetricState.Untyped): ReadonlyArray<Series> => {
  const key = renderLabels(labels)
  if (MetricState.isCounterState(state)) return [{ key, lines: [`${name}${key} ${formatNumber(state.count)}`] }]
  if (MetricState.isGaugeState(state)) return [{ key, lines: [`${name}${key} ${formatNumber(state.value)}`] }]
  if (MetricState.isHistogramState(state)) {
    const lines: Array<string> = []
    let cumulative = 0
    for (const [boundary, count] of state.buckets) {
      if (boundary === Number.POSITIVE_INFINITY) continue
      cumulative = count
      lines.push(`${name}_bucket${renderLabels([...labels, ["le", formatNumber(boundary)]])} ${formatNumber(count)}`)
    }
    lines.push(`${name}_bucket${renderLabels([...labels, ["le", "+Inf"]])} ${formatNumber(Math.max(state.count, cumulative))}`)
    lines.push(`${name}_sum${key} ${formatNumber(state.sum)}`)
    lines.push(`${name}_count${key} ${formatNumber(state.count)}`)
    return [{ key, lines }]
  }
  if (MetricState.isSummaryState(state)) {
    const lines = state.quantiles.map(([quantile, value]) =>
      `${name}${renderLabels([...labels, ["quantile", formatNumber(quantile)]])} ${
        formatNumber(Option.getOrElse(value, () => Number.NaN))
      }`
    )
    lines.push(`${name}_sum${key} ${formatNumber(state.sum)}`)
    lines.push(`${name}_count${key} ${formatNumber(state.count)}`)
    return [{ key, lines }]
  }
  if (MetricState.isFrequencyState(state)) {
    return [...state.occurrences].map(([word, count]) => {
      const withKey = renderLabels([...labels, ["key", word] as const].sort(([a], [b]) => compare(a, b)))
      return { key: withKey, lines: [`${name}${withKey} ${formatNumber(count)}`] }
    })
  }
  return []
}

const renderLabels = (labels: Labels): string =>
  labels.length === 0 ? "" : `{${labels.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(",")}}`

/** A sample value or `le`/`quantile`: Prometheus spells the special values `+Inf`, `-Inf` and `NaN`. */
export const formatNumber = (n: number | bigint): string => {
  if (typeof n === "bigint") return n.toString()
  if (Number.isNaN(n)) return "NaN"
  if (n === Number.POSITIVE_INFINITY) return "+Inf"
  if (n === Number.NEGATIVE_INFINITY) return "-Inf"
  // The shortest text that reads back as the same double (`1e-7`, `1e+21` are valid Go floats).
  return String(n)
}

/** In a label value, backslash, double quote and line feed are escaped. */
export const escapeLabelValue = (value: string): string =>
  value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

/** In a HELP text, backslash and line feed are escaped (a double quote is not). */
export const escapeHelp = (help: string): string => help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

/**
 * A valid metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*`: any other character becomes `_`, a
 * leading digit gets a `_` before it, and a leading `__` (reserved for Prometheus's own use)
 * is shortened to `_`.
 */
export const metricName = (name: string): string => sanitise(name, /[^a-zA-Z0-9_:]/g)

/** A valid label name, `[a-zA-Z_][a-zA-Z0-9_]*`, sanitised as `metricName` does (and `:` becomes `_`). */
export const labelName = (name: string): string => sanitise(name, /[^a-zA-Z0-9_]/g)

const sanitise = (name: string, invalid: RegExp): string => {
  const replaced = name.replace(invalid, "_")
  const prefixed = replaced === "" || /^[0-9]/.test(replaced) ? `_${replaced}` : replaced
  return prefixed.replace(/^_{2,}/, "_")
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
