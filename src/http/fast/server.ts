/**
 * The fast HTTP/1.1 listener: a `net` server that parses the common request shape itself
 * (parse-head.ts) and hands everything else, connection and unread bytes, to the node:http
 * server next to it, which then owns that connection for good. A request it serves costs no
 * IncomingMessage/ServerResponse streams, no llhttp round trip through C++ and no header
 * re-validation of the request; responses are written with one cork/uncork (writev).
 *
 * Semantics kept from node:http: keep-alive with `Keep-Alive: timeout=N`, pipelined requests
 * answered in order (the next head is parsed only once the previous response is written),
 * `Connection: close`, a client's half-close ends the connection, the header timeout (408, as
 * the gateway's clientError answer) and idle keep-alive timeout checked once a second, and
 * closeIdleConnections / server.close for draining.
 */
import { Server, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { HeadEnd } from '../head-end.js';
import { FastRequest, FastResponse, type ResponseOwner } from './messages.js';
import { HAND_OVER, INCOMPLETE, TOO_MANY_FIELDS, hasBareLf, parseHead } from './parse-head.js';

/** FastServerOptions are the listener's limits, its fallback and its request handler. */
export interface FastServerOptions {
  maxHeadBytes: number;
  headerTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** fallback is the node:http server that takes the connections this listener does not serve. */
  fallback: HttpServer;
  onRequest: (req: FastRequest, res: FastResponse) => void;
  /** timeoutAnswer is written (then the connection closes) when a head takes longer than headerTimeoutMs. */
  timeoutAnswer: string;
  /** tooManyFieldsAnswer is written (then the connection closes) for a head over MAX_HEADER_FIELDS fields. */
  tooManyFieldsAnswer: string;
}

// Bytes of pipelined requests buffered while a response is in progress before reading pauses.
const PIPELINE_BUFFER_BYTES = 64 * 1024;

/** FastServer is the listener. */
export class FastServer extends Server {
  readonly opts: FastServerOptions;
  readonly keepAliveHeader: string;
  readonly #connections = new Set<Connection>();
  #sweeper: NodeJS.Timeout | null = null;

  constructor(opts: FastServerOptions) {
    // allowHalfOpen: the connection decides what a client's half-close means (see #onEnd).
    super({ noDelay: true, allowHalfOpen: true });
    this.opts = opts;
    this.keepAliveHeader = `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(opts.keepAliveTimeoutMs / 1000)}\r\n`;
    this.on('connection', (sock: Socket) => this.#connections.add(new Connection(sock, this)));
    this.on('listening', () => {
      this.#sweeper ??= setInterval(() => this.#sweep(), 1000).unref();
    });
    this.on('close', () => {
      if (this.#sweeper !== null) clearInterval(this.#sweeper);
      this.#sweeper = null;
    });
  }

  /** forget drops a connection that closed or was handed over. */
  forget(conn: Connection): void {
    this.#connections.delete(conn);
  }

  /** closeIdleConnections closes keep-alive connections between requests (drain), here and in the fallback. */
  closeIdleConnections(): void {
    for (const c of this.#connections) c.closeIfIdle();
    this.opts.fallback.closeIdleConnections();
  }

  #sweep(): void {
    const now = Date.now();
    for (const c of this.#connections) c.checkTimers(now);
  }
}

/** Connection is one client connection while this listener serves it. */
class Connection implements ResponseOwner {
  readonly #sock: Socket;
  readonly #server: FastServer;
  /** #buf holds received bytes not yet parsed (a head, or pipelined requests). */
  #buf: Buffer | null = null;
  /**
   * #parts collects the reads of a head that arrived incomplete, joined only once its blank line
   * shows up (HeadEnd carries a partial match across reads), so a head sent a byte at a time
   * costs linear work, never a re-join and re-parse per byte.
   */
  #parts: Buffer[] | null = null;
  #partsLength = 0;
  readonly #headEnd = new HeadEnd();
  /** #lastByte is the last byte of the head's reads so far (an LF at the start of the next read needs it). */
  #lastByte = -1;
  /** #queued holds reads that arrive while a response is in progress (pipelined requests), joined once it is done. */
  #queued: Buffer[] = [];
  #queuedLength = 0;
  #req: FastRequest | null = null;
  #res: FastResponse | null = null;
  /** #bodyLeft is how many bytes of the current request body are still to come. */
  #bodyLeft = 0;
  /**
   * #headSince is when the wait for the current head began: the accept for the first request
   * (a connection that never sends a byte gets the header timeout, as with node:http), the
   * first byte for later ones; 0 while a request is served or the connection idles between requests.
   */
  #headSince = Date.now();
  #idleSince = Date.now();
  #isCloseRequested = false;
  #isReadEnded = false;
  /** #isDone: the last response went out (or a 408); what still arrives is not read as requests. */
  #isDone = false;

  constructor(sock: Socket, server: FastServer) {
    this.#sock = sock;
    this.#server = server;
    sock.on('data', this.#onData);
    sock.on('end', this.#onEnd);
    sock.on('close', this.#onClose);
    sock.on('error', this.#onError);
    sock.on('drain', this.#onDrain);
  }

  get keepAliveHeader(): string {
    return this.#server.keepAliveHeader;
  }

  isClosing(): boolean {
    return this.#isCloseRequested || this.#isReadEnded || !this.#server.listening;
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#isDone) return;
    if (this.#bodyLeft > 0) {
      const part = chunk.length <= this.#bodyLeft ? chunk : chunk.subarray(0, this.#bodyLeft);
      this.#bodyLeft -= part.length;
      // No request: it was answered before its body arrived (413); the rest is read and dropped.
      const req = this.#req;
      if (req !== null) {
        req.emit('data', part);
        if (this.#bodyLeft === 0) req.emit('end');
      }
      if (part.length === chunk.length) return;
      chunk = chunk.subarray(part.length);
    }
    if (this.#res !== null) {
      this.#queued.push(chunk);
      this.#queuedLength += chunk.length;
      if (this.#queuedLength + (this.#buf?.length ?? 0) > PIPELINE_BUFFER_BYTES) this.#sock.pause();
      return;
    }
    const parts = this.#parts;
    if (parts !== null) {
      parts.push(chunk);
      this.#partsLength += chunk.length;
      const isComplete = this.#headEnd.find(chunk, 0) !== -1;
      if (!isComplete && this.#partsLength <= this.#server.opts.maxHeadBytes && !hasBareLf(chunk, 0, this.#lastByte)) {
        this.#lastByte = chunk[chunk.length - 1]!;
        return;
      }
      this.#buf = Buffer.concat(parts, this.#partsLength);
      this.#dropParts();
    } else this.#buf = this.#buf === null ? chunk : Buffer.concat([this.#buf, chunk]);
    this.#next();
  };

  #dropParts(): void {
    this.#parts = null;
    this.#partsLength = 0;
    this.#headEnd.reset();
    this.#lastByte = -1;
  }

  /** #takeQueued puts the reads that came in during the last response behind the bytes still unparsed, in one join. */
  #takeQueued(): void {
    const queued = this.#queued;
    if (queued.length === 0) return;
    const rest = this.#buf;
    const length = this.#queuedLength + (rest === null ? 0 : rest.length);
    if (rest !== null) queued.unshift(rest);
    this.#buf = queued.length === 1 ? queued[0]! : Buffer.concat(queued, length);
    this.#queued = [];
    this.#queuedLength = 0;
  }

  #dropQueued(): void {
    if (this.#queuedLength === 0) return;
    this.#queued = [];
    this.#queuedLength = 0;
  }

  /** #next starts the next buffered request, if its head is complete. */
  #next(): void {
    const buf = this.#buf;
    if (buf === null) return;
    if (this.#headSince === 0) this.#headSince = Date.now();
    const head = parseHead(buf, 0, this.#server.opts.maxHeadBytes);
    if (head === INCOMPLETE) {
      this.#parts = [buf];
      this.#partsLength = buf.length;
      // parseHead scanned buf for the blank line: the scan state is that of its last 3 bytes.
      this.#headEnd.find(buf, Math.max(0, buf.length - 3));
      this.#lastByte = buf[buf.length - 1]!;
      this.#buf = null;
      return;
    }
    if (head === HAND_OVER) return this.#handOver();
    if (head === TOO_MANY_FIELDS) {
      this.#sock.write(this.#server.opts.tooManyFieldsAnswer);
      return this.#finish();
    }
    this.#headSince = 0;
    let rest: Buffer | null = buf.length > head.end ? buf.subarray(head.end) : null;
    const req = new FastRequest(head, this.#sock);
    const res = new FastResponse(this.#sock, this);
    this.#req = req;
    this.#res = res;
    this.#isCloseRequested = head.isClose;
    this.#bodyLeft = head.contentLength;
    let body: Buffer | null = null;
    if (this.#bodyLeft > 0 && rest !== null) {
      body = rest.length <= this.#bodyLeft ? rest : rest.subarray(0, this.#bodyLeft);
      this.#bodyLeft -= body.length;
      rest = body.length === rest.length ? null : rest.subarray(body.length);
    }
    this.#buf = rest;
    // The handler attaches its body listeners synchronously, as with node:http.
    this.#server.opts.onRequest(req, res);
    if (body !== null) req.emit('data', body);
    if (this.#bodyLeft === 0) req.emit('end');
  }

  /** done: the response is written. Next request, or close. */
  done(res: FastResponse, isLast: boolean): void {
    if (res !== this.#res) return;
    this.#res = null;
    this.#req = null;
    this.#idleSince = Date.now();
    // A response sent before its request body was read leaves the stream out of step: close.
    if (isLast || this.#bodyLeft > 0 || this.isClosing()) return this.#finish();
    if (this.#sock.isPaused()) this.#sock.resume();
    this.#takeQueued();
    this.#next();
  }

  /** #finish ends the connection after its last response; nothing read later becomes a request. */
  #finish(): void {
    this.#isDone = true;
    this.#buf = null;
    this.#dropParts();
    this.#dropQueued();
    this.#bodyLeft = 0;
    this.#sock.destroySoon();
  }

  /** #handOver gives the connection, with the bytes read so far, to node:http. */
  #handOver(): void {
    const sock = this.#sock;
    sock.off('data', this.#onData);
    sock.off('end', this.#onEnd);
    sock.off('close', this.#onClose);
    sock.off('error', this.#onError);
    sock.off('drain', this.#onDrain);
    sock.pause();
    this.#server.forget(this);
    // The bytes read so far go back into the socket's stream; resume() hands them to node:http's
    // parser on the next tick, before anything the network delivers later.
    this.#takeQueued();
    if (this.#buf !== null) sock.unshift(this.#buf);
    this.#buf = null;
    this.#server.opts.fallback.emit('connection', sock);
    sock.resume();
  }

  readonly #onEnd = (): void => {
    // As node:http (httpAllowHalfOpen false): a client that ends its side has left; a response in
    // progress is cut, so its 'close' tells the pipeline to abort the upstream request.
    this.#isReadEnded = true;
    if (this.#res === null) this.#sock.end();
    else this.#sock.destroy();
  };

  readonly #onClose = (): void => {
    this.#server.forget(this);
    this.#res?.socketClosed();
    this.#res = null;
    this.#req = null;
    this.#buf = null;
    this.#dropQueued();
  };

  readonly #onError = (): void => {
    // A reset or write error: 'close' follows and tells the response, if any.
    this.#sock.destroy();
  };

  readonly #onDrain = (): void => {
    this.#res?.emit('drain');
  };

  /** closeIfIdle closes the connection when it is between requests (a fresh one may be sending its first). */
  closeIfIdle(): void {
    if (this.#res === null && this.#headSince === 0 && this.#buf === null && this.#parts === null) this.#sock.destroy();
  }

  /** checkTimers answers 408 to a head that is too slow and closes an idle keep-alive connection. */
  checkTimers(now: number): void {
    if (this.#res !== null || this.#isDone) return;
    const { headerTimeoutMs, keepAliveTimeoutMs, timeoutAnswer } = this.#server.opts;
    if (this.#headSince > 0) {
      if (now - this.#headSince > headerTimeoutMs) {
        this.#sock.write(timeoutAnswer);
        this.#finish();
      }
    } else if (now - this.#idleSince > keepAliveTimeoutMs) this.#sock.destroy();
  }
}
