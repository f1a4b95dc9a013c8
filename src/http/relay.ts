/**
 * Relay: how a chunked upstream body reaches a chunked client response without being re-framed.
 *
 * The upstream HTTP/1.1 client (src/upstream/h1) removes the chunked framing and hands each
 * chunk's data down the request's tail (usage tap, transformer, respond) as a slice of the bytes
 * it read. When a whole chunk, size line, data and CRLF, sits in one read, the client notes it
 * here while that slice travels down (`frame`): if respond receives that very slice, unchanged,
 * and the client response is framed as chunked too, it hands the chunk's own bytes to the socket
 * (relayRun) instead of framing the data again. The chunks of one read that pass untouched sit
 * next to each other in that read, so they leave as one write of one slice: the client calls
 * endRead once it is done with each upstream read, which flushes what the read left pending, so
 * nothing waits for a later event. A stream's head sent during a read (flushHeaders) is held the
 * same way and leaves with that read's events, and a response that ends in the read sends its
 * last chunks together with the end of the body: one write per read where the bytes allow it.
 *
 * Runs: before slicing chunk by chunk, the client offers the tail all the whole chunks of a read
 * at once (UpstreamHandler.onResponseRun). The usage tap lets through those up to the first one
 * holding a usage object or not ending an SSE event (one search over the run instead of one per
 * chunk), a usage hider with nothing held passes them unchanged, and respond holds their bytes
 * for the read's write (relayRun). What a link does not take is delivered chunk by chunk as above.
 */

/** FramedChunk is the chunk whose data is on its way down the tail right now. */
export interface FramedChunk {
  /** data is the slice handed down (compared by identity: a transformer's copy is not it). */
  data: Buffer | null;
  /** read is the buffer the client read; the chunk's bytes are read[start, end). */
  read: Buffer | null;
  start: number;
  end: number;
}

/** frame is set by the upstream client for the duration of one data slice's delivery. */
export const frame: FramedChunk = { data: null, read: null, start: 0, end: 0 };

/** read.isActive is set while the upstream client handles a read (beginRead to endRead): what a response holds then is flushed by endRead. */
export const read = { isActive: false };

/** beginRead is called by the upstream client before it parses a read. */
export function beginRead(): void {
  read.isActive = true;
}

/** FrameSink is a response that holds relayed chunk bytes (or its head) until the upstream read ends. */
export interface FrameSink {
  /** flushFrames writes what this read left pending. */
  flushFrames(): void;
}

/**
 * pending[0, pendingCount) are the responses holding relayed bytes of the current upstream read
 * (one, as a rule). A count, not `length = 0`: emptying an array that way drops its backing store,
 * and the next read's push would allocate a new one.
 */
const pending: Array<FrameSink | null> = [];
let pendingCount = 0;

/** holdUntilReadEnds registers a response that holds relayed bytes; the upstream client flushes it at the read's end. */
export function holdUntilReadEnds(sink: FrameSink): void {
  if (pendingCount < pending.length) pending[pendingCount] = sink;
  else pending.push(sink);
  pendingCount++;
}

/** endRead is called by the upstream client after each read it parsed: pending relayed bytes go out. */
export function endRead(): void {
  read.isActive = false;
  frame.data = null;
  frame.read = null;
  if (pendingCount === 0) return;
  // A response held again while flushing (not expected) joins this loop instead of being dropped.
  for (let i = 0; i < pendingCount; i++) {
    const sink = pending[i]!;
    pending[i] = null;
    sink.flushFrames();
  }
  pendingCount = 0;
}
