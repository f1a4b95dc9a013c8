/**
 * Metric families for the per-request metrics. A prom-client child hashes its label object on
 * every inc() and observe() and looks the result up in one object holding every series, so its
 * cost grows with the number of models (10,000 models: ~1/5 more CPU per request, most of it in
 * that hashing and the garbage it leaves). Here a series is a plain object the caller keeps (or,
 * for the per-model series, fields of the model's own record: see gateway-metrics.ts), and
 * exposition happens only on a scrape. Collectors register with the prom-client Registry like
 * any metric (name, help, type, get()), so /metrics output and its format are prom-client's.
 */

/** Labels are one series' label values by name. */
export type Labels = Readonly<Record<string, string>>;

/** MetricValue is one exposition sample, in the shape prom-client's Registry formats. */
export interface MetricValue {
  labels: Labels;
  value: number;
  metricName?: string;
}

/** Family is the part of a prom-client metric the Registry reads. */
abstract class Family<C> {
  readonly name: string;
  readonly help: string;
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  readonly aggregator = 'sum';
  readonly #labelNames: readonly string[];
  protected readonly children = new Map<string, { labels: Labels; child: C }>();

  constructor(name: string, help: string, labelNames: readonly string[]) {
    this.name = name;
    this.help = help;
    this.#labelNames = labelNames;
  }

  /** child returns the series for these label values (in labelNames order), created once. */
  child(...values: string[]): C {
    const key = values.join('\u0000');
    let entry = this.children.get(key);
    if (entry === undefined) {
      const labels: Record<string, string> = {};
      this.#labelNames.forEach((n, i) => (labels[n] = values[i] ?? ''));
      entry = { labels, child: this.create() };
      this.children.set(key, entry);
    }
    return entry.child;
  }

  protected abstract create(): C;
  protected abstract samples(labels: Labels, child: C, out: MetricValue[]): void;

  /** get is what the Registry calls on a scrape. */
  get(): Collected {
    const values: MetricValue[] = [];
    for (const { labels, child } of this.children.values()) this.samples(labels, child, values);
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** ValueSeries is one counter series. */
export class ValueSeries {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

/** CounterFamily is a counter with cheap children. */
export class CounterFamily extends Family<ValueSeries> {
  readonly type = 'counter';
  protected create(): ValueSeries {
    return new ValueSeries();
  }
  protected samples(labels: Labels, v: ValueSeries, out: MetricValue[]): void {
    out.push({ labels, value: v.value });
  }
}

/** Collected is what a collector hands the Registry on a scrape. */
export interface Collected {
  name: string;
  help: string;
  type: string;
  aggregator: string;
  values: MetricValue[];
}

/**
 * histogramSamples appends a histogram's exposition as prom-client writes it: cumulative
 * `_bucket` samples (a value on a bound counts in it), `+Inf`, `_sum` and `_count`.
 * `counts[offset + i]` is the (non-cumulative) count of bucket i.
 */
export function histogramSamples(name: string, labels: Labels, le: readonly string[], counts: readonly number[], offset: number, sum: number, count: number, out: MetricValue[]): void {
  let cumulative = 0;
  for (let i = 0; i < le.length; i++) {
    cumulative += counts[offset + i]!;
    out.push({ labels: { ...labels, le: le[i]! }, value: cumulative, metricName: `${name}_bucket` });
  }
  out.push({ labels: { ...labels, le: '+Inf' }, value: count, metricName: `${name}_bucket` });
  out.push({ labels, value: sum, metricName: `${name}_sum` });
  out.push({ labels, value: count, metricName: `${name}_count` });
}

/** bucketOf is the index of the first bound >= v (bounds ascending), or bounds.length. */
export function bucketOf(bounds: readonly number[], v: number): number {
  let i = 0;
  while (i < bounds.length && v > bounds[i]!) i++;
  return i;
}
