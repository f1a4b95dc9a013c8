/**
 * AdminEvents feeds the dashboard: `GET /events` on the admin listener, Server-Sent Events.
 *
 * A sampler reads the gateway's own counters once a second (GatewayMetrics.totals: the rows the
 * request path already writes, summed; igw_rate_limited_total) and keeps the differences — rates
 * per second, p50/p95 from the histogram buckets that filled in that second — in a ring of the
 * last 15 minutes. It adds no work to the request path: it only reads counters that exist anyway,
 * off the request path, so it runs whether or not anyone watches, and a page opened now draws the
 * last 15 minutes at once.
 *
 * The fleet (every target's state and engine load) and the recent requests are only gathered
 * while at least one client is connected: the access log's tap is set when the first client
 * connects and cleared when the last one leaves, so with nobody watching the request path pays
 * one null check. The last 500 entries seen while watched are kept and sent on connect.
 *
 * The Keys page's numbers come from the same tap: while someone watches, each entry with a key
 * adds to that key's requests, tokens and 429s (so they count since the first watcher connected,
 * and start over when the last one leaves). Each tick then reads, for the keys seen, what every
 * limit on their requests leaves in its current window, from the limit store (one read per key
 * and second, off the request path).
 *
 * Events: `history` once on connect ({interval_ms, samples, fleet, requests, keys, keys_since}),
 * then `tick` every second ({sample, fleet, requests: the entries since the previous tick, keys}).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Model, Snapshot } from '../config/index.js';
import type { AccessEntry, AccessLog } from '../log/index.js';
import type { GatewayMetrics, MetricsTotals } from '../metrics/index.js';
import { readPlan, type CounterStore, type Plan } from '../ratelimit/index.js';
import type { EventSample, FleetModel, FleetTarget, KeyHeadroom, KeyStat } from './event-types.js';

/** RequestEntry is one access log entry with its time. */
export type RequestEntry = AccessEntry & { time: string };

/** AdminEventsOptions are the sampler's inputs and seams. */
export interface AdminEventsOptions {
  metrics: GatewayMetrics;
  accessLog: AccessLog;
  current: () => Snapshot;
  /** intervalMs is the sampling period (default 1000). */
  intervalMs?: number;
  /** historySize is how many samples are kept (default 900: 15 minutes at 1 s). */
  historySize?: number;
  /** requestsSize is how many access log entries are kept for new watchers (default 500). */
  requestsSize?: number;
  /** maxFleetModels caps the models sent per tick (default 500). */
  maxFleetModels?: number;
  /** limits is the limit store the Keys page reads headroom from (none: no headroom shown). */
  limits?: CounterStore;
  /** flowWaiting counts the requests waiting in a model's flow-control queue (0 without flow control). */
  flowWaiting?: (model: Snapshot['models'][number]) => number;
  /** maxKeys caps the keys counted while watched (default 1000). */
  maxKeys?: number;
  /** clock returns epoch milliseconds (tests). */
  clock?: () => number;
}

/** KeyCount is one key's counters while watched. */
interface KeyCount {
  model: string;
  key: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  limited: number;
}

/** plansOf maps a model's key labels (name or fingerprint) to the plan their requests take; built once per compiled model. */
const keyPlans = new WeakMap<Model, Map<string, Plan>>();
function plansOf(m: Model): Map<string, Plan> {
  let plans = keyPlans.get(m);
  if (plans === undefined) {
    plans = new Map();
    if (m.limits !== null && m.keyHashes !== null) {
      for (const hash of m.keyHashes) plans.set(m.keyNames.get(hash) ?? `key#${hash.slice(0, 8)}`, m.limits.keyPlans.get(hash) ?? m.limits.plan);
    }
    keyPlans.set(m, plans);
  }
  return plans;
}

const STATUS_CLASSES = ['', '1xx', '2xx', '3xx', '4xx', '5xx'];
const TOP_MODELS = 10;
/** MAX_BUFFERED_BYTES: a client this far behind is dropped rather than buffered without bound. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/** quantileMs estimates a quantile (ms) from per-bucket counts, interpolating inside a bucket as Prometheus' histogram_quantile does. */
export function quantileMs(bounds: readonly number[], counts: ArrayLike<number>, q: number): number | null {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  if (total <= 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (seen + c >= rank && c > 0) {
      // The +Inf bucket has no upper bound: report its lower one, as histogram_quantile does.
      if (i >= bounds.length) return bounds[bounds.length - 1]! * 1000;
      const lower = i === 0 ? 0 : bounds[i - 1]!;
      const upper = bounds[i]!;
      return Math.round((lower + ((upper - lower) * (rank - seen)) / c) * 1000 * 10) / 10;
    }
    seen += c;
  }
  return null;
}

