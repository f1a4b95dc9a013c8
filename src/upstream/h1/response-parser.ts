/**
 * ResponseParser reads the responses of one upstream HTTP/1.1 connection, one exchange at a time,
 * from the socket's chunks as they come. It is strict where a lenient reading could let one
 * response's bytes be taken for another's (RFC 9112): bare LF, obs-fold, malformed or
 * conflicting Content-Length, bad chunk framing and control characters in headers are errors,
 * and bytes after the end of a response are reported so the connection is not reused.
 *
 * Body bytes are handed on as slices of the socket's chunks (no copy); chunked framing is
 * removed, trailers are read and dropped. 1xx interim heads (other than 101) are skipped.
 * A chunk that arrived whole in one read (a plain hex size line, its data, its CRLF) is noted in
 * the relay's `frame` while its data is handed on, so a chunked client response can send the
 * chunk's own bytes (src/http/relay.ts).
 */
import { HeadEnd } from '../../http/index.js';
import { frame } from '../../http/relay.js';

/** ResponseHeaders are the header fields of a response: lower-case names, repeated fields as arrays. */
export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** ResponseEvents receives what the parser reads. */
export interface ResponseEvents {
  onHead(status: number, headers: ResponseHeaders): void;
  onBody(chunk: Buffer): void;
  /**
   * onRun, when given, is offered each run of whole chunks of a chunked body found complete in
   * one read: read[start, end) holds them with their framing, dataBytes their data. Returns
   * where the chunks it took as they are end (a chunk boundary; `start`: none); the others are
   * delivered one by one through onBody.
   */
  onRun?(read: Buffer, start: number, end: number, dataBytes: number): number;
  onEnd(): void;
}

/** MAX_HEAD_BYTES bounds a response head (and a chunked body's trailer section), as node's default. */
export const MAX_HEAD_BYTES = 16 * 1024;
const MAX_CHUNK_LINE = 4096;

// Body framing of the current response.
const B_NONE = 0;
const B_LENGTH = 1;
const B_CHUNKED = 2;
const B_CLOSE = 3;

// Where the parser is.
const S_IDLE = 0;
const S_HEAD = 1;
const S_BODY = 2;
const S_DONE = 3;
const S_ERROR = 4;

// Chunked framing states.
const C_SIZE = 0;
const C_EXT = 1;
const C_BWS = 10;
const C_SIZE_LF = 2;
const C_DATA = 3;
const C_DATA_CR = 4;
const C_DATA_LF = 5;
const C_TRAILER_START = 6;
const C_TRAILER_LINE = 7;
const C_TRAILER_LF = 8;
const C_END_LF = 9;

const CR = 13;
const LF = 10;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
/**
 * NAMES maps header names already found to be tokens to their lower case: an engine sends the
 * same few names on every response. Bounded, so odd names cannot grow it.
 */
const NAMES = new Map<string, string>();
const MAX_NAMES = 512;
const DIGITS = /^\d{1,15}$/;
const CLOSE_TOKEN = /(?:^|,)[ \t]*close[ \t]*(?:,|$)/i;
const KEEP_ALIVE_TIMEOUT = /(?:^|[,;\s])timeout[ \t]*=[ \t]*(\d{1,9})/i;

/** hexValue is the value of an ASCII hex digit, or -1. */
function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

export class ResponseParser {
  readonly #events: ResponseEvents;
  #state = S_IDLE;
  #isHeadRequest = false;
  /** #parts hold copies of the reads of a head that did not arrive in one chunk; joined once, when it is complete. */
  #parts: Buffer[] = [];
  #partsBytes = 0;
  readonly #headEnd = new HeadEnd();
  #body = B_NONE;
  #remaining = 0;
  #chunkState = C_SIZE;
  #lineBytes = 0;
  #trailerBytes = 0;
  /** #frameStart is where the current chunk's size line began in the chunk being fed (-1: in an earlier read, or it has extensions). */
  #frameStart = -1;
  /** #noRunBefore: a run refused by onRun ends here; its chunks are read one by one (an offset in the current read). */
  #noRunBefore = 0;
  /** #offersRuns: this response's chunk runs go to onRun (it is given, and the exchange takes runs). */
  #offersRuns = false;
  /** error says what was wrong with the bytes, once feed() or end() returned false. */
  error = '';
  /** isReusable tells whether the connection may carry another exchange after this response. */
  isReusable = false;
  /** keepAliveMs is the server's Keep-Alive timeout hint in ms (-1 = none). */
  keepAliveMs = -1;
  /** hasExtraBytes is set when bytes followed the end of the response in the same read. */
  hasExtraBytes = false;
  /** extraAt is where those bytes begin in the chunk last fed (valid while hasExtraBytes). */
  extraAt = 0;

