/**
 * LineWriter appends text lines to a file descriptor (the access log's stdout) without a write
 * per line: each line is encoded straight into a reused 64 KiB buffer, and a buffer goes out in
 * one asynchronous write once it holds FLUSH_BYTES, or at the next once-a-second flush. While a
 * write is in flight, lines go on filling the next buffer; buffers wait in order behind it.
 *
 * Measured against pino's asynchronous destination (which concatenates lines into a string and
 * encodes it at write time) on 450-byte lines: ~1.3 µs of CPU per line instead of ~6.
 *
 * A reader that stops reading (a stuck pipe) cannot grow the process without bound: past
 * MAX_QUEUED_BYTES waiting, new lines are dropped and counted. A closed reader (EPIPE) ends the
 * writing; the gateway goes on serving.
 */
import { write } from 'node:fs';

const BUFFER_BYTES = 64 * 1024;
/** A buffer holding this much is written at once when no write is in flight. */
const FLUSH_BYTES = 16 * 1024;
const FLUSH_EVERY_MS = 1000;
/** A non-blocking pipe that is full (EAGAIN) is tried again after this long. */
const RETRY_MS = 10;
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
/** close waits this long for the writes in flight and queued before giving up on them. */
const CLOSE_WAIT_MS = 2000;

/** Chunk is a filled buffer's bytes [start, end) waiting to be written. */
interface Chunk {
  readonly buf: Buffer;
  start: number;
  readonly end: number;
  /** lines is how many lines the bytes hold (what a reader that is gone loses). */
  readonly lines: number;
}

export class LineWriter {
  readonly #fd: number;
  #buf: Buffer = Buffer.allocUnsafeSlow(BUFFER_BYTES);
  #len = 0;
  /** #lines is how many lines #buf holds. */
  #lines = 0;
  /** #spare is a written buffer kept for reuse (at most one: a steady stream needs two). */
  #spare: Buffer | null = null;
  readonly #queue: Chunk[] = [];
  #queuedBytes = 0;
  #isWriting = false;
  #isBroken = false;
  #timer: NodeJS.Timeout | null;
  #onIdle: (() => void) | null = null;
  /** dropped counts lines not written: the reader was too slow, or gone. */
  dropped = 0;

  constructor(fd: number) {
    this.#fd = fd;
    this.#timer = setInterval(this.#flush, FLUSH_EVERY_MS).unref();
  }

  /** write appends one line (its newline included). */
  write(line: string): void {
    if (this.#isBroken || this.#queuedBytes > MAX_QUEUED_BYTES) {
      this.dropped++;
      return;
    }
    // UTF-8 needs at most 3 bytes per UTF-16 unit: the room is checked without measuring the line.
    const most = line.length * 3;
    if (this.#len + most > BUFFER_BYTES) {
      this.#rotate();
      if (most > BUFFER_BYTES) {
        this.#enqueue(Buffer.from(line, 'utf8'));
        return;
      }
    }
    this.#len += this.#buf.write(line, this.#len, 'utf8');
    this.#lines++;
    if (this.#len >= FLUSH_BYTES && !this.#isWriting) this.#rotate();
  }

  readonly #flush = (): void => {
    if (this.#len > 0 && !this.#isWriting) this.#rotate();
  };

  /** #rotate queues the current buffer's lines for writing and starts a new buffer. */
  #rotate(): void {
    if (this.#len === 0) return;
    const buf = this.#buf;
    const len = this.#len;
    this.#buf = this.#spare ?? Buffer.allocUnsafeSlow(BUFFER_BYTES);
    this.#spare = null;
    this.#len = 0;
    this.#queue.push({ buf, start: 0, end: len, lines: this.#lines });
    this.#lines = 0;
    this.#queuedBytes += len;
    this.#kick();
  }

  #enqueue(bytes: Buffer): void {
    this.#queue.push({ buf: bytes, start: 0, end: bytes.length, lines: 1 });
    this.#queuedBytes += bytes.length;
    this.#kick();
  }

  #kick(): void {
    if (this.#isWriting || this.#isBroken) return;
    const c = this.#queue[0];
    if (c === undefined) {
      // Closing: lines written since close() began go out before it is done.
      if (this.#onIdle !== null && this.#len > 0) this.#rotate();
      else this.#onIdle?.();
      return;
    }
    this.#isWriting = true;
    write(this.#fd, c.buf, c.start, c.end - c.start, null, this.#onWritten);
  }

  readonly #onWritten = (err: NodeJS.ErrnoException | null, n: number): void => {
    this.#isWriting = false;
    if (err !== null) {
      if (err.code === 'EAGAIN') {
        setTimeout(this.#retry, RETRY_MS).unref();
        return;
      }
      this.#break();
      return;
    }
    const c = this.#queue[0]!;
    c.start += n;
    this.#queuedBytes -= n;
    if (c.start >= c.end) {
      this.#queue.shift();
      if (c.buf.length === BUFFER_BYTES && this.#spare === null) this.#spare = c.buf;
    }
    if (this.#queue.length === 0 && this.#len >= FLUSH_BYTES) this.#rotate();
    else this.#kick();
  };

  readonly #retry = (): void => this.#kick();

  /**
   * #break gives up on a reader that is gone: the lines waiting are dropped and counted (those of
   * a buffer cut by the failed write all of them, though its first ones may have been written).
   */
  #break(): void {
    this.#isBroken = true;
    for (const c of this.#queue) this.dropped += c.lines;
    this.dropped += this.#lines;
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    this.#len = 0;
    this.#lines = 0;
    this.#onIdle?.();
  }

  /** close writes what is buffered and resolves once it is out (or after CLOSE_WAIT_MS). */
  close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#rotate();
    if (!this.#isWriting && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, CLOSE_WAIT_MS);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.#onIdle = null;
        resolve();
      }
      this.#onIdle = done;
    });
  }
}
