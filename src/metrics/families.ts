/**
 * Exposition helpers for the per-request metrics. A prom-client child hashes its label object on
 * every inc() and observe() and looks the result up in one object holding every series, so its
 * cost grows with the number of models (10,000 models: ~1/5 more CPU per request, most of it in
 * that hashing and the garbage it leaves). Ours are rows of numbers (gateway-metrics.ts) read only
 * on a scrape by collectors that register with the prom-client Registry like any metric (name,
 * help, type, get()), so /metrics output and its format are prom-client's.
 */

/** Labels are one series' label values by name. */
export type Labels = Readonly<Record<string, string>>;

/** MetricValue is one exposition sample, in the shape prom-client's Registry formats. */
export interface MetricValue {
  labels: Labels;
  value: number;
  metricName?: string;
}

/** Collected is what a collector hands the Registry on a scrape. */
export interface Collected {
  name: string;
  help: string;
  type: string;
  aggregator: string;
  values: MetricValue[];
}

/** Collector is a metric the Registry reads like one of its own (name, help, type, get()); its values come from `collect` on a scrape. */
export class Collector {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly aggregator = 'sum';
  readonly #collect: () => MetricValue[];

  constructor(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', collect: () => MetricValue[]) {
    this.name = name;
    this.help = help;
    this.type = type;
    this.#collect = collect;
  }

  get(): Collected {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.#collect() };
  }
}

/**
 * histogramSamples appends a histogram's exposition as prom-client writes it: cumulative
 * `_bucket` samples (a value on a bound counts in it), `+Inf`, `_sum` and `_count`.
 * `counts[i]` is the (non-cumulative) count of bucket i.
 */
export function histogramSamples(name: string, labels: Labels, le: readonly string[], counts: readonly number[], sum: number, count: number, out: MetricValue[]): void {
  let cumulative = 0;
  for (let i = 0; i < le.length; i++) {
    cumulative += counts[i]!;
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
