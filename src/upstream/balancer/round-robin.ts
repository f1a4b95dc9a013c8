/**
 * Smooth weighted round-robin (the nginx algorithm, ngx_http_upstream_get_peer): every pick adds
 * each eligible target's weight to its running score, takes the highest, and subtracts the total
 * eligible weight from the winner. Weights 5,1,1 give a,a,b,a,c,a,a rather than a burst of five
 * a's, so no replica gets a run of requests in a row. Ineligible targets (unhealthy, or already
 * tried by this request) sit the pick out with their scores untouched, as nginx does for down
 * peers. Trade-off: it ignores load entirely, so a slow replica gets its full share anyway.
 */
import { isEligible } from './types.js';
import type { Balancer, Target, PickInput } from './types.js';

/** RoundRobinBalancer picks candidates in smooth weighted order, skipping ineligible ones. */
export class RoundRobinBalancer implements Balancer {
  readonly #candidates: readonly Target[];
  readonly #scores: Float64Array;

  constructor(candidates: readonly Target[]) {
    this.#candidates = candidates;
    this.#scores = new Float64Array(candidates.length);
  }

  /** pick returns the next eligible candidate in smooth weighted order, or undefined when none is eligible. */
  pick(input: PickInput): Target | undefined {
    const candidates = this.#candidates;
    const n = candidates.length;
    const scores = this.#scores;
    let best = -1;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const c = candidates[i]!;
      if (!isEligible(c, input.excluded)) continue;
      scores[i] = scores[i]! + c.weight;
      total += c.weight;
      if (best === -1 || scores[i]! > scores[best]!) best = i;
    }
    if (best === -1) return undefined;
    scores[best] = scores[best]! - total;
    return candidates[best];
  }
}
