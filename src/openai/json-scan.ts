/**
 * json-scan reads a few fields of a JSON request body without parsing it: whether a stream was
 * asked for, its `stream_options`, the completion budget. A prompt can be megabytes; these reads
 * cost native byte searches and, per hit, one bracket count over the shorter side of the body.
 *
 * How a key is found: a native backward search for the key with its quotes. In valid JSON every
 * quote inside a string is escaped, so an unescaped quoted key followed by a colon is a whole
 * member name. Its nesting depth is the count of brackets (strings skipped) between it and the
 * nearer end of the enclosing object: depth 1 is a member of that object itself. The search runs
 * from the end and takes the first member it meets, i.e. the LAST one: JSON.parse (and Python's
 * json) keep the last of duplicate keys, and reading the first would let a client show the
 * gateway one value and the engine another (`{"stream":false,…,"stream":true}`).
 * Malformed JSON never throws: a string that does not end makes a key unfindable, and the engine
 * refuses the body anyway.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const STREAM = Buffer.from('"stream"');
const MAX_COMPLETION_TOKENS = Buffer.from('"max_completion_tokens"');
const MAX_TOKENS = Buffer.from('"max_tokens"');

/** topLevelValueAt is where the value of the top-level `key` (given with its quotes) starts in a JSON object body, or -1; the last one when the key repeats. */
export function topLevelValueAt(body: Buffer, key: Buffer): number {
  return lastMemberAt(body, key, 0, body.length);
}

/** memberValueAt is where the value of `key` starts inside the object whose `{` is at `open`, or -1 (also when no object starts there). */
export function memberValueAt(body: Buffer, open: number, key: Buffer): number {
  if (body[open] !== 0x7b /* { */) return -1;
  const close = closeOf(body, open);
  return close === -1 ? -1 : lastMemberAt(body, key, open, close + 1);
}

/** isTrueAt tells whether the value starting at `at` (from the functions above) is `true`. */
export function isTrueAt(body: Buffer, at: number): boolean {
  return at !== -1 && body[at] === 0x74 /* t */;
}

/** uintAt reads the non-negative integer starting at `at` (at most 9 digits), or undefined. */
export function uintAt(body: Buffer, at: number): number | undefined {
  if (at === -1) return undefined;
  let i = at;
  let n = 0;
  for (let c = body[i]; c !== undefined && c >= 0x30 && c <= 0x39 && i - at < 9; c = body[++i]) n = n * 10 + c - 0x30;
  return i > at ? n : undefined;
}

/** isTopLevelStreamTrue tells whether a request body asks for a stream (`"stream": true` in its top-level object). */
export function isTopLevelStreamTrue(body: Buffer): boolean {
  return isTrueAt(body, topLevelValueAt(body, STREAM));
}

/**
 * maxTokensIn is a request's completion budget as a parsed body gives it
 * (`max_completion_tokens ?? max_tokens`), when it is a non-negative integer; else undefined.
 */
export function maxTokensIn(body: Buffer): number | undefined {
  const completion = topLevelValueAt(body, MAX_COMPLETION_TOKENS);
  if (completion !== -1 && body[completion] !== 0x6e /* n(ull) */) return uintAt(body, completion);
  return uintAt(body, topLevelValueAt(body, MAX_TOKENS));
}

/**
 * lastMemberAt is where the value of the last `key` that is a direct member of the object
 * spanning `[start, end)` starts (`start` at or before its `{`, `end` just after its `}`), or -1.
 */
function lastMemberAt(b: Buffer, key: Buffer, start: number, end: number): number {
  // Buffer#lastIndexOf reads a negative offset from the end: never pass one.
  if (end - key.length < start) return -1;
  for (let at = b.lastIndexOf(key, end - key.length); at >= start; at = at === 0 ? -1 : b.lastIndexOf(key, at - 1)) {
    if (isEscaped(b, at)) continue;
    const keyEnd = at + key.length;
    const value = afterColon(b, keyEnd);
    if (value === -1) continue;
    // Depth 1 at the key: one bracket open before it, or one left to close after it.
    const depth = at - start <= end - keyEnd ? netDepth(b, start, at) : -netDepth(b, keyEnd, end);
    if (depth === 1) return value;
  }
  return -1;
}

/**
 * netDepth is how many brackets `[from, to)` opens minus how many it closes, strings skipped;
 * `from` must be outside a string. NaN when a string does not end.
 */
function netDepth(b: Buffer, from: number, to: number): number {
  let depth = 0;
  for (let i = from; i < to; i++) {
    const c = b[i]!;
    if (c === QUOTE) {
      i = stringEnd(b, i);
      if (i === -1) return Number.NaN;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return depth;
}

/** closeOf is the index of the bracket that closes the one at `open` (strings skipped), or -1. */
function closeOf(b: Buffer, open: number): number {
  let depth = 0;
  for (let i = open; i < b.length; i++) {
    const c = b[i]!;
    if (c === QUOTE) {
      i = stringEnd(b, i);
      if (i === -1) return -1;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if ((c === 0x7d || c === 0x5d) && --depth === 0) return i;
  }
  return -1;
}

/** stringEnd is the index of the quote that ends the string opened at `open`, or -1. */
function stringEnd(b: Buffer, open: number): number {
  let q = b.indexOf(QUOTE, open + 1);
  while (q !== -1 && isEscaped(b, q)) q = b.indexOf(QUOTE, q + 1);
  return q;
}

/** isEscaped tells whether the byte at `at` follows an odd number of backslashes. */
function isEscaped(b: Buffer, at: number): boolean {
  let k = at - 1;
  while (k >= 0 && b[k] === BACKSLASH) k--;
  return (at - 1 - k) % 2 === 1;
}

/** isJsonSpace tells whether a byte is JSON whitespace. */
export function isJsonSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/** afterColon skips whitespace, a colon and whitespace from `from`: the first value byte, or -1. */
function afterColon(b: Buffer, from: number): number {
  let i = from;
  while (isJsonSpace(b[i])) i++;
  if (b[i] !== COLON) return -1;
  i++;
  while (isJsonSpace(b[i])) i++;
  return i;
}
