/**
 * H1Pool: the gateway's own HTTP/1.1 client for plain-HTTP targets, one pool of keep-alive
 * connections per origin, one exchange per connection at a time (no pipelining: inference
 * requests are not idempotent).
 *
 * Why not undici: its dispatch and parser layers cost CPU. Same build, against undici: 11-14 %
 * less CPU per request (docs/performance.md, 1b).
 *
 * Reuse check, as undici's: an idle connection carries the next request only after the event
 * loop has polled once more (the check phase of the next turn), so a FIN or bytes the engine sent
 * while the connection sat idle, already waiting in the kernel, are read first and close it,
 * instead of being taken for the next request's answer. One Immediate per loop turn serves every
 * connection waiting for its check. Stray bytes on an idle connection, or bytes after the end of
 * a response, close it. (Bytes an engine sends after the check, while the request is on its
 * way, cannot be told from its answer: that race is inherent to HTTP/1.1 keep-alive.)
 *
 *   dispatch --idle conn--next turn--> write --head--> body... --end--> back to idle
 *       |                           /        \--error/timeout/abort--> closed
 *       \--none idle--connect------/
 *
 * Timeouts (connect, response head, silence between body chunks) are checked by one shared
 * ticker while any exchange is in flight; a paused exchange (slow client) has no body timeout.
 * The silence is counted from the ticker's first look after a chunk (so up to TICK_MS longer),
 * which spares a clock read per chunk.
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { HEAD_WITH_BODY_BYTES, headWithBody } from '../../http/head-with-body.js';
import { beginRead, endRead } from '../../http/relay.js';
import type { UpstreamController, UpstreamDispatcher, UpstreamHandler, UpstreamHeaders, UpstreamRequest } from '../dispatch.js';
import { ResponseParser, type ResponseEvents, type ResponseHeaders } from './response-parser.js';

/** DEFAULT_KEEP_ALIVE_MS closes connections idle for this long when the server gave no hint. */
const DEFAULT_KEEP_ALIVE_MS = 30_000;
const MAX_KEEP_ALIVE_MS = 600_000;
/** A server's Keep-Alive timeout hint is trusted minus this margin (as undici). */
const KEEP_ALIVE_MARGIN_MS = 2000;
const TICK_MS = 50;
const SWEEP_MS = 1000;

/**
 * Every connection reads into this one buffer (net's `onread`), and each read is copied out at
 * once into a buffer of its own size (Buffer.allocUnsafe: a slice of Node's pool for reads under
 * 4 KiB): cheaper than Node's default read path (a 64 KiB allocation per read, shrunk, then
 * pushed through the socket's Readable stream with a 'data' event and a nextTick). One buffer is
 * enough: a read is handled to the end before the next one lands.
 */
const READ_BUFFER = Buffer.allocUnsafeSlow(64 * 1024);

const NO_TRAILERS: UpstreamHeaders = Object.freeze(Object.create(null) as UpstreamHeaders);
// Visible ASCII and obs-text: what a request target may hold (no spaces, no controls).
const SAFE_TARGET = /^\/[\x21-\x7e\x80-\xff]*$/;
const PAYLOAD_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** UpstreamTransportError is a failure of the HTTP/1.1 client; code says which. */
export class UpstreamTransportError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'UpstreamTransportError';
    this.code = code;
  }
}

/** The codes UpstreamTransportError carries (forward.ts maps them to gateway errors). */
export const TRANSPORT_CODES = {
  connectTimeout: 'UPSTREAM_CONNECT_TIMEOUT',
  headersTimeout: 'UPSTREAM_HEADERS_TIMEOUT',
  bodyTimeout: 'UPSTREAM_BODY_TIMEOUT',
  badResponse: 'UPSTREAM_BAD_RESPONSE',
  closed: 'UPSTREAM_CLOSED',
  poolClosed: 'UPSTREAM_POOL_CLOSED',
  badRequest: 'UPSTREAM_BAD_REQUEST',
} as const;

// ---------------------------------------------------------------------------------------------
// Timers shared by all pools: in-flight deadlines (fine) and idle expiry (coarse).

const inFlight = new Set<H1Connection>();
let ticker: NodeJS.Timeout | null = null;
const pools = new Set<H1Pool>();
let sweeper: NodeJS.Timeout | null = null;

function track(conn: H1Connection): void {
  inFlight.add(conn);
  if (ticker === null) {
    ticker = setInterval(tick, TICK_MS);
    ticker.unref();
  }
}

