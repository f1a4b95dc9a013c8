/**
 * Smooth weighted round-robin (the nginx algorithm): every pick adds each target's weight to its
 * running score, takes the highest, and subtracts the total from the winner. Weights 5,1,1 give
 * a,a,b,a,c,a,a rather than a burst of five a's, so no replica gets a run of requests in a row.
 */

/** Weighted is anything with a weight. */
export interface Weighted {
  readonly weight: number;
}

/** RoundRobin picks targets in smooth weighted order; its state is the only mutable part of a compiled model. */
export class RoundRobin<T extends Weighted> {
  readonly #targets: readonly T[];
  readonly #scores: Float64Array;
  readonly #total: number;

  constructor(targets: readonly T[]) {
    this.#targets = targets;
    this.#scores = new Float64Array(targets.length);
    this.#total = targets.reduce((s, t) => s + t.weight, 0);
  }

  /** pick returns the next target, or undefined when there are none. */
  pick(): T | undefined {
    const n = this.#targets.length;
    // One target needs no arithmetic: the common case of a blueprint with one Service.
    if (n <= 1) return this.#targets[0];
    const scores = this.#scores;
    let best = 0;
    for (let i = 0; i < n; i++) {
      scores[i] = scores[i]! + this.#targets[i]!.weight;
      if (scores[i]! > scores[best]!) best = i;
    }
    scores[best] = scores[best]! - this.#total;
    return this.#targets[best];
  }
}
