/**
 * Compiled limits. A scope (the gateway, a model, or one API key) has rules, one per counted
 * window, and optionally a concurrency semaphore. Counter names derive from the scope and window
 * only, never from the process or the config hash, so every replica shares them.
 */
import type { Semaphore, SemaphoreLimits } from './semaphore.js';

/** WindowName is a counted window. */
export type WindowName = 'second' | 'minute' | 'hour' | 'day';

/** WindowCounts are a limit per window, as configured (`per_minute: 100`). */
export type WindowCounts = Readonly<Partial<Record<'per_second' | 'per_minute' | 'per_hour' | 'per_day', number | undefined>>>;

/** LimitsSpec is one scope's limits as the configuration states them (validated by the config schema). */
export interface LimitsSpec {
  readonly requests?: WindowCounts | undefined;
  readonly tokens?: WindowCounts | undefined;
  readonly concurrency?: { readonly max: number; readonly queue?: number | undefined; readonly queue_timeout_ms?: number | undefined } | undefined;
  readonly default_max_tokens?: number | undefined;
}

const WINDOWS: ReadonlyArray<[key: 'per_second' | 'per_minute' | 'per_hour' | 'per_day', window: WindowName, ms: number]> = [
  ['per_second', 'second', 1_000],
  ['per_minute', 'minute', 60_000],
  ['per_hour', 'hour', 3_600_000],
  ['per_day', 'day', 86_400_000],
];

/** Rule is one counted limit. */
export interface Rule {
  readonly kind: 'requests' | 'tokens';
  readonly window: WindowName;
  readonly windowMs: number;
  readonly limit: number;
  /** counter is the store key (without window id). */
  readonly counter: string;
  /** description names the limit in 429 messages, e.g. "100 requests per minute for key team-a". */
  readonly description: string;
  /** metricLabel is the `limit` label of igw_rate_limited_total, e.g. "key:team-a:requests_per_minute". */
  readonly metricLabel: string;
}

/** LimitScope is one scope's compiled limits. */
export interface LimitScope {
  readonly id: string;
  readonly label: string;
  /** metricScope names the scope in metric labels: "gateway", "model" or "key:<name>". */
  readonly metricScope: string;
  readonly rules: readonly Rule[];
  /** semaphore is the scope's live concurrency semaphore (registered when the snapshot is committed). */
  readonly semaphore: Semaphore | null;
  /** concurrency are the configured semaphore sizes; the live semaphore takes them at commit. */
  readonly concurrency: SemaphoreLimits | null;
  readonly defaultMaxTokens: number | null;
}

/** SemaphoreSource gives the semaphore of a scope id: the live one, or a new one at these limits. */
export type SemaphoreSource = (id: string, limits: SemaphoreLimits) => Semaphore;

/** LimitDefaults are the configuration defaults of a limits block. */
export interface LimitDefaults {
  readonly queue: number;
  readonly queueTimeoutMs: number;
  /** defaultMaxTokens is the completion reservation when neither request nor config gives one. */
  readonly defaultMaxTokens: number;
}

/**
 * compileLimitScope compiles one limits block (metricScope: "gateway", "model" or "key:<name>");
 * null when it sets nothing. It changes no live state: semaphoreOf hands out the live semaphore or
 * a new one, which the registry takes when the snapshot is committed.
 */
export function compileLimitScope(cfg: LimitsSpec | undefined, id: string, label: string, metricScope: string, semaphoreOf: SemaphoreSource, defaults: LimitDefaults): LimitScope | null {
  if (cfg === undefined) return null;
  const rules: Rule[] = [];
  for (const kind of ['requests', 'tokens'] as const) {
    const block = cfg[kind];
    if (block === undefined) continue;
    for (const [key, window, ms] of WINDOWS) {
      const limit = block[key];
      if (limit === undefined) continue;
      rules.push(
        Object.freeze({
          kind,
          window,
          windowMs: ms,
          limit,
          counter: `${id}:${kind}:${window}`,
          description: `${limit} ${kind} per ${window} for ${label}`,
          metricLabel: `${metricScope}:${kind}_per_${window}`,
        }),
      );
    }
  }
  const c = cfg.concurrency;
  const concurrency = c === undefined ? null : Object.freeze({ max: c.max, queueMax: c.queue ?? defaults.queue, queueTimeoutMs: c.queue_timeout_ms ?? defaults.queueTimeoutMs });
  const semaphore = concurrency === null ? null : semaphoreOf(id, concurrency);
  if (rules.length === 0 && semaphore === null) return null;
  return Object.freeze({ id, label, metricScope, rules: Object.freeze(rules), semaphore, concurrency, defaultMaxTokens: cfg.default_max_tokens ?? null });
}
