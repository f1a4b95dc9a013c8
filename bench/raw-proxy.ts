/**
 * The "below the floor" prototype of `npm run bench:compare`: what a Node proxy
 * costs per request when it skips `node:http` entirely. Raw `node:net` sockets, a hand-written
 * strict HTTP/1.1 request parser, constant bytes built once at start, request and response bytes
 * relayed as they arrive. It does exactly what the nginx reference (bench/lib/nginx.ts) does:
 *
 *   - `<prefix>/…` only (anything else 404; `GET /__ready` answers 200 for readiness polling);
 *   - `X-Model` must be the model (404), `apikey` must be the key (401), in that order;
 *   - the prefix is stripped, `apikey`/`Host`/hop-by-hop headers are dropped, `Host` is the upstream's;
 *   - keep-alive upstream connections (at most 64 idle, LIFO, closed after 60 s idle);
 *   - request bodies (Content-Length or chunked) streamed to the upstream; the response relayed
 *     byte for byte as it arrives (chunked SSE included), framed by its Content-Length or chunked
 *     encoding so the upstream connection can be reused, close-delimited otherwise.
 *
 * Strict by refusal: 400 and close for anything it does not support — not HTTP/1.1, obs-fold, bare
 * LF or CR, whitespace before `:`, control bytes, a head over 16 KiB, a missing or duplicate Host,
 * Transfer-Encoding other than exactly `chunked`, Content-Length with Transfer-Encoding, a duplicate
 * Content-Length / Transfer-Encoding / X-Model / apikey, chunk extensions or trailers in request
 * bodies, `Upgrade`, Connection options other than close/keep-alive, targets not in origin form or
 * with `.`/`..` segments. Bodies over 32 MiB: 413. `Expect: 100-continue`: answered here.
 * Pipelined requests are served one at a time, in order (the next head is parsed once the previous
 * response has ended), like nginx.
 *
 * Deliberately NOT done — this is a prototype for measuring, not part of the gateway: no metrics,
 * no access log, no retries (a pooled connection the upstream closes at the very moment a request
 * is written gives a 502), no connect/first-byte timeouts, no TLS, no HTTP/2, no URL
 * normalisation (nginx decodes `%XX`; this forwards the target as received), no load balancing,
 * no request-id or X-Forwarded-* headers; the response head is relayed as the upstream wrote it
 * (minus Connection/Keep-Alive). Client idle (65 s) and header (10 s) timeouts are checked by a
 * once-a-second sweep instead of a timer per socket.
 *
 *   node --import tsx bench/raw-proxy.ts --port 8080 --upstream http://127.0.0.1:9000 \
 *     --model bench-model --key secret [--prefix /ai/models]
 */
import { timingSafeEqual } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';

const USAGE = 'usage: raw-proxy.ts --port P --upstream http://host:port --model ID --key KEY [--prefix /path]';
const arg = (name: string, fallback?: string): string => {
  const i = process.argv.indexOf(name);
  const v = i === -1 ? fallback : process.argv[i + 1];
  if (v === undefined) throw new Error(`${USAGE} (missing ${name})`);
  return v;
};
const PORT = Number(arg('--port'));
const UP = new URL(arg('--upstream'));
if (UP.protocol !== 'http:' || UP.pathname !== '/') throw new Error(`${USAGE} (--upstream must be http://host:port)`);
const UP_HOST = UP.hostname.replace(/^\[|\]$/g, '');
const UP_PORT = Number(UP.port === '' ? 80 : UP.port);
const MODEL = Buffer.from(arg('--model'));
const KEY = Buffer.from(arg('--key'));
const PREFIX = arg('--prefix', '');
if (PREFIX !== '' && (!PREFIX.startsWith('/') || PREFIX.endsWith('/'))) throw new Error(`${USAGE} (--prefix starts with / and does not end with /)`);

const MAX_HEAD = 16 * 1024;
const MAX_UPSTREAM_HEAD = 64 * 1024;
const MAX_BODY = 32 * 1024 * 1024;
/** Pipelined bytes kept while a response is in flight before the client is paused. */
const MAX_PENDING = 64 * 1024;
const MAX_IDLE_UPSTREAMS = 64;
const UPSTREAM_IDLE_MS = 60_000;
const CLIENT_IDLE_MS = 65_000;
const HEADER_TIMEOUT_MS = 10_000;

// ---------------------------------------------------------------------------------------------
// Constant bytes, built once.

