/**
 * Least-request by the power of two random choices (Mitzenmacher; Envoy LEAST_REQUEST, Traefik
 * p2c): draw two distinct eligible candidates at random and take the one with fewer in-flight
 * requests per unit of weight, i.e. the lower (inflight + 1) / weight (the +1 counts the request
 * being placed, so an idle heavy target beats an idle light one). Ties go to the first drawn.
 * Trade-off: it sees only this gateway's own in-flight counts, not the server's real queue, but
 * the random pair keeps several gateways (or a burst between counter updates) from all herding
 * onto the single least-loaded target, which strict "pick the minimum" would do.
 */
import { isEligible } from './types.js';
import type { Balancer, Target, PickInput } from './types.js';

/** LeastRequestOptions are the seams of a LeastRequestBalancer. */
export interface LeastRequestOptions {
  /** random returns a number in [0, 1); Math.random by default (tests inject a seeded one). */
  random?: () => number;
}

/** LeastRequestBalancer picks the less loaded (per weight) of two random eligible candidates. */
export class LeastRequestBalancer implements Balancer {
  readonly #candidates: readonly Target[];
  readonly #random: () => number;
  /** eligible holds the indexes of this pick's eligible candidates; preallocated so a pick allocates nothing. */
  readonly #eligible: Int32Array;

  constructor(candidates: readonly Target[], opts: LeastRequestOptions = {}) {
    this.#candidates = candidates;
    this.#random = opts.random ?? Math.random;
    this.#eligible = new Int32Array(candidates.length);
  }

  /** pick returns the less loaded of two random eligible candidates, the only one, or undefined when none is eligible. */
  pick(input: PickInput): Target | undefined {
    const candidates = this.#candidates;
    const eligible = this.#eligible;
    let count = 0;
    for (let i = 0; i < candidates.length; i++) {
      if (isEligible(candidates[i]!, input.excluded)) eligible[count++] = i;
    }
    if (count === 0) return undefined;
    if (count === 1) return candidates[eligible[0]!];
    const first = toIndex(this.#random(), count);
    let second: number;
    if (count === 2) second = 1 - first;
    else {
      // Draw from the other count-1 slots and shift past the first: two distinct, each uniform.
      second = toIndex(this.#random(), count - 1);
      if (second >= first) second++;
    }
    const a = candidates[eligible[first]!]!;
    const b = candidates[eligible[second]!]!;
    return isLessLoaded(b, a) ? b : a;
  }
}

/** isLessLoaded tells whether a has strictly less (inflight + 1) / weight than b (cross-multiplied: no division). */
export function isLessLoaded(a: Target, b: Target): boolean {
  return (a.state.inflight + 1) * b.weight < (b.state.inflight + 1) * a.weight;
}

/** toIndex maps a random number in [0, 1) to an index below count, clamping an out-of-range injected source. */
function toIndex(r: number, count: number): number {
  const i = Math.floor(r * count);
  return i >= count ? count - 1 : i > 0 ? i : 0;
}
