/**
 * The counter store contract shared by the local and Redis policies. Windows are fixed and
 * aligned to the clock (window id = floor(now / window)); a take checks every counter of a
 * request and, only if all fit, adds to all of them, atomically. That gives zero overshoot even
 * under a concurrent burst: nothing beyond a limit passes within a window.
 */

/** TakeRequest is every counter one request touches. */
export interface TakeRequest {
  /** keys are counter names without the window id (scope, kind and window only: shared by all replicas). */
  readonly keys: readonly string[];
  readonly windowMs: readonly number[];
  /** adds are what the request adds: 1 for a request rule, the token reservation for a token rule. */
  readonly adds: readonly number[];
  readonly limits: readonly number[];
}

/** TakeResult is the store's answer. */
export interface TakeResult {
  isAllowed: boolean;
  /** failed is the index of the first counter that did not fit (-1 when allowed). */
  failed: number;
  /** counts are the counter values after the add (allowed) or as found (denied). */
  counts: number[];
  /** windowIds are the windows the adds went to, for settling later. */
  windowIds: number[];
  /** resetMs are the milliseconds until each window ends. */
  resetMs: number[];
}

/** CounterStore keeps rate-limit counters. */
export interface CounterStore {
  /** take checks and adds atomically. */
  take(req: TakeRequest): TakeResult | Promise<TakeResult>;
  /** settle adds deltas (may be negative) to counters of known windows: token reservations meeting real usage, refunds. */
  settle(keys: readonly string[], windowIds: readonly number[], windowMs: readonly number[], deltas: readonly number[]): void;
  close(): Promise<void>;
}