/** AdminEvents samples the counters, keeps the history and serves `GET /events`. */
export class AdminEvents {
  readonly #opts: AdminEventsOptions;
  readonly #clock: () => number;
  readonly #historySize: number;
  readonly #requestsSize: number;
  readonly #samples: EventSample[] = [];
  readonly #clients = new Set<ServerResponse>();
  /** #requests is a ring of the last entries seen while watched; #requestsAt is the next slot. */
  readonly #requests: RequestEntry[] = [];
  #requestsAt = 0;
  /** #pending are the entries since the last tick. */
  #pending: RequestEntry[] = [];
  #previous: { totals: MetricsTotals; limited: Map<string, number> } | null = null;
  #timer: NodeJS.Timeout | null = null;
  #isSampling = false;
  /** #keys count each (model, key label) seen while watched, since #keysSince. */
  readonly #keys = new Map<string, KeyCount>();
  #keysSince = 0;
  /** #keyStats are the last tick's key numbers, for a watcher that connects between ticks. */
  #keyStats: KeyStat[] = [];
  readonly #onEntry = (e: AccessEntry, timeMs: number): void => {
    if (e.key !== null && e.model !== null) this.#countKey(e);
    const entry: RequestEntry = { time: new Date(timeMs).toISOString(), ...e };
    this.#pending.push(entry);
    if (this.#requests.length < this.#requestsSize) this.#requests.push(entry);
    else {
      this.#requests[this.#requestsAt] = entry;
      this.#requestsAt = (this.#requestsAt + 1) % this.#requestsSize;
    }
  };

  #countKey(e: AccessEntry): void {
    const id = `${e.model}\u0000${e.key}`;
    let k = this.#keys.get(id);
    if (k === undefined) {
      if (this.#keys.size >= (this.#opts.maxKeys ?? 1000)) return;
      k = { model: e.model!, key: e.key!, requests: 0, promptTokens: 0, completionTokens: 0, limited: 0 };
      this.#keys.set(id, k);
    }
    k.requests++;
    k.promptTokens += e.prompt_tokens ?? 0;
    k.completionTokens += e.completion_tokens ?? 0;
    if (e.status === 429) k.limited++;
  }

