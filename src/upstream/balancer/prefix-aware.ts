/**
 * Prefix-aware balancing: send a request to the replica whose prefix cache most likely holds the
 * longest start of its prompt (the idea of SGLang's cache-aware router and llm-d's prefix scorer).
 *
 * vLLM's automatic prefix caching keeps the KV blocks of recent prompts, each block keyed by a hash
 * of its tokens chained with the hash of the block before, so a block is reused only when the whole
 * prompt up to it is the same. The gateway does not see tokens or the engine's cache, so it keeps an
 * approximation: the prompt text cut into fixed-size character blocks, hashed the same chained way
 * (toPromptBlocks), and per target an LRU set of the block hashes it was sent recently (PrefixIndex,
 * kept on the target's TargetState so it survives reloads), bounded by the configured cache size.
 *
 * A pick counts, for every eligible candidate, how many leading blocks of the prompt its index
 * holds, and takes the longest match among the candidates within the load bound of consistent-hash
 * (inflight + 1 <= ceil(loadFactor * (totalInflight + 1) * weight / totalWeight)); equal matches go
 * to the less loaded. A conversation's home, the candidate whose match is the longest and at least
 * twice any other's (its own history, not just a shared start), may take one request over that
 * bound: moving a conversation costs its whole history once, and one more request on a replica
 * that holds it rarely waits for a slot, whereas a prompt whose start several replicas hold moves
 * at no cost beyond the new part. (In the multi-turn model the slack turns 6 % of the blocks from
 * misses on another replica into hits, at the same p99 and skew.) With no match anywhere (or only on overloaded candidates) it takes the least
 * loaded candidate. The chosen target then records the prompt's blocks: the index learns what it
 * routed. A multi-turn conversation resends its history, so turn n + 1 starts with turn n's blocks
 * and follows it; a shared system prompt matches on every replica that served it, and the rest of
 * the prompt decides (or load does). Requests without a prompt (no blocks) fall back to
 * least-request.
 *
 * Trade-off against consistent-hash: it needs no key that stays fixed over a conversation and it
 * matches whatever prefix was actually sent, at the cost of hashing the whole prompt (once per
 * request, capped at the cache size) and an index per target; it knows only this gateway's traffic.
 */
import { LeastRequestBalancer, isLessLoaded } from './least-request.js';
import { fmix32 } from './hash32.js';
import { isEligible, isOverBound, perWeightBound } from './types.js';
import type { Balancer, PickInput, PromptBlocks, Target } from './types.js';
import type { TargetState } from '../target-state.js';
import { PrefixIndex } from '../prefix-index.js';

/** PrefixAwareOptions tune a PrefixAwareBalancer. */
export interface PrefixAwareOptions {
  /** loadFactor is c in the load bound (>= 1, default 1.25), as in consistent-hash. */
  loadFactor?: number;
  /** cacheBlocks is how many block hashes each target's index keeps (default 16384). */
  cacheBlocks?: number;
  /** random serves picks without blocks (least-request); Math.random by default. */
  random?: () => number;
}

const DEFAULT_CACHE_BLOCKS = 16_384;
/** HOME_SLACK is how many requests over the load bound a conversation's home (see pick) may take before it spills. */
const HOME_SLACK = 1;

/** PrefixAwareBalancer picks the candidate with the longest cached prompt prefix within a load bound. */
export class PrefixAwareBalancer implements Balancer {
  readonly #candidates: readonly Target[];
  readonly #loadFactor: number;
  readonly #indexes: readonly PrefixIndex[];
  readonly #fallback: LeastRequestBalancer;
  /** #start rotates where the scan begins, so ties (an idle fleet) do not all go to the first candidate. */
  #start = 0;
  /** #matches holds each candidate's match during a pick (-1: not eligible), allocated once. */
  readonly #matches: Int32Array;

  constructor(candidates: readonly Target[], opts: PrefixAwareOptions = {}) {
    const loadFactor = opts.loadFactor ?? 1.25;
    if (!(loadFactor >= 1) || !Number.isFinite(loadFactor)) throw new RangeError(`loadFactor must be a finite number >= 1, got ${loadFactor}`);
    const cacheBlocks = opts.cacheBlocks ?? DEFAULT_CACHE_BLOCKS;
    if (!Number.isInteger(cacheBlocks) || cacheBlocks < 1) throw new RangeError(`cacheBlocks must be a positive integer, got ${cacheBlocks}`);
    for (const c of candidates) {
      if (!(c.weight > 0) || !Number.isFinite(c.weight)) throw new RangeError(`weight of ${c.url} must be a positive number, got ${c.weight}`);
    }
    this.#candidates = candidates;
    this.#loadFactor = loadFactor;
    this.#indexes = candidates.map((c) => indexOf(c.state, cacheBlocks));
    this.#matches = new Int32Array(candidates.length);
    this.#fallback = new LeastRequestBalancer(candidates, opts.random === undefined ? {} : { random: opts.random });
  }

