/**
 * The Prometheus renderer of the metrics plugin: Effect metrics in, exposition text out,
 * read back by a strict parser of the format (and, where it can, by an independent one).
 *
 * Effect's metric registry is global to the process (vitest gives this file its own), so
 * each test makes metrics under a name of its own and renders only those.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Metric, MetricBoundaries, MetricKey, MetricLabel, MetricPair, MetricState, Option } from "effect"
// @ts-expect-error: the package ships no types; its one export is typed below.
import parsePrometheusTextFormatUntyped from "parse-prometheus-text-format"
import { render } from "../plugins/metrics/index.ts"
import { contentType, escapeHelp, escapeLabelValue, formatNumber, labelName, metricName } from "../plugins/metrics/prometheus.ts"
import { Metrics } from "../src/index.ts"
import { type MetricFamily, parse, samples } from "./support/prometheus.ts"

/** The registry's metrics whose name starts with `prefix`, rendered. */
const renderPrefix = (prefix: string) =>
  Metric.snapshot.pipe(Effect.map((snapshot) => render(snapshot, { filter: (key) => key.name.startsWith(prefix) })))

/** The lines of a rendering that are not comments. */
const sampleLines = (text: string) => text.split("\n").filter((line) => line !== "" && !line.startsWith("#"))

const only = (families: ReadonlyArray<MetricFamily>) => {
  expect(families).toHaveLength(1)
  return families[0]!
}

const parsePrometheusTextFormat = parsePrometheusTextFormatUntyped as (text: string) => unknown

const seconds = MetricBoundaries.fromIterable([1, 2, 5])