function tick(): void {
  if (inFlight.size === 0) {
    clearInterval(ticker!);
    ticker = null;
    return;
  }
  tickNow = performance.now();
  // forEach, not for-of: no iterator result object per connection per tick.
  inFlight.forEach(checkDeadline);
}

/** tickNow is the clock reading of the running tick, for checkDeadline. */
let tickNow = 0;

function checkDeadline(conn: H1Connection): void {
  conn.checkDeadline(tickNow);
}

function sweep(): void {
  const now = performance.now();
  let idle = 0;
  for (const pool of pools) idle += pool.closeExpired(now);
  if (idle === 0) {
    clearInterval(sweeper!);
    sweeper = null;
  }
}

// Idle connections waiting for their reuse check, run together in the next check phase.
let checking: H1Connection[] = [];
let checkingSpare: H1Connection[] = [];
let isCheckScheduled = false;

function scheduleCheck(conn: H1Connection): void {
  checking.push(conn);
  if (isCheckScheduled) return;
  isCheckScheduled = true;
  setImmediate(runChecks);
}

function runChecks(): void {
  isCheckScheduled = false;
  // A connection found closed sends its exchange to another one, whose check is the next turn's.
  const batch = checking;
  checking = checkingSpare;
  checkingSpare = batch;
  for (let i = 0; i < batch.length; i++) batch[i]!.checked();
  batch.length = 0;
}

function ensureSweeper(): void {
  if (sweeper !== null) return;
  sweeper = setInterval(sweep, SWEEP_MS);
  sweeper.unref();
}

// ---------------------------------------------------------------------------------------------

/** Exchange is one request/response; it is the handler's controller too. */
class Exchange implements UpstreamController {
  readonly request: UpstreamRequest;
  readonly handler: UpstreamHandler;
  conn: H1Connection | null = null;
  hasHead = false;
  isPaused = false;
  isDone = false;
  /** connectMs is the time this exchange's new connection took to connect (0: a kept-alive one). */
  connectMs = 0;

  constructor(request: UpstreamRequest, handler: UpstreamHandler) {
    this.request = request;
    this.handler = handler;
  }

  abort(reason: Error): void {
    if (this.isDone) return;
    this.isDone = true;
    this.conn?.abandon(this);
    this.handler.onResponseError?.(this, reason);
  }

  pause(): void {
    if (this.isDone || this.isPaused || this.conn === null) return;
    this.isPaused = true;
    this.conn.socket.pause();
  }

  resume(): void {
    if (!this.isPaused) return;
    this.isPaused = false;
    if (this.isDone || this.conn === null) return;
    this.conn.refreshBodyDeadline(this);
    this.conn.socket.resume();
  }

  /** fail ends the exchange with an error (no connection involved yet, or already released). */
  fail(err: Error): void {
    if (this.isDone) return;
    this.isDone = true;
    try {
      this.handler.onResponseError?.(this, err);
    } catch {
      // The handler failed while reporting a failure: there is nobody left to tell.
    }
  }
}

/** H1Connection is one keep-alive connection to the pool's origin. */
class H1Connection implements ResponseEvents {
  readonly socket: Socket;
  readonly #pool: H1Pool;
  readonly #parser: ResponseParser;
  #ex: Exchange | null = null;
  #isConnected = false;
  isClosed = false;
  #isComplete = false;
  #error: Error | null = null;
  /** deadline is when the current phase times out (performance.now() ms; 0 = none). */
  #deadline = 0;
  #deadlineCode: string = TRANSPORT_CODES.connectTimeout;
  /** #hasBodyRead: body bytes arrived since the ticker last looked; it restarts the body timeout then (up to TICK_MS late). */
  #hasBodyRead = false;
  /**
   * idleSince is when the connection went back to the pool (performance.now()). It holds a
   * fraction from the start: a field that starts as a small integer and later gets a fraction
   * changes the hidden class of every connection, and the optimized code that handles them falls
   * back to slower code, all at once, the first time streams end.
   */
  idleSince = performance.now();
  keepAliveMs = DEFAULT_KEEP_ALIVE_MS;
  /** #checking is the exchange waiting for this idle connection's reuse check. */
  #checking: Exchange | null = null;
  /** #openedAt is when the connection was opened (performance.now()), for its first exchange's connect time. */
  readonly #openedAt = performance.now();

