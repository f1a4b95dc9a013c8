/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): keep the caller's trace id, or start
 * a trace, and send the upstream a `traceparent` whose parent is the gateway's own span. Ids come
 * from a pooled random buffer, refilled 4 KiB at a time, instead of a crypto call per request.
 */
import { randomFillSync } from 'node:crypto';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);
const pool = Buffer.alloc(4096);
let offset = pool.length;

function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const s = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return s;
}

/** TraceContext is the trace id for logs and the traceparent to send upstream. */
export interface TraceContext {
  traceId: string;
  traceparent: string;
}

/** toTraceContext continues a valid incoming traceparent (keeping its sampled flag) or starts a new trace. */
export function toTraceContext(incoming: string | undefined): TraceContext {
  const m = incoming === undefined ? null : TRACEPARENT.exec(incoming);
  if (m !== null && m[1] !== ZERO_TRACE && m[2] !== ZERO_SPAN) {
    return { traceId: m[1]!, traceparent: `00-${m[1]}-${randomHex(8)}-${m[3]}` };
  }
  const traceId = randomHex(16);
  return { traceId, traceparent: `00-${traceId}-${randomHex(8)}-01` };
}
