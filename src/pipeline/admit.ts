/**
 * admit: rate, token and concurrency limits (gateway-wide, model, key). Counters are checked and
 * taken in one atomic store call; token rules reserve an estimate (prompt size / 4 + max_tokens,
 * or the configured default) that record() later settles with the real usage. Then concurrency
 * slots are taken, waiting in a bounded FIFO queue when full. A model without limits compiles
 * to `limits: null` and this stage returns at its first line.
 */
import { GatewayError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { GatewayMetrics } from '../metrics/index.js';
import type { CounterStore, LimitScope, ModelLimits, Plan, Rule, TakeRequest, TakeResult } from '../ratelimit/index.js';
import { LocalStore } from '../ratelimit/index.js';
import type { RequestContext } from './context.js';

/** AdmitDeps are the counter store and how to behave when it fails. */
export interface AdmitDeps {
  store: CounterStore;
  /** isFaultTolerant lets traffic through, counted locally, while the store is unreachable. */
  isFaultTolerant: boolean;
  metrics: GatewayMetrics;
  log: Logger;
}

const WINDOW_TITLE = { second: 'Second', minute: 'Minute', hour: 'Hour', day: 'Day' } as const;

/**
 * estimateTokens reserves prompt bytes / 4 plus the completion budget (none for embeddings).
 * `text` is the body decoded as latin1 (one byte, one char), or null without a body.
 */
function estimateTokens(ctx: RequestContext, limits: ModelLimits, text: string | null): number {
  // A WebSocket session's usage never passes by as an OpenAI `usage` object: nothing could settle it.
  if (ctx.upgradeHead !== null) return 0;
  const prompt = ctx.body === null ? 0 : Math.ceil(ctx.body.length / 4);
  if (ctx.upstreamPath.endsWith('/embeddings')) return prompt;
  // Already parsed (body routing, translation): read it; otherwise scan the text rather than
  // parse a whole prompt for one number. The reservation is settled with real usage anyway.
  let max: unknown;
  if (ctx.parsedBody !== undefined) {
    const body = ctx.parsedBody as { max_tokens?: unknown; max_completion_tokens?: unknown } | null;
    max = body?.max_completion_tokens ?? body?.max_tokens;
  } else if (text !== null) max = maxTokensIn(text);
  return prompt + (typeof max === 'number' && max > 0 ? max : limits.defaultMaxTokens);
}

/**
 * maxTokensIn reads max_completion_tokens, else max_tokens, from JSON text with one search for
 * `"max_` (a body usually has one of the two, and a failed search for the other costs a full
 * pass over the prompt).
 */
function maxTokensIn(text: string): number | undefined {
  let maxTokens: number | undefined;
  for (let at = text.indexOf('"max_'); at !== -1; at = text.indexOf('"max_', at + 1)) {
    const rest = at + 5;
    if (text.startsWith('completion_tokens"', rest)) {
      const n = numberAt(text, rest + 18);
      if (n !== undefined) return n;
    } else if (maxTokens === undefined && text.startsWith('tokens"', rest)) maxTokens = numberAt(text, rest + 7);
  }
  return maxTokens;
}

/** isJsonSpace tells whether a char code is JSON whitespace. */
function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/** afterColon skips whitespace, a colon and whitespace from `from`: the first value char, or -1. */
function afterColon(text: string, from: number): number {
  let i = from;
  while (isJsonSpace(text.charCodeAt(i))) i++;
  if (text.charCodeAt(i) !== 0x3a /* : */) return -1;
  i++;
  while (isJsonSpace(text.charCodeAt(i))) i++;
  return i;
}

/** numberAt reads the non-negative integer value after a JSON key that ends at `from`, or undefined. */
function numberAt(text: string, from: number): number | undefined {
  let i = afterColon(text, from);
  if (i === -1) return undefined;
  let n = 0;
  const start = i;
  for (let c = text.charCodeAt(i); c >= 0x30 && c <= 0x39 && i - start < 9; c = text.charCodeAt(++i)) n = n * 10 + c - 0x30;
  return i > start ? n : undefined;
}

/** remainingOf is what rule i leaves after this request (0 for the rule that refused it). */
function remainingOf(rules: readonly Rule[], counts: readonly number[], deniedAt: number, i: number): number {
  return i === deniedAt ? 0 : Math.max(0, rules[i]!.limit - counts[i]!);
}

/** tightest is the rule among `among` with the least left after this request (the first on a tie), or -1 for none. */
function tightest(rules: readonly Rule[], counts: readonly number[], deniedAt: number, among: readonly number[]): number {
  let best = -1;
  let bestLeft = Infinity;
  for (const i of among) {
    const left = remainingOf(rules, counts, deniedAt, i);
    if (left < bestLeft) {
      bestLeft = left;
      best = i;
    }
  }
  return best;
}

/**
 * toHeaders builds RateLimit-* (the most restrictive request limit; token limits only when there
 * is no request limit) and Kong's X-RateLimit-*-<Window> (per request window, its most restrictive
 * rule). Header names and the grouping come precomputed with the plan: a request only formats numbers.
 */
function toHeaders(plan: Plan, counts: readonly number[], resetMs: readonly number[], deniedAt: number): string[] {
  const rules = plan.rules;
  const out: string[] = [];
  const best = tightest(rules, counts, deniedAt, plan.headlineRules);
  if (best !== -1) {
    const left = remainingOf(rules, counts, deniedAt, best);
    out.push('ratelimit-limit', plan.limitTexts[best]!, 'ratelimit-remaining', String(left), 'ratelimit-reset', String(Math.ceil(resetMs[best]! / 1000)));
  }
  for (const w of plan.windows) {
    const i = tightest(rules, counts, deniedAt, w.rules);
    out.push(w.limitName, plan.limitTexts[i]!, w.remainingName, String(remainingOf(rules, counts, deniedAt, i)));
  }
  return out;
}

/** createAdmit builds the admit stage over a counter store. */
export function createAdmit(deps: AdmitDeps): (ctx: RequestContext) => void | Promise<void> {
  const fallback = new LocalStore();
  let lastStoreErrorLogMs = 0;

  type Taken = { res: TakeResult; store: CounterStore };
  // On a store failure: count locally (fault tolerant) or refuse; log at most every 10 s.
  const takeFallback = (err: unknown, req: TakeRequest): Taken => {
    const now = Date.now();
    if (now - lastStoreErrorLogMs > 10_000) {
      lastStoreErrorLogMs = now;
      deps.log.error({ err: String(err), fault_tolerant: deps.isFaultTolerant }, 'rate-limit store unreachable');
    }
    deps.metrics.limitStoreErrors.labels(deps.isFaultTolerant ? 'allowed_locally' : 'refused').inc();
    if (!deps.isFaultTolerant) throw new GatewayError('limits_unavailable', { retryAfterSec: 1, cause: err });
    return { res: fallback.take(req), store: fallback };
  };
  const admitted = (ctx: RequestContext, plan: Plan, reservation: number, res: TakeResult, store: CounterStore): void | Promise<void> => {
    const { scopes, rules } = plan;
    if (!res.isAllowed) {
      const rule = rules[res.failed]!;
      deps.metrics.rateLimited.labels(ctx.model!.name, rule.metricLabel).inc();
      throw new GatewayError('rate_limit_exceeded', {
        message: `Rate limit exceeded: ${rule.description}.`,
        retryAfterSec: Math.max(1, Math.ceil(res.resetMs[res.failed]! / 1000)),
        headerList: toHeaders(plan, res.counts, res.resetMs, res.failed),
      });
    }
    if (rules.length > 0) {
      ctx.limitTake = { store, plan, windowIds: res.windowIds, reservation };
      ctx.limitHeaders = toHeaders(plan, res.counts, res.resetMs, -1);
    }
    return acquireSlots(ctx, scopes, 0);
  };

  const acquireSlots = (ctx: RequestContext, scopes: readonly LimitScope[], from: number): void | Promise<void> => {
    for (let i = from; i < scopes.length; i++) {
      const sem = scopes[i]!.semaphore;
      if (sem === null) continue;
      const got = sem.acquire();
      if (got === null) {
        (ctx.heldSlots ??= []).push(sem);
        continue;
      }
      if (got === 'queue_full') {
        deps.metrics.rateLimited.labels(ctx.model!.name, `${scopes[i]!.metricScope}:queue_full`).inc();
        throw new GatewayError('queue_full', { retryAfterSec: 1 });
      }
      ctx.onClientGone = got.cancel;
      return got.wait.then(
        () => {
          ctx.onClientGone = null;
          (ctx.heldSlots ??= []).push(sem);
          // The client may have left while this slot was on its way: record() already ran.
          if (ctx.isClosed) {
            releaseSlots(ctx);
            return;
          }
          return acquireSlots(ctx, scopes, i + 1);
        },
        (reason: unknown) => {
          ctx.onClientGone = null;
          if (reason === 'queue_timeout') {
            deps.metrics.rateLimited.labels(ctx.model!.name, `${scopes[i]!.metricScope}:queue_timeout`).inc();
            throw new GatewayError('queue_timeout', { retryAfterSec: 1 });
          }
          throw reason;
        },
      );
    }
  };

  return (ctx) => {
    const limits = ctx.model!.limits;
    if (limits === null) return;
    const plan = planOf(limits, ctx.keyHash === null ? undefined : limits.keyScopes.get(ctx.keyHash));
    if (plan.rules.length === 0) return acquireSlots(ctx, plan.scopes, 0);
    let reservation = 0;
    let adds = plan.requestAdds;
    if (limits.hasTokenRules) {
      // One decode of the body, then string searches: a Buffer search per key is a native call each.
      const text = ctx.body === null || ctx.parsedBody !== undefined ? null : ctx.body.toString('latin1');
      reservation = estimateTokens(ctx, limits, text);
      adds = plan.isTokenRule.map((isToken) => (isToken ? reservation : 1));
    }
    const req: TakeRequest = { keys: plan.keys, windowMs: plan.windowMs, adds, limits: plan.limits };
    // Which store answered (the shared one, or the local fallback) is where the tokens settle.
    // A store that answers at once (local) costs no promise and no closure.
    let r: TakeResult | Promise<TakeResult>;
    try {
      r = deps.store.take(req);
    } catch (err) {
      const t = takeFallback(err, req);
      return admitted(ctx, plan, reservation, t.res, t.store);
    }
    if (!(r instanceof Promise)) return admitted(ctx, plan, reservation, r, deps.store);
    return r.then(
      (res) => admitted(ctx, plan, reservation, res, deps.store),
      (err: unknown) => {
        const t = takeFallback(err, req);
        return admitted(ctx, plan, reservation, t.res, t.store);
      },
    );
  };
}

// Built on first use per model limits and key scope, then reused: rules, counter keys and header
// names are not rebuilt per request. Only the per-rule amounts are, when token rules add the
// request's reservation.
const plans = new WeakMap<ModelLimits, Map<LimitScope | undefined, Plan>>();

function planOf(limits: ModelLimits, keyScope: LimitScope | undefined): Plan {
  let byKey = plans.get(limits);
  if (byKey === undefined) plans.set(limits, (byKey = new Map()));
  let plan = byKey.get(keyScope);
  if (plan === undefined) {
    const scopes = keyScope === undefined ? limits.scopes : [...limits.scopes, keyScope];
    const rules = scopes.flatMap((s) => s.rules);
    const indices = rules.map((_, i) => i);
    const requestRules = indices.filter((i) => rules[i]!.kind === 'requests');
    const tokenRules = indices.filter((i) => rules[i]!.kind === 'tokens');
    const windows = new Map<string, number[]>();
    for (const i of requestRules) {
      const w = rules[i]!.window;
      windows.set(w, [...(windows.get(w) ?? []), i]);
    }
    plan = {
      scopes,
      rules,
      keys: rules.map((r) => r.counter),
      windowMs: rules.map((r) => r.windowMs),
      limits: rules.map((r) => r.limit),
      limitTexts: rules.map((r) => String(r.limit)),
      isTokenRule: rules.map((r) => r.kind === 'tokens'),
      requestAdds: rules.map(() => 1),
      headlineRules: requestRules.length > 0 ? requestRules : indices,
      windows: [...windows].map(([w, ruleIdx]) => {
        const title = WINDOW_TITLE[w as keyof typeof WINDOW_TITLE];
        return { limitName: `x-ratelimit-limit-${title}`, remainingName: `x-ratelimit-remaining-${title}`, rules: ruleIdx };
      }),
      tokenRules,
      tokenKeys: tokenRules.map((i) => rules[i]!.counter),
      tokenWindowMs: tokenRules.map((i) => rules[i]!.windowMs),
    };
    byKey.set(keyScope, plan);
  }
  return plan;
}

/** releaseSlots frees the concurrency slots a request holds. */
export function releaseSlots(ctx: RequestContext): void {
  const held = ctx.heldSlots;
  if (held === null) return;
  ctx.heldSlots = null;
  for (const s of held) s.release();
}

/**
 * settleLimits runs when a request ends: token reservations meet the real usage (or are refunded
 * when the engine never answered), and concurrency slots are released.
 */
export function settleLimits(ctx: RequestContext): void {
  releaseSlots(ctx);
  const take = ctx.limitTake;
  if (take === null || take.reservation === 0) return;
  ctx.limitTake = null;
  let used: number;
  if (ctx.promptTokens >= 0) used = ctx.promptTokens + Math.max(0, ctx.completionTokens);
  else if (ctx.headersAt === 0) used = 0;
  else return;
  const delta = used - take.reservation;
  if (delta === 0) return;
  const { plan } = take;
  const n = plan.tokenRules.length;
  const ids = new Array<number>(n);
  const deltas = new Array<number>(n);
  for (let j = 0; j < n; j++) {
    ids[j] = take.windowIds[plan.tokenRules[j]!]!;
    deltas[j] = delta;
  }
  take.store.settle(plan.tokenKeys, ids, plan.tokenWindowMs, deltas);
}
