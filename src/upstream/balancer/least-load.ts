/**
 * Least-load: inference-aware balancing from each target's vLLM /metrics sample (polled
 * elsewhere into state.load). Each eligible candidate gets a score and the lowest wins:
 *
 *   queue = waiting + runningWeight * running + (inflight - inflightAtSample)   (floored at 0)
 *   score = queue / weight + kvPenalty(kvCacheUsage)
 *   kvPenalty(u) = u + KV_FULL_PENALTY * ((u - KV_KNEE) / (1 - KV_KNEE))^2   for u > KV_KNEE, else u
 *
 * Why this shape:
 * - Queue depth dominates. A waiting request has not even started prefill, so every one ahead of
 *   a new request adds to its time to first token; running requests only share the batch (each
 *   one slows decode a little), hence runningWeight = 0.5 by default. Dividing by weight makes a
 *   target with twice the capacity look half as loaded.
 * - The sample is up to one poll old. What this gateway sent (or saw finish) since then is known
 *   exactly: the change in state.inflight since the sample was first seen. Adding it makes every
 *   pick visible to the next one, so a burst between two polls does not herd onto the target that
 *   looked idlest at the last poll. (Adding raw inflight would count our requests twice: the
 *   sample already holds the ones in flight when it was taken.)
 * - KV-cache usage breaks ties (below the knee it adds at most 0.9 of one request) and penalises
 *   nearly full caches: when a full cache has no block for a growing sequence, vLLM preempts a
 *   running one (and recomputes it later), so latency jumps. Above KV_KNEE = 0.9 the penalty grows
 *   quadratically, until a full cache costs as much as KV_FULL_PENALTY = 8 more queued requests.
 * - Ties (an idle fleet) are broken by a random starting point, so idle targets share the load.
 *
 * When any eligible candidate has no sample fresher than staleMs (metrics off, poll failing, a
 * target just added), scores would compare a measured queue with a guess, so that pick falls back
 * to least-request (power of two choices on inflight / weight). Trade-off: vs. least-request it
 * sees load from other gateways and clients, at the cost of polling and trusting a stale-ish view.
 */
import { LeastRequestBalancer } from './least-request.js';
import { isEligible } from './types.js';
import type { Balancer, Target, PickInput } from './types.js';

/** LeastLoadOptions tune a LeastLoadBalancer. */
export interface LeastLoadOptions {
  /** staleMs is how old a load sample may be and still count (default 2000). */
  staleMs?: number;
  /** runningWeight is what one running request costs relative to one waiting request (default 0.5). */
  runningWeight?: number;
  /** random breaks ties and drives the least-request fallback; Math.random by default. */
  random?: () => number;
}

const KV_KNEE = 0.9;
const KV_FULL_PENALTY = 8;

/** LeastLoadBalancer picks the eligible candidate with the lowest load score from fresh vLLM metrics, or falls back to least-request. */
export class LeastLoadBalancer implements Balancer {
  readonly #candidates: readonly Target[];
  readonly #staleMs: number;
  readonly #runningWeight: number;
  readonly #random: () => number;
  readonly #fallback: LeastRequestBalancer;
  /** sampleAtMs[i] is the atMs of the sample last seen for candidate i (NaN: none yet). */
  readonly #sampleAtMs: Float64Array;
  /** inflightAtSample[i] is candidate i's inflight when that sample was first seen. */
  readonly #inflightAtSample: Float64Array;

  constructor(candidates: readonly Target[], opts: LeastLoadOptions = {}) {
    const staleMs = opts.staleMs ?? 2000;
    const runningWeight = opts.runningWeight ?? 0.5;
    if (!(staleMs >= 0)) throw new RangeError(`staleMs must be >= 0, got ${staleMs}`);
    if (!(runningWeight >= 0) || !Number.isFinite(runningWeight)) throw new RangeError(`runningWeight must be a finite number >= 0, got ${runningWeight}`);
    this.#candidates = candidates;
    this.#staleMs = staleMs;
    this.#runningWeight = runningWeight;
    this.#random = opts.random ?? Math.random;
    this.#fallback = new LeastRequestBalancer(candidates, { random: this.#random });
    this.#sampleAtMs = new Float64Array(candidates.length).fill(Number.NaN);
    this.#inflightAtSample = new Float64Array(candidates.length);
  }

  /** pick returns the eligible candidate with the lowest load score, or undefined when none is eligible. */
  pick(input: PickInput): Target | undefined {
    const candidates = this.#candidates;
    const n = candidates.length;
    const sampleAtMs = this.#sampleAtMs;
    const inflightAtSample = this.#inflightAtSample;
    // A random start makes ties (an idle fleet) go to a random target instead of always the first.
    const r = Math.floor(this.#random() * n);
    const start = r > 0 ? (r < n ? r : n - 1) : 0;
    let best: Target | undefined;
    let bestScore = Infinity;
    for (let k = 0; k < n; k++) {
      const i = start + k < n ? start + k : start + k - n;
      const c = candidates[i]!;
      if (!isEligible(c, input.excluded)) continue;
      const load = c.state.load;
      if (load === null || !(input.nowMs - load.atMs <= this.#staleMs)) return this.#fallback.pick(input);
      if (sampleAtMs[i] !== load.atMs) {
        sampleAtMs[i] = load.atMs;
        inflightAtSample[i] = c.state.inflight;
      }
      const delta = c.state.inflight - inflightAtSample[i]!;
      const queue = load.waiting + this.#runningWeight * load.running + delta;
      // The KV-cache reading is as old as the sample: scale it by how the running batch changed
      // since, or a replica that just freed slots keeps its "full cache" penalty until the next poll.
      const running = load.running + delta;
      const kv = load.running > 0 ? Math.min(1, (load.kvCacheUsage * (running < 0 ? 0 : running)) / load.running) : load.kvCacheUsage;
      let score = (queue < 0 ? 0 : queue) / c.weight + kvPenalty(kv);
      // A NaN score (garbage in a sample) must lose to any real one without leaving the pick empty.
      if (score !== score) score = Infinity;
      if (best === undefined || score < bestScore) {
        bestScore = score;
        best = c;
      }
    }
    return best;
  }
}

/** kvPenalty is u below the knee, then rises quadratically to KV_FULL_PENALTY + 1 at a full cache; garbage counts as empty. */
function kvPenalty(u: number): number {
  if (!(u > 0)) return 0;
  const v = u < 1 ? u : 1;
  if (v <= KV_KNEE) return v;
  const over = (v - KV_KNEE) / (1 - KV_KNEE);
  return v + KV_FULL_PENALTY * over * over;
}
