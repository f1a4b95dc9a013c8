/**
 * 32-bit string hashing for spreading requests (not a secret, so no cryptographic hash): FNV-1a
 * over UTF-16 code units, finished with murmur3's fmix32, because FNV alone leaves the high bits
 * of short, similar strings (url#1, url#2, user-1, user-2) poorly mixed.
 */

/** fmix32 is murmur3's 32-bit finalizer: every input bit moves every output bit. */
export function fmix32(x: number): number {
  let h = x;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** hash32 is FNV-1a over a string's UTF-16 code units, finished with fmix32 (unsigned). */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}
