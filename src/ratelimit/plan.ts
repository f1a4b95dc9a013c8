/**
 * Plan: what a (model, key) pair's limits need per request, compiled with the snapshot: the
 * counters a take touches, their windows and limits, the header names and the grouping of rules
 * into headers. A request only adds its amounts and formats numbers. LimitTake is what one
 * request took, and settles itself when the real token usage is known.
 */
import type { CounterStore, TakeResult } from './counter-store.js';
import type { LimitScope, Rule } from './limit-rules.js';

/** Plan is everything about a (model, key) pair's limits that does not change per request. */
export interface Plan {
  readonly scopes: readonly LimitScope[];
  readonly rules: readonly Rule[];
  readonly keys: readonly string[];
  readonly windowMs: readonly number[];
  readonly limits: readonly number[];
  /** limitTexts are the limits as header values, formatted once. */
  readonly limitTexts: readonly string[];
  readonly isTokenRule: readonly boolean[];
  /** requestAdds are the adds when no rule counts tokens (all 1), shared by every request. */
  readonly requestAdds: readonly number[];
  /** headlineRules may give RateLimit-*: the request rules, or every rule when there are none. */
  readonly headlineRules: readonly number[];
  /** windows are the request windows in rule order, each with its Kong header names and rules. */
  readonly windows: ReadonlyArray<{ readonly limitName: string; readonly remainingName: string; readonly rules: readonly number[] }>;
  /** tokenRules index the token rules (settled when usage is known), with their counters and windows. */
  readonly tokenRules: readonly number[];
  readonly tokenKeys: readonly string[];
  readonly tokenWindowMs: readonly number[];
}

const WINDOW_TITLE = { second: 'Second', minute: 'Minute', hour: 'Hour', day: 'Day' } as const;

/** compilePlan compiles the limits of requests that the given scopes all limit (in that order). */
export function compilePlan(scopes: readonly LimitScope[]): Plan {
  const rules = scopes.flatMap((s) => s.rules);
  const indices = rules.map((_, i) => i);
  const requestRules = indices.filter((i) => rules[i]!.kind === 'requests');
  const tokenRules = indices.filter((i) => rules[i]!.kind === 'tokens');
  const windows = new Map<string, number[]>();
  for (const i of requestRules) {
    const w = rules[i]!.window;
    windows.set(w, [...(windows.get(w) ?? []), i]);
  }
  return Object.freeze({
    scopes: Object.freeze([...scopes]),
    rules: Object.freeze(rules),
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
  });
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
 * toRateLimitHeaders builds RateLimit-* (the most restrictive request limit; token limits only
 * when there is no request limit) and Kong's X-RateLimit-*-<Window> (per request window, its most
 * restrictive rule) from a take's answer; `deniedAt` is the rule that refused it, or -1.
 */
export function toRateLimitHeaders(plan: Plan, res: TakeResult, deniedAt: number): string[] {
  const { rules } = plan;
  const { counts, resetMs } = res;
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

/** LimitTake is what one request took from the counters; it settles its token reservation once usage is known. */
export class LimitTake {
  /** reservation is the tokens the request reserved (0 without token rules). */
  readonly reservation: number;
  readonly #store: CounterStore;
  readonly #plan: Plan;
  readonly #windowIds: readonly number[];

  /** store is the store that answered the take (the shared one, or the local fallback): the tokens settle there. */
  constructor(store: CounterStore, plan: Plan, windowIds: readonly number[], reservation: number) {
    this.reservation = reservation;
    this.#store = store;
    this.#plan = plan;
    this.#windowIds = windowIds;
  }

  /**
   * settle replaces the reservation with the tokens really used (0 refunds it all), in the
   * windows the take counted in. A take that reserved nothing has nothing to settle.
   */
  settle(usedTokens: number): void {
    const delta = usedTokens - this.reservation;
    if (this.reservation === 0 || delta === 0) return;
    const plan = this.#plan;
    const n = plan.tokenRules.length;
    const ids = new Array<number>(n);
    const deltas = new Array<number>(n);
    for (let j = 0; j < n; j++) {
      ids[j] = this.#windowIds[plan.tokenRules[j]!]!;
      deltas[j] = delta;
    }
    this.#store.settle(plan.tokenKeys, ids, plan.tokenWindowMs, deltas);
  }
}

/** PlanUsage is what one limit of a plan leaves in its current window. */
export interface PlanUsage {
  readonly rule: Rule;
  readonly remaining: number;
  readonly resetMs: number;
}

const NEVER_FULL = Number.MAX_SAFE_INTEGER;

/**
 * readPlan reads a plan's counters in their current windows without changing them: a take that
 * adds 0 against limits it cannot reach, so both stores answer it with the request path's own
 * code (Redis with its clock and windows) and nothing is counted. For the dashboard, off the
 * request path.
 */
export async function readPlan(store: CounterStore, plan: Plan): Promise<PlanUsage[]> {
  const n = plan.keys.length;
  if (n === 0) return [];
  const res = await store.take({ keys: plan.keys, windowMs: plan.windowMs, adds: new Array<number>(n).fill(0), limits: new Array<number>(n).fill(NEVER_FULL) });
  return plan.rules.map((rule, i) => ({ rule, remaining: Math.max(0, rule.limit - res.counts[i]!), resetMs: res.resetMs[i]! }));
}
