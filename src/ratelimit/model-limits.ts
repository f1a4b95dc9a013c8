/**
 * ModelLimits: every limit on one model's requests, with the plan of each (model, key) pair
 * compiled when the snapshot compiles, so a request looks its plan up and builds nothing.
 */
import type { LimitScope } from './limit-rules.js';
import { compilePlan, type Plan } from './plan.js';

/** ModelLimits are all limits that apply to a model's requests. */
export interface ModelLimits {
  /** scopes are the gateway-wide and model scopes that apply to every request (in that order). */
  readonly scopes: readonly LimitScope[];
  /** keyScopes are per-key scopes by key hash. */
  readonly keyScopes: ReadonlyMap<string, LimitScope>;
  /** plan is the plan of a request whose key has no limits of its own (or that has no key). */
  readonly plan: Plan;
  /** keyPlans are the plans of requests made with a key that has limits, by key hash. */
  readonly keyPlans: ReadonlyMap<string, Plan>;
  /** hasTokenRules tells whether any scope counts tokens (then usage is reserved and settled). */
  readonly hasTokenRules: boolean;
  readonly defaultMaxTokens: number;
}

/** toModelLimits combines scopes and compiles their plans; null when nothing limits the model (the admit stage is then skipped). */
export function toModelLimits(scopes: ReadonlyArray<LimitScope | null>, keyScopes: ReadonlyMap<string, LimitScope>, defaultMaxTokens: number): ModelLimits | null {
  const present = scopes.filter((s): s is LimitScope => s !== null);
  if (present.length === 0 && keyScopes.size === 0) return null;
  const all = [...present, ...keyScopes.values()];
  const keyPlans = new Map<string, Plan>();
  for (const [hash, scope] of keyScopes) keyPlans.set(hash, compilePlan([...present, scope]));
  return Object.freeze({
    scopes: Object.freeze(present),
    keyScopes,
    plan: compilePlan(present),
    keyPlans,
    hasTokenRules: all.some((s) => s.rules.some((r) => r.kind === 'tokens')),
    defaultMaxTokens: all.find((s) => s.defaultMaxTokens !== null)?.defaultMaxTokens ?? defaultMaxTokens,
  });
}