  constructor(pool: H1Pool) {
    this.#pool = pool;
    this.#parser = new ResponseParser(this);
    // Keep-alive probes find an engine that vanished without a FIN (node or network gone).
    this.socket = connect({ host: pool.host, port: pool.port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000, onread: { buffer: READ_BUFFER, callback: this.#onRead } });
    this.socket.on('connect', this.#onConnect);
    this.socket.on('end', this.#onEnd);
    this.socket.on('error', this.#onError);
    this.socket.on('close', this.#onClose);
  }

  /** start runs ex on this connection: now if connected, else once the connection is up. */
  start(ex: Exchange): void {
    this.#ex = ex;
    ex.conn = this;
    this.#hasBodyRead = false;
    this.#parser.start(ex.request.method === 'HEAD', ex.handler.onResponseRun !== undefined);
    track(this);
    if (this.#isConnected) this.#write(ex);
    else this.#setDeadline(this.#pool.connectTimeoutMs, TRANSPORT_CODES.connectTimeout);
  }

  /** check starts ex here after the reuse check (next loop turn); the connection may close meanwhile. */
  check(ex: Exchange): void {
    this.#checking = ex;
    scheduleCheck(this);
  }

  /** checked is called once the loop polled this connection again: the pool starts the exchange or finds it another one. */
  checked(): void {
    const ex = this.#checking!;
    this.#checking = null;
    this.#pool.reuse(this, ex);
  }

  #setDeadline(ms: number, code: string): void {
    this.#deadline = ms > 0 ? performance.now() + ms : 0;
    this.#deadlineCode = code;
  }

  #write(ex: Exchange): void {
    const req = ex.request;
    let head = `${req.method} ${req.path} HTTP/1.1\r\nhost: ${this.#pool.hostHeader}\r\nconnection: keep-alive\r\n`;
    const h = req.headers;
    for (let i = 0; i < h.length; i += 2) head += `${h[i]}: ${h[i + 1]}\r\n`;
    const body = req.body;
    if (body !== null) head += `content-length: ${body.length}\r\n\r\n`;
    else head += PAYLOAD_METHODS.has(req.method) ? 'content-length: 0\r\n\r\n' : '\r\n';
    this.#setDeadline(req.headersTimeout, TRANSPORT_CODES.headersTimeout);
    const sock = this.socket;
    if (body === null || body.length === 0) {
      sock.write(head, 'latin1');
      return;
    }
    if (body.length <= HEAD_WITH_BODY_BYTES) {
      // One buffer, one write: copying a small body is cheaper than a writev of two parts.
      sock.write(headWithBody(head, body));
      return;
    }
    // Head and a large body in one writev.
    sock.cork();
    sock.write(head, 'latin1');
    sock.write(body);
    sock.uncork();
  }

  readonly #onConnect = (): void => {
    this.#isConnected = true;
    const ex = this.#ex;
    if (ex === null) return;
    ex.connectMs = performance.now() - this.#openedAt;
    this.#write(ex);
  };

  readonly #onRead = (n: number): boolean => {
    const chunk = Buffer.allocUnsafe(n);
    // fill() with a longer buffer copies its first n bytes: one memcpy, where copy() of a part
    // of READ_BUFFER would first make a view of that part (an object per read).
    chunk.fill(READ_BUFFER);
    this.#onData(chunk);
    return true;
  };

  readonly #onData = (chunk: Buffer): void => {
    const ex = this.#ex;
    if (ex === null) {
      // Bytes nobody asked for: this connection's framing can no longer be trusted.
      this.destroy();
      return;
    }
    // The body timeout restarts from the ticker's next look (no clock read per read).
    if (ex.hasHead) this.#hasBodyRead = true;
    this.#isComplete = false;
    // What the client response holds of this read (relayed chunks, a stream's head) leaves with
    // the end of the body when the response ends here, else at endRead (src/http/relay.ts).
    beginRead();
    try {
      let ok: boolean;
      try {
        ok = this.#parser.feed(chunk);
      } catch (err) {
        // A handler threw inside an event: that exchange ends with the error, the process goes on.
        if (this.#ex === ex) this.#fail(ex, err as Error);
        return;
      }
      if (this.#ex !== ex) return; // aborted by the handler meanwhile
      if (!ok) this.#fail(ex, new UpstreamTransportError(TRANSPORT_CODES.badResponse, `invalid response from the upstream: ${this.#parser.error}`));
      else if (this.#isComplete) this.#complete(ex);
    } finally {
      endRead();
    }
  };

  readonly #onEnd = (): void => {
    const ex = this.#ex;
    if (ex === null) {
      this.destroy();
      return;
    }
    this.#isComplete = false;
    let ok: boolean;
    try {
      ok = this.#parser.end();
    } catch (err) {
      if (this.#ex === ex) this.#fail(ex, err as Error);
      return;
    }
    if (this.#ex !== ex) return;
    if (ok && this.#isComplete) this.#complete(ex);
    else this.#fail(ex, new UpstreamTransportError(TRANSPORT_CODES.closed, this.#parser.error));
  };

  readonly #onError = (err: Error): void => {
    this.#error = err;
    const ex = this.#ex;
    if (ex !== null) this.#fail(ex, err);
    else this.destroy();
  };

  readonly #onClose = (): void => {
    this.isClosed = true;
    inFlight.delete(this);
    this.#pool.forget(this);
    const ex = this.#ex;
    if (ex !== null) this.#fail(ex, this.#error ?? new UpstreamTransportError(TRANSPORT_CODES.closed, 'the upstream closed the connection'));
  };

  // ResponseEvents: called by the parser during feed()/end().

  onHead(status: number, headers: ResponseHeaders): void {
    const ex = this.#ex!;
    ex.hasHead = true;
    this.#setDeadline(ex.request.bodyTimeout, TRANSPORT_CODES.bodyTimeout);
    ex.handler.onResponseStart?.(ex, status, headers, '');
  }

  onBody(chunk: Buffer): void {
    const ex = this.#ex!;
    ex.handler.onResponseData?.(ex, chunk);
  }

  onRun(read: Buffer, start: number, end: number, dataBytes: number): number {
    const ex = this.#ex!;
    // Offered only when the handler takes runs (start()).
    return ex.handler.onResponseRun!(ex, read, start, end, dataBytes);
  }

  onEnd(): void {
    this.#isComplete = true;
  }

  /** #detach unbinds the connection's exchange: no events, no deadline checks from here on. */
  #detach(ex: Exchange): void {
    this.#ex = null;
    ex.conn = null;
    inFlight.delete(this);
  }

  /** #complete ends a fully read exchange: the connection goes back to the pool first, then End. */
  #complete(ex: Exchange): void {
    this.#detach(ex);
    const p = this.#parser;
    // Not reused while part of the request is still unsent (an early answer, e.g. 413): the
    // engine may read those bytes as the next request.
    if (p.isReusable && !this.isClosed && this.socket.writable && this.socket.writableLength === 0 && !this.#pool.isClosed) {
      this.keepAliveMs = p.keepAliveMs < 0 ? DEFAULT_KEEP_ALIVE_MS : Math.min(Math.max(p.keepAliveMs - KEEP_ALIVE_MARGIN_MS, 0), MAX_KEEP_ALIVE_MS);
      if (ex.isPaused) this.socket.resume();
      if (this.keepAliveMs > 0) this.#pool.release(this);
      else this.destroy();
    } else this.destroy();
    if (ex.isDone) return;
    ex.isDone = true;
    try {
      ex.handler.onResponseEnd?.(ex, NO_TRAILERS);
    } catch {
      // Nothing is left to fail: the response was complete and the connection is released.
    }
  }

  #fail(ex: Exchange, err: Error): void {
    this.#drop(ex);
    ex.fail(err);
  }

  /** abandon is the exchange's abort: the response is not read to its end, so the connection closes. */
  abandon(ex: Exchange): void {
    if (this.#ex === ex) this.#drop(ex);
  }

  /** #drop ends an exchange before its response was read to the end: the connection cannot be reused. */
  #drop(ex: Exchange): void {
    this.#detach(ex);
    this.#parser.stop();
    this.destroy();
  }

  refreshBodyDeadline(ex: Exchange): void {
    if (this.#ex === ex && ex.hasHead) this.#setDeadline(ex.request.bodyTimeout, TRANSPORT_CODES.bodyTimeout);
  }

  /** checkDeadline fails the exchange whose current phase ran out of time. */
  checkDeadline(now: number): void {
    const ex = this.#ex;
    if (ex === null) return;
    if (this.#hasBodyRead) {
      this.#hasBodyRead = false;
      if (ex.hasHead) this.#setDeadline(ex.request.bodyTimeout, TRANSPORT_CODES.bodyTimeout);
      return;
    }
    if (this.#deadline === 0 || now < this.#deadline) return;
    if (ex.isPaused && ex.hasHead) return; // a slow client, not a slow upstream
    const code = this.#deadlineCode;
    const what = code === TRANSPORT_CODES.connectTimeout ? 'connecting to' : code === TRANSPORT_CODES.headersTimeout ? 'the response head from' : 'the next response chunk from';
    this.#fail(ex, new UpstreamTransportError(code, `timed out waiting for ${what} the upstream`));
  }

  destroy(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.#pool.forget(this);
    this.socket.destroy();
  }
}

/** H1PoolOptions configure one pool. */
export interface H1PoolOptions {
  connectTimeoutMs: number;
}

/** H1Pool sends requests to one http: origin over pooled keep-alive connections. */
export class H1Pool implements UpstreamDispatcher {
  readonly host: string;
  readonly port: number;
  readonly hostHeader: string;
  readonly connectTimeoutMs: number;
  /** #idle is a stack: the most recently used connection goes out first, the rest can expire. */
  readonly #idle: H1Connection[] = [];
  readonly #all = new Set<H1Connection>();
  isClosed = false;
  #onDrained: (() => void) | null = null;

  constructor(origin: string, opts: H1PoolOptions) {
    const url = new URL(origin);
    if (url.protocol !== 'http:') throw new Error(`H1Pool serves http: origins only, not ${url.protocol}`);
    // URL keeps IPv6 literals bracketed; net.connect wants them bare.
    this.host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.port = url.port === '' ? 80 : Number(url.port);
    this.hostHeader = url.host;
    this.connectTimeoutMs = opts.connectTimeoutMs;
    pools.add(this);
  }

  /** size is the number of open connections (idle and busy). */
  get size(): number {
    return this.#all.size;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): void {
    const ex = new Exchange(request, handler);
    handler.onRequestStart?.(ex, null);
    if (ex.isDone) return;
    if (this.isClosed) {
      ex.fail(new UpstreamTransportError(TRANSPORT_CODES.poolClosed, 'the upstream pool is closed'));
      return;
    }
    if (!SAFE_TARGET.test(request.path)) {
      ex.fail(new UpstreamTransportError(TRANSPORT_CODES.badRequest, 'invalid characters in the upstream request path'));
      return;
    }
    this.#assign(ex);
  }

  #assign(ex: Exchange): void {
    const idle = this.#idle;
    while (idle.length > 0) {
      const conn = idle.pop()!;
      if (conn.isClosed) continue;
      if (performance.now() - conn.idleSince > conn.keepAliveMs) {
        conn.destroy();
        continue;
      }
      conn.check(ex);
      return;
    }
    const conn = new H1Connection(this);
    this.#all.add(conn);
    conn.start(ex);
  }

  /** reuse runs ex on an idle connection that passed its reuse check, or finds it another one. */
  reuse(conn: H1Connection, ex: Exchange): void {
    if (ex.isDone) {
      if (!conn.isClosed) this.release(conn);
      return;
    }
    if (this.isClosed) {
      conn.destroy();
      ex.fail(new UpstreamTransportError(TRANSPORT_CODES.poolClosed, 'the upstream pool is closed'));
    } else if (conn.isClosed) this.#assign(ex);
    else conn.start(ex);
  }

  /** release takes back a connection whose exchange ended cleanly. */
  release(conn: H1Connection): void {
    if (this.isClosed) {
      conn.destroy();
      return;
    }
    conn.idleSince = performance.now();
    this.#idle.push(conn);
    ensureSweeper();
  }

  /** forget drops a closed connection. */
  forget(conn: H1Connection): void {
    if (!this.#all.delete(conn)) return;
    const i = this.#idle.indexOf(conn);
    if (i >= 0) this.#idle.splice(i, 1);
    if (this.#all.size === 0 && this.#onDrained !== null) this.#onDrained();
  }

  /** closeExpired closes idle connections past their keep-alive; returns how many stay idle. */
  closeExpired(now: number): number {
    const idle = this.#idle;
    for (let i = idle.length - 1; i >= 0; i--) {
      const conn = idle[i]!;
      if (now - conn.idleSince > conn.keepAliveMs) conn.destroy();
    }
    return idle.length;
  }

  /** close lets in-flight exchanges finish, closes idle connections and refuses new requests. */
  close(): Promise<void> {
    this.isClosed = true;
    pools.delete(this);
    for (const conn of [...this.#idle]) conn.destroy();
    if (this.#all.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#onDrained = resolve;
    });
  }

  /** destroy closes every connection now; in-flight exchanges fail. */
  destroy(): Promise<void> {
    this.isClosed = true;
    pools.delete(this);
    for (const conn of [...this.#all]) conn.destroy();
    return Promise.resolve();
  }
}
