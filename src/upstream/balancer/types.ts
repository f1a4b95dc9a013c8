/**
 * The balancer contract. A balancer is built over a model's targets; each carries its live
 * TargetState, which outlives config snapshots (kept per target URL). A balancer picks one target
 * that is healthy and not excluded (retries exclude targets already tried), or undefined.
 */
import type { PromptBlocks } from '../prefix-index.js';
import type { Target } from '../target.js';

export type { Target };

/** PickInput is what one pick may depend on besides the targets. */
export interface PickInput {
  /** excluded are targets that must not be picked (already tried by this request), or null. */
  excluded: ReadonlySet<Target> | null;
  /** hashKey is the consistent-hash key of the request (header value, key hash or prompt prefix), or null. */
  hashKey: string | null;
  /** nowMs is the current clock time in milliseconds (for load sample staleness). */
  nowMs: number;
  /** blocks are the chained block hashes of the prompt (toPromptBlocks), computed only for prefix-aware; absent or null otherwise. */
  blocks?: PromptBlocks | null;
  /** size is the request body's length in bytes (about 4 per prompt token), or absent/0 when unknown. */
  size?: number;
}

export type { PromptBlocks } from '../prefix-index.js';

/** Balancer picks a target for one request. Implementations are created per target list. */
export interface Balancer {
  pick(input: PickInput): Target | undefined;
}

/** isEligible tells whether a target may be picked at all: healthy, not drained, not excluded. */
export function isEligible(c: Target, excluded: ReadonlySet<Target> | null): boolean {
  return c.state.isHealthy && c.state.isDrained !== true && (excluded === null || !excluded.has(c));
}

/**
 * perWeightBound is the load bound per unit of weight of consistent hashing with bounded loads:
 * loadFactor × (the eligible targets' requests in flight + 1) / their total weight.
 */
export function perWeightBound(loadFactor: number, totalInflight: number, totalWeight: number): number {
  return (loadFactor * (totalInflight + 1)) / totalWeight;
}

/** isOverBound tells whether one more request would take t over its bound, ceil(perWeight × weight) + slack. */
export function isOverBound(t: Target, perWeight: number, slack = 0): boolean {
  return t.state.inflight + 1 > Math.ceil(perWeight * t.weight) + slack;
}
