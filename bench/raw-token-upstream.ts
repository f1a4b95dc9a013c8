/**
 * The upstream of `npm run bench:tokens`: an OpenAI-style chat stream server on raw `node:net`
 * sockets (HTTP/1.1, keep-alive, chunked), light enough to feed thousands of slow streams from
 * one core. Every streamed request gets `max_tokens` content events, one every `--interval-ms`
 * (default 20: 50 tokens/s), then the usage event when the request asked for it
 * (`stream_options.include_usage`, which the gateway adds), then `data: [DONE]`.
 *
 * Each content event carries the time it was written, `"ts":"<µs>"` (this process's monotonic
 * clock, fixed width), so a client can tell the upstream's gap between two events from the gap it
 * saw: the difference is what the path in between added. One 1 ms timer drives every stream: a
 * stream started in millisecond m writes at every m + k × interval (a timing wheel with one slot
 * per millisecond of the interval); a late timer catches up, and the stamps say when each event
 * really left.
 *
 *   GET /health → 200; POST <any path> with `"stream":true` → the stream; other POSTs → 400.
 *   node raw-token-upstream.js --port 9000 [--interval-ms 20]
 */
import { createServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

const opt = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const port = opt('--port', 9000);
const INTERVAL = Math.max(1, Math.round(opt('--interval-ms', 20)));

const HEAD = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n');
const HEALTH = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok');
const BAD = Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 56\r\nConnection: close\r\n\r\n{"error":{"message":"stream requests only","code":null}}');
const STAMP_DIGITS = 15;
const PREFIX = 'data: {"id":"chatcmpl-tokens","object":"chat.completion.chunk","created":1700000000,"model":"bench-model","choices":[{"index":0,"delta":{"content":"tok "},"logprobs":null,"finish_reason":';
const eventTemplate = (finish: string): Buffer => {
  const data = `${PREFIX}${finish}}],"ts":"${'0'.repeat(STAMP_DIGITS)}"}\n\n`;
  return Buffer.from(`${Buffer.byteLength(data).toString(16)}\r\n${data}\r\n`);
};
const TOKEN = eventTemplate('null');
const LAST = eventTemplate('"length"');
// Where the stamp's digits sit in an event (same offset in both templates, counted from the end).
const STAMP_FROM_END = STAMP_DIGITS + '"}\n\n\r\n'.length;
const DONE_DATA = 'data: [DONE]\n\n';
const DONE = Buffer.from(`${Buffer.byteLength(DONE_DATA).toString(16)}\r\n${DONE_DATA}\r\n0\r\n\r\n`);
const usageEvent = (prompt: number, completion: number): Buffer => {
  const data = `data: {"id":"chatcmpl-tokens","object":"chat.completion.chunk","created":1700000000,"model":"bench-model","choices":[],"usage":{"prompt_tokens":${prompt},"total_tokens":${prompt + completion},"completion_tokens":${completion}}}\n\n`;
  return Buffer.from(`${Buffer.byteLength(data).toString(16)}\r\n${data}\r\n`);
};
const MAX_TOKENS = /"max_tokens"\s*:\s*(\d+)/;
const HEAD_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:\s*(\d+)/i;

/** stamped is a copy of the template with the current time (µs) written into it. */
function stamped(template: Buffer): Buffer {
  const b = Buffer.allocUnsafe(template.length);
  template.copy(b);
  let v = Math.round(performance.now() * 1000);
  for (let i = b.length - STAMP_FROM_END + STAMP_DIGITS - 1; i >= b.length - STAMP_FROM_END; i--) {
    b[i] = 48 + (v % 10);
    v = Math.floor(v / 10);
  }
  return b;
}

/** Stream is one response in progress. */
interface Stream {
  conn: Conn;
  left: number;
  usage: Buffer | null;
  slot: number;
  index: number;
}

const wheel: Stream[][] = Array.from({ length: INTERVAL }, () => []);
let lastMs = Math.floor(performance.now());

function unschedule(s: Stream): void {
  const list = wheel[s.slot]!;
  const last = list.pop()!;
  if (last !== s) {
    list[s.index] = last;
    last.index = s.index;
  }
  s.index = -1;
}

/** emit writes the stream's next event; false when the stream is over. */
function emit(s: Stream): boolean {
  const sock = s.conn.sock;
  if (sock.destroyed) return false;
  s.left--;
  if (s.left > 0) {
    sock.write(stamped(TOKEN));
    return true;
  }
  sock.cork();
  sock.write(stamped(LAST));
  if (s.usage !== null) sock.write(s.usage);
  sock.write(DONE);
  sock.uncork();
  s.conn.stream = null;
  s.conn.next();
  return false;
}

function tick(): void {
  const now = Math.floor(performance.now());
  // Catch up every millisecond since the last tick (a late timer), at most one full turn.
  const from = Math.max(lastMs + 1, now - INTERVAL + 1);
  for (let m = from; m <= now; m++) {
    const list = wheel[m % INTERVAL]!;
    for (let i = list.length - 1; i >= 0; i--) {
      const s = list[i]!;
      if (!emit(s)) unschedule(s);
    }
  }
  lastMs = now;
}
setInterval(tick, 1);

/** Conn is one client connection: requests one at a time (keep-alive). */
class Conn {
  readonly sock: Socket;
  buf: Buffer | null = null;
  stream: Stream | null = null;

  constructor(sock: Socket) {
    this.sock = sock;
    sock.setNoDelay(true);
    sock.on('data', (c: Buffer) => {
      this.buf = this.buf === null ? c : Buffer.concat([this.buf, c]);
      if (this.stream === null) this.next();
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      const s = this.stream;
      if (s !== null && s.index !== -1) unschedule(s);
      this.stream = null;
    });
  }

  /** next answers the next complete request in the buffer, if any. */
  next(): void {
    const b = this.buf;
    if (b === null) return;
    const end = b.indexOf(HEAD_END);
    if (end === -1) return;
    const head = b.toString('latin1', 0, end);
    const m = CONTENT_LENGTH.exec(head);
    const length = m === null ? 0 : Number(m[1]);
    const total = end + 4 + length;
    if (b.length < total) return;
    const body = b.toString('utf8', end + 4, total);
    this.buf = b.length === total ? null : b.subarray(total);
    if (head.startsWith('GET ')) {
      this.sock.write(HEALTH);
      return this.next();
    }
    if (!body.includes('"stream":true')) {
      this.sock.end(BAD);
      return;
    }
    const mt = MAX_TOKENS.exec(body);
    const n = Math.max(1, mt === null ? 16 : Number(mt[1]));
    const usage = body.includes('"include_usage":true') ? usageEvent(12, n) : null;
    const now = Math.floor(performance.now());
    const s: Stream = { conn: this, left: n, usage, slot: now % INTERVAL, index: 0 };
    this.stream = s;
    // The head and the first event at once; the rest from the wheel.
    this.sock.cork();
    this.sock.write(HEAD);
    const isMore = emit(s);
    this.sock.uncork();
    if (!isMore) return;
    const list = wheel[s.slot]!;
    s.index = list.length;
    list.push(s);
  }
}

const server = createServer({ noDelay: true }, (sock) => new Conn(sock));
server.listen({ port, host: '127.0.0.1', backlog: 8192 });
process.on('SIGTERM', () => process.exit(0));
