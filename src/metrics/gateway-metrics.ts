/**
 * Every metric the gateway exports, in one place (README "Metrics" lists them). Label values come
 * only from configuration (model names, configured paths, target URLs) or from small fixed sets
 * (HTTP status, error reason), never from what a client sent: a request for an unknown model or
 * path is counted as model="unmatched" so no client can grow the series count.
 * The per-request metrics are our own (families.ts): a model's record (ModelMetrics) holds its
 * numbers as plain fields and one bucket array, so a request does no label hashing and touches
 * few cache lines whatever the number of models; collectors read the records on a scrape. The
 * rarer ones (errors, reloads, refusals) are plain prom-client metrics.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { Model } from '../config/index.js';
import { CounterFamily, bucketOf, histogramSamples, type Collected, type Labels, type MetricValue, type ValueSeries } from './families.js';

/** UNMATCHED is the label value for requests that matched no configured model or path. */
export const UNMATCHED = 'unmatched';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const TTFB_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const DURATION_BOUNDS = [...LATENCY_BUCKETS].sort((a, b) => a - b);
const TTFB_BOUNDS = [...TTFB_BUCKETS].sort((a, b) => a - b);
const DURATION_LE = DURATION_BOUNDS.map(String);
const TTFB_LE = TTFB_BOUNDS.map(String);
/** Where the TTFB histogram's counts start in a record's bucket array (after the duration's). */
const TTFB_AT = DURATION_BOUNDS.length;

/**
 * ModelMetrics is the record of one (model, path) pair: its request counters by status, and its
 * in-flight gauge, token counters and two latency histograms as fields of its own (one object
 * and one array a request writes to, not one object per series).
 */
export class ModelMetrics {
  readonly model: string;
  readonly #requests: CounterFamily;
  readonly #path: string;
  readonly #byStatus = new Map<number, ValueSeries>();
  /** The last status counted and its series: most requests of a model end the same way. */
  #lastStatus = 0;
  #lastSeries: ValueSeries | null = null;
  inflight = 0;
  promptTokens = 0;
  completionTokens = 0;
  durationSum = 0;
  durationCount = 0;
  ttfbSum = 0;
  ttfbCount = 0;
  /** buckets are the (non-cumulative) counts of the duration histogram, then the TTFB one's. */
  readonly buckets: number[] = new Array<number>(DURATION_BOUNDS.length + TTFB_BOUNDS.length).fill(0);

  constructor(requests: CounterFamily, model: string, path: string) {
    this.#requests = requests;
    this.model = model;
    this.#path = path;
  }

  /** requests is the request counter series for one status code. */
  requests(status: number): ValueSeries {
    if (status === this.#lastStatus) return this.#lastSeries!;
    let child = this.#byStatus.get(status);
    if (child === undefined) {
      child = this.#requests.child(this.model, this.#path, String(status));
      this.#byStatus.set(status, child);
    }
    this.#lastStatus = status;
    this.#lastSeries = child;
    return child;
  }

  /** observeDuration records a request's time from arrival to its last byte (seconds). */
  observeDuration(seconds: number): void {
    const i = bucketOf(DURATION_BOUNDS, seconds);
    if (i < DURATION_BOUNDS.length) this.buckets[i]!++;
    this.durationSum += seconds;
    this.durationCount++;
  }

  /** observeTtfb records the time from dispatch to the upstream's first body byte (seconds). */
  observeTtfb(seconds: number): void {
    const i = bucketOf(TTFB_BOUNDS, seconds);
    if (i < TTFB_BOUNDS.length) this.buckets[TTFB_AT + i]!++;
    this.ttfbSum += seconds;
    this.ttfbCount++;
  }
}

/**
 * PerModel exposes one of the record fields, per model name: the records of one name (a model
 * served under several paths) are summed, in the order the names were first seen.
 */
class PerModel {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly aggregator = 'sum';
  readonly #records: () => Iterable<ModelMetrics>;
  readonly #emit: (name: string, labels: Labels, group: readonly ModelMetrics[], out: MetricValue[]) => void;

  constructor(
    name: string,
    help: string,
    type: 'counter' | 'gauge' | 'histogram',
    records: () => Iterable<ModelMetrics>,
    emit: (name: string, labels: Labels, group: readonly ModelMetrics[], out: MetricValue[]) => void,
  ) {
    this.name = name;
    this.help = help;
    this.type = type;
    this.#records = records;
    this.#emit = emit;
  }

