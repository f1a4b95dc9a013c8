/**
 * SplitChoice picks one entry of a weighted split from a number u in [0, 1): the weights are
 * turned into cumulative bounds once, at compile, so a pick is a scan over a few numbers (splits
 * have a handful of entries; a binary search would cost more than it saves).
 *
 * u comes from Math.random() for an unsticky request, or from a stable 32-bit hash of the sticky
 * value (the API key's hash, or a header's value) scaled to [0, 1). Because the bounds are
 * cumulative, changing the weights moves only the values between the old and the new bound: a
 * 90/10 split turned 80/20 sends the keys in [0.8, 0.9) from the first entry to the second and
 * leaves every other key where it was.
 */
import { hash32 } from '../upstream/index.js';

/** Sticky is what keeps a split's choice stable: nothing, the API key, or a request header (lower-cased name). */
export type Sticky = { readonly kind: 'none' } | { readonly kind: 'api_key' } | { readonly kind: 'header'; readonly header: string };

const TWO_32 = 4294967296;

/** SplitChoice is a compiled weighted split over entries of type T. */
export class SplitChoice<T> {
  readonly entries: readonly T[];
  readonly weights: readonly number[];
  readonly sticky: Sticky;
  /** #bounds[i] is the (normalized) sum of the weights of entries 0..i; the last is exactly 1. */
  readonly #bounds: Float64Array;

  constructor(entries: readonly T[], weights: readonly number[], sticky: Sticky) {
    if (entries.length === 0 || entries.length !== weights.length) throw new RangeError('a split needs one weight per entry, and at least one entry');
    let total = 0;
    for (const w of weights) {
      if (!(w > 0) || !Number.isFinite(w)) throw new RangeError('split weights must be positive');
      total += w;
    }
    this.entries = Object.freeze([...entries]);
    this.weights = Object.freeze([...weights]);
    this.sticky = sticky;
    this.#bounds = new Float64Array(weights.length);
    let sum = 0;
    for (let i = 0; i < weights.length; i++) this.#bounds[i] = (sum += weights[i]!) / total;
    this.#bounds[weights.length - 1] = 1;
  }

  /** pick returns the entry that u (in [0, 1)) falls on. */
  pick(u: number): T {
    const bounds = this.#bounds;
    const last = bounds.length - 1;
    let i = 0;
    while (i < last && u >= bounds[i]!) i++;
    return this.entries[i]!;
  }
}

/**
 * hexToUnit reads the first 8 hex digits of a hash (an API key's SHA-256 hex) as a number in
 * [0, 1): the hash is already uniform, so no further mixing is needed, and no string is cut.
 */
export function hexToUnit(hex: string): number {
  let h = 0;
  const n = Math.min(8, hex.length);
  for (let i = 0; i < n; i++) {
    const c = hex.charCodeAt(i);
    h = h * 16 + (c <= 57 ? c - 48 : (c | 0x20) - 87);
  }
  return h / TWO_32;
}

/** stringToUnit hashes a string (a header value) to a number in [0, 1) with hash32 (the high bits decide the entry). */
export function stringToUnit(s: string): number {
  return hash32(s) / TWO_32;
}
