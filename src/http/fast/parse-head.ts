/**
 * A strict parser for the request heads the fast HTTP/1.1 listener serves itself: the common
 * shape of an API call (HTTP/1.1, a known method, an origin-form target, one Host, at most one
 * Content-Length, no Transfer-Encoding/Upgrade/Expect, each header once). Anything else is not
 * an error here but a hand-over: node:http then parses the same bytes and answers as it always
 * did (400, 431, chunked bodies, upgrades, HEAD, HTTP/1.0). So this parser only has to be right
 * about what it accepts; it never has to be complete. One refusal is its own: more header fields
 * than MAX_HEADER_FIELDS (node:http would pass such a request on with fields dropped).
 */

/** Head is one accepted request head. */
export interface Head {
  readonly method: string;
  readonly url: string;
  /** headers has lower-case names (null prototype: a header named `__proto__` is just a header). */
  readonly headers: Record<string, string>;
  readonly contentLength: number;
  /** isClose is set by `Connection: close`. */
  readonly isClose: boolean;
  /** end is the offset just past the blank line that ends the head. */
  readonly end: number;
}

/**
 * INCOMPLETE: the head has not fully arrived. HAND_OVER: node:http must handle this connection.
 * TOO_MANY_FIELDS: the head has more than MAX_HEADER_FIELDS header fields (the answer is 431).
 */
export const INCOMPLETE = 0;
export const HAND_OVER = 1;
export const TOO_MANY_FIELDS = 2;

/**
 * MAX_HEADER_FIELDS bounds the header fields of one request, whatever max_header_size allows.
 * node:http keeps this many and silently drops the rest; this listener refuses more (431)
 * rather than pass on a request with fields missing.
 */
export const MAX_HEADER_FIELDS = 2000;

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;
const HEAD_END = Buffer.from('\r\n\r\n');
const HTTP11_TEXT = ' HTTP/1.1\r\n';

// RFC 9110 tchar: the bytes a header name (and a method) may have.
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

// Field value bytes: HTAB, visible ASCII, SP, obs-text (as node:http). No CR, LF, NUL or other controls.
const VCHAR = new Uint8Array(256);
VCHAR[HTAB] = 1;
for (let c = 0x20; c <= 0x7e; c++) VCHAR[c] = 1;
for (let c = 0x80; c <= 0xff; c++) VCHAR[c] = 1;

// Request-target bytes of an origin-form path and query: visible ASCII only.
const TARGET = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) TARGET[c] = 1;
TARGET[0x23 /* # */] = 0;

const METHODS = new Map<string, string>(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'].map((m) => [m, m]));

// Header names whose presence means node:http semantics this listener does not implement.
// (`__proto__`: node:http drops it; handing it over keeps the two listeners' answers the same.)
const HAND_OVER_NAMES = new Set(['transfer-encoding', 'upgrade', 'expect', 'http2-settings', 'te', 'trailer', '__proto__']);

// Common names in their usual spelling map to themselves: no toLowerCase() for those.
const KNOWN_NAMES = new Map<string, string>();
for (const n of ['host', 'content-type', 'content-length', 'accept', 'user-agent', 'connection', 'authorization', 'apikey', 'x-model', 'x-request-id', 'traceparent', 'tracestate', 'accept-encoding', 'x-api-key', 'anthropic-version', 'openai-organization', 'openai-project']) {
  KNOWN_NAMES.set(n, n);
}

/**
 * parseHead reads the head that starts at `start`. Returns the Head, INCOMPLETE (wait for more
 * bytes) or HAND_OVER. `maxHeadBytes` bounds request line and headers together, as node:http's
 * maxHeaderSize does: a larger head is handed over, and node:http answers 431.
 */
export function parseHead(buf: Buffer, start: number, maxHeadBytes: number): Head | typeof INCOMPLETE | typeof HAND_OVER | typeof TOO_MANY_FIELDS {
  const blank = buf.indexOf(HEAD_END, start);
  if (blank === -1) return buf.length - start > maxHeadBytes || hasBareLf(buf, start, -1) ? HAND_OVER : INCOMPLETE;
  if (blank + 4 - start > maxHeadBytes) return HAND_OVER;
  // One decode of the whole head (latin1: one char per byte), then slices of it: a Buffer
  // toString per name and value costs a native call each, ~20 of them per request.
  const s = buf.toString('latin1', start, blank + 2);
  const end = s.length; // the CRLF of the last header line
  const at = (k: number): number => s.charCodeAt(k);

  // Request line: METHOD SP origin-form SP HTTP/1.1 CRLF.
  let i = 0;
  while (i < end && TCHAR[at(i)] === 1) i++;
  if (at(i) !== SP) return HAND_OVER;
  const method = METHODS.get(s.slice(0, i));
  if (method === undefined) return HAND_OVER;
  const targetStart = ++i;
  if (at(i) !== 0x2f /* / */) return HAND_OVER;
  while (i < end && TARGET[at(i)] === 1) i++;
  const targetEnd = i;
  if (!s.startsWith(HTTP11_TEXT, i)) return HAND_OVER;
  const url = s.slice(targetStart, targetEnd);
  i += HTTP11_TEXT.length;

  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  let contentLength = 0;
  let isClose = false;
  let hasHost = false;
  let fields = 0;
  while (i < end) {
    if (++fields > MAX_HEADER_FIELDS) return TOO_MANY_FIELDS;
    // name ":" OWS value OWS CRLF
    const nameStart = i;
    while (i < end && TCHAR[at(i)] === 1) i++;
    if (i === nameStart || at(i) !== COLON) return HAND_OVER;
    const raw = s.slice(nameStart, i);
    const name = KNOWN_NAMES.get(raw) ?? raw.toLowerCase();
    i++;
    while (at(i) === SP || at(i) === HTAB) i++;
    const valueStart = i;
    while (i < end && VCHAR[at(i)] === 1) i++;
    if (at(i) !== CR || at(i + 1) !== LF) return HAND_OVER;
    const lineEnd = i;
    let valueEnd = i;
    while (valueEnd > valueStart && (at(valueEnd - 1) === SP || at(valueEnd - 1) === HTAB)) valueEnd--;
    i += 2;
    if (name in headers || HAND_OVER_NAMES.has(name)) return HAND_OVER;
    const value = s.slice(valueStart, valueEnd);
    headers[name] = value;
    if (name === 'content-length') {
      // Digits right up to the line end: llhttp refuses trailing whitespace here, so must we.
      if (value.length === 0 || value.length > 15 || valueEnd !== lineEnd) return HAND_OVER;
      for (let k = 0; k < value.length; k++) {
        const c = value.charCodeAt(k);
        if (c < 0x30 || c > 0x39) return HAND_OVER;
      }
      contentLength = Number(value);
    } else if (name === 'connection') {
      const v = value.toLowerCase();
      if (v === 'close') isClose = true;
      else if (v !== 'keep-alive') return HAND_OVER;
    } else if (name === 'host') hasHost = true;
  }
  if (!hasHost) return HAND_OVER;
  return { method, url, headers, contentLength, isClose, end: blank + 4 };
}

/**
 * hasBareLf tells whether `buf` from `from` on holds an LF not preceded by CR (`prev` is the byte
 * before `from`, or -1). Such a head is never one this parser accepts, and node:http refuses it
 * at once (400): handing it over then beats waiting for a blank line that may never come.
 */
export function hasBareLf(buf: Buffer, from: number, prev: number): boolean {
  for (let at = buf.indexOf(LF, from); at !== -1; at = buf.indexOf(LF, at + 1)) {
    if ((at === from ? prev : buf[at - 1]) !== CR) return true;
  }
  return false;
}
