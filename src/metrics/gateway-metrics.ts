/**
 * Every metric the gateway exports, in one place (README "Metrics" lists them). Label values come
 * only from configuration (model names, configured paths, target URLs) or from small fixed sets
 * (HTTP status, error reason), never from what a client sent: a request for an unknown model or
 * path is counted as model="unmatched" so no client can grow the series count.
 * The per-request metrics are our own: the numbers of one (model, path) pair are one row of a
 * shared Float64Array, and a compiled model carries its row number (compile's `rowOf`). A request
 * reads no map and no per-model object to count itself; it writes two or three cache lines of one
 * row. With 10,000 models those rows are cold, so each line saved is a cache miss saved. Collectors
 * read the rows on a scrape. The rarer metrics (errors, reloads, refusals) are plain prom-client ones.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { Collector, bucketOf, histogramSamples, type Labels, type MetricValue } from './families.js';
import { FlowMetrics } from './flow-metrics.js';

/** UNMATCHED is the label value for requests that matched no configured model or path. */
export const UNMATCHED = 'unmatched';

/** MODEL_LIST is the label value for the model listings the gateway answers itself (`GET <path>/v1/models`). */
export const MODEL_LIST = '_models';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const TTFB_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const DURATION_BOUNDS = [...LATENCY_BUCKETS].sort((a, b) => a - b);
const TTFB_BOUNDS = [...TTFB_BUCKETS].sort((a, b) => a - b);
const DURATION_LE = DURATION_BOUNDS.map(String);
const TTFB_LE = TTFB_BOUNDS.map(String);

// A row: what every finished request writes first (one cache line), then the (non-cumulative)
// bucket counts of the two histograms, interleaved (duration bucket i, TTFB bucket i, ...): a
// request's two observations are usually in near buckets, so in one cache line. Status 200 has a
// column; other statuses are counted on the record. In-flight counts are not in the row but in a
// dense array of their own (8 bytes a model, so it mostly stays in cache): dispatch then touches
// no cold line of the model's row, only record does.
const OK = 0;
const DURATION_COUNT = 1;
const DURATION_SUM = 2;
const TTFB_COUNT = 3;
const TTFB_SUM = 4;
const PROMPT_TOKENS = 5;
const COMPLETION_TOKENS = 6;
const DURATION_AT = 8;
const TTFB_AT = 9;
const BUCKET_STRIDE = 2;
/** ROW is a row's length in doubles (a multiple of 8: rows start on a 64-byte boundary of the array). */
const ROW = Math.ceil((DURATION_AT + BUCKET_STRIDE * Math.max(DURATION_BOUNDS.length, TTFB_BOUNDS.length)) / 8) * 8;

/** ModelRecord names one row: the (model, served model, path) it counts, and its statuses other than 200. */
interface ModelRecord {
  readonly model: string;
  /** served is the model whose targets answered: the model itself, a model of its split, or a fallback. */
  readonly served: string;
  readonly path: string;
  readonly statuses: Map<number, number>;
}

/** observe counts one value in a histogram of the row at `base`: its bucket (buckets from column `at`), sum and count. */
function observe(store: Float64Array, base: number, bounds: readonly number[], at: number, sum: number, count: number, v: number): void {
  const i = bucketOf(bounds, v);
  if (i < bounds.length) store[base + at + BUCKET_STRIDE * i]!++;
  store[base + sum]! += v;
  store[base + count]!++;
}

/** sumOf adds one column over a group of rows. */
function sumOf(store: Float64Array, rows: readonly number[], column: number): number {
  let total = 0;
  for (const row of rows) total += store[row * ROW + column]!;
  return total;
}

/** histogramOf appends one model's histogram (its rows summed) from the buckets from column `at` on. */
function histogramOf(name: string, le: readonly string[], at: number, sum: number, count: number, store: Float64Array, labels: Labels, rows: readonly number[], out: MetricValue[]): void {
  const counts = new Array<number>(le.length).fill(0);
  for (const row of rows) for (let i = 0; i < le.length; i++) counts[i]! += store[row * ROW + at + BUCKET_STRIDE * i]!;
  histogramSamples(name, labels, le, counts, sumOf(store, rows, sum), sumOf(store, rows, count), out);
}

