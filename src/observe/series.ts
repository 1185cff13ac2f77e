// Metrics for the reconcile loop's hot path, read by prom-client's Registry at scrape time.
//
// Why not prom-client's own Counter, Gauge and Histogram here: each of their updates validates
// the label object and builds a hash string from it (`inc(labels)`, `observe(labels, v)`, and
// the `labels(...)` children alike), ~1–2 µs apiece. A controller updates seven of them per
// reconcile (queue adds, queue wait, work time, active workers twice, reconcile count and time),
// which cost more than the no-op reconcile itself. Here a series is bound once to its label
// values and an update is a few additions. Only the values live here: the Registry formats them
// (names, escaping, exposition) exactly as it formats its own metrics, from what `get()` and
// `getForPromString()` return, in prom-client's shape; metrics.test.ts compares the text of
// both for the same updates.
import type * as PromClient from "prom-client";

type Labels<L extends string> = Record<L, string>;

interface HistogramSeries<L extends string> {
  labels: Labels<L>;
  /** Observations per bucket (not cumulative), in the order of the upper bounds. */
  buckets: number[];
  /** The last observation with a trace, per bucket (+Inf last): OpenMetrics exemplars. */
  exemplars: (Exemplar | undefined)[];
  sum: number;
  count: number;
}

/** An exemplar as prom-client's OpenMetrics exposition writes it: the trace's ids, the value, when (seconds). */
interface Exemplar {
  labelSet: { trace_id: string; span_id: string };
  value: number;
  timestamp: number;
}

/** One exported sample, as prom-client's metrics return them. */
interface Sample {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
  sharedLabels?: Record<string, string>;
  exemplar?: Exemplar;
}

/** Common part: registration and the label key of a series. */
abstract class SeriesMetric<L extends string> {
  readonly aggregator = "sum";
  abstract readonly type: "counter" | "gauge" | "histogram";

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly L[],
    registry: PromClient.Registry,
  ) {
    // The Registry takes any object with a name, get() and reset() (it calls nothing else on a
    // metric); its type names prom-client's class, hence the cast.
    registry.registerMetric(this as unknown as PromClient.Metric);
  }

  /** The series of `labels` in `series`, made by `make` on first use (a label missing throws, naming it). */
  protected seriesFor<S>(series: Map<string, S>, labels: Labels<L>, make: (labels: Labels<L>) => S): S {
    for (const name of this.labelNames) if (typeof labels[name] !== "string") throw new TypeError(`metric ${this.name}: label ${name} is missing`);
    const key = this.labelNames.map((name) => labels[name]).join("\u0000");
    let found = series.get(key);
    if (!found) series.set(key, (found = make({ ...labels })));
    return found;
  }

  /** Labels splayed into each sample, as prom-client's `get()` (JSON) returns them. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    const metric = await this.getForPromString();
    return { ...metric, values: metric.values.map(({ labels, sharedLabels, ...rest }) => ({ ...rest, labels: { ...sharedLabels, ...labels } })) };
  }

  /** Samples for the text exposition. */
  async getForPromString(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.samples() };
  }

  protected abstract samples(): Sample[];
  abstract reset(): void;
}

/** A counter or a gauge whose series are bound once: `bind(labels)` returns `add(delta)`. */
export class BoundValue<L extends string> extends SeriesMetric<L> {
  private readonly series = new Map<string, { labels: Labels<L>; value: number }>();

  constructor(
    readonly type: "counter" | "gauge",
    name: string,
    help: string,
    labelNames: readonly L[],
    registry: PromClient.Registry,
  ) {
    super(name, help, labelNames, registry);
  }

  /** The series of `labels` (made at 0, so it is exported before its first update). */
  bind(labels: Labels<L>): (delta: number) => void {
    const bound = this.seriesFor(this.series, labels, (copy) => ({ labels: copy, value: 0 }));
    return (delta) => {
      bound.value += delta;
    };
  }

  protected samples(): Sample[] {
    return [...this.series.values()].map(({ labels, value }) => ({ value, labels }));
  }

  reset(): void {
    for (const series of this.series.values()) series.value = 0;
  }
}

/** A histogram whose series are bound once: `bind(labels)` returns `observe(value)`. */
export class BoundHistogram<L extends string> extends SeriesMetric<L> {
  readonly type = "histogram";
  private readonly series = new Map<string, HistogramSeries<L>>();

  constructor(
    name: string,
    help: string,
    labelNames: readonly L[],
    private readonly upperBounds: readonly number[],
    registry: PromClient.Registry,
  ) {
    super(name, help, labelNames, registry);
  }

  /**
   * The series of `labels` (made empty, so it is exported before its first observation). An
   * observation with `trace` (a recorded span's ids) becomes its bucket's exemplar, shown in the
   * OpenMetrics exposition.
   */
  bind(labels: Labels<L>): (value: number, trace?: { traceId: string; spanId: string }) => void {
    const bound = this.seriesFor(this.series, labels, (copy) => ({ labels: copy, buckets: this.upperBounds.map(() => 0), exemplars: [], sum: 0, count: 0 }));
    const upper = this.upperBounds;
    return (value, trace) => {
      if (!Number.isFinite(value)) return; // prom-client throws; a metric never fails a reconcile
      let i = 0;
      for (; i < upper.length; i++) {
        if (value <= (upper[i] as number)) {
          (bound.buckets[i] as number)++;
          break;
        }
      }
      if (trace) bound.exemplars[i] = { labelSet: { trace_id: trace.traceId, span_id: trace.spanId }, value, timestamp: Date.now() / 1000 };
      bound.sum += value;
      bound.count++;
    };
  }

  protected samples(): Sample[] {
    const bucket = `${this.name}_bucket`;
    const out: Sample[] = [];
    for (const { labels, buckets, exemplars, sum, count } of this.series.values()) {
      let cumulative = 0;
      const exemplarOf = (i: number) => (exemplars[i] ? { exemplar: exemplars[i] } : {});
      this.upperBounds.forEach((le, i) => {
        cumulative += buckets[i] as number;
        out.push({ value: cumulative, labels: { le }, metricName: bucket, sharedLabels: labels, ...exemplarOf(i) });
      });
      out.push({ value: count, labels: { le: "+Inf" }, metricName: bucket, sharedLabels: labels, ...exemplarOf(this.upperBounds.length) });
      out.push({ value: sum, labels: {}, metricName: `${this.name}_sum`, sharedLabels: labels });
      out.push({ value: count, labels: {}, metricName: `${this.name}_count`, sharedLabels: labels });
    }
    return out;
  }

  reset(): void {
    for (const series of this.series.values()) {
      series.buckets.fill(0);
      series.exemplars = [];
      series.sum = 0;
      series.count = 0;
    }
  }
}
