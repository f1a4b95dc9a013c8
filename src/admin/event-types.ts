/**
 * The shapes `GET /events` sends, shared by the admin listener that writes them and the dashboard
 * that reads them. No imports: the dashboard's browser bundle takes these types as they are.
 */

/** EventSample is one second of traffic, as the Overview page draws it. */
export interface EventSample {
  /** time is the end of the second (epoch milliseconds). */
  time: number;
  requests_per_s: number;
  /** requests_per_s_by_model holds the 10 busiest models of that second. */
  requests_per_s_by_model: Record<string, number>;
  /** status_per_s counts answers by status class ("2xx", "4xx", …; 499 is 4xx). */
  status_per_s: Record<string, number>;
  /** latency_ms and ttft_ms are p50/p95 of the requests that finished in that second (null: none). */
  latency_ms: { p50: number | null; p95: number | null };
  ttft_ms: { p50: number | null; p95: number | null };
  prompt_tokens_per_s: number;
  completion_tokens_per_s: number;
  inflight: number;
  /** queued is the requests waiting in concurrency queues and flow-control queues. */
  queued: number;
  /** limited_per_s counts 429s by limit (`<scope>:<kind>_per_<window>`, as igw_rate_limited_total). */
  limited_per_s: Record<string, number>;
}

/** FleetTarget is one target's live state. */
export interface FleetTarget {
  url: string;
  /** state sums it up: drained, ejected (passive), failing (active checks) or healthy. */
  state: 'healthy' | 'failing' | 'ejected' | 'drained';
  healthy: boolean;
  active_healthy: boolean;
  drained: boolean;
  ejected_until: string | null;
  inflight: number;
  /** load is the engine's own numbers from the load poller, null when not polled. */
  load: { running: number; waiting: number; kv_cache_usage: number; prefix_cache_hit_rate: number | null; age_ms: number } | null;
}

/** FleetModel is one model and its targets. */
export interface FleetModel {
  name: string;
  path: string;
  inflight: number;
  targets: FleetTarget[];
}

/** KeyHeadroom is what one limit on a key's requests leaves in its current window. */
export interface KeyHeadroom {
  /** limit names it as igw_rate_limited_total does (`<scope>:<kind>_per_<window>`). */
  limit: string;
  max: number;
  remaining: number;
  /** reset_s is the seconds until its window ends. */
  reset_s: number;
}

/** KeyStat is one key's requests while watched, and its limits' headroom now. */
export interface KeyStat {
  model: string;
  /** key is the key's configured name, else its fingerprint (`key#` and 8 hex digits); never the key. */
  key: string;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  /** limited counts its 429 answers. */
  limited: number;
  /** headroom lists every limit on its requests (the gateway's, the model's, the key's own); empty when none; null when the limit store did not answer. */
  headroom: KeyHeadroom[] | null;
}
