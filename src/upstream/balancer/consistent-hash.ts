/**
 * Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam 2016,
 * https://arxiv.org/abs/1608.01350; as deployed at Vimeo and in HAProxy's hash-balance-factor).
 * Every candidate owns points on a 32-bit hash ring, in proportion to its weight; a key goes to
 * the owner of the first point clockwise from the key's hash. Making one target ineligible moves
 * only that target's keys (to the next owner along the ring), which is what keeps vLLM's prefix
 * cache warm: requests sharing a prompt prefix keep landing on the replica that already holds its
 * KV blocks. The bound stops one hot key from melting a replica: a candidate takes the request
 * only while inflight + 1 <= ceil(loadFactor * (totalInflight + 1) * weight / totalWeight), over
 * the eligible candidates; otherwise the walk goes on clockwise, so a hot key spills over to the
 * same neighbour each time rather than everywhere. Trade-off: a higher loadFactor keeps more keys
 * home (better cache hits) at the price of more imbalance; the default 1.25 lets a target run 25%
 * above its fair share.
 *
 * Ring size: instead of a fixed count per unit of weight (weights go up to 1000, which would make
 * rings of millions of points), the ring holds about max(4096, 160 per target) points shared out
 * by weight (Envoy's ring_hash also sizes its ring apart from raw weights). A target with k points
 * gets its weight share with a relative standard deviation of about 1/sqrt(k): ~4% for the
 * lightest of weights 1/2/3 on 4096 points. Points are named url#0..url#k-1, so a change that
 * moves k only adds or drops a target's tail points, and the candidates' order does not matter.
 * Points are hashed with FNV-1a plus murmur3's finalizer: fast, and well spread for such names.
 */
import { LeastRequestBalancer, isLessLoaded } from './least-request.js';
import { hash32 } from './hash32.js';
import { isEligible, isOverBound, perWeightBound } from './types.js';
import type { Balancer, Target, PickInput } from './types.js';

/** ConsistentHashOptions tune a ConsistentHashBalancer. */
export interface ConsistentHashOptions {
  /** loadFactor is c in the load bound (>= 1, default 1.25): how far above its fair share a target may go before keys spill over. */
  loadFactor?: number;
  /** random serves picks without a hash key (least-request); Math.random by default. */
  random?: () => number;
}

const MIN_RING_POINTS = 4096;
const POINTS_PER_TARGET = 160;
const MAX_RING_POINTS = 1 << 20;

/** ConsistentHashBalancer maps a request's hash key to a target on a weighted hash ring, with bounded loads. */
export class ConsistentHashBalancer implements Balancer {
  readonly #candidates: readonly Target[];
  readonly #loadFactor: number;
  /** ring holds the point hashes in ascending order; owners[i] is the candidate index of ring[i]. */
  readonly #ring: Uint32Array;
  readonly #owners: Int32Array;
  /** nextOther[i] is the next ring index clockwise whose owner differs from owners[i]: a walk skips a target's runs. */
  readonly #nextOther: Int32Array;
  /** seenAt[c] is the pick number that last visited candidate c; a counter instead of a Set per pick. */
  readonly #seenAt: Float64Array;
  #pickNo = 0;
  readonly #fallback: LeastRequestBalancer;

  constructor(candidates: readonly Target[], opts: ConsistentHashOptions = {}) {
    const loadFactor = opts.loadFactor ?? 1.25;
    if (!(loadFactor >= 1) || !Number.isFinite(loadFactor)) throw new RangeError(`loadFactor must be a finite number >= 1, got ${loadFactor}`);
    for (const c of candidates) {
      if (!(c.weight > 0) || !Number.isFinite(c.weight)) throw new RangeError(`weight of ${c.url} must be a positive number, got ${c.weight}`);
    }
    this.#candidates = candidates;
    this.#loadFactor = loadFactor;
    this.#seenAt = new Float64Array(candidates.length);
    this.#fallback = new LeastRequestBalancer(candidates, opts.random === undefined ? {} : { random: opts.random });

    const n = candidates.length;
    const totalWeight = candidates.reduce((s, c) => s + c.weight, 0);
    const size = Math.min(MAX_RING_POINTS, Math.max(MIN_RING_POINTS, POINTS_PER_TARGET * n));
    const points: { hash: number; owner: number }[] = [];
    for (let owner = 0; owner < n; owner++) {
      const c = candidates[owner]!;
      const k = Math.max(1, Math.round((size * c.weight) / totalWeight));
      for (let j = 0; j < k; j++) points.push({ hash: hash32(`${c.url}#${j}`), owner });
    }
    // Ties (two points with one hash) are ordered by owner so the ring does not depend on sort stability.
    points.sort((a, b) => a.hash - b.hash || a.owner - b.owner);
    const len = points.length;
    this.#ring = new Uint32Array(len);
    this.#owners = new Int32Array(len);
    for (let i = 0; i < len; i++) {
      this.#ring[i] = points[i]!.hash;
      this.#owners[i] = points[i]!.owner;
    }
    this.#nextOther = new Int32Array(len);
    if (n > 1) {
      // Two backward passes settle the wrap-around: the second sees the first's answers past the end.
      const owners = this.#owners;
      const next = this.#nextOther;
      for (let step = 2 * len - 1; step >= 0; step--) {
        const i = step % len;
        const j = (i + 1) % len;
        next[i] = owners[j] !== owners[i] ? j : next[j]!;
      }
    }
  }