  /** keys reads the headroom of every key seen while watched (every limit its requests take) and returns their numbers, busiest first. */
  async keys(): Promise<KeyStat[]> {
    const store = this.#opts.limits;
    const models = this.#opts.current().models;
    const counts = [...this.#keys.values()].sort((a, b) => b.requests - a.requests);
    return Promise.all(
      counts.map(async (k): Promise<KeyStat> => {
        let headroom: KeyHeadroom[] | null = [];
        // A name can serve under several paths: the key belongs to the one whose keys hold it.
        let plan: Plan | undefined;
        for (const m of models) {
          if (m.name !== k.model) continue;
          plan = plansOf(m).get(k.key);
          if (plan !== undefined) break;
        }
        if (plan !== undefined) {
          if (store === undefined) headroom = null;
          else {
            try {
              headroom = (await readPlan(store, plan)).map((u) => ({ limit: u.rule.metricLabel, max: u.rule.limit, remaining: u.remaining, reset_s: Math.ceil(u.resetMs / 1000) }));
            } catch {
              headroom = null;
            }
          }
        }
        return { model: k.model, key: k.key, requests: k.requests, prompt_tokens: k.promptTokens, completion_tokens: k.completionTokens, limited: k.limited, headroom };
      }),
    );
  }

  constructor(opts: AdminEventsOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? Date.now;
    this.#historySize = opts.historySize ?? 900;
    this.#requestsSize = opts.requestsSize ?? 500;
  }

  /** start begins sampling (an unref'd timer: it never keeps the process alive). */
  start(): void {
    if (this.#timer !== null) return;
    void this.sample();
    this.#timer = setInterval(() => void this.sample(), this.#opts.intervalMs ?? 1000);
    this.#timer.unref();
  }

  /** stop ends sampling and closes every client's stream. */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    for (const res of this.#clients) res.end();
    this.#clients.clear();
    this.#opts.accessLog.tap = null;
  }

  /** watchers is how many clients are connected. */
  get watchers(): number {
    return this.#clients.size;
  }

  /** history returns the kept samples, oldest first. */
  history(): readonly EventSample[] {
    return this.#samples;
  }

  /** sample takes one sample (the timer calls it; tests may too) and sends it to the clients. */
  async sample(): Promise<void> {
    if (this.#isSampling) return;
    this.#isSampling = true;
    try {
      const totals = this.#opts.metrics.totals();
      const limited = new Map<string, number>();
      for (const v of (await this.#opts.metrics.rateLimited.get()).values) {
        const label = String(v.labels.limit);
        limited.set(label, (limited.get(label) ?? 0) + v.value);
      }
      const previous = this.#previous;
      this.#previous = { totals, limited };
      if (previous === null) return;
      const s = this.#toSample(previous.totals, totals, previous.limited, limited);
      this.#samples.push(s);
      if (this.#samples.length > this.#historySize) this.#samples.shift();
      if (this.#clients.size > 0) {
        const requests = this.#pending;
        this.#pending = [];
        this.#keyStats = await this.keys();
        this.#broadcast('tick', { sample: s, fleet: this.fleet(), requests, keys: this.#keyStats });
      }
    } catch {
      // A failed sample is a gap in the charts, never an error anywhere else.
    } finally {
      this.#isSampling = false;
    }
  }

  #toSample(a: MetricsTotals, b: MetricsTotals, limitedA: Map<string, number>, limitedB: Map<string, number>): EventSample {
    const byModel: Array<[string, number]> = [];
    let total = 0;
    for (const [model, n] of b.requestsByModel) {
      const d = n - (a.requestsByModel.get(model) ?? 0);
      total += d;
      if (d > 0) byModel.push([model, d]);
    }
    byModel.sort((x, y) => y[1] - x[1]);
    const status: Record<string, number> = {};
    for (let i = 1; i < STATUS_CLASSES.length; i++) {
      const d = b.statusClasses[i]! - a.statusClasses[i]!;
      if (d > 0) status[STATUS_CLASSES[i]!] = d;
    }
    const duration = b.durationBuckets.map((v, i) => v - a.durationBuckets[i]!);
    const ttfb = b.ttfbBuckets.map((v, i) => v - a.ttfbBuckets[i]!);
    const limited: Record<string, number> = {};
    for (const [label, n] of limitedB) {
      const d = n - (limitedA.get(label) ?? 0);
      if (d > 0) limited[label] = d;
    }
    let queued = 0;
    const flowWaiting = this.#opts.flowWaiting;
    for (const m of this.#opts.current().models) {
      if (flowWaiting !== undefined) queued += flowWaiting(m);
      if (m.limits === null) continue;
      for (const sc of m.limits.scopes) if (sc.semaphore !== null) queued += sc.semaphore.waiting;
      for (const sc of m.limits.keyScopes.values()) if (sc.semaphore !== null) queued += sc.semaphore.waiting;
    }
    return {
      time: this.#clock(),
      requests_per_s: total,
      requests_per_s_by_model: Object.fromEntries(byModel.slice(0, TOP_MODELS)),
      status_per_s: status,
      latency_ms: { p50: quantileMs(b.durationBounds, duration, 0.5), p95: quantileMs(b.durationBounds, duration, 0.95) },
      ttft_ms: { p50: quantileMs(b.ttfbBounds, ttfb, 0.5), p95: quantileMs(b.ttfbBounds, ttfb, 0.95) },
      prompt_tokens_per_s: b.promptTokens - a.promptTokens,
      completion_tokens_per_s: b.completionTokens - a.completionTokens,
      inflight: b.inflight,
      queued,
      limited_per_s: limited,
    };
  }

  /** fleet is every model's targets with their live state (the first maxFleetModels models). */
  fleet(): FleetModel[] {
    const now = this.#clock();
    const models = this.#opts.current().models.slice(0, this.#opts.maxFleetModels ?? 500);
    return models.map((m) => {
      let inflight = 0;
      const targets = m.upstream.targets.map((t): FleetTarget => {
        const st = t.state;
        inflight += st.inflight;
        const load = st.load;
        return {
          url: t.url,
          state: st.isDrained ? 'drained' : st.ejectedUntilMs > 0 ? 'ejected' : !st.isActiveHealthy ? 'failing' : st.isHealthy ? 'healthy' : 'ejected',
          healthy: st.isHealthy,
          active_healthy: st.isActiveHealthy,
          drained: st.isDrained,
          ejected_until: st.ejectedUntilMs > 0 ? new Date(st.ejectedUntilMs).toISOString() : null,
          inflight: st.inflight,
          load: load === null ? null : { running: load.running, waiting: load.waiting, kv_cache_usage: load.kvCacheUsage, prefix_cache_hit_rate: load.prefixCacheHitRate ?? null, age_ms: Math.max(0, now - load.atMs) },
        };
      });
      return { name: m.name, path: m.path || '/', inflight, targets };
    });
  }

  /** handle serves `GET /events` (the caller has checked the token). */
  handle(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    const requests = this.#requests.length < this.#requestsSize ? [...this.#requests] : [...this.#requests.slice(this.#requestsAt), ...this.#requests.slice(0, this.#requestsAt)];
    if (this.#clients.size === 0) this.#keysSince = this.#clock();
    this.#send(res, 'history', { interval_ms: this.#opts.intervalMs ?? 1000, samples: this.#samples, fleet: this.fleet(), requests, keys: this.#keyStats, keys_since: new Date(this.#keysSince).toISOString() });
    this.#clients.add(res);
    if (this.#clients.size === 1) this.#opts.accessLog.tap = this.#onEntry;
    req.socket.setNoDelay(true);
    res.once('close', () => {
      this.#clients.delete(res);
      if (this.#clients.size === 0) {
        this.#opts.accessLog.tap = null;
        this.#pending = [];
        this.#keys.clear();
        this.#keyStats = [];
      }
    });
  }

  #broadcast(event: string, data: unknown): void {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of this.#clients) {
      if (res.writableLength > MAX_BUFFERED_BYTES) res.destroy();
      else res.write(frame);
    }
  }

  #send(res: ServerResponse, event: string, data: unknown): void {
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }
}
