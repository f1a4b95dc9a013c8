/**
 * Every metric the gateway exports, in one place (README "Metrics" lists them). Label values come
 * only from configuration (model names, configured paths, target URLs) or from small fixed sets
 * (HTTP status, error reason), never from what a client sent: a request for an unknown model or
 * path is counted as model="unmatched" so no client can grow the series count.
 * The per-request metrics are families of our own (families.ts) whose children are bound once per
 * model and cached, so a request does no label hashing whatever the number of models; the rarer
 * ones (errors, reloads, refusals) are plain prom-client metrics.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { Model } from '../config/index.js';
import { CounterFamily, GaugeFamily, HistogramFamily, type HistogramSeries, type ValueSeries } from './families.js';

/** UNMATCHED is the label value for requests that matched no configured model or path. */
export const UNMATCHED = 'unmatched';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const TTFB_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** ModelMetrics are the metric children of one (model, path) pair. */
export class ModelMetrics {
  readonly #requests: CounterFamily;
  readonly #labels: [string, string];
  readonly #byStatus = new Map<number, ValueSeries>();
  /** The last status counted and its series: most requests of a model end the same way. */
  #lastStatus = 0;
  #lastSeries: ValueSeries | null = null;
  readonly duration: HistogramSeries;
  readonly ttfb: HistogramSeries;
  readonly inflight: ValueSeries;
  readonly promptTokens: ValueSeries;
  readonly completionTokens: ValueSeries;

  constructor(m: GatewayMetrics, model: string, path: string) {
    this.#requests = m.requests;
    this.#labels = [model, path];
    this.duration = m.requestDuration.child(model);
    this.ttfb = m.upstreamTtfb.child(model);
    this.inflight = m.inflight.child(model);
    this.promptTokens = m.tokens.child(model, 'prompt');
    this.completionTokens = m.tokens.child(model, 'completion');
  }

  /** requests is the request counter series for one status code. */
  requests(status: number): ValueSeries {
    if (status === this.#lastStatus) return this.#lastSeries!;
    let child = this.#byStatus.get(status);
    if (child === undefined) {
      child = this.#requests.child(this.#labels[0], this.#labels[1], String(status));
      this.#byStatus.set(status, child);
    }
    this.#lastStatus = status;
    this.#lastSeries = child;
    return child;
  }
}

/** GatewayMetrics owns the Prometheus registry; it outlives config snapshots. */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests: CounterFamily;
  readonly requestDuration: HistogramFamily;
  readonly upstreamTtfb: HistogramFamily;
  readonly tokens: CounterFamily;
  readonly inflight: GaugeFamily;
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
    this.requestDuration = new HistogramFamily('igw_request_duration_seconds', 'Time from request arrival to the last byte of the response.', ['model'], LATENCY_BUCKETS);
    this.upstreamTtfb = new HistogramFamily('igw_upstream_ttfb_seconds', "Time from dispatch to the upstream's first response body byte (time to first token for streams).", ['model'], TTFB_BUCKETS);
    this.tokens = new CounterFamily('igw_tokens_total', 'Tokens reported by upstream usage objects, by kind (prompt or completion).', ['model', 'kind']);
    this.inflight = new GaugeFamily('igw_inflight_requests', 'Requests currently sent upstream and not yet finished.', ['model']);
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
      mm = new ModelMetrics(this, model, path);
      this.#byKey.set(key, mm);
    }
    return mm;
  }
}