interface Canned {
  keep: Buffer;
  close: Buffer;
}
const canned = (status: string, body: string): Canned => {
  const head = `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`;
  return { keep: Buffer.from(`${head}\r\n${body}`), close: Buffer.from(`${head}connection: close\r\n\r\n${body}`) };
};
const R400 = canned('400 Bad Request', '{"error":"bad_request"}\n');
const R401 = canned('401 Unauthorized', '{"error":"unauthorized"}\n');
const R404 = canned('404 Not Found', '{"error":"not_found"}\n');
const R413 = canned('413 Content Too Large', '{"error":"body_too_large"}\n');
const R417 = canned('417 Expectation Failed', '{"error":"expectation_failed"}\n');
const R502 = canned('502 Bad Gateway', '{"error":"bad_gateway"}\n');
const READY = canned('200 OK', '');
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n');
/** The end of every forwarded request head: the upstream's Host, then the empty line. */
const UP_HEAD_END = Buffer.from(`host: ${UP.host}\r\n\r\n`);
const CONNECTION_CLOSE = Buffer.from('connection: close\r\n');
const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');
const HTTP11 = Buffer.from('HTTP/1.1');
const PREFIX_SLASH = Buffer.from(`${PREFIX}/`);
const READY_PATH = Buffer.from('/__ready');

// Byte classes as tables: one load per byte instead of a chain of comparisons.
const TCHAR = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z0-9]/.test(ch) || "!#$%&'*+-.^_`|~".includes(ch)) TCHAR[c] = 1;
}
const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 256; c++) {
  const v = parseInt(String.fromCharCode(c), 16);
  if (!Number.isNaN(v) && /[0-9A-Fa-f]/.test(String.fromCharCode(c))) HEX[c] = v;
}

// Header names the parsers act on (lowercase; compared with `byte | 0x20`, which only folds
// letters because every other byte of a name has already passed TCHAR).
const N_HOST = Buffer.from('host');
const N_TE = Buffer.from('te');
const N_APIKEY = Buffer.from('apikey');
const N_EXPECT = Buffer.from('expect');
const N_XMODEL = Buffer.from('x-model');
const N_UPGRADE = Buffer.from('upgrade');
const N_CONNECTION = Buffer.from('connection');
const N_KEEPALIVE = Buffer.from('keep-alive');
const N_CONTENT_LENGTH = Buffer.from('content-length');
const N_PROXY_CONNECTION = Buffer.from('proxy-connection');
const N_TRANSFER_ENCODING = Buffer.from('transfer-encoding');
const V_CHUNKED = Buffer.from('chunked');
const V_CLOSE = Buffer.from('close');
const V_KEEPALIVE = Buffer.from('keep-alive');
const V_100_CONTINUE = Buffer.from('100-continue');

const H_OTHER = 0;
const H_HOST = 1;
const H_CONTENT_LENGTH = 2;
const H_TRANSFER_ENCODING = 3;
const H_XMODEL = 4;
const H_APIKEY = 5;
const H_CONNECTION = 6;
const H_EXPECT = 7;
const H_UPGRADE = 8;
/** Hop-by-hop headers that are dropped: TE, Keep-Alive, Proxy-Connection. */
const H_HOP = 9;

function eqLower(b: Buffer, s: number, e: number, lit: Buffer): boolean {
  if (e - s !== lit.length) return false;
  for (let i = 0; i < lit.length; i++) if ((b[s + i]! | 0x20) !== lit[i]) return false;
  return true;
}

function eqBytes(b: Buffer, s: number, lit: Buffer): boolean {
  if (s + lit.length > b.length) return false;
  for (let i = 0; i < lit.length; i++) if (b[s + i] !== lit[i]) return false;
  return true;
}

/** headerId classifies a header name by length first, so most names cost one switch. */
function headerId(b: Buffer, s: number, e: number): number {
  switch (e - s) {
    case 2:
      return eqLower(b, s, e, N_TE) ? H_HOP : H_OTHER;
    case 4:
      return eqLower(b, s, e, N_HOST) ? H_HOST : H_OTHER;
    case 6:
      return eqLower(b, s, e, N_APIKEY) ? H_APIKEY : eqLower(b, s, e, N_EXPECT) ? H_EXPECT : H_OTHER;
    case 7:
      return eqLower(b, s, e, N_XMODEL) ? H_XMODEL : eqLower(b, s, e, N_UPGRADE) ? H_UPGRADE : H_OTHER;
    case 10:
      return eqLower(b, s, e, N_CONNECTION) ? H_CONNECTION : eqLower(b, s, e, N_KEEPALIVE) ? H_HOP : H_OTHER;
    case 14:
      return eqLower(b, s, e, N_CONTENT_LENGTH) ? H_CONTENT_LENGTH : H_OTHER;
    case 16:
      return eqLower(b, s, e, N_PROXY_CONNECTION) ? H_HOP : H_OTHER;
    case 17:
      return eqLower(b, s, e, N_TRANSFER_ENCODING) ? H_TRANSFER_ENCODING : H_OTHER;
    default:
      return H_OTHER;
  }
}

