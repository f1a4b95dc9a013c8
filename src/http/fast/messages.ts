/**
 * The request and response objects of the fast HTTP/1.1 listener. They implement GatewayRequest
 * and GatewayResponse (src/http/gateway-request.ts, gateway-response.ts), the surface the
 * pipeline is typed against, and nothing else. What they write is what node:http would write
 * for the same calls (Date, keep-alive, chunked framing when no length is given), with the same
 * header checks, so a pipeline cannot tell which listener served it.
 */
import { EventEmitter } from 'node:events';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { GatewayRequest } from '../gateway-request.js';
import type { GatewayResponse } from '../gateway-response.js';
import { HEAD_WITH_BODY_BYTES, headWithBody } from '../head-with-body.js';
import { holdUntilReadEnds, read as upstreamRead, type FrameSink } from '../relay.js';
import type { Head } from './parse-head.js';

/** FastRequest is one request head plus its body, delivered as 'data' and 'end' events. */
export class FastRequest extends EventEmitter implements GatewayRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly httpVersion = '1.1';
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor = 1;
  readonly socket: Socket;

  constructor(head: Head, socket: Socket) {
    super();
    this.method = head.method;
    this.url = head.url;
    this.headers = head.headers;
    this.socket = socket;
  }
}

// Header checks as node:http's (validateHeaderName / validateHeaderValue): a token name, and a
// value without CR, LF, NUL or other controls, so an upstream's header can never split a response.
const TOKEN = /^[\^_\x60a-zA-Z\-0-9!#$%&'*+.|~]+$/;
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/** InvalidHeaderError is thrown by writeHead for a header node:http would refuse too. */
export class InvalidHeaderError extends TypeError {
  readonly code: string;
  constructor(code: 'ERR_INVALID_HTTP_TOKEN' | 'ERR_INVALID_CHAR', name: string) {
    super(code === 'ERR_INVALID_HTTP_TOKEN' ? 'Header name must be a valid HTTP token' : `Invalid character in header content ["${name}"]`);
    this.code = code;
  }
}

const STATUS_LINES = new Map<number, string>();
/** statusLine is "HTTP/1.1 <code> <reason>\r\n", built once per code, with node:http's reasons. */
function statusLine(status: number): string {
  let line = STATUS_LINES.get(status);
  if (line === undefined) {
    if (!Number.isInteger(status) || status < 100 || status > 999) throw new RangeError(`Invalid status code: ${status}`);
    line = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'unknown'}\r\n`;
    STATUS_LINES.set(status, line);
  }
  return line;
}

// One Date value per second, as node:http caches its own.
let dateSecond = -1;
let dateValue = '';
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(now).toUTCString();
  }
  return dateValue;
}

const LAST_CHUNK = Buffer.from('0\r\n\r\n');
/** Data up to this size is framed by copying it into one buffer with its size line and CRLF (one write); larger data goes as three. */
const COPY_FRAME_BYTES = 16 * 1024;
const CRLF = Buffer.from('\r\n');

/** HeadState is a response head being built. */
interface HeadState {
  text: string;
  hasLength: boolean;
  hasDate: boolean;
  isClose: boolean;
}

// Names that passed the token check: a response repeats the same few dozen, so most skip the
// regex. Bounded, so odd names from an upstream cannot grow it.
const CHECKED_NAMES = new Set<string>();
const MAX_CHECKED_NAMES = 512;

/** addHeader validates one header and appends it; Connection is noted, not copied (written once, last). */
function addHeader(h: HeadState, name: string, value: string): void {
  if (!CHECKED_NAMES.has(name)) {
    if (!TOKEN.test(name)) throw new InvalidHeaderError('ERR_INVALID_HTTP_TOKEN', name);
    if (CHECKED_NAMES.size < MAX_CHECKED_NAMES) CHECKED_NAMES.add(name);
  }
  if (INVALID_VALUE.test(value)) throw new InvalidHeaderError('ERR_INVALID_CHAR', name);
  // Only these names matter to framing; lower-case just the candidates by length.
  const lower = name.length === 14 || name.length === 10 || name.length === 4 ? name.toLowerCase() : name;
  if (lower === 'content-length') h.hasLength = true;
  else if (lower === 'date') h.hasDate = true;
  else if (lower === 'connection') {
    if (value.toLowerCase() === 'close') h.isClose = true;
    return;
  }
  h.text += `${name}: ${value}\r\n`;
}

/** ResponseOwner is the connection a response belongs to. */
export interface ResponseOwner {
  readonly keepAliveHeader: string;
  /** isClosing tells whether this response must be the connection's last (drain, `Connection: close`). */
  isClosing(): boolean;
  /** done is called once the response is fully handed to the socket. */
  done(res: FastResponse, isLast: boolean): void;
}

type HeaderInput = readonly string[] | Readonly<Record<string, string | number | readonly string[] | undefined>>;

/** FastResponse writes one response on the connection's socket. */
export class FastResponse extends EventEmitter implements GatewayResponse, FrameSink {
  statusCode = 200;
  headersSent = false;
  destroyed = false;
  writableEnded = false;
  writableFinished = false;
  readonly socket: Socket;
  readonly #owner: ResponseOwner;
  /** #head is the response head once writeHead ran (headersSent, as node:http means it); #isHeadWritten once it is on the socket. */
  #head = '';
  #isHeadWritten = false;
  /** #isHeadHeld: flushHeaders ran during an upstream read; the head leaves with that read's bytes (src/http/relay.ts). */
  #isHeadHeld = false;
  #isCloseEmitted = false;
  #isChunked = false;
  #hasBody = true;
  #isLast = false;
  #isCorked = false;
  /** #frameRead holds relayed chunk bytes, #frameRead[#frameStart, #frameEnd), until the upstream read ends (src/http/relay.ts). */
  #frameRead: Buffer | null = null;
  #frameStart = 0;
  #frameEnd = 0;
  /**
   * #held is a response's first body bytes when its head is not out yet and its length was given:
   * held to the end of the tick, so a whole answer (head, body, end) leaves as one buffer.
   */
  #held: Buffer | null = null;

  constructor(socket: Socket, owner: ResponseOwner) {
    super();
    this.socket = socket;
    this.#owner = owner;
  }

  writeHead(status: number, headers?: HeaderInput): this {
    if (this.headersSent) throw new Error('Cannot write headers after they are sent to the client');
    this.statusCode = status;
    const h: HeadState = { text: statusLine(status), hasLength: false, hasDate: false, isClose: this.#owner.isClosing() };
    if (headers !== undefined) {
      if (Array.isArray(headers)) {
        const list = headers as readonly string[];
        for (let i = 0; i < list.length; i += 2) addHeader(h, list[i]!, list[i + 1]!);
      } else {
        const obj = headers as Readonly<Record<string, string | number | readonly string[] | undefined>>;
        for (const name in obj) {
          const v = obj[name];
          if (v === undefined) continue;
          if (typeof v === 'string') addHeader(h, name, v);
          else if (typeof v === 'number') addHeader(h, name, String(v));
          else for (const one of v) addHeader(h, name, one);
        }
      }
    }
    // HEAD requests never reach this listener (parse-head hands them to node:http).
    this.#hasBody = status !== 204 && status !== 304 && !(status >= 100 && status < 200);
    this.#isChunked = this.#hasBody && !h.hasLength;
    let text = h.text;
    if (!h.hasDate) text += `Date: ${httpDate()}\r\n`;
    text += h.isClose ? 'Connection: close\r\n' : this.#owner.keepAliveHeader;
    if (this.#isChunked) text += 'Transfer-Encoding: chunked\r\n';
    this.#isLast = h.isClose;
    this.#head = `${text}\r\n`;
    this.headersSent = true;
    return this;
  }

  /**
   * flushHeaders sends the head now (a stream's head should not wait for its first event), or,
   * during an upstream read, at the end of that read, with the events it carried: one write.
   */
  flushHeaders(): void {
    if (this.#isHeadWritten || this.destroyed) return;
    if (!this.headersSent) this.writeHead(this.statusCode);
    if (upstreamRead.isActive) {
      if (!this.#isHeadHeld) {
        this.#isHeadHeld = true;
        holdUntilReadEnds(this);
      }
      return;
    }
    this.#writeHeadOnce();
  }

  static #flushHeldTick(res: FastResponse): void {
    if (res.#held !== null) res.#flushHeld();
  }

  /** #flushHeld writes the head with the body bytes held behind it, as one buffer. */
  #flushHeld(): void {
    const held = this.#held!;
    this.#held = null;
    if (this.destroyed) return;
    this.#isHeadWritten = true;
    this.#isHeadHeld = false;
    this.socket.write(headWithBody(this.#head, held));
  }

  /** #writeHeadOnce puts the head on the socket if it is not there yet. */
  #writeHeadOnce(): void {
    if (this.#isHeadWritten) return;
    if (this.#held !== null) {
      this.#flushHeld();
      return;
    }
    this.#isHeadWritten = true;
    this.#isHeadHeld = false;
    this.socket.write(this.#head, 'latin1');
  }

  /** #writeData writes body bytes, framed as a chunk when the length was not given; false: the socket is full. */
  #writeData(data: Buffer): boolean {
    const sock = this.socket;
    if (!this.#isChunked) return sock.write(data);
    const n = data.length;
    const size = n.toString(16);
    if (n > COPY_FRAME_BYTES) {
      sock.write(`${size}\r\n`, 'latin1');
      sock.write(data);
      return sock.write(CRLF);
    }
    // One buffer, one write: a copy of an event is cheaper than two more writes.
    const s = size.length;
    const out = Buffer.allocUnsafe(s + n + 4);
    for (let i = 0; i < s; i++) out[i] = size.charCodeAt(i);
    out[s] = 0x0d;
    out[s + 1] = 0x0a;
    data.copy(out, s + 2);
    out[s + 2 + n] = 0x0d;
    out[s + 3 + n] = 0x0a;
    return sock.write(out);
  }

  /** relayRun holds whole chunks of an upstream read, read[start, end), to be written with the read's other relayed bytes (GatewayResponse.relayRun). */
  relayRun(read: Buffer, start: number, end: number): boolean | undefined {
    if (!this.#isChunked || !(this.#isHeadWritten || this.#isHeadHeld) || this.destroyed || this.writableEnded) return undefined;
    if (this.#frameRead === read && this.#frameEnd === start) this.#frameEnd = end;
    else {
      if (this.#frameRead !== null) this.flushFrames();
      holdUntilReadEnds(this);
      this.#frameRead = read;
      this.#frameStart = start;
      this.#frameEnd = end;
    }
    return !this.socket.writableNeedDrain;
  }

  /** flushFrames writes what is held: the head (if held) and the relayed chunk bytes, in one write. */
  flushFrames(): void {
    const read = this.#frameRead;
    const isHead = this.#isHeadHeld;
    this.#frameRead = null;
    this.#isHeadHeld = false;
    if (this.destroyed) return;
    if (read === null) {
      if (isHead) this.#writeHeadOnce();
      return;
    }
    const start = this.#frameStart;
    const end = this.#frameEnd;
    const bytes = start === 0 && end === read.length ? read : read.subarray(start, end);
    const sock = this.socket;
    if (!isHead) {
      sock.write(bytes);
      return;
    }
    sock.cork();
    this.#writeHeadOnce();
    sock.write(bytes);
    sock.uncork();
  }

  /**
   * #cork holds this tick's writes and sends them as one writev on the next tick, as node:http
   * does: an upstream read often carries many SSE events, each its own write() here.
   */
  #cork(): void {
    if (this.#isCorked) return;
    this.#isCorked = true;
    this.socket.cork();
    process.nextTick(FastResponse.#uncork, this);
  }

  static #uncork(res: FastResponse): void {
    // end() may have sent this tick's writes already.
    if (!res.#isCorked) return;
    res.#isCorked = false;
    res.socket.uncork();
  }

  write(chunk: Buffer | string): boolean {
    if (this.destroyed || this.writableEnded) return false;
    if (!this.headersSent) this.writeHead(this.statusCode);
    const sock = this.socket;
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (!this.#hasBody || data.length === 0) {
      this.flushHeaders();
      return !sock.writableNeedDrain;
    }
    if (!this.#isHeadWritten && !this.#isChunked && !this.#isCorked && this.#held === null && data.length <= HEAD_WITH_BODY_BYTES) {
      this.#held = data;
      process.nextTick(FastResponse.#flushHeldTick, this);
      return true;
    }
    this.#cork();
    this.#writeHeadOnce();
    // Relayed chunks held for the end of the upstream read go first.
    if (this.#frameRead !== null) this.flushFrames();
    return this.#writeData(data);
  }

  end(chunk?: Buffer | string): this {
    if (this.destroyed || this.writableEnded) return this;
    if (!this.headersSent) this.writeHead(this.statusCode);
    const sock = this.socket;
    const data = chunk === undefined ? null : typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.writableEnded = true;
    const held = this.#held;
    if (!this.#isCorked && !this.#isHeadWritten && !this.#isHeadHeld && this.#frameRead === null && !this.#isChunked && this.#hasBody) {
      // The whole response at once (a JSON answer, an error): head and body copied into one
      // buffer and written with one call, without the cork and writev of the general case.
      if ((held === null ? 0 : held.length) + (data === null ? 0 : data.length) <= HEAD_WITH_BODY_BYTES) {
        this.#held = null;
        this.#isHeadWritten = true;
        sock.write(headWithBody(this.#head, held, data), this.#onFlushed);
        return this;
      }
    }
    // Head, this tick's corked writes and the end leave now, in one writev: a response's last
    // bytes do not wait for the next tick (and whatever else the caller does in this one).
    if (!this.#isCorked) sock.cork();
    this.#isCorked = false;
    this.#writeHeadOnce();
    if (this.#frameRead !== null) this.flushFrames();
    if (this.#hasBody && data !== null && data.length > 0) this.#writeData(data);
    if (this.#isChunked) sock.write(LAST_CHUNK, this.#onFlushed);
    else sock.write('', this.#onFlushed);
    sock.uncork();
    return this;
  }

  readonly #onFlushed = (err?: Error | null): void => {
    if (err || this.destroyed) return;
    this.writableFinished = true;
    this.emit('finish');
    // 'close' after this turn's ticks and microtasks: what runs on 'close' (accounting, releasing
    // a concurrency slot to the next queued request) must see the upstream connection of this
    // response back in undici's pool (freed in a microtask), or the next request opens a new one
    // and can overtake an earlier one on the way to the engine.
    setImmediate(FastResponse.#closeAfterFinish, this);
  };

  static #closeAfterFinish(res: FastResponse): void {
    res.#emitClose();
    // After 'close' (accounting, access log), so the next pipelined request starts after it.
    res.#owner.done(res, res.#isLast);
  }

  #emitClose(): void {
    if (this.#isCloseEmitted) return;
    this.#isCloseEmitted = true;
    this.emit('close');
  }

  /** destroy drops the connection (what node:http's res.destroy() does too); 'close' follows. */
  destroy(err?: Error): this {
    this.destroyed = true;
    this.#held = null;
    this.#frameRead = null;
    this.#isHeadHeld = false;
    this.socket.destroy(err);
    return this;
  }

  /** socketClosed is called by the connection when its socket closes under this response. */
  socketClosed(): void {
    if (this.writableFinished) return;
    this.destroyed = true;
    this.#emitClose();
  }
}
