/**
 * findUsageKey: where `"usage":` first occurs in a byte range, searched 16 bytes at a time.
 *
 * The usage tap searches every streamed byte for this key, so the search is the largest piece of
 * per-event work in a relayed stream. A JavaScript Horspool loop and Buffer.indexOf both cost
 * about half a nanosecond per byte here. This one is a WebAssembly SIMD loop (a few dozen bytes of
 * code, built below, compiled once at load): per 16 bytes it compares three columns at once (the
 * key's `"`, its `u` and its `:` seven bytes on) and only looks closer where all three line up,
 * which JSON rarely does outside the key itself. The bytes are first copied into the module's
 * memory, a window at a time: 512 bytes, then twice as many each time up to 16 KiB, so that a
 * search that stops early (a stream whose every event has `"usage":null`, searched again from
 * each match) copies about what it looks at, not the rest of the range each time. Ranges of up to
 * JS_SEARCH_BYTES are searched by a Boyer-Moore-Horspool loop in JS instead: for a few dozen
 * bytes the call and the copy cost more than they save.
 */

/** FIRST_WINDOW is how much of a range the first copy takes; each next window is twice the last, up to SEARCH_WINDOW. Windows overlap by the key's length less one. */
export const FIRST_WINDOW = 512;
export const SEARCH_WINDOW = 16 * 1024;
/** USAGE_KEY is the key searched for. */
export const USAGE_KEY = Buffer.from('"usage":');
const KEY = USAGE_KEY;
const KEY_LAST = KEY.length - 1;
/** Ranges up to this size are searched in JS; longer ones by the SIMD loop. */
const JS_SEARCH_BYTES = 64;
/** SHIFT[b] is how far the JS search may move when the byte under the key's last position is b (Horspool). */
const SHIFT = new Uint8Array(256).fill(KEY.length);
for (let i = 0; i < KEY_LAST; i++) SHIFT[KEY[i]!] = KEY_LAST - i;

/** uleb encodes an unsigned LEB128 number. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** section frames a module section: id, byte length, contents. */
function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/** splat16 pushes a v128 constant of sixteen copies of one byte. */
function splat16(byte: number): number[] {
  return [0xfd, 0x0c, ...new Array<number>(16).fill(byte)];
}

/**
 * The module: memory 0 (exported as `m`, one 64 KiB page: a window plus room for the loads that
 * reach past its end) and `find(p, end) -> i32`, the first i in [p, end) where m[i] = `"`, m[i+1] = `u` and
 * m[i+7] = `:` (a candidate the caller checks in full), or -1.
 */
function moduleBytes(): Uint8Array {
  const load = (offset: number): number[] => [0x20, 0x00, 0xfd, 0x00, 0x00, ...uleb(offset)]; // local.get p; v128.load offset
  const eq = [0xfd, 0x23]; // i8x16.eq
  const and = [0xfd, 0x4e]; // v128.and
  const body = [
    0x01, 0x01, 0x7f, // one local: i32 mask
    0x02, 0x40, // block
    0x03, 0x40, //   loop
    0x20, 0x00, 0x20, 0x01, 0x4f, 0x0d, 0x01, // if p >= end: leave the block
    ...load(0), ...splat16(0x22), ...eq,
    ...load(1), ...splat16(0x75), ...eq, ...and,
    ...load(KEY_LAST), ...splat16(0x3a), ...eq, ...and,
    0xfd, 0x64, // i8x16.bitmask
    0x22, 0x02, // local.tee mask
    0x04, 0x40, // if mask: return p + ctz(mask)
    0x20, 0x00, 0x20, 0x02, 0x68, 0x6a, 0x0f,
    0x0b,
    0x20, 0x00, 0x41, 0x10, 0x6a, 0x21, 0x00, // p += 16
    0x0c, 0x00, // continue the loop
    0x0b, //   end loop
    0x0b, // end block
    0x41, 0x7f, // -1
    0x0b,
  ];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f]), // type: (i32, i32) -> i32
    ...section(3, [0x01, 0x00]), // one function of that type
    ...section(5, [0x01, 0x00, 0x01]), // memory: 1 page
    ...section(7, [0x02, 0x01, 0x6d, 0x02, 0x00, 0x04, 0x66, 0x69, 0x6e, 0x64, 0x00, 0x00]), // exports m, find
    ...section(10, [0x01, ...uleb(body.length), ...body]),
  ]);
}

/** The part of the WebAssembly API used here (the project's TypeScript libs leave it out). */
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
};

interface Search {
  find(p: number, end: number): number;
  mem: Buffer;
}

/** search is the compiled module, or null where WebAssembly SIMD is not available (Buffer.indexOf then). */
const search: Search | null = (() => {
  try {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(moduleBytes()));
    const memory = instance.exports.m as { buffer: ArrayBuffer };
    return { find: instance.exports.find as (p: number, end: number) => number, mem: Buffer.from(memory.buffer) };
  } catch {
    return null;
  }
})();

/** isSimdSearch tells whether findUsageKey runs the SIMD loop on long ranges (false: Buffer.indexOf). */
export const isSimdSearch = search !== null;

/** findUsageKey is where `"usage":` starts in buf[from, to), or -1. */
export function findUsageKey(buf: Buffer, from: number, to: number): number {
  if (to - from <= JS_SEARCH_BYTES) return findInJs(buf, from, to);
  if (search === null) {
    const at = buf.indexOf(KEY, from);
    return at !== -1 && at + KEY.length <= to ? at : -1;
  }
  const { find, mem } = search;
  let window = FIRST_WINDOW;
  while (to - from >= KEY.length) {
    const n = Math.min(to - from, window);
    if (window < SEARCH_WINDOW) window *= 2;
    buf.copy(mem, 0, from, from + n);
    const last = n - KEY.length;
    for (let c = find(0, last + 1); c !== -1 && c <= last; c = find(c + 1, last + 1)) {
      let j = 2;
      while (j < KEY_LAST && mem[c + j] === KEY[j]) j++;
      if (j === KEY_LAST) return from + c;
    }
    if (from + n >= to) break;
    from += n - KEY_LAST;
  }
  return -1;
}

/** findInJs is findUsageKey's Horspool loop for short ranges. */
function findInJs(buf: Buffer, from: number, to: number): number {
  for (let i = from + KEY_LAST; i < to; ) {
    const c = buf[i]!;
    // The key's last byte is `:`; compare backwards from there.
    if (c === 0x3a) {
      let j = KEY_LAST - 1;
      let k = i - 1;
      while (j >= 0 && buf[k] === KEY[j]) {
        j--;
        k--;
      }
      if (j < 0) return k + 1;
    }
    i += SHIFT[c]!;
  }
  return -1;
}