/** parseLength reads a Content-Length value: 1-15 digits, nothing else (no sign, no list); -1 if bad. */
function parseLength(b: Buffer, s: number, e: number): number {
  if (e === s || e - s > 15) return -1;
  let n = 0;
  for (let i = s; i < e; i++) {
    const d = b[i]! - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

const CONN_BAD = -1;
const CONN_KEEP = 0;
const CONN_CLOSE = 1;
/** connectionTokens reads a Connection value: CONN_CLOSE if it lists `close`, CONN_BAD for any option besides close/keep-alive. */
function connectionTokens(b: Buffer, s: number, e: number): number {
  let out = CONN_KEEP;
  let i = s;
  while (i < e) {
    while (i < e && (b[i] === 32 || b[i] === 9 || b[i] === 44)) i++;
    const ts = i;
    while (i < e && b[i] !== 44 && b[i] !== 32 && b[i] !== 9) i++;
    if (i === ts) break;
    if (eqLower(b, ts, i, V_CLOSE)) out = CONN_CLOSE;
    else if (!eqLower(b, ts, i, V_KEEPALIVE)) return CONN_BAD;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Chunked framing, scanned in place: the bytes are relayed as they are, the scanner only finds
// where the message ends (and refuses what it cannot frame without doubt).

const C_SIZE_FIRST = 0;
const C_SIZE = 1;
const C_EXT = 2;
const C_SIZE_LF = 3;
const C_DATA = 4;
const C_DATA_CR = 5;
const C_DATA_LF = 6;
const C_TRAILER_START = 7;
const C_TRAILER_LINE = 8;
const C_TRAILER_LF = 9;
const C_END_LF = 10;

const SCAN_MORE = -1;
const SCAN_BAD = -2;
const SCAN_TOO_BIG = -3;

class Chunked {
  state = C_SIZE_FIRST;
  size = 0;
  digits = 0;
  remaining = 0;
  total = 0;
  /** strict (requests): no chunk extensions, no trailers, a body limit. Responses get the full grammar. */
  constructor(private readonly strict: boolean) {}

  reset(): void {
    this.state = C_SIZE_FIRST;
    this.total = 0;
  }

  /** scan returns the index just past the end of the message in b[i, end), SCAN_MORE if it goes on, or an error. */
  scan(b: Buffer, i: number, end: number): number {
    while (i < end) {
      switch (this.state) {
        case C_DATA: {
          const n = Math.min(this.remaining, end - i);
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = C_DATA_CR;
          continue;
        }
        case C_SIZE_FIRST: {
          const v = HEX[b[i]!]!;
          if (v < 0) return SCAN_BAD;
          this.size = v;
          this.digits = 1;
          this.state = C_SIZE;
          break;
        }
        case C_SIZE: {
          const c = b[i]!;
          const v = HEX[c]!;
          if (v >= 0) {
            // 12 hex digits is 256 TiB: beyond any body; also keeps `size` an exact integer.
            if (++this.digits > 12) return SCAN_BAD;
            this.size = this.size * 16 + v;
          } else if (c === 13) this.state = C_SIZE_LF;
          else if (c === 59 && !this.strict) this.state = C_EXT;
          else return SCAN_BAD;
          break;
        }
        case C_EXT: {
          const c = b[i]!;
          if (c === 13) this.state = C_SIZE_LF;
          else if ((c < 32 && c !== 9) || c === 127) return SCAN_BAD;
          break;
        }
        case C_SIZE_LF:
          if (b[i] !== 10) return SCAN_BAD;
          if (this.size === 0) this.state = C_TRAILER_START;
          else {
            this.total += this.size;
            if (this.strict && this.total > MAX_BODY) return SCAN_TOO_BIG;
            this.remaining = this.size;
            this.state = C_DATA;
          }
          break;
        case C_DATA_CR:
          if (b[i] !== 13) return SCAN_BAD;
          this.state = C_DATA_LF;
          break;
        case C_DATA_LF:
          if (b[i] !== 10) return SCAN_BAD;
          this.state = C_SIZE_FIRST;
          break;
        case C_TRAILER_START:
          if (b[i] === 13) this.state = C_END_LF;
          else if (this.strict) return SCAN_BAD;
          else this.state = C_TRAILER_LINE;
          break;
        case C_TRAILER_LINE: {
          const c = b[i]!;
          if (c === 13) this.state = C_TRAILER_LF;
          else if (c === 10) return SCAN_BAD;
          break;
        }
        case C_TRAILER_LF:
          if (b[i] !== 10) return SCAN_BAD;
          this.state = C_TRAILER_START;
          break;
        case C_END_LF:
          if (b[i] !== 10) return SCAN_BAD;
          this.state = C_SIZE_FIRST;
          return i + 1;
      }
      i++;
    }
    return SCAN_MORE;
  }
}

// ---------------------------------------------------------------------------------------------
// Upstream connections.

const B_NONE = 0;
const B_LENGTH = 1;
const B_CHUNKED = 2;
/** Response body until the upstream closes. */
const B_CLOSE = 3;

let now = Date.now();
const idle: Upstream[] = [];
/** Scratch for the response head being rewritten (used synchronously, so one array serves all). */
const RESPONSE_DROPS: number[] = [];

class Upstream {
  readonly sock: Socket;
  /** client is the connection whose request this upstream connection serves; null while idle. */
  client: Client | null = null;
  isDead = false;
  idleSince = 0;
  isPausedByClient = false;
  // Response state.
  isHeadDone = false;
  head: Buffer | null = null;
  kind = B_NONE;
  remaining = 0;
  isReusable = true;
  readonly chunked = new Chunked(false);

  constructor() {
    // noDelay: head and body may go out as separate writes; Nagle would hold the second.
    this.sock = connect({ host: UP_HOST, port: UP_PORT, noDelay: true });
    // One set of listeners per connection, not per request: they dispatch on `client`.
    this.sock.on('data', (chunk: Buffer) => this.onData(chunk));
    this.sock.on('drain', () => {
      const c = this.client;
      if (c !== null && c.isPausedByUpstream) {
        c.isPausedByUpstream = false;
        c.sock.resume();
      }
    });
    this.sock.on('end', () => {
      if (this.client !== null && this.isHeadDone && this.kind === B_CLOSE) this.finish();
    });
    this.sock.on('error', () => {});
    this.sock.on('close', () => this.onClose());
  }

  /** start begins an exchange for c; the caller writes the request. */
  start(c: Client): void {
    this.client = c;
    this.isHeadDone = false;
    this.head = null;
    this.isReusable = true;
  }

  private onClose(): void {
    this.isDead = true;
    const c = this.client;
    if (c === null) {
      const i = idle.indexOf(this);
      if (i !== -1) idle.splice(i, 1);
      return;
    }
    this.client = null;
    c.up = null;
    // Nothing relayed yet: the client can still get a proper answer. Otherwise its response is cut.
    if (!this.isHeadDone) c.fail(R502);
    else c.sock.destroy();
  }

  private onData(chunk: Buffer): void {
    const c = this.client;
    if (c === null) {
      // Bytes on an idle connection: the stream is out of step; never reuse it.
      this.sock.destroy();
      return;
    }
    if (this.isHeadDone) this.relay(c, chunk, 0);
    else this.onHead(c, chunk);
  }

  private bad(c: Client): void {
    // A response we cannot frame: 502 if nothing went to the client yet, else cut it.
    this.client = null;
    c.up = null;
    this.sock.destroy();
    if (this.isHeadDone) c.sock.destroy();
    else c.fail(R502);
  }

  private onHead(c: Client, chunk: Buffer): void {
    const b = this.head === null ? chunk : Buffer.concat([this.head, chunk]);
    const searchFrom = this.head === null ? 0 : Math.max(0, this.head.length - 3);
    const crlf2 = b.indexOf(CRLFCRLF, searchFrom);
    if (crlf2 === -1) {
      if (b.length > MAX_UPSTREAM_HEAD) this.bad(c);
      else this.head = b;
      return;
    }
    this.head = null;
    const headEnd = crlf2 + 4;
    // Status line: exactly "HTTP/1.1 NNN".
    if (!eqBytes(b, 0, HTTP11) || b[8] !== 32) return this.bad(c);
    const d0 = b[9]! - 48;
    const d1 = b[10]! - 48;
    const d2 = b[11]! - 48;
    if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return this.bad(c);
    const status = d0 * 100 + d1 * 10 + d2;
    if (status < 200) {
      // Interim responses (100 Continue answered by the upstream) are not relayed; 101 is not supported.
      if (status === 101) return this.bad(c);
      if (headEnd < b.length) this.onHead(c, b.subarray(headEnd));
      return;
    }
    let length = -1;
    let hasTe = false;
    let isChunked = false;
    let isClose = false;
    // Dropped lines: Connection, Keep-Alive, Proxy-Connection (ours to set).
    const drops = RESPONSE_DROPS;
    drops.length = 0;
    let pos = b.indexOf(13, 0) + 2;
    while (pos < crlf2 + 2) {
      const cr = b.indexOf(13, pos);
      if (b[cr + 1] !== 10) return this.bad(c);
      let i = pos;
      while (i < cr && TCHAR[b[i]!] === 1) i++;
      if (i === pos || b[i] !== 58) return this.bad(c);
      const id = headerId(b, pos, i);
      if (id !== H_OTHER) {
        i++;
        while (i < cr && (b[i] === 32 || b[i] === 9)) i++;
        let ve = cr;
        while (ve > i && (b[ve - 1] === 32 || b[ve - 1] === 9)) ve--;
        if (id === H_CONTENT_LENGTH) {
          const n = parseLength(b, i, ve);
          if (n < 0 || (length !== -1 && n !== length)) return this.bad(c);
          length = n;
        } else if (id === H_TRANSFER_ENCODING) {
          if (hasTe) return this.bad(c);
          hasTe = true;
          isChunked = eqLower(b, i, ve, V_CHUNKED);
        } else if (id === H_CONNECTION || id === H_HOP) {
          if (id === H_CONNECTION && connectionTokens(b, i, ve) !== CONN_KEEP) isClose = true;
          drops.push(pos, cr + 2);
        }
      }
      pos = cr + 2;
    }
    if (hasTe && length !== -1) return this.bad(c); // both framings: a smuggling shape, refuse
    if (c.isHeadMethod || status === 204 || status === 304) this.kind = B_NONE;
    else if (hasTe) this.kind = isChunked ? B_CHUNKED : B_CLOSE;
    else if (length > 0) this.kind = B_LENGTH;
    else if (length === 0) this.kind = B_NONE;
    else this.kind = B_CLOSE;
    if (this.kind === B_CHUNKED) this.chunked.reset();
    this.remaining = length;
    if (isClose || this.kind === B_CLOSE) this.isReusable = false;
    if (this.kind === B_CLOSE) c.closeAfter = true;
    this.isHeadDone = true;

    // The client's head: the upstream's, minus the dropped lines, plus `connection: close` when
    // this connection ends after the response.
    let out: Buffer;
    if (drops.length === 0 && !c.closeAfter) out = headEnd === b.length ? b : b.subarray(0, headEnd);
    else {
      const keepEnd = crlf2 + 2;
      let len = keepEnd + (c.closeAfter ? CONNECTION_CLOSE.length : 0) + 2;
      for (let k = 0; k < drops.length; k += 2) len -= drops[k + 1]! - drops[k]!;
      out = Buffer.allocUnsafe(len);
      let o = 0;
      let from = 0;
      for (let k = 0; k < drops.length; k += 2) {
        o += b.copy(out, o, from, drops[k]!);
        from = drops[k + 1]!;
      }
      o += b.copy(out, o, from, keepEnd);
      if (c.closeAfter) o += CONNECTION_CLOSE.copy(out, o);
      CRLF.copy(out, o);
    }
    // Head and the first body bytes in one writev.
    const sock = c.sock;
    sock.cork();
    sock.write(out);
    if (this.kind === B_NONE) {
      if (headEnd < b.length) this.isReusable = false;
      this.finish();
    } else this.relay(c, b, headEnd);
    sock.uncork();
  }

  /** relay forwards response body bytes b[start…] to the client and ends the exchange at the framed end. */
  private relay(c: Client, b: Buffer, start: number): void {
    let end = b.length;
    let isDone = false;
    if (this.kind === B_LENGTH) {
      if (end - start >= this.remaining) {
        end = start + this.remaining;
        isDone = true;
      }
      this.remaining -= end - start;
    } else if (this.kind === B_CHUNKED) {
      const r = this.chunked.scan(b, start, end);
      if (r === SCAN_BAD) return this.bad(c);
      if (r >= 0) {
        end = r;
        isDone = true;
      }
    }
    if (end > start && !c.sock.write(start === 0 && end === b.length ? b : b.subarray(start, end))) {
      // The client reads slower than the upstream writes: stop reading the upstream.
      this.isPausedByClient = true;
      this.sock.pause();
    }
    if (isDone) {
      if (end < b.length) this.isReusable = false; // bytes past the response: out of step
      this.finish();
    }
  }

  /** finish ends the exchange: the connection goes back to the pool or is closed, the client moves on. */
  finish(): void {
    const c = this.client!;
    this.client = null;
    c.up = null;
    if (this.isReusable && c.isBodyDone && !this.isDead) release(this);
    else this.sock.destroy();
    c.onResponseDone();
  }
}

function acquire(): Upstream {
  for (;;) {
    const u = idle.pop();
    if (u === undefined) return new Upstream();
    if (!u.isDead) return u;
  }
}

function release(u: Upstream): void {
  if (u.isPausedByClient) {
    u.isPausedByClient = false;
    u.sock.resume();
  }
  if (idle.length >= MAX_IDLE_UPSTREAMS) {
    u.sock.end();
    return;
  }
  u.idleSince = now;
  idle.push(u);
}

// ---------------------------------------------------------------------------------------------
// Client connections.

const P_HEAD = 0;
const P_BODY = 1;
/** Request fully read; its response is in flight. */
const P_WAIT = 2;
const P_DONE = 3;

const clients = new Set<Client>();

class Client {
  readonly sock: Socket;
  phase = P_HEAD;
  /** pending holds received bytes not yet consumed: a head being parsed, or pipelined requests. */
  pending: Buffer | null = null;
  lastActive = now;
  headSince = 0;
  isEnded = false;
  isPausedByUpstream = false;
  isPausedPipelined = false;
  closeAfter = false;
  // Head parsing (incremental: one complete line at a time, never rescanned).
  pos = 0;
  hasRequestLine = false;
  reqStart = 0;
  targetStart = 0;
  reqLineEnd = 0;
  isHeadMethod = false;
  isGet = false;
  hosts = 0;
  contentLength = -1;
  hasTe = false;
  models = 0;
  isModelOk = false;
  keys = 0;
  isKeyOk = false;
  isExpect = false;
  /** drops holds [start, end) of header lines not forwarded. */
  readonly drops: number[] = [];
  // Exchange.
  up: Upstream | null = null;
  /** sink receives request body bytes: the upstream, or null to read and discard them. */
  sink: Upstream | null = null;
  bodyKind = B_NONE;
  remaining = 0;
  isBodyDone = true;
  isResponseDone = true;
  chunked: Chunked | null = null;

  constructor(sock: Socket) {
    this.sock = sock;
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('drain', () => {
      const u = this.up;
      if (u !== null && u.isPausedByClient) {
        u.isPausedByClient = false;
        u.sock.resume();
      }
    });
    sock.on('end', () => {
      this.isEnded = true;
      this.pump();
    });
    sock.on('error', () => {});
    sock.on('close', () => this.onClose());
  }

  private onClose(): void {
    this.phase = P_DONE;
    clients.delete(this);
    // The client is gone mid-exchange: abort the upstream request (the engine stops generating).
    const u = this.up;
    if (u !== null) {
      this.up = null;
      u.client = null;
      u.sock.destroy();
    }
  }

  private onData(chunk: Buffer): void {
    if (this.phase === P_DONE) return; // closing: whatever else arrives is ignored
    this.lastActive = now;
    if (this.pending === null) {
      if (this.phase === P_HEAD) this.headSince = now;
      this.pending = chunk;
    } else this.pending = Buffer.concat([this.pending, chunk]);
    this.pump();
  }

  /** pump consumes pending bytes as far as the current phase allows. */
  pump(): void {
    while (this.pending !== null && this.phase !== P_DONE) {
      if (this.phase === P_HEAD) {
        if (!this.parseHead()) break;
      } else if (this.phase === P_BODY) this.feedBody();
      else break;
    }
    if (this.phase === P_WAIT && this.pending !== null && this.pending.length > MAX_PENDING && !this.isPausedPipelined) {
      this.isPausedPipelined = true;
      this.sock.pause();
    }
    if (this.isEnded && this.phase !== P_DONE) {
      if (this.phase === P_HEAD) {
        // EOF between requests (or inside a head): done.
        this.phase = P_DONE;
        this.sock.end();
      } else if (this.phase === P_BODY) {
        // EOF inside a body: the request is incomplete.
        this.abort();
      }
      // P_WAIT: the response is still relayed; pump runs again after it.
    }
  }

  /** fail answers with a canned error and closes the connection. */
  fail(r: Canned): void {
    if (this.phase === P_DONE) return;
    this.phase = P_DONE;
    this.pending = null;
    const u = this.up;
    if (u !== null) {
      this.up = null;
      u.client = null;
      u.sock.destroy();
    }
    this.sock.end(r.close);
  }

  private abort(): void {
    this.phase = P_DONE;
    const u = this.up;
    if (u !== null) {
      this.up = null;
      u.client = null;
      u.sock.destroy();
    }
    this.sock.destroy();
  }

  /** parseHead parses complete lines of the pending head; true once a request was dispatched. */
  private parseHead(): boolean {
    const b = this.pending!;
    let pos = this.pos;
    for (;;) {
      const cr = b.indexOf(13, pos);
      if (cr === -1 || cr + 1 === b.length) {
        if (cr === -1 && b.indexOf(10, pos) !== -1) this.fail(R400); // bare LF
        else if (b.length > MAX_HEAD) this.fail(R400);
        else this.pos = pos;
        return false;
      }
      if (b[cr + 1] !== 10 || cr + 2 > MAX_HEAD) {
        this.fail(R400); // bare CR, or a head over the limit
        return false;
      }
      if (!this.hasRequestLine) {
        // RFC 9112 §2.2: empty lines before a request line are ignored.
        if (cr !== pos && !this.requestLine(b, pos, cr)) {
          this.fail(R400);
          return false;
        }
      } else if (cr === pos) return this.dispatch(b, cr + 2);
      else {
        const r = this.headerLine(b, pos, cr);
        if (r !== null) {
          this.fail(r);
          return false;
        }
      }
      pos = cr + 2;
    }
  }

  private requestLine(b: Buffer, s: number, e: number): boolean {
    let i = s;
    while (i < e && TCHAR[b[i]!] === 1) i++;
    if (i === s || i - s > 20 || b[i] !== 32) return false;
    this.isHeadMethod = i - s === 4 && b[s] === 72 && b[s + 1] === 69 && b[s + 2] === 65 && b[s + 3] === 68;
    this.isGet = i - s === 3 && b[s] === 71 && b[s + 1] === 69 && b[s + 2] === 84;
    i++;
    const ts = i;
    // Origin form only; visible ASCII; no `.`/`..` segments in the path (nginx would resolve them).
    if (b[i] !== 47) return false;
    let segStart = ++i;
    let isQuery = false;
    for (; i < e; i++) {
      const c = b[i]!;
      if (c <= 32 || c >= 127 || c === 35) break;
      if (!isQuery && (c === 47 || c === 63)) {
        if (isDotSegment(b, segStart, i)) return false;
        segStart = i + 1;
        isQuery = c === 63;
      }
    }
    if (!isQuery && isDotSegment(b, segStart, i)) return false;
    if (b[i] !== 32 || e - (i + 1) !== 8 || !eqBytes(b, i + 1, HTTP11)) return false;
    this.hasRequestLine = true;
    this.reqStart = s;
    this.targetStart = ts;
    this.reqLineEnd = e + 2;
    return true;
  }

  /** headerLine checks one field line and records what the proxy needs; an error response or null. */
  private headerLine(b: Buffer, s: number, e: number): Canned | null {
    let i = s;
    while (i < e && TCHAR[b[i]!] === 1) i++;
    // Catches obs-fold (a line starting with SP/HT), whitespace before the colon, an empty name.
    if (i === s || b[i] !== 58 || i >= e) return R400;
    const ne = i;
    i++;
    while (i < e && (b[i] === 32 || b[i] === 9)) i++;
    const vs = i;
    let ve = i;
    for (; i < e; i++) {
      const c = b[i]!;
      if (c < 32 ? c !== 9 : c === 127) return R400;
      if (c !== 32 && c !== 9) ve = i + 1;
    }
    switch (headerId(b, s, ne)) {
      case H_OTHER:
        return null;
      case H_HOST:
        if (++this.hosts > 1) return R400;
        break;
      case H_CONTENT_LENGTH:
        if (this.contentLength !== -1) return R400;
        this.contentLength = parseLength(b, vs, ve);
        return this.contentLength < 0 ? R400 : null;
      case H_TRANSFER_ENCODING:
        if (this.hasTe || !eqLower(b, vs, ve, V_CHUNKED)) return R400;
        this.hasTe = true;
        return null;
      case H_XMODEL:
        if (++this.models > 1) return R400;
        this.isModelOk = ve - vs === MODEL.length && b.compare(MODEL, 0, MODEL.length, vs, ve) === 0;
        return null;
      case H_APIKEY:
        if (++this.keys > 1) return R400;
        this.isKeyOk = ve - vs === KEY.length && timingSafeEqual(b.subarray(vs, ve), KEY);
        break;
      case H_CONNECTION: {
        const t = connectionTokens(b, vs, ve);
        if (t === CONN_BAD) return R400;
        if (t === CONN_CLOSE) this.closeAfter = true;
        break;
      }
      case H_EXPECT:
        if (!eqLower(b, vs, ve, V_100_CONTINUE)) return R417;
        this.isExpect = true;
        break;
      case H_UPGRADE:
        return R400;
      default: // H_HOP
        break;
    }
    this.drops.push(s, e + 2);
    return null;
  }

  /** dispatch acts on a complete head b[reqStart, headEnd): answer it here or forward it. */
  private dispatch(b: Buffer, headEnd: number): boolean {
    if (this.hosts === 0 || (this.hasTe && this.contentLength !== -1)) {
      this.fail(R400); // RFC 9112: Host is required; CL + TE is the request smuggling shape
      return false;
    }
    if (this.contentLength > MAX_BODY) {
      this.fail(R413);
      return false;
    }
    this.bodyKind = this.hasTe ? B_CHUNKED : this.contentLength > 0 ? B_LENGTH : B_NONE;
    this.remaining = this.contentLength;
    if (this.bodyKind === B_CHUNKED) {
      if (this.chunked === null) this.chunked = new Chunked(true);
      else this.chunked.reset();
    }
    // Routing as nginx's `location = /__ready` and `location <prefix>/` with its two `if`s.
    // (The head is longer than any of these compares: the request line alone ends in 11 bytes.)
    const ts = this.targetStart;
    let answer: Canned | null = null;
    if (this.isGet && b[ts + READY_PATH.length] === 32 && b.compare(READY_PATH, 0, READY_PATH.length, ts, ts + READY_PATH.length) === 0) answer = READY;
    else if (ts + PREFIX_SLASH.length <= headEnd && b.compare(PREFIX_SLASH, 0, PREFIX_SLASH.length, ts, ts + PREFIX_SLASH.length) === 0) {
      if (!this.isModelOk) answer = R404;
      else if (!this.isKeyOk) answer = R401;
    } else answer = R404;
    const rest = headEnd < b.length ? b.subarray(headEnd) : null;
    this.isBodyDone = this.bodyKind === B_NONE;
    this.isResponseDone = false;
    if (answer !== null) {
      // Answered here; the body (if any) is read and discarded to keep the connection in step.
      // With Expect: 100-continue the client may or may not send it: close instead.
      if (this.isExpect && !this.isBodyDone) {
        this.fail(answer);
        return false;
      }
      this.sock.write(this.closeAfter ? answer.close : answer.keep);
      this.isResponseDone = true;
      this.sink = null;
      this.pending = rest;
      this.phase = P_BODY;
      if (this.isBodyDone) this.onRequestRead();
      return true;
    }

    // Forward: request line with the prefix cut, header lines minus drops, then Host + CRLF.
    const cut = this.targetStart + PREFIX.length;
    const drops = this.drops;
    let len = this.targetStart - this.reqStart + (headEnd - 2 - cut) + UP_HEAD_END.length;
    for (let k = 0; k < drops.length; k += 2) len -= drops[k + 1]! - drops[k]!;
    const out = Buffer.allocUnsafe(len);
    let o = b.copy(out, 0, this.reqStart, this.targetStart);
    let from = cut;
    for (let k = 0; k < drops.length; k += 2) {
      o += b.copy(out, o, from, drops[k]!);
      from = drops[k + 1]!;
    }
    o += b.copy(out, o, from, headEnd - 2);
    UP_HEAD_END.copy(out, o);

    const u = acquire();
    u.start(this);
    this.up = u;
    this.sink = u;
    this.pending = rest;
    if (this.isExpect && !this.isBodyDone && rest === null) this.sock.write(CONTINUE);
    // Head and the body bytes already here in one writev.
    u.sock.cork();
    u.sock.write(out);
    if (this.isBodyDone) this.onRequestRead();
    else {
      this.phase = P_BODY;
      if (rest !== null) this.feedBody();
    }
    u.sock.uncork();
    return true;
  }

  /** feedBody passes request body bytes from pending to the sink, up to the end of the body. */
  private feedBody(): void {
    const b = this.pending!;
    let end = b.length;
    let isDone = false;
    if (this.bodyKind === B_LENGTH) {
      if (end >= this.remaining) {
        end = this.remaining;
        isDone = true;
      }
      this.remaining -= end;
    } else {
      const r = this.chunked!.scan(b, 0, end);
      if (r < 0 && r !== SCAN_MORE) {
        const err = r === SCAN_TOO_BIG ? R413 : R400;
        // Once response bytes went to the client, the connection can only be cut.
        if (this.up !== null && this.up.isHeadDone) this.abort();
        else this.fail(err);
        return;
      }
      if (r >= 0) {
        end = r;
        isDone = true;
      }
    }
    this.pending = end === b.length ? null : b.subarray(end);
    const sink = this.sink;
    if (sink !== null && end > 0 && !sink.sock.write(end === b.length ? b : b.subarray(0, end))) {
      this.isPausedByUpstream = true;
      this.sock.pause();
    }
    if (isDone) this.onRequestRead();
  }

  private onRequestRead(): void {
    this.isBodyDone = true;
    this.sink = null;
    this.phase = P_WAIT;
    if (this.isResponseDone) this.next();
  }

  /** onResponseDone is called by the upstream side when the response has been relayed. */
  onResponseDone(): void {
    this.isResponseDone = true;
    if (this.isBodyDone) {
      this.next();
      this.pump();
      return;
    }
    // The upstream answered before the whole body arrived: read the rest and discard it.
    this.sink = null;
    if (this.isPausedByUpstream) {
      this.isPausedByUpstream = false;
      this.sock.resume();
    }
  }

  /** next ends an exchange: close if asked to, else get ready for the next (maybe pipelined) head. */
  private next(): void {
    if (this.closeAfter) {
      this.phase = P_DONE;
      this.pending = null;
      this.sock.end();
      return;
    }
    this.phase = P_HEAD;
    this.pos = 0;
    this.hasRequestLine = false;
    this.hosts = 0;
    this.contentLength = -1;
    this.hasTe = false;
    this.models = 0;
    this.isModelOk = false;
    this.keys = 0;
    this.isKeyOk = false;
    this.isExpect = false;
    this.drops.length = 0;
    this.headSince = now;
    if (this.isPausedPipelined) {
      this.isPausedPipelined = false;
      this.sock.resume();
    }
  }
}

// ---------------------------------------------------------------------------------------------

const server = createServer({ noDelay: true, allowHalfOpen: true }, (sock) => {
  clients.add(new Client(sock));
});

// One sweep a second instead of a timer per socket: client idle and header timeouts, idle upstreams.
setInterval(() => {
  now = Date.now();
  for (const c of clients) {
    if (c.phase === P_HEAD) {
      if (c.pending === null ? now - c.lastActive > CLIENT_IDLE_MS : now - c.headSince > HEADER_TIMEOUT_MS) c.sock.destroy();
    } else if (c.phase === P_DONE && now - c.lastActive > HEADER_TIMEOUT_MS) c.sock.destroy(); // closed by us, never by the peer
  }
  for (const u of idle) if (now - u.idleSince > UPSTREAM_IDLE_MS) u.sock.destroy();
}, 1000).unref();

server.listen({ port: PORT, host: '127.0.0.1', backlog: 4096 });
process.on('SIGTERM', () => process.exit(0));

function isDotSegment(b: Buffer, s: number, e: number): boolean {
  return (e - s === 1 && b[s] === 46) || (e - s === 2 && b[s] === 46 && b[s + 1] === 46);
}
