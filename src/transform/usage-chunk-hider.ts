/**
 * UsageChunkHider removes from an SSE stream the usage-only event (`"choices":[]` with a `usage`
 * object) that the gateway asked the upstream for (stream_options.include_usage) when the client
 * did not: the client gets the stream it asked for, byte for byte otherwise. Each chunk is
 * passed on up to its last complete event; only a partial trailing event (rare: engines flush
 * whole events) waits for the next chunk, so nothing like the whole stream is ever held.
 * A response that is not a stream (an error body) passes untouched.
 */
import type { ResponseHeaders, ResponseTransformer } from './response-transformer.js';

const BOUNDARY = Buffer.from('\n\n');
const USAGE = Buffer.from('"usage":');
const EMPTY_CHOICES = Buffer.from('"choices":[]');

/** UsageChunkHider filters one stream. */
export class UsageChunkHider implements ResponseTransformer {
  status = 0;
  readonly isBuffered = false;
  #carry: Buffer | null = null;
  #isStream = false;

  start(status: number, headers: ResponseHeaders): void {
    this.status = status;
    const type = headers['content-type'];
    this.#isStream = typeof type === 'string' && type.startsWith('text/event-stream');
  }

  data(chunk: Buffer): Buffer | null {
    return this.#isStream ? this.filter(chunk) : chunk;
  }

  end(): Buffer | null {
    return this.flush();
  }

  error(): Buffer | null {
    return null;
  }

  /** filter returns what to send for this chunk (null: nothing yet). */
  filter(chunk: Buffer): Buffer | null {
    const buf = this.#carry === null ? chunk : Buffer.concat([this.#carry, chunk]);
    const last = buf.lastIndexOf(BOUNDARY);
    if (last === -1) {
      this.#carry = buf;
      return null;
    }
    const end = last + BOUNDARY.length;
    this.#carry = end < buf.length ? buf.subarray(end) : null;
    const complete = end < buf.length ? buf.subarray(0, end) : buf;
    // Fast path: no usage object in these events.
    if (complete.indexOf(USAGE) === -1) return complete;
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

  /** flush returns a partial trailing event left at the end of the stream, if any. */
  flush(): Buffer | null {
    const c = this.#carry;
    this.#carry = null;
    return c;
  }
}