  /** pick returns the eligible candidate with the longest cached prefix within its load bound, else the least loaded; undefined when none is eligible. */
  pick(input: PickInput): Target | undefined {
    const blocks = input.blocks ?? null;
    if (blocks === null || blocks.length === 0) return this.#fallback.pick(input);
    const candidates = this.#candidates;
    const n = candidates.length;
    // First pass: the eligible candidates' load, and each one's match with the longest and second-longest of them.
    const matches = this.#matches;
    let totalInflight = 0;
    let totalWeight = 0;
    let top = 0;
    let second = 0;
    for (let i = 0; i < n; i++) {
      const c = candidates[i]!;
      if (!isEligible(c, input.excluded)) {
        matches[i] = -1;
        continue;
      }
      totalInflight += c.state.inflight;
      totalWeight += c.weight;
      const m = this.#indexes[i]!.matched(blocks);
      matches[i] = m;
      if (m > top) {
        second = top;
        top = m;
      } else if (m > second) second = m;
    }
    if (totalWeight === 0) return undefined;
    const perWeight = perWeightBound(this.#loadFactor, totalInflight, totalWeight);

    const start = this.#start;
    this.#start = start + 1 === n ? 0 : start + 1;
    let best = -1;
    let bestMatch = 0;
    let leastLoaded = -1;
    for (let k = 0; k < n; k++) {
      const i = start + k < n ? start + k : start + k - n;
      const m = matches[i]!;
      if (m < 0) continue;
      const c = candidates[i]!;
      if (leastLoaded === -1 || isLessLoaded(c, candidates[leastLoaded]!)) leastLoaded = i;
      const slack = m > 0 && m === top && m >= 2 * second ? HOME_SLACK : 0;
      if (isOverBound(c, perWeight, slack)) continue;
      if (m > bestMatch || (m === bestMatch && m > 0 && isLessLoaded(c, candidates[best]!))) {
        best = i;
        bestMatch = m;
      }
    }
    const chosen = best === -1 ? leastLoaded : best;
    this.#indexes[chosen]!.record(blocks);
    return candidates[chosen];
  }
}

/** indexOf returns the target's prefix index, made on first use and kept on its state (so it outlives balancers and reloads). */
function indexOf(state: TargetState, capacity: number): PrefixIndex {
  const index = state.prefixIndex;
  if (index === null) return (state.prefixIndex = new PrefixIndex(capacity));
  if (index.capacity !== capacity) index.resize(capacity);
  return index;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

// The hasher's state, module-level: toPromptBlocks is synchronous, so one state serves every request
// without an object per request. scratch collects the block hashes before they are copied out.
let scratch = new Uint32Array(1024);
let hash = FNV_OFFSET;
let inBlock = 0;
let count = 0;
let blockSize = 1;
let maxCount = 1;

/**
 * feed runs the text through the chained block hash: one FNV-1a state runs over the whole prompt,
 * and at each block boundary its value (finished with murmur3's fmix32) is the block's hash, so a
 * block's hash depends on every character before it. A last partial block is not hashed (engines
 * cache full blocks only).
 */
function feed(s: string): void {
  let h = hash;
  let n = inBlock;
  for (let i = 0; i < s.length && count < maxCount; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
    if (++n === blockSize) {
      n = 0;
      if (count === scratch.length) {
        const grown = new Uint32Array(scratch.length * 2);
        grown.set(scratch);
        scratch = grown;
      }
      scratch[count++] = fmix32(h);
    }
  }
  hash = h;
  inBlock = n;
}

// Role markers end with a character prompts rarely hold, so "user: x" in a system prompt does not read as a user turn.
const ROLE_END = '\u0001';
const MESSAGE_END = '\u0002';

/**
 * toPromptBlocks computes the chained block hashes of a request body's whole prompt: a chat's
 * messages in order (role, then the text of the content), or a completion's prompt (a string, or
 * the first string of a batch); at most maxBlocks blocks; null when the body has no prompt text or
 * it is shorter than one block.
 */
export function toPromptBlocks(body: unknown, blockChars: number, maxBlocks: number): PromptBlocks | null {
  if (!(blockChars > 0) || !(maxBlocks > 0) || typeof body !== 'object' || body === null) return null;
  const b = body as { messages?: unknown; prompt?: unknown };
  hash = FNV_OFFSET;
  inBlock = 0;
  count = 0;
  blockSize = blockChars;
  maxCount = maxBlocks;
  if (Array.isArray(b.messages)) {
    for (const m of b.messages as unknown[]) {
      if (count >= maxCount) break;
      if (typeof m !== 'object' || m === null) continue;
      const { role, content } = m as { role?: unknown; content?: unknown };
      if (typeof role === 'string') feed(role);
      feed(ROLE_END);
      if (typeof content === 'string') feed(content);
      else if (Array.isArray(content)) {
        for (const part of content as unknown[]) {
          if (typeof part !== 'object' || part === null) continue;
          const { type, text } = part as { type?: unknown; text?: unknown };
          if (type === 'text' && typeof text === 'string') feed(text);
        }
      }
      feed(MESSAGE_END);
    }
  } else if (typeof b.prompt === 'string') {
    feed(b.prompt);
  } else if (Array.isArray(b.prompt) && typeof b.prompt[0] === 'string') {
    feed(b.prompt[0]);
  }
  return count === 0 ? null : scratch.slice(0, count);
}
