/**
 * Least-load: inference-aware balancing from each target's vLLM /metrics sample (polled
 * elsewhere into state.load), brought up to date with what this gateway sent since. Each
 * eligible candidate gets a score and the lowest wins:
 *
 *   queue = waiting + runningWeight * running + (inflight - inflightAtSample)          (floored at 0)
 *   kv    = kvCacheUsage + (size units sent since the sample - requests finished since) * kvUnit   (0..1)
 *   score = queue * slowness / weight + kvPenalty(kv) * size / meanSize
 *           + SATURATED when waiting (with those sent since) > SATURATION_QUEUE * weight, kv > SATURATION_KV,
 *             or this request's own blocks would not fit beside kv
 *
 * Why this shape:
 * - Queue depth dominates. A waiting request has not even started prefill, so every one ahead of
 *   a new request adds to its time to first token; running requests only share the batch (each
 *   one slows decode a little), hence runningWeight = 0.5 by default. Dividing by weight makes a
 *   target with twice the capacity look half as loaded.
 * - A queue position costs what one request takes on that replica. slowness is the replica's time
 *   per request (running requests over completions per second, from vllm:request_success_total
 *   between samples) over the mean of all candidates: a replica three times slower makes each
 *   request ahead wait three times longer. Measured, not configured, so it also sees a replica
 *   slowed by what others send it. 1 until every candidate has a measurement.
 * - The sample is up to one poll old. What this gateway sent (or saw finish) since then is known
 *   exactly: the change in state.inflight since the sample was first seen, and the sizes of the
 *   requests sent. Adding them makes every pick visible to the next one, so a burst between two
 *   polls does not herd onto the target that looked idlest at the last poll. (Adding raw inflight
 *   would count our requests twice: the sample already holds the ones in flight when it was taken.)
 * - Requests differ in size: a 50,000-token prompt takes a large part of a replica's KV cache, a
 *   greeting almost none. The request body's length (about four bytes a token) against the mean
 *   of recent requests says how big this one is; kvUnit (the KV-cache share of one mean request:
 *   the fleet's cache in use over its running requests, from the latest samples) turns sizes into
 *   cache shares. So a
 *   large request sent since the last poll already counts on its target, and the KV term weighs
 *   by the request's size: a big prompt goes where the cache has room, a small one by queue.
 * - KV usage below the knee (0.9) adds at most 0.9 of one request (times the size); above it the
 *   penalty grows quadratically up to KV_FULL_PENALTY more, since a full cache makes vLLM preempt
 *   running requests or keep new ones waiting.
 * - Saturation cut-offs, as the Kubernetes inference extension's filters: a target with more than
 *   SATURATION_QUEUE requests waiting per unit of weight, a cache above SATURATION_KV, or no room for this request's
 *   blocks is picked only when every target is so (then by score).
 * - Ties (an idle fleet) are broken by a random starting point, so idle targets share the load.
 *
 * When any eligible candidate has no sample fresher than staleMs (metrics off, poll failing, a
 * target just added), scores would compare a measured queue with a guess, so that pick falls back
 * to least-request (power of two choices on inflight / weight). Trade-off: vs. least-request it
 * sees load from other gateways and clients, and request sizes, at the cost of polling and
 * trusting a view up to one poll old.
 *
 * A pick is two passes over the candidates (new samples and staleness, then scores), a few float
 * reads each, no allocation; the learning (kvUnit, slowness: one more pass each) happens only when
 * a candidate's sample changed, once per poll.
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
/** SATURATION_QUEUE and SATURATION_KV are the Kubernetes inference extension's default saturation thresholds. */
const SATURATION_QUEUE = 5;
const SATURATION_KV = 0.8;
/** SATURATED is added to the score of a saturated target: larger than any unsaturated score can be. */
const SATURATED = 1e6;
/** SIZE_ALPHA is the weight of one request in the running mean of request sizes (about the last 100 requests). */
const SIZE_ALPHA = 0.01;
/** LEARN_ALPHA is the weight of one sample in a target's time per request (about the last 20 polls). */
const LEARN_ALPHA = 0.05;

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
  /** sentSince[i] / unitsSince[i] count the requests this balancer sent to candidate i since its sample, and their sizes in mean-request units. */
  readonly #sentSince: Float64Array;
  readonly #unitsSince: Float64Array;
  /** kvAt[i] / runningAt[i] are candidate i's KV-cache usage and running requests in its latest sample (0: none). */
  readonly #kvAt: Float64Array;
  readonly #runningAt: Float64Array;
  /** doneAt[i] / doneAtMs[i] / runningDone[i] are the completion counter, time and running count of candidate i's previous counted sample (doneAt -1: none). */
  readonly #doneAt: Float64Array;
  readonly #doneAtMs: Float64Array;
  readonly #runningDone: Float64Array;
  /** msPerRequest[i] is candidate i's measured time per request (0: not measured yet); slowness[i] is it over the mean (1 until all are measured). */
  readonly #msPerRequest: Float64Array;
  readonly #slowness: Float64Array;
  /** meanSize is the running mean of request sizes in bytes (0: none seen). */
  #meanSize = 0;
  /** kvUnit is the KV-cache share of one mean request: all candidates' usage over their running requests, latest samples (0: not learned yet). */
  #kvUnit = 0;

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
    const n = candidates.length;
    this.#sampleAtMs = new Float64Array(n).fill(Number.NaN);
    this.#inflightAtSample = new Float64Array(n);
    this.#sentSince = new Float64Array(n);
    this.#unitsSince = new Float64Array(n);
    this.#doneAt = new Float64Array(n).fill(-1);
    this.#doneAtMs = new Float64Array(n);
    this.#kvAt = new Float64Array(n);
    this.#runningAt = new Float64Array(n);
    this.#runningDone = new Float64Array(n);
    this.#msPerRequest = new Float64Array(n);
    this.#slowness = new Float64Array(n).fill(1);
  }

  /** pick returns the eligible candidate with the lowest load score, or undefined when none is eligible. */
  pick(input: PickInput): Target | undefined {
    const candidates = this.#candidates;
    const n = candidates.length;
    // This request's size in mean-request units (1 when the size is unknown).
    let units = 1;
    const size = input.size;
    if (size !== undefined && size > 0) {
      const mean = this.#meanSize === 0 ? size : this.#meanSize + (size - this.#meanSize) * SIZE_ALPHA;
      this.#meanSize = mean;
      units = size / mean;
    }
    // First every new sample is taken in (the fleet-wide figures must be whole before any score),
    // and a missing or stale one sends this pick to least-request.
    for (let i = 0; i < n; i++) {
      const c = candidates[i]!;
      if (!isEligible(c, input.excluded)) continue;
      const load = c.state.load;
      if (load === null || !(input.nowMs - load.atMs <= this.#staleMs)) return this.#fallback.pick(input);
      if (this.#sampleAtMs[i] !== load.atMs) this.#learn(i, c);
    }
    // A random start makes ties (an idle fleet) go to a random target instead of always the first.
    const r = Math.floor(this.#random() * n);
    const start = r > 0 ? (r < n ? r : n - 1) : 0;
    let best = -1;
    let bestScore = Infinity;
    for (let k = 0; k < n; k++) {
      const i = start + k < n ? start + k : start + k - n;
      const c = candidates[i]!;
      if (!isEligible(c, input.excluded)) continue;
      const load = c.state.load!;
      const delta = c.state.inflight - this.#inflightAtSample[i]!;
      const queue = load.waiting + this.#runningWeight * load.running + delta;
      let kv = load.kvCacheUsage;
      const kvUnit = this.#kvUnit;
      if (kvUnit > 0) {
        // Requests sent since the sample add their share; those that finished since (sent - delta) give back a mean one's.
        const finished = this.#sentSince[i]! - delta;
        kv += (this.#unitsSince[i]! - (finished > 0 ? finished : 0)) * kvUnit;
        kv = kv > 0 ? (kv < 1 ? kv : 1) : 0;
      }
      let score = ((queue < 0 ? 0 : queue) * this.#slowness[i]!) / c.weight + kvPenalty(kv) * units;
      const waiting = load.waiting + (delta > 0 ? delta : 0);
      if (waiting > SATURATION_QUEUE * c.weight || kv > SATURATION_KV || kv + units * kvUnit > 1) score += SATURATED;
      // A NaN score (garbage in a sample) must lose to any real one without leaving the pick empty.
      if (score !== score) score = Infinity;
      if (best < 0 || score < bestScore) {
        bestScore = score;
        best = i;
      }
    }
    if (best < 0) return undefined;
    this.#sentSince[best]!++;
    this.#unitsSince[best] = this.#unitsSince[best]! + units;
    return candidates[best];
  }

  /** learn takes candidate i's new sample: resets what was sent since, and updates kvUnit and the candidate's time per request. */
  #learn(i: number, c: Target): void {
    const load = c.state.load!;
    this.#sampleAtMs[i] = load.atMs;
    this.#inflightAtSample[i] = c.state.inflight;
    this.#sentSince[i] = 0;
    this.#unitsSince[i] = 0;
    const running = load.running;
    this.#kvAt[i] = load.kvCacheUsage >= 0 && load.kvCacheUsage <= 1 ? load.kvCacheUsage : 0;
    this.#runningAt[i] = running >= 0 && Number.isFinite(running) ? running : 0;
    // The KV share of a mean request: all cache in use over all running requests, over the latest samples.
    let kv = 0;
    let all = 0;
    for (let j = 0; j < this.#kvAt.length; j++) (kv += this.#kvAt[j]!), (all += this.#runningAt[j]!);
    if (all > 0 && kv > 0) this.#kvUnit = kv / all;
    const done = load.requestsDone ?? -1;
    if (!(done >= 0)) return;
    const before = this.#doneAt[i]!;
    const finished = done - before;
    // Time per request = busy slot-time over completions (Little's law), between two samples with completions.
    if (before >= 0 && finished > 0) {
      const busyMs = ((this.#runningDone[i]! + running) / 2) * (load.atMs - this.#doneAtMs[i]!);
      const ms = busyMs / finished;
      if (ms > 0 && Number.isFinite(ms)) {
        const old = this.#msPerRequest[i]!;
        this.#msPerRequest[i] = old === 0 ? ms : old + (ms - old) * LEARN_ALPHA;
        this.#updateSlowness();
      }
    }
    // A counter that went backwards (the engine restarted) starts over.
    if (finished !== 0 || before < 0) {
      this.#doneAt[i] = done;
      this.#doneAtMs[i] = load.atMs;
      this.#runningDone[i] = running;
    }
  }

  /** updateSlowness sets every candidate's time per request over the mean, once all are measured. */
  #updateSlowness(): void {
    const ms = this.#msPerRequest;
    let sum = 0;
    for (let j = 0; j < ms.length; j++) {
      if (ms[j] === 0) return;
      sum += ms[j]!;
    }
    const mean = sum / ms.length;
    for (let j = 0; j < ms.length; j++) this.#slowness[j] = ms[j]! / mean;
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