/** MetricsTotals are the per-request counters summed at one moment (cumulative since start): what the dashboard's sampler reads. */
export interface MetricsTotals {
  /** requestsByModel counts answered requests per model name. */
  readonly requestsByModel: Map<string, number>;
  /** statusClasses counts answered requests by status class: index 1 is 1xx … index 5 is 5xx (499 counts as 4xx). */
  readonly statusClasses: Float64Array;
  /** durationBounds and durationBuckets: the request duration histogram (seconds), per bucket (not cumulative); the last bucket is +Inf. */
  readonly durationBounds: readonly number[];
  readonly durationBuckets: Float64Array;
  /** ttfbBounds and ttfbBuckets: the upstream TTFB histogram, likewise. */
  readonly ttfbBounds: readonly number[];
  readonly ttfbBuckets: Float64Array;
  promptTokens: number;
  completionTokens: number;
  /** inflight is the requests sent upstream and not finished, over every model. */
  inflight: number;
}

/** GatewayMetrics owns the Prometheus registry; it outlives config snapshots. */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests: Collector;
  readonly requestDuration: Collector;
  readonly upstreamTtfb: Collector;
  readonly tokens: Collector;
  readonly inflight: Collector;
  readonly accessLogDropped: Collector;
  /** #readAccessLogDropped is where accessLogDropped reads its count (set by readAccessLogDrops). */
  #readAccessLogDropped: () => number = () => 0;
  readonly targetUp: Gauge<string>;
  readonly upstreamErrors: Counter<string>;
  readonly configReloads: Counter<string>;
  readonly rateLimited: Counter<string>;
  readonly limitStoreErrors: Counter<string>;
  readonly mirrorRequests: Counter<string>;
  /** flow are the flow-control metrics (queue depth, wait, shed, saturation). */
  readonly flow: FlowMetrics;
  /** The rows (ROW doubles each, row n at n * ROW), grown by doubling; a row number never changes. */
  #store = new Float64Array(ROW * 16);
  /** In-flight requests by row number, grown with the rows. */
  #inflight = new Float64Array(16);
  readonly #records: ModelRecord[] = [];
  readonly #rowByKey = new Map<string, number>();

  constructor() {
    const registers = [this.registry];
    this.requests = new Collector('igw_requests_total', 'Requests answered, by model, configured path and HTTP status.', 'counter', () => {
      const values: MetricValue[] = [];
      this.#records.forEach((r, row) => {
        const ok = this.#store[row * ROW + OK]!;
        if (ok > 0) values.push({ labels: { model: r.model, served_model: r.served, path: r.path, status: '200' }, value: ok });
        for (const [status, n] of r.statuses) values.push({ labels: { model: r.model, served_model: r.served, path: r.path, status: String(status) }, value: n });
      });
      return values;
    });
    const duration = 'igw_request_duration_seconds';
    this.requestDuration = new Collector(duration, 'Time from request arrival to the last byte of the response.', 'histogram', () =>
      this.#perModel((labels, rows, out) => histogramOf(duration, DURATION_LE, DURATION_AT, DURATION_SUM, DURATION_COUNT, this.#store, labels, rows, out)),
    );
    const ttfb = 'igw_upstream_ttfb_seconds';
    this.upstreamTtfb = new Collector(ttfb, "Time from dispatch to the upstream's first response body byte (time to first token for streams).", 'histogram', () =>
      this.#perModel((labels, rows, out) => histogramOf(ttfb, TTFB_LE, TTFB_AT, TTFB_SUM, TTFB_COUNT, this.#store, labels, rows, out)),
    );
    this.tokens = new Collector('igw_tokens_total', 'Tokens reported by upstream usage objects, by kind (prompt or completion).', 'counter', () =>
      this.#perModel((labels, rows, out) => {
        out.push({ labels: { ...labels, kind: 'prompt' }, value: sumOf(this.#store, rows, PROMPT_TOKENS) });
        out.push({ labels: { ...labels, kind: 'completion' }, value: sumOf(this.#store, rows, COMPLETION_TOKENS) });
      }),
    );
    this.inflight = new Collector('igw_inflight_requests', 'Requests currently sent upstream and not yet finished.', 'gauge', () =>
      this.#perModel((labels, rows, out) => {
        let total = 0;
        for (const row of rows) total += this.#inflight[row]!;
        out.push({ labels, value: total });
      }),
    );
    this.accessLogDropped = new Collector('igw_access_log_dropped_total', 'Access log lines not written: stdout was not read fast enough (64 MiB waiting) or was closed.', 'counter', () => [
      { labels: {}, value: this.#readAccessLogDropped() },
    ]);
    // The Registry reads any collector with name, help, type and get(): these are formatted like its own.
    for (const f of [this.requests, this.requestDuration, this.upstreamTtfb, this.tokens, this.inflight, this.accessLogDropped]) this.registry.registerMetric(f as unknown as Metric);
    this.targetUp = new Gauge({ name: 'igw_target_up', help: 'Whether the last attempt to reach a target connected (1) or failed to (0).', labelNames: ['model', 'target'], registers });
    this.upstreamErrors = new Counter({ name: 'igw_upstream_errors_total', help: 'Failed upstream attempts, by target and reason.', labelNames: ['model', 'target', 'reason'], registers });
    this.configReloads = new Counter({ name: 'igw_config_reloads_total', help: 'Configuration reloads, by result (applied, unchanged, failed).', labelNames: ['result'], registers });
    this.rateLimited = new Counter({ name: 'igw_rate_limited_total', help: 'Requests refused by a limit, by model and limit (scope:kind_per_window, or scope:queue_full / queue_timeout).', labelNames: ['model', 'limit'], registers });
    this.limitStoreErrors = new Counter({ name: 'igw_ratelimit_store_errors_total', help: 'Rate-limit checks the shared store could not answer, by what happened (allowed_locally, refused).', labelNames: ['result'], registers });
    this.mirrorRequests = new Counter({ name: 'igw_mirror_requests_total', help: 'Shadow copies sent to a mirror model, by requested model, mirror model and result (completed, failed, cancelled).', labelNames: ['model', 'mirror', 'result'], registers });
    this.flow = new FlowMetrics(this.registry);
    collectDefaultMetrics({ register: this.registry });
  }

  /** readAccessLogDrops tells igw_access_log_dropped_total where to read its count on a scrape. */
  readAccessLogDrops(read: () => number): void {
    this.#readAccessLogDropped = read;
  }

  /**
   * #perModel emits one metric per (model, served model) pair: the rows of one pair (a model served
   * under several paths) are summed, in the order the pairs were first seen.
   */
  #perModel(emit: (labels: Labels, rows: readonly number[], out: MetricValue[]) => void): MetricValue[] {
    const groups = new Map<string, { labels: Labels; rows: number[] }>();
    this.#records.forEach((r, row) => {
      const key = `${r.model}\u0000${r.served}`;
      const g = groups.get(key);
      if (g === undefined) groups.set(key, { labels: { model: r.model, served_model: r.served }, rows: [row] });
      else g.rows.push(row);
    });
    const values: MetricValue[] = [];
    for (const g of groups.values()) emit(g.labels, g.rows, values);
    return values;
  }

  /**
   * rowOf is the row number of a (model, path) pair (path "" is the root), made on first use;
   * `served` names another model that served requests for it (a split's model, a fallback). The
   * same triple keeps its row across reloads, so its counters go on; compile stores the rows on the
   * model, so a request never builds a key.
   */
  readonly rowOf = (model: string, path: string, served: string = model): number => {
    const label = path || '/';
    const key = `${model}\u0000${served}\u0000${label}`;
    let row = this.#rowByKey.get(key);
    if (row === undefined) {
      row = this.#records.length;
      if (row === this.#inflight.length) {
        const store = new Float64Array(this.#store.length * 2);
        store.set(this.#store);
        this.#store = store;
        const inflight = new Float64Array(this.#inflight.length * 2);
        inflight.set(this.#inflight);
        this.#inflight = inflight;
      }
      this.#records.push({ model, served, path: label, statuses: new Map() });
      this.#rowByKey.set(key, row);
    }
    return row;
  };

  /**
   * totals sums every row's counters. It reads the rows the request path already writes and adds
   * nothing to it; the dashboard calls it once a second (O(rows), off the request path).
   */
  totals(): MetricsTotals {
    const t: MetricsTotals = {
      requestsByModel: new Map(),
      statusClasses: new Float64Array(6),
      durationBounds: DURATION_BOUNDS,
      durationBuckets: new Float64Array(DURATION_BOUNDS.length + 1),
      ttfbBounds: TTFB_BOUNDS,
      ttfbBuckets: new Float64Array(TTFB_BOUNDS.length + 1),
      promptTokens: 0,
      completionTokens: 0,
      inflight: 0,
    };
    const store = this.#store;
    for (let row = 0; row < this.#records.length; row++) {
      const r = this.#records[row]!;
      const base = row * ROW;
      let n = store[base + OK]!;
      t.statusClasses[2]! += n;
      for (const [status, count] of r.statuses) {
        n += count;
        t.statusClasses[Math.min(5, Math.max(1, Math.floor(status / 100)))]! += count;
      }
      if (n > 0) t.requestsByModel.set(r.model, (t.requestsByModel.get(r.model) ?? 0) + n);
      // Bucket i counts the values in (bound[i-1], bound[i]]; the row keeps no +Inf bucket, so it is count minus the rest.
      let inBounds = 0;
      for (let i = 0; i < DURATION_BOUNDS.length; i++) {
        const c = store[base + DURATION_AT + BUCKET_STRIDE * i]!;
        t.durationBuckets[i]! += c;
        inBounds += c;
      }
      t.durationBuckets[DURATION_BOUNDS.length]! += store[base + DURATION_COUNT]! - inBounds;
      inBounds = 0;
      for (let i = 0; i < TTFB_BOUNDS.length; i++) {
        const c = store[base + TTFB_AT + BUCKET_STRIDE * i]!;
        t.ttfbBuckets[i]! += c;
        inBounds += c;
      }
      t.ttfbBuckets[TTFB_BOUNDS.length]! += store[base + TTFB_COUNT]! - inBounds;
      t.promptTokens += store[base + PROMPT_TOKENS]!;
      t.completionTokens += store[base + COMPLETION_TOKENS]!;
      t.inflight += this.#inflight[row]!;
    }
    return t;
  }

  /** unmatchedRow is the row of requests that matched no model (path: the matched route, or "unmatched"). */
  unmatchedRow(routePath: string | null): number {
    return this.rowOf(UNMATCHED, routePath === null ? UNMATCHED : routePath);
  }

  /** modelListRow is the row of the model listings the gateway answered on a path. */
  modelListRow(routePath: string): number {
    return this.rowOf(MODEL_LIST, routePath);
  }

  /** dispatched puts a request sent upstream on the in-flight gauge. */
  dispatched(row: number): void {
    this.#inflight[row]!++;
  }

  /** settled takes a dispatched request off the in-flight gauge. */
  settled(row: number): void {
    this.#inflight[row]!--;
  }

  /** countRequest counts one answered request by status. */
  countRequest(row: number, status: number): void {
    if (status === 200) {
      this.#store[row * ROW + OK]!++;
      return;
    }
    const statuses = this.#records[row]!.statuses;
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
  }

  /** observeDuration records a request's time from arrival to its last byte (seconds). */
  observeDuration(row: number, seconds: number): void {
    observe(this.#store, row * ROW, DURATION_BOUNDS, DURATION_AT, DURATION_SUM, DURATION_COUNT, seconds);
  }

  /** observeTtfb records the time from dispatch to the upstream's first body byte (seconds). */
  observeTtfb(row: number, seconds: number): void {
    observe(this.#store, row * ROW, TTFB_BOUNDS, TTFB_AT, TTFB_SUM, TTFB_COUNT, seconds);
  }

  /** addTokens adds the tokens an upstream's usage reported. */
  addTokens(row: number, prompt: number, completion: number): void {
    const base = row * ROW;
    this.#store[base + PROMPT_TOKENS]! += prompt;
    this.#store[base + COMPLETION_TOKENS]! += completion;
  }
}