  /** pick returns the first eligible candidate clockwise from the key's hash that is within its load bound, or undefined when none is eligible. */
  pick(input: PickInput): Target | undefined {
    const key = input.hashKey;
    // Without a key there is nothing to be consistent about: spread by load instead.
    if (key === null) return this.#fallback.pick(input);
    const candidates = this.#candidates;
    const n = candidates.length;

    let totalInflight = 0;
    let totalWeight = 0;
    let eligibleCount = 0;
    for (let i = 0; i < n; i++) {
      const c = candidates[i]!;
      if (!isEligible(c, input.excluded)) continue;
      eligibleCount++;
      totalInflight += c.state.inflight;
      totalWeight += c.weight;
    }
    if (eligibleCount === 0) return undefined;
    const perWeight = perWeightBound(this.#loadFactor, totalInflight, totalWeight);

    const ring = this.#ring;
    const owners = this.#owners;
    const nextOther = this.#nextOther;
    const seenAt = this.#seenAt;
    const pickNo = ++this.#pickNo;
    let pos = lowerBound(ring, hash32(key));
    if (pos === ring.length) pos = 0;
    let seen = 0;
    let fallback: Target | undefined;
    // Each step moves to a different owner; every owner is met within one turn, so this ends.
    for (let steps = 0; steps < ring.length && seen < n; steps++) {
      const owner = owners[pos]!;
      if (seenAt[owner] !== pickNo) {
        seenAt[owner] = pickNo;
        seen++;
        const c = candidates[owner]!;
        if (isEligible(c, input.excluded)) {
          if (!isOverBound(c, perWeight)) return c;
          if (fallback === undefined || isLessLoaded(c, fallback)) fallback = c;
        }
      }
      pos = nextOther[pos]!;
    }
    // The bounds add up to more than the total load, so some candidate fits; this is for float edge cases.
    return fallback;
  }
}

/** toPromptPrefixKey builds a consistent-hash key from an OpenAI request body: the system message(s) and the first user message of a chat, or a completion's prompt, cut to chars characters; null when the body has none. */
export function toPromptPrefixKey(body: unknown, chars: number): string | null {
  if (!(chars > 0) || typeof body !== 'object' || body === null) return null;
  const b = body as { messages?: unknown; prompt?: unknown };
  let key = '';
  if (Array.isArray(b.messages)) {
    // The first user turn and what precedes it stay fixed as a conversation grows, so every turn
    // of one conversation (and every request sharing a system prompt) hashes alike.
    for (const m of b.messages as unknown[]) {
      if (typeof m !== 'object' || m === null) continue;
      const { role, content } = m as { role?: unknown; content?: unknown };
      // "developer" is the newer OpenAI name of the system role.
      const isSystem = role === 'system' || role === 'developer';
      if (!isSystem && role !== 'user') continue;
      key = appendContent(key, content, chars);
      if (role === 'user' || key.length >= chars) break;
    }
  } else if (typeof b.prompt === 'string') {
    key = b.prompt;
  } else if (Array.isArray(b.prompt) && typeof b.prompt[0] === 'string') {
    key = b.prompt[0];
  }
  if (key.length > chars) key = key.slice(0, chars);
  return key === '' ? null : key;
}

/** appendContent adds a message content (a string, or the text parts of an array) to key, stopping once key has chars characters. */
function appendContent(key: string, content: unknown, chars: number): string {
  if (typeof content === 'string') return join(key, content);
  if (!Array.isArray(content)) return key;
  for (const part of content as unknown[]) {
    if (key.length >= chars) break;
    if (typeof part !== 'object' || part === null) continue;
    const { type, text } = part as { type?: unknown; text?: unknown };
    if (type === 'text' && typeof text === 'string') key = join(key, text);
  }
  return key;
}

function join(key: string, text: string): string {
  if (text === '') return key;
  return key === '' ? text : `${key}\n${text}`;
}

/** lowerBound returns the first index whose value is >= x (ring.length when none is). */
function lowerBound(ring: Uint32Array, x: number): number {
  let lo = 0;
  let hi = ring.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ring[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