describe("render", () => {
  it("renders nothing for no metrics, in the 0.0.4 text format's content type", () => {
    expect(render([])).toBe("")
    expect(contentType).toBe("text/plain; version=0.0.4; charset=utf-8")
  })

  it.effect("an incremental counter is a counter, one series per label set, HELP and TYPE once", () =>
    Effect.gen(function*() {
      const requests = Metric.counter("c1_requests_total", { description: "Requests served.", incremental: true })
      yield* Metric.incrementBy(Metric.tagged(Metric.tagged(requests, "path", "/a"), "code", "200"), 3)
      yield* Metric.increment(Metric.tagged(Metric.tagged(requests, "path", "/b"), "code", "404"))
      // Ignored: an incremental counter never goes down.
      yield* Metric.incrementBy(Metric.tagged(Metric.tagged(requests, "path", "/b"), "code", "404"), -5)
      const text = yield* renderPrefix("c1_")
      expect(text).toBe(
        [
          "# HELP c1_requests_total Requests served.",
          "# TYPE c1_requests_total counter",
          `c1_requests_total{code="200",path="/a"} 3`,
          `c1_requests_total{code="404",path="/b"} 1`,
          ""
        ].join("\n")
      )
      const family = only(parse(text))
      expect(family).toMatchObject({ name: "c1_requests_total", type: "counter", help: "Requests served." })
      expect(family.samples.map((s) => [s.labels, s.value])).toEqual([
        [{ code: "200", path: "/a" }, 3],
        [{ code: "404", path: "/b" }, 1]
      ])
    }))

  it.effect("a counter that may go down (not incremental) is a gauge; bigint counters render exactly", () =>
    Effect.gen(function*() {
      const active = Metric.counter("c2_active")
      yield* Metric.incrementBy(active, 5)
      yield* Metric.incrementBy(active, -2)
      const big = Metric.counter("c2_bytes_total", { bigint: true, incremental: true })
      yield* Metric.incrementBy(big, 2n ** 60n)
      const families = parse(yield* renderPrefix("c2_"))
      expect(families.map((f) => [f.name, f.type])).toEqual([["c2_active", "gauge"], ["c2_bytes_total", "counter"]])
      expect(families[0]!.samples[0]!.value).toBe(3)
      expect(sampleLines(yield* renderPrefix("c2_bytes"))).toEqual([`c2_bytes_total ${2n ** 60n}`])
    }))

  it.effect("a gauge is a gauge, with negative, fractional, infinite and NaN values", () =>
    Effect.gen(function*() {
      const gauge = Metric.gauge("g1_level", { description: "A level." })
      yield* Metric.set(Metric.tagged(gauge, "at", "neg"), -1.5)
      yield* Metric.set(Metric.tagged(gauge, "at", "tiny"), 1e-7)
      yield* Metric.set(Metric.tagged(gauge, "at", "huge"), 1e21)
      yield* Metric.set(Metric.tagged(gauge, "at", "inf"), Number.POSITIVE_INFINITY)
      yield* Metric.set(Metric.tagged(gauge, "at", "ninf"), Number.NEGATIVE_INFINITY)
      yield* Metric.set(Metric.tagged(gauge, "at", "nan"), Number.NaN)
      const text = yield* renderPrefix("g1_")
      expect(sampleLines(text)).toEqual([
        `g1_level{at="huge"} 1e+21`,
        `g1_level{at="inf"} +Inf`,
        `g1_level{at="nan"} NaN`,
        `g1_level{at="neg"} -1.5`,
        `g1_level{at="ninf"} -Inf`,
        `g1_level{at="tiny"} 1e-7`
      ])
      const family = only(parse(text))
      expect(family.type).toBe("gauge")
      expect(Object.fromEntries(family.samples.map((s) => [s.labels.at, s.value]))).toEqual({
        huge: 1e21,
        inf: Number.POSITIVE_INFINITY,
        nan: Number.NaN,
        neg: -1.5,
        ninf: Number.NEGATIVE_INFINITY,
        tiny: 1e-7
      })
    }))

  it.effect("a histogram has cumulative buckets ending in le=\"+Inf\" (the count), then _sum and _count", () =>
    Effect.gen(function*() {
      const latency = Metric.histogram("h1_latency_seconds", seconds, "Latency.")
      for (const value of [0.5, 1, 1.5, 3, 10]) yield* Metric.update(latency, value)
      const text = yield* renderPrefix("h1_")
      expect(text).toBe(
        [
          "# HELP h1_latency_seconds Latency.",
          "# TYPE h1_latency_seconds histogram",
          `h1_latency_seconds_bucket{le="1"} 2`,
          `h1_latency_seconds_bucket{le="2"} 3`,
          `h1_latency_seconds_bucket{le="5"} 4`,
          `h1_latency_seconds_bucket{le="+Inf"} 5`,
          "h1_latency_seconds_sum 16",
          "h1_latency_seconds_count 5",
          ""
        ].join("\n")
      )
      expect(only(parse(text)).type).toBe("histogram")
    }))

  it.effect("an empty histogram still has every bucket at 0; a NaN observation counts only in +Inf", () =>
    Effect.gen(function*() {
      const empty = Metric.histogram("h2_empty", seconds)
      yield* Metric.value(empty)
      expect(sampleLines(yield* renderPrefix("h2_"))).toEqual([
        `h2_empty_bucket{le="1"} 0`,
        `h2_empty_bucket{le="2"} 0`,
        `h2_empty_bucket{le="5"} 0`,
        `h2_empty_bucket{le="+Inf"} 0`,
        "h2_empty_sum 0",
        "h2_empty_count 0"
      ])
      const odd = Metric.histogram("h3_odd", seconds)
      yield* Metric.update(odd, 1)
      yield* Metric.update(odd, Number.NaN)
      const text = yield* renderPrefix("h3_")
      expect(sampleLines(text)).toContain(`h3_odd_bucket{le="5"} 1`)
      expect(sampleLines(text)).toContain(`h3_odd_bucket{le="+Inf"} 2`)
      expect(sampleLines(text)).toContain("h3_odd_count 2")
      parse(text)
    }))

  it.effect("a labelled histogram: le comes after the metric's labels; a user label named le is renamed; series sorted by labels", () =>
    Effect.gen(function*() {
      const latency = Metric.histogram("h4_latency_seconds", seconds)
      yield* Metric.update(Metric.tagged(latency, "route", "/a"), 1.5)
      yield* Metric.update(Metric.tagged(Metric.tagged(latency, "route", "/b"), "le", "mine"), 7)
      const text = yield* renderPrefix("h4_")
      expect(sampleLines(text)).toEqual([
        `h4_latency_seconds_bucket{exported_le="mine",route="/b",le="1"} 0`,
        `h4_latency_seconds_bucket{exported_le="mine",route="/b",le="2"} 0`,
        `h4_latency_seconds_bucket{exported_le="mine",route="/b",le="5"} 0`,
        `h4_latency_seconds_bucket{exported_le="mine",route="/b",le="+Inf"} 1`,
        `h4_latency_seconds_sum{exported_le="mine",route="/b"} 7`,
        `h4_latency_seconds_count{exported_le="mine",route="/b"} 1`,
        `h4_latency_seconds_bucket{route="/a",le="1"} 0`,
        `h4_latency_seconds_bucket{route="/a",le="2"} 1`,
        `h4_latency_seconds_bucket{route="/a",le="5"} 1`,
        `h4_latency_seconds_bucket{route="/a",le="+Inf"} 1`,
        `h4_latency_seconds_sum{route="/a"} 1.5`,
        `h4_latency_seconds_count{route="/a"} 1`
      ])
      const family = only(parse(text))
      expect(samples([family], "h4_latency_seconds_count", { route: "/b" })[0]!.value).toBe(1)
    }))

  // Live clock: a summary drops observations older than maxAge, measured against the wall clock.
  it.live("a summary has its quantiles (NaN while empty), _sum and _count", () =>
    Effect.gen(function*() {
      const options = { maxAge: Duration.minutes(1), maxSize: 100, error: 0.01, quantiles: [0.5, 0.9] }
      const sizes = Metric.summary({ name: "s1_size_bytes", description: "Sizes.", ...options })
      for (let i = 1; i <= 10; i++) yield* Metric.update(sizes, i)
      yield* Metric.value(Metric.summary({ name: "s1_unused", ...options }))
      const text = yield* renderPrefix("s1_")
      const families = parse(text)
      expect(families.map((f) => [f.name, f.type])).toEqual([["s1_size_bytes", "summary"], ["s1_unused", "summary"]])
      expect(families[0]!.help).toBe("Sizes.")
      expect(families[0]!.samples.map((s) => [s.name, s.labels, s.value])).toEqual([
        ["s1_size_bytes", { quantile: "0.5" }, 5],
        ["s1_size_bytes", { quantile: "0.9" }, 9],
        ["s1_size_bytes_sum", {}, 55],
        ["s1_size_bytes_count", {}, 10]
      ])
      expect(sampleLines(text)).toContain(`s1_unused{quantile="0.5"} NaN`)
      expect(sampleLines(text)).toContain("s1_unused_count 0")
    }))

  it.effect("a frequency is a counter with one series per word, in the label key", () =>
    Effect.gen(function*() {
      const errors = Metric.frequency("f1_errors", { description: "Errors by kind." })
      yield* Metric.update(Metric.tagged(errors, "zone", "eu"), "timeout")
      yield* Metric.update(Metric.tagged(errors, "zone", "eu"), "timeout")
      yield* Metric.update(Metric.tagged(errors, "zone", "eu"), "refused")
      const text = yield* renderPrefix("f1_")
      expect(sampleLines(text)).toEqual([`f1_errors{key="refused",zone="eu"} 1`, `f1_errors{key="timeout",zone="eu"} 2`])
      expect(only(parse(text)).type).toBe("counter")
    }))

  it.effect("label values escape backslash, double quote and line feed; HELP escapes backslash and line feed", () =>
    Effect.gen(function*() {
      const nasty = "C:\\models\\\"llama\"\nnext line, {braces} = and, commas"
      const counter = Metric.counter("e1_odd_total", { description: "Path \\ with \"quotes\"\nand a second line.", incremental: true })
      yield* Metric.increment(Metric.tagged(counter, "path", nasty))
      yield* Metric.increment(Metric.tagged(counter, "path", "plain ünïcødé ✓"))
      const text = yield* renderPrefix("e1_")
      expect(text).toContain(`# HELP e1_odd_total Path \\\\ with "quotes"\\nand a second line.\n`)
      expect(text).toContain(`e1_odd_total{path="C:\\\\models\\\\\\"llama\\"\\nnext line, {braces} = and, commas"} 1\n`)
      // One line per sample: the line feed never reaches the output raw.
      expect(sampleLines(text)).toHaveLength(2)
      const family = only(parse(text))
      expect(family.help).toBe("Path \\ with \"quotes\"\nand a second line.")
      expect(family.samples.map((s) => s.labels.path).sort()).toEqual([nasty, "plain ünïcødé ✓"].sort())
    }))

  it.effect("metric and label names Prometheus would reject are sanitised", () =>
    Effect.gen(function*() {
      yield* Metric.set(Metric.tagged(Metric.gauge("n1.http-requests in/flight"), "http.method", "GET"), 1)
      yield* Metric.set(Metric.tagged(Metric.gauge("n1_ok:ratio"), "0day", "x"), 1)
      yield* Metric.set(Metric.tagged(Metric.gauge("n1_reserved"), "__name__", "x"), 1)
      const text = yield* renderPrefix("n1")
      expect(sampleLines(text)).toEqual([
        `n1_http_requests_in_flight{http_method="GET"} 1`,
        `n1_ok:ratio{_0day="x"} 1`,
        `n1_reserved{_name__="x"} 1`
      ])
      parse(text)
      expect([metricName("9lives"), metricName(""), metricName("__x"), metricName("a:b")]).toEqual(["_9lives", "_", "_x", "a:b"])
      expect([labelName("a:b"), labelName("ünï"), labelName("ok_1")]).toEqual(["a_b", "_n_", "ok_1"])
    }))

  it("numbers: the special values as Prometheus spells them, the rest as the shortest exact decimal", () => {
    expect([Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN, 0, -0, 0.1, 1e-7, 1e21, 2 ** 53 + 2].map(formatNumber))
      .toEqual(["+Inf", "-Inf", "NaN", "0", "0", "0.1", "1e-7", "1e+21", "9007199254740994"])
    expect(formatNumber(12345678901234567890n)).toBe("12345678901234567890")
    expect(escapeLabelValue("a\\b\"c\nd")).toBe("a\\\\b\\\"c\\nd")
    expect(escapeHelp("a\\b\"c\nd")).toBe("a\\\\b\"c\\nd")
  })

  it.effect("what cannot be expressed is left out with a comment, not a broken scrape", () =>
    Effect.gen(function*() {
      // One name, two types.
      yield* Metric.increment(Metric.counter("d1_x", { incremental: true }))
      yield* Metric.set(Metric.gauge("d1_x"), 7)
      // Two keys that differ only in their description: the same series twice.
      yield* Metric.set(Metric.gauge("d1_y", { description: "first" }), 1)
      yield* Metric.set(Metric.gauge("d1_y", { description: "second" }), 2)
      // A counter named like a histogram's own _count samples.
      yield* Metric.update(Metric.histogram("d1_h", seconds), 1)
      yield* Metric.increment(Metric.counter("d1_h_count", { incremental: true }))
      const text = yield* renderPrefix("d1_")
      const families = parse(text)
      expect(families.map((f) => [f.name, f.type])).toEqual([["d1_h", "histogram"], ["d1_x", "counter"], ["d1_y", "gauge"]])
      expect(samples(families, "d1_y")).toHaveLength(1)
      expect(families[2]!.help).toBe("first")
      expect(text.split("\n").filter((line) => line.startsWith("# dropped"))).toHaveLength(3)
    }))

  it("renders hand-made pairs too: buckets taken as Effect gives them (cumulative), +Inf from the count", () => {
    const key = MetricKey.histogram("p1_hand", MetricBoundaries.fromIterable([0.25, 0.5]), "Hand-made.")
    const state = MetricState.histogram({
      buckets: [[0.25, 1], [0.5, 3], [Number.POSITIVE_INFINITY, 4]],
      count: 4,
      min: 0.1,
      max: 9,
      sum: 10.35
    })
    const labelled = MetricKey.taggedWithLabels(MetricKey.gauge("p1_gauge"), [MetricLabel.make("a", "1")])
    const text = render([MetricPair.unsafeMake(key, state), MetricPair.unsafeMake(labelled, MetricState.gauge(-3))])
    expect(sampleLines(text)).toEqual([
      `p1_gauge{a="1"} -3`,
      `p1_hand_bucket{le="0.25"} 1`,
      `p1_hand_bucket{le="0.5"} 3`,
      `p1_hand_bucket{le="+Inf"} 4`,
      "p1_hand_sum 10.35",
      "p1_hand_count 4"
    ])
    expect(Option.getOrNull(key.description)).toBe("Hand-made.")
  })

  it.effect("the filter option picks the metrics; without it every metric in the registry is rendered", () =>
    Effect.gen(function*() {
      yield* Metric.set(Metric.gauge("o1_kept"), 1)
      yield* Metric.set(Metric.gauge("o1_skipped"), 1)
      const snapshot = yield* Metric.snapshot
      expect(parse(render(snapshot, { filter: (key) => key.name === "o1_kept" })).map((f) => f.name)).toEqual(["o1_kept"])
      const all = parse(render(snapshot)).map((f) => f.name)
      expect(all).toEqual(expect.arrayContaining(["o1_kept", "o1_skipped", "c1_requests_total"]))
    }))

  it.effect("round trip: a registry of every kind reads back, value for value, through an independent parser too", () =>
    Effect.gen(function*() {
      yield* Metric.incrementBy(Metric.tagged(Metric.counter("r1_jobs_total", { description: "Jobs.", incremental: true }), "model", "a\"b"), 4)
      yield* Metric.set(Metric.gauge("r1_up", { description: "Up \\ down." }), 1)
      const h = Metric.histogram("r1_wait_seconds", MetricBoundaries.exponential({ start: 0.005, factor: 2, count: 5 }), "Waits.")
      for (const value of [0.00390625, 0.0078125, 0.015625, 5]) yield* Metric.update(h, value)
      const text = yield* renderPrefix("r1_")

      const strict = parse(text)
      expect(strict.map((f) => [f.name, f.type, f.help])).toEqual([
        ["r1_jobs_total", "counter", "Jobs."],
        ["r1_up", "gauge", "Up \\ down."],
        ["r1_wait_seconds", "histogram", "Waits."]
      ])
      expect(strict[0]!.samples).toEqual([{ name: "r1_jobs_total", labels: { model: "a\"b" }, value: 4 }])
      expect(strict[2]!.samples.map((s) => [s.labels.le ?? s.name, s.value])).toEqual([
        ["0.005", 1],
        ["0.01", 2],
        ["0.02", 3],
        ["0.04", 3],
        ["+Inf", 4],
        ["r1_wait_seconds_sum", 5.02734375],
        ["r1_wait_seconds_count", 4]
      ])

      // parse-prometheus-text-format (a port of Prometheus's Go parser, lenient) reads the same.
      expect(parsePrometheusTextFormat(text)).toEqual([
        { name: "r1_jobs_total", help: "Jobs.", type: "COUNTER", metrics: [{ value: "4", labels: { model: "a\"b" } }] },
        { name: "r1_up", help: "Up \\ down.", type: "GAUGE", metrics: [{ value: "1" }] },
        {
          name: "r1_wait_seconds",
          help: "Waits.",
          type: "HISTOGRAM",
          metrics: [{ buckets: { "0.005": "1", "0.01": "2", "0.02": "3", "0.04": "3", "+Inf": "4" }, sum: "5.02734375", count: "4" }]
        }
      ])
    }))

  it.effect("foreman's own metrics render with the types the README promises", () =>
    Effect.gen(function*() {
      yield* Metrics.recordJob({ endpoint: "/api/chat", model: "llama3.2:latest", status: 200, waitMs: 12, durationMs: 3400, started: true })
      yield* Metric.incrementBy(Metric.tagged(Metrics.queueDepth, "priority", "batch"), 2)
      yield* Metric.increment(Metrics.jobsRunning)
      yield* Metric.increment(Metrics.modelSwapsTotal)
      yield* Metric.set(Metrics.targetUp, 1)
      yield* Metric.increment(Metric.tagged(Metrics.targetPollsTotal, "result", "success"))
      yield* Metric.set(Metrics.inventoryModels, 3)
      const families = parse(yield* renderPrefix("foreman_"))
      expect(Object.fromEntries(families.map((f) => [f.name, f.type]))).toEqual({
        foreman_inventory_models: "gauge",
        foreman_job_duration_seconds: "histogram",
        foreman_job_queue_wait_seconds: "histogram",
        foreman_jobs_running: "gauge",
        foreman_jobs_total: "counter",
        foreman_model_swaps_total: "counter",
        foreman_queue_depth: "gauge",
        foreman_target_polls_total: "counter",
        foreman_target_up: "gauge"
      })
      for (const f of families) expect(f.help).toBeTruthy()
      expect(samples(families, "foreman_jobs_total")).toEqual([
        { name: "foreman_jobs_total", labels: { endpoint: "/api/chat", model: "llama3.2:latest", status: "200" }, value: 1 }
      ])
      const duration = samples(families, "foreman_job_duration_seconds_bucket")
      expect(duration.find((s) => s.labels.le === "2.56")!.value).toBe(0)
      expect(duration.find((s) => s.labels.le === "5.12")!.value).toBe(1)
      expect(samples(families, "foreman_job_queue_wait_seconds_sum")[0]!.value).toBe(0.012)
    }))
})

