/**
 * Compiled limits. A scope (the gateway, a model, or one API key) has rules, one per counted
 * window, and optionally a concurrency semaphore. Counter names derive from the scope and window
 * only, never from the process or the config hash, so every replica shares them.
 */
import type { Semaphore, SemaphoreRegistry } from './semaphore.js';

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
  readonly semaphore: Semaphore | null;
  readonly defaultMaxTokens: number | null;
}

/** DEFAULT_MAX_TOKENS is the completion reservation when neither request nor config gives one. */
export const DEFAULT_MAX_TOKENS = 1024;

/** compileLimitScope compiles one limits block (metricScope: "gateway", "model" or "key:<name>"); null when it sets nothing. */
export function compileLimitScope(cfg: LimitsSpec | undefined, id: string, label: string, metricScope: string, semaphores: SemaphoreRegistry): LimitScope | null {
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
  const semaphore = c === undefined ? null : semaphores.get(id, c.max, c.queue ?? 0, c.queue_timeout_ms ?? 10_000);
  if (rules.length === 0 && semaphore === null) return null;
  return Object.freeze({ id, label, metricScope, rules: Object.freeze(rules), semaphore, defaultMaxTokens: cfg.default_max_tokens ?? null });
}
