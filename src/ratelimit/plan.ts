/**
 * Plan and LimitTake: the shapes the admit stage (src/pipeline/admit.ts) precomputes per (model,
 * key) and leaves on a request for settling. They live here, beside the rules they are built from,
 * so the request context can name them without importing the stage.
 */
import type { CounterStore } from './counter-store.js';
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

/** LimitTake is what a request took from the counters, for settling tokens and refunds. */
export interface LimitTake {
  readonly store: CounterStore;
  readonly plan: Plan;
  readonly windowIds: readonly number[];
  readonly reservation: number;
}
