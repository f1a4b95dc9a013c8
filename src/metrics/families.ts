/**
 * Metric families for the per-request metrics. A prom-client child hashes its label object on
 * every inc() and observe() and looks the result up in one object holding every series, so its
 * cost grows with the number of models (10,000 models: ~1/5 more CPU per request, most of it in
 * that hashing and the garbage it leaves). Here a child is a plain object the caller keeps:
 * inc() is an addition, observe() a bucket search. Label values are joined into a key once,
 * when the child is created. The families register with the prom-client Registry like any
 * collector (name, help, type, get()), so /metrics output and its format are prom-client's.
 */

type Labels = Readonly<Record<string, string>>;

/** MetricValue is one exposition sample, in the shape prom-client's Registry formats. */
interface MetricValue {
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
  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const values: MetricValue[] = [];
    for (const { labels, child } of this.children.values()) this.samples(labels, child, values);
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** ValueSeries is one counter or gauge series (a counter only ever calls inc). */
export class ValueSeries {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
  dec(): void {
    this.value--;
  }
}

/** ValueFamily is a counter or gauge with cheap children. */
class ValueFamily extends Family<ValueSeries> {
  readonly type: 'counter' | 'gauge';
  constructor(type: 'counter' | 'gauge', name: string, help: string, labelNames: readonly string[]) {
    super(name, help, labelNames);
    this.type = type;
  }
  protected create(): ValueSeries {
    return new ValueSeries();
  }
  protected samples(labels: Labels, v: ValueSeries, out: MetricValue[]): void {
    out.push({ labels, value: v.value });
  }
}

/** CounterFamily is a counter with cheap children. */
export class CounterFamily extends ValueFamily {
  constructor(name: string, help: string, labelNames: readonly string[]) {
    super('counter', name, help, labelNames);
  }
}

/** GaugeFamily is a gauge with cheap children. */
export class GaugeFamily extends ValueFamily {
  constructor(name: string, help: string, labelNames: readonly string[]) {
    super('gauge', name, help, labelNames);
  }
}

/**
 * HistogramSeries is one histogram series: a count per bucket (not cumulative), sum and count.
 * The counts are a plain array: its elements sit on the JS heap, one read away, where a typed
 * array of this size keeps them in a separate buffer (one more cache miss per observe with
 * thousands of models).
 */
export class HistogramSeries {
  readonly #bounds: readonly number[];
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Array<number>(bounds.length).fill(0);
  }

  observe(v: number): void {
    const b = this.#bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    if (i < b.length) this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

/** HistogramFamily is a histogram with cheap children, exposed as prom-client exposes one. */
export class HistogramFamily extends Family<HistogramSeries> {
  readonly type = 'histogram';
  readonly #bounds: readonly number[];
  readonly #le: readonly string[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames);
    this.#bounds = [...buckets].sort((a, b) => a - b);
    this.#le = this.#bounds.map(String);
  }

  protected create(): HistogramSeries {
    return new HistogramSeries(this.#bounds);
  }

  protected samples(labels: Labels, h: HistogramSeries, out: MetricValue[]): void {
    let cumulative = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      cumulative += h.counts[i]!;
      out.push({ labels: { ...labels, le: this.#le[i]! }, value: cumulative, metricName: `${this.name}_bucket` });
    }
    out.push({ labels: { ...labels, le: '+Inf' }, value: h.count, metricName: `${this.name}_bucket` });
    out.push({ labels, value: h.sum, metricName: `${this.name}_sum` });
    out.push({ labels, value: h.count, metricName: `${this.name}_count` });
  }
}