  get(): Collected {
    const groups = new Map<string, ModelMetrics[]>();
    for (const r of this.#records()) {
      const g = groups.get(r.model);
      if (g === undefined) groups.set(r.model, [r]);
      else g.push(r);
    }
    const values: MetricValue[] = [];
    for (const [model, group] of groups) this.#emit(this.name, { model }, group, values);
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** sumOf adds one numeric field over a group of records. */
function sumOf(group: readonly ModelMetrics[], read: (r: ModelMetrics) => number): number {
  let total = 0;
  for (const r of group) total += read(r);
  return total;
}

/** emitHistogram writes one model's histogram (its records summed) at bucket offset `at`. */
function emitHistogram(le: readonly string[], at: number, sum: (r: ModelMetrics) => number, count: (r: ModelMetrics) => number) {
  return (name: string, labels: Labels, group: readonly ModelMetrics[], out: MetricValue[]): void => {
    let counts: readonly number[] = group[0]!.buckets;
    if (group.length > 1) {
      const summed = new Array<number>(counts.length).fill(0);
      for (const r of group) for (let i = 0; i < summed.length; i++) summed[i]! += r.buckets[i]!;
      counts = summed;
    }
    histogramSamples(name, labels, le, counts, at, sumOf(group, sum), sumOf(group, count), out);
  };
}

/** GatewayMetrics owns the Prometheus registry; it outlives config snapshots. */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests: CounterFamily;
  readonly requestDuration: PerModel;
  readonly upstreamTtfb: PerModel;
  readonly tokens: PerModel;
  readonly inflight: PerModel;
  readonly targetUp: Gauge<string>;
  readonly upstreamErrors: Counter<string>;
  readonly configReloads: Counter<string>;
  readonly rateLimited: Counter<string>;
  readonly limitStoreErrors: Counter<string>;
  readonly #byKey = new Map<string, ModelMetrics>();
  readonly #byModel = new WeakMap<Model, ModelMetrics>();

  constructor() {
    const registers = [this.registry];
    this.requests = new CounterFamily('igw_requests_total', 'Requests answered, by model, configured path and HTTP status.', ['model', 'path', 'status']);
    const records = (): Iterable<ModelMetrics> => this.#byKey.values();
    this.requestDuration = new PerModel(
      'igw_request_duration_seconds',
      'Time from request arrival to the last byte of the response.',
      'histogram',
      records,
      emitHistogram(DURATION_LE, 0, (r) => r.durationSum, (r) => r.durationCount),
    );
    this.upstreamTtfb = new PerModel(
      'igw_upstream_ttfb_seconds',
      "Time from dispatch to the upstream's first response body byte (time to first token for streams).",
      'histogram',
      records,
      emitHistogram(TTFB_LE, TTFB_AT, (r) => r.ttfbSum, (r) => r.ttfbCount),
    );
    this.tokens = new PerModel('igw_tokens_total', 'Tokens reported by upstream usage objects, by kind (prompt or completion).', 'counter', records, (_name, labels, group, out) => {
      out.push({ labels: { ...labels, kind: 'prompt' }, value: sumOf(group, (r) => r.promptTokens) });
      out.push({ labels: { ...labels, kind: 'completion' }, value: sumOf(group, (r) => r.completionTokens) });
    });
    this.inflight = new PerModel('igw_inflight_requests', 'Requests currently sent upstream and not yet finished.', 'gauge', records, (_name, labels, group, out) => {
      out.push({ labels, value: sumOf(group, (r) => r.inflight) });
    });
    // The Registry reads any collector with name, help, type and get(): these are formatted like its own.
    for (const f of [this.requests, this.requestDuration, this.upstreamTtfb, this.tokens, this.inflight]) this.registry.registerMetric(f as unknown as Metric);
    this.targetUp = new Gauge({ name: 'igw_target_up', help: 'Whether the last attempt to reach a target connected (1) or failed to (0).', labelNames: ['model', 'target'], registers });
    this.upstreamErrors = new Counter({ name: 'igw_upstream_errors_total', help: 'Failed upstream attempts, by target and reason.', labelNames: ['model', 'target', 'reason'], registers });
    this.configReloads = new Counter({ name: 'igw_config_reloads_total', help: 'Configuration reloads, by result (applied, unchanged, failed).', labelNames: ['result'], registers });
    this.rateLimited = new Counter({ name: 'igw_rate_limited_total', help: 'Requests refused by a limit, by model and limit (scope:kind_per_window, or scope:queue_full / queue_timeout).', labelNames: ['model', 'limit'], registers });
    this.limitStoreErrors = new Counter({ name: 'igw_ratelimit_store_errors_total', help: 'Rate-limit checks the shared store could not answer, by what happened (allowed_locally, refused).', labelNames: ['result'], registers });
    collectDefaultMetrics({ register: this.registry });
  }

  /** of returns the metric children of a compiled model (cached per model object). */
  of(model: Model): ModelMetrics {
    let mm = this.#byModel.get(model);
    if (mm === undefined) {
      mm = this.#forLabels(model.name, model.path || '/');
      this.#byModel.set(model, mm);
    }
    return mm;
  }

  /** unmatched returns the children for requests that matched no model (path: the matched route, or "unmatched"). */
  unmatched(routePath: string | null): ModelMetrics {
    return this.#forLabels(UNMATCHED, routePath === null ? UNMATCHED : routePath || '/');
  }

  #forLabels(model: string, path: string): ModelMetrics {
    const key = `${model}\u0000${path}`;
    let mm = this.#byKey.get(key);
    if (mm === undefined) {
      mm = new ModelMetrics(this.requests, model, path);
      this.#byKey.set(key, mm);
    }
    return mm;
  }
}
