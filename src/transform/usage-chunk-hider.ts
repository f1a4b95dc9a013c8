/**
 * UsageChunkHider removes from an SSE stream the usage-only event (`"choices":[]` with a `usage`
 * object) that the gateway asked the upstream for (stream_options.include_usage) when the client
 * did not: the client gets the stream it asked for, byte for byte otherwise. Each chunk is
 * passed on up to its last complete event; only a partial trailing event (rare: engines flush
 * whole events) waits for the next chunk, so nothing like the whole stream is ever held.
 * A response that is not a stream (an error body) passes untouched.
 * An event that grows past MAX_HELD_BYTES without ending (a usage event is a few hundred bytes)
 * is not the one to hide: what is held is sent, and the rest of that event passes as it comes.
 * Cost: the usage tap has already searched each chunk for a usage object and says whether it
 * found one (data()'s second argument); a chunk without one that ends on an event boundary
 * (the usual case) is passed on after a look at its last two bytes, with no search.
 */
import type { ResponseHeaders, ResponseTransformer } from './response-transformer.js';

const BOUNDARY = Buffer.from('\n\n');
const LF = 0x0a;
/** MAX_HELD_BYTES bounds a held partial event: a usage-only event is far smaller. */
const MAX_HELD_BYTES = 16 * 1024;
const USAGE = Buffer.from('"usage":');
const EMPTY_CHOICES = Buffer.from('"choices":[]');

/** UsageChunkHider filters one stream. */
export class UsageChunkHider implements ResponseTransformer {
  status = 0;
  readonly isBuffered = false;
  #carry: Buffer | null = null;
  /** #carryHasUsage tells whether the carried partial event may hold a usage object. */
  #carryHasUsage = false;
  /** #isPassing is set while the rest of an over-long event passes through; #endsWithLf tells whether its last byte sent was a LF. */
  #isPassing = false;
  #endsWithLf = false;
  #isStream = false;

  start(status: number, headers: ResponseHeaders): void {
    this.status = status;
    const type = headers['content-type'];
    this.#isStream = typeof type === 'string' && type.startsWith('text/event-stream');
  }

  data(chunk: Buffer, hasUsage = true): Buffer | null {
    return this.#isStream ? this.filter(chunk, hasUsage) : chunk;
  }

  passesRun(): boolean {
    // Nothing held, nothing being passed half: a chunk that ends an event and holds no usage goes as it is.
    return this.#isStream && this.#carry === null && !this.#isPassing;
  }

  end(): Buffer | null {
    return this.flush();
  }

  error(): Buffer | null {
    return null;
  }

  /**
   * filter returns what to send for this chunk (null: nothing yet). `hasUsage` false promises
   * that the chunk holds no part of a usage object (the tap's finding); true makes it look.
   */
  filter(chunk: Buffer, hasUsage = true): Buffer | null {
    if (this.#isPassing) return this.#pass(chunk, hasUsage);
    let buf = chunk;
    let mayHaveUsage = hasUsage;
    if (this.#carry !== null) {
      buf = Buffer.concat([this.#carry, chunk]);
      mayHaveUsage ||= this.#carryHasUsage;
    }
    const n = buf.length;
    let complete = buf;
    if (n < 2 || buf[n - 1] !== LF || buf[n - 2] !== LF) {
      const last = buf.lastIndexOf(BOUNDARY);
      if (last === -1) {
        if (n > MAX_HELD_BYTES) {
          this.#carry = null;
          this.#isPassing = true;
          this.#endsWithLf = buf[n - 1] === LF;
          return buf;
        }
        this.#carry = buf;
        this.#carryHasUsage = mayHaveUsage;
        return null;
      }
      const end = last + BOUNDARY.length;
      this.#carry = buf.subarray(end);
      this.#carryHasUsage = mayHaveUsage;
      complete = buf.subarray(0, end);
    } else this.#carry = null;
    // Fast path: no usage object in these events.
    if (!mayHaveUsage || complete.indexOf(USAGE) === -1) return complete;
    const kept: Buffer[] = [];
    let start = 0;
    while (start < complete.length) {
      const at = complete.indexOf(BOUNDARY, start);
      const stop = at === -1 ? complete.length : at + BOUNDARY.length;
      const event = complete.subarray(start, stop);
      if (!(event.indexOf(USAGE) !== -1 && event.indexOf(EMPTY_CHOICES) !== -1)) kept.push(event);
      start = stop;
    }
    return kept.length === 1 ? kept[0]! : kept.length === 0 ? null : Buffer.concat(kept);
  }

  /** #pass sends the rest of an over-long event as it comes, then filters what follows its end. */
  #pass(chunk: Buffer, hasUsage: boolean): Buffer | null {
    let end: number;
    // The event's closing blank line may be cut between two chunks.
    if (this.#endsWithLf && chunk[0] === LF) end = 1;
    else {
      const at = chunk.indexOf(BOUNDARY);
      if (at === -1) {
        this.#endsWithLf = chunk[chunk.length - 1] === LF;
        return chunk;
      }
      end = at + BOUNDARY.length;
    }
    this.#isPassing = false;
    if (end === chunk.length) return chunk;
    const rest = this.filter(chunk.subarray(end), hasUsage);
    return rest === null ? chunk.subarray(0, end) : Buffer.concat([chunk.subarray(0, end), rest]);
  }

  /** flush returns a partial trailing event left at the end of the stream, if any. */
  flush(): Buffer | null {
    const c = this.#carry;
    this.#carry = null;
    return c;
  }
}