  constructor(events: ResponseEvents) {
    this.#events = events;
  }

  /** isDone tells whether the current response has been read to its end. */
  get isDone(): boolean {
    return this.#state === S_DONE;
  }

  /** hasStarted tells whether any byte of the current response has arrived. */
  get hasStarted(): boolean {
    return this.#state !== S_HEAD || this.#partsBytes !== 0;
  }

  /**
   * start prepares for the response to a new request (isHead: the request was HEAD, so no body).
   * offersRuns false: nobody takes runs of chunks for this one, so none are looked for.
   */
  start(isHeadRequest: boolean, offersRuns = true): void {
    this.#state = S_HEAD;
    this.#isHeadRequest = isHeadRequest;
    this.#offersRuns = offersRuns && this.#events.onRun !== undefined;
    this.#dropParts();
    this.#body = B_NONE;
    this.#remaining = 0;
    this.#chunkState = C_SIZE;
    this.#lineBytes = 0;
    this.#trailerBytes = 0;
    this.error = '';
    this.isReusable = false;
    this.keepAliveMs = -1;
    this.hasExtraBytes = false;
    this.extraAt = 0;
  }

  /**
   * feed reads one chunk from the socket; false means the bytes are not a valid response (see
   * error). Events are delivered while it runs; stop() from inside one ends the reading.
   */
  feed(chunk: Buffer): boolean {
    if (this.#state === S_IDLE) return this.#fail('the upstream sent bytes with no request outstanding');
    this.#frameStart = -1;
    this.#noRunBefore = 0;
    let at = 0;
    while (at < chunk.length) {
      const state = this.#state;
      if (state === S_HEAD) {
        const next = this.#readHead(chunk, at);
        if (next < 0) return this.#state !== S_ERROR;
        at = next;
      } else if (state === S_BODY) {
        at = this.#body === B_CHUNKED ? this.#readChunked(chunk, at) : this.#readPlain(chunk, at);
      } else if (state === S_DONE) {
        this.hasExtraBytes = true;
        this.extraAt = at;
        this.isReusable = false;
        return true;
      } else return state !== S_ERROR; // stopped (S_IDLE) or failed
    }
    return this.#state !== S_ERROR;
  }

  /** stop abandons the current response (the exchange was aborted): nothing more is delivered. */
  stop(): void {
    if (this.#state !== S_ERROR) this.#state = S_IDLE;
    this.#dropParts();
  }

  #dropParts(): void {
    if (this.#partsBytes !== 0) this.#parts = [];
    this.#partsBytes = 0;
    this.#headEnd.reset();
  }

  /**
   * end is called when the upstream closed its side. A close-delimited body ends there; any
   * other response that is not complete is an error (false).
   */
  end(): boolean {
    if (this.#state === S_BODY && this.#body === B_CLOSE) {
      this.#finish();
      return true;
    }
    if (this.#state === S_DONE) return true;
    return this.#fail('the upstream closed the connection before the response was complete');
  }

  #fail(reason: string): boolean {
    this.#state = S_ERROR;
    this.error = reason;
    this.isReusable = false;
    return false;
  }

  #finish(): void {
    this.#state = S_DONE;
    this.#events.onEnd();
  }

  /** #readHead finds and parses a complete head; returns where the body starts, or -1 (incomplete or error). */
  #readHead(chunk: Buffer, at: number): number {
    const end = this.#headEnd.find(chunk, at);
    if (end < 0) {
      const size = this.#partsBytes + chunk.length - at;
      if (size > MAX_HEAD_BYTES) {
        this.#fail('response head too large');
        return -1;
      }
      // Keep a private copy: the socket's chunk may be reused by the caller.
      this.#parts.push(Buffer.from(chunk.subarray(at)));
      this.#partsBytes = size;
      return -1;
    }
    // The head's bytes without its blank line.
    const size = this.#partsBytes + end - at - 4;
    if (size > MAX_HEAD_BYTES) {
      this.#fail('response head too large');
      return -1;
    }
    let text: string;
    if (this.#partsBytes === 0) text = chunk.toString('latin1', at, end - 4);
    else {
      this.#parts.push(chunk.subarray(at, end));
      text = Buffer.concat(this.#parts, size + 4).toString('latin1', 0, size);
      this.#dropParts();
    }
    if (!this.#parseHead(text)) return -1;
    return end;
  }

  /** #parseHead reads a status line and header fields; false on a malformed head. */
  #parseHead(text: string): boolean {
    const lineEnd = text.indexOf('\r\n');
    const statusLine = lineEnd < 0 ? text : text.slice(0, lineEnd);
    // "HTTP/1.x NNN[ reason]"
    if (statusLine.length < 12 || !statusLine.startsWith('HTTP/1.') || statusLine.charCodeAt(8) !== 32) return this.#fail('malformed status line');
    const minor = statusLine.charCodeAt(7);
    if (minor !== 49 && minor !== 48) return this.#fail('unsupported HTTP version');
    const s0 = statusLine.charCodeAt(9) - 48;
    const s1 = statusLine.charCodeAt(10) - 48;
    const s2 = statusLine.charCodeAt(11) - 48;
    if (s0 < 1 || s0 > 5 || s1 < 0 || s1 > 9 || s2 < 0 || s2 > 9) return this.#fail('malformed status code');
    if (statusLine.length > 12 && statusLine.charCodeAt(12) !== 32) return this.#fail('malformed status line');
    if (BAD_VALUE.test(statusLine)) return this.#fail('malformed status line');
    const status = s0 * 100 + s1 * 10 + s2;

    const headers: ResponseHeaders = Object.create(null) as ResponseHeaders;
    let length = -1;
    let te: string | null = null;
    let isClose = minor === 48;
    let keepAlive: string | null = null;
    let pos = lineEnd < 0 ? text.length : lineEnd + 2;
    while (pos < text.length) {
      let next = text.indexOf('\r\n', pos);
      if (next < 0) next = text.length;
      const first = text.charCodeAt(pos);
      if (first === 32 || first === 9) return this.#fail('obsolete line folding in a response header');
      const colon = text.indexOf(':', pos);
      if (colon < 0 || colon >= next) return this.#fail('malformed response header line');
      const rawName = text.slice(pos, colon);
      let name = NAMES.get(rawName);
      if (name === undefined) {
        if (!TOKEN.test(rawName)) return this.#fail('malformed response header name');
        name = rawName.toLowerCase();
        if (NAMES.size < MAX_NAMES) NAMES.set(rawName, name);
      }
      let vs = colon + 1;
      let ve = next;
      while (vs < ve && (text.charCodeAt(vs) === 32 || text.charCodeAt(vs) === 9)) vs++;
      while (ve > vs && (text.charCodeAt(ve - 1) === 32 || text.charCodeAt(ve - 1) === 9)) ve--;
      const value = text.slice(vs, ve);
      if (BAD_VALUE.test(value)) return this.#fail('control character in a response header value');
      switch (name) {
        case 'content-length': {
          // Exactly one plain number: the header is passed on to the client, so a list or a
          // second copy (even an equal one) is refused rather than forwarded.
          if (length !== -1) return this.#fail('more than one Content-Length');
          if (!DIGITS.test(value)) return this.#fail('malformed Content-Length');
          length = Number(value);
          break;
        }
        case 'transfer-encoding':
          te = te === null ? value : `${te}, ${value}`;
          break;
        case 'connection':
          if (CLOSE_TOKEN.test(value)) isClose = true;
          break;
        case 'keep-alive':
          keepAlive = value;
          break;
      }
      const prev = headers[name];
      if (prev === undefined) headers[name] = value;
      else if (typeof prev === 'string') headers[name] = [prev, value];
      else prev.push(value);
      pos = next + 2;
    }

    if (status < 200) {
      // 101 needs an Upgrade the gateway never asks for here; other 1xx heads are interim.
      if (status === 101) return this.#fail('unexpected 101 Switching Protocols');
      this.#state = S_HEAD;
      return true;
    }

    let isReusable = !isClose;
    // Both framings at once is how responses are smuggled; llhttp refuses it too. (The
    // Content-Length would also reach the client, next to a body of another length.)
    if (te !== null && length !== -1) return this.#fail('both Transfer-Encoding and Content-Length');
    if (this.#isHeadRequest || status === 204 || status === 304) {
      this.#body = B_NONE;
    } else if (te === 'chunked') {
      this.#body = B_CHUNKED;
    } else if (te !== null) {
      const codings = te.toLowerCase().split(',');
      const last = codings[codings.length - 1]!.trim();
      if (last === 'chunked') {
        for (let i = 0; i < codings.length - 1; i++) if (codings[i]!.trim() === 'chunked') return this.#fail('chunked applied twice');
        this.#body = B_CHUNKED;
      } else this.#body = B_CLOSE;
    } else if (length !== -1) {
      this.#body = B_LENGTH;
      this.#remaining = length;
    } else {
      this.#body = B_CLOSE;
    }
    if (this.#body === B_CLOSE) isReusable = false;
    this.isReusable = isReusable;
    if (keepAlive !== null) {
      const m = KEEP_ALIVE_TIMEOUT.exec(keepAlive);
      if (m !== null) this.keepAliveMs = Number(m[1]) * 1000;
    }

    this.#state = S_BODY;
    this.#events.onHead(status, headers);
    if (this.#state !== S_BODY) return true; // the handler may have reset or aborted the exchange
    if (this.#body === B_NONE || (this.#body === B_LENGTH && this.#remaining === 0)) this.#finish();
    return true;
  }

  /** #readPlain reads Content-Length and close-delimited bodies. */
  #readPlain(chunk: Buffer, at: number): number {
    if (this.#body === B_NONE) {
      this.#finish();
      return at;
    }
    let end = chunk.length;
    if (this.#body === B_LENGTH && end - at > this.#remaining) end = at + this.#remaining;
    if (end > at) {
      if (this.#body === B_LENGTH) this.#remaining -= end - at;
      this.#events.onBody(at === 0 && end === chunk.length ? chunk : chunk.subarray(at, end));
    }
    if (this.#body === B_LENGTH && this.#remaining === 0 && this.#state === S_BODY) this.#finish();
    return end;
  }

  /**
   * #offerRun finds the whole chunks that start at `at` and end in this read (a plain size line,
   * data, CRLF; the last chunk of the body is left to the state machine) and offers them as one
   * run. Returns where reading goes on: past the chunks taken; the run's others are read one by
   * one, without offering them again.
   */
  #offerRun(chunk: Buffer, at: number): number {
    const n = chunk.length;
    let p = at;
    let dataBytes = 0;
    for (;;) {
      let q = p;
      let size = 0;
      while (q < n && q - p < 8) {
        const h = hexValue(chunk[q]!);
        if (h < 0) break;
        size = size * 16 + h;
        q++;
      }
      if (q === p || size === 0 || q + 1 >= n || chunk[q] !== CR || chunk[q + 1] !== LF) break;
      const dataEnd = q + 2 + size;
      if (dataEnd + 1 >= n || chunk[dataEnd] !== CR || chunk[dataEnd + 1] !== LF) break;
      dataBytes += size;
      p = dataEnd + 2;
    }
    if (p === at) return at;
    const taken = this.#events.onRun!(chunk, at, p, dataBytes);
    if (taken < p) this.#noRunBefore = p;
    return taken;
  }

  /** #readChunked removes chunked framing; data goes on as slices. */
  #readChunked(chunk: Buffer, at: number): number {
    let i = at;
    const n = chunk.length;
    while (i < n && this.#state === S_BODY) {
      const c = chunk[i]!;
      switch (this.#chunkState) {
        case C_SIZE: {
          if (this.#offersRuns && this.#lineBytes === 0 && i >= this.#noRunBefore) {
            const next = this.#offerRun(chunk, i);
            if (next !== i) {
              i = next;
              break;
            }
          }
          const h = hexValue(c);
          if (h >= 0) {
            if (this.#lineBytes === 0) this.#frameStart = i;
            if (++this.#lineBytes > 12) { this.#fail('chunk size too large'); return i; }
            this.#remaining = this.#remaining * 16 + h;
          } else if (this.#lineBytes === 0) { this.#fail('malformed chunk size'); return i; }
          else if (c === CR) this.#chunkState = C_SIZE_LF;
          else if (c === 59 /* ; */) {
            this.#chunkState = C_EXT;
            this.#frameStart = -1;
          } else if (c === 32 || c === 9) {
            this.#chunkState = C_BWS;
            this.#frameStart = -1;
          } else { this.#fail('malformed chunk size'); return i; }
          i++;
          break;
        }
        case C_BWS:
          // Only whitespace may sit between a chunk size and its extensions.
          if (c === 59) this.#chunkState = C_EXT;
          else if (c === CR) this.#chunkState = C_SIZE_LF;
          else if (c !== 32 && c !== 9) {
            this.#fail('malformed chunk size');
            return i;
          }
          if (++this.#lineBytes > MAX_CHUNK_LINE) {
            this.#fail('chunk extension too long');
            return i;
          }
          i++;
          break;
        case C_EXT:
          if (c === CR) this.#chunkState = C_SIZE_LF;
          else if ((c < 32 && c !== 9) || c === 127) { this.#fail('malformed chunk extension'); return i; }
          else if (++this.#lineBytes > MAX_CHUNK_LINE) { this.#fail('chunk extension too long'); return i; }
          i++;
          break;
        case C_SIZE_LF:
          if (c !== LF) { this.#fail('malformed chunk size line'); return i; }
          i++;
          this.#lineBytes = 0;
          this.#chunkState = this.#remaining === 0 ? C_TRAILER_START : C_DATA;
          break;
        case C_DATA: {
          const end = Math.min(n, i + this.#remaining);
          this.#remaining -= end - i;
          if (this.#remaining === 0) this.#chunkState = C_DATA_CR;
          const data = i === 0 && end === n ? chunk : chunk.subarray(i, end);
          if (this.#frameStart >= 0 && this.#remaining === 0 && end + 1 < n && chunk[end] === CR && chunk[end + 1] === LF) {
            // The whole chunk is in this read: its bytes can be relayed as they are.
            frame.data = data;
            frame.read = chunk;
            frame.start = this.#frameStart;
            frame.end = end + 2;
            this.#events.onBody(data);
            frame.data = null;
            frame.read = null;
          } else this.#events.onBody(data);
          this.#frameStart = -1;
          i = end;
          break;
        }
        case C_DATA_CR:
          if (c !== CR) { this.#fail('chunk data longer than its size'); return i; }
          this.#chunkState = C_DATA_LF;
          i++;
          break;
        case C_DATA_LF:
          if (c !== LF) { this.#fail('malformed chunk end'); return i; }
          this.#chunkState = C_SIZE;
          i++;
          break;
        case C_TRAILER_START:
          if (c === CR) this.#chunkState = C_END_LF;
          else if (c === LF || c === 32 || c === 9) {
            this.#fail('malformed trailer line');
            return i;
          } else this.#chunkState = C_TRAILER_LINE;
          if (++this.#trailerBytes > MAX_HEAD_BYTES) { this.#fail('trailer section too large'); return i; }
          i++;
          break;
        case C_TRAILER_LINE:
          if (c === CR) this.#chunkState = C_TRAILER_LF;
          else if ((c < 32 && c !== 9) || c === 127) { this.#fail('control character in a trailer'); return i; }
          if (++this.#trailerBytes > MAX_HEAD_BYTES) { this.#fail('trailer section too large'); return i; }
          i++;
          break;
        case C_TRAILER_LF:
          if (c !== LF) { this.#fail('malformed trailer line'); return i; }
          this.#chunkState = C_TRAILER_START;
          i++;
          break;
        case C_END_LF:
          if (c !== LF) { this.#fail('malformed end of chunked body'); return i; }
          i++;
          this.#finish();
          break;
      }
    }
    return i;
  }
}