describe("the strict parser used above", () => {
  const rejects = (text: string, reason: RegExp) => expect(() => parse(text)).toThrow(reason)

  it("rejects what the format forbids", () => {
    rejects("x 1", /does not end with a line feed/)
    rejects("x{a=\"\\t\"} 1\n", /invalid escape/)
    rejects("# HELP x a \\t\n", /invalid escape/)
    rejects("x{a=\"1\",a=\"2\"} 1\n", /label a twice/)
    rejects("x{0a=\"1\"} 1\n", /invalid label name/)
    rejects("x-y 1\n", /invalid metric name/)
    rejects("x one\n", /invalid value/)
    rejects("# TYPE x counter\n# TYPE x counter\n", /second TYPE/)
    rejects("# HELP x a\n# HELP x b\n", /second HELP/)
    rejects("x 1\n# TYPE x gauge\n", /after its samples/)
    rejects("# TYPE x what\n", /unknown type/)
    rejects("x 1\ny 1\nx{a=\"1\"} 2\n", /not together/)
    rejects("x 1\nx 2\n", /twice/)
    rejects("# TYPE x counter\nx -1\n", /negative counter/)
    rejects("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", /not cumulative/)
    rejects("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", /no le="\+Inf"/)
    rejects("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n", /_count is 1/)
    rejects("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", /no _sum/)
    rejects("# TYPE s summary\ns{quantile=\"2\"} 1\ns_sum 1\ns_count 1\n", /outside/)
  })

  it("accepts what the format allows: comments, blank lines, timestamps, a trailing comma, untyped samples", () => {
    const families = parse("# a comment\n\nx{a=\"1\",} 1.5e3 1700000000000\n# TYPE y gauge\ny -Inf\n")
    expect(families).toEqual([
      { name: "x", type: "untyped", help: undefined, samples: [{ name: "x", labels: { a: "1" }, value: 1500, timestampMs: 1700000000000 }] },
      { name: "y", type: "gauge", help: undefined, samples: [{ name: "y", labels: {}, value: Number.NEGATIVE_INFINITY }] }
    ])
  })
})
