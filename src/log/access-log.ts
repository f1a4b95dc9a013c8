/**
 * The access log: exactly one line per request on stdout, errors included, as JSON or plain text.
 * The entry never holds a key: only its fingerprint (first 8 hex digits of its hash).
 * Lines are built by hand from a fixed field list (no generic serializer walks the object) and
 * encoded into a reused buffer written asynchronously in large pieces (line-writer.ts), flushed
 * every second and on stop, so a busy gateway makes a few large writes instead of one per request.
 */
import type { DestinationStream } from 'pino';
import { LineWriter } from './line-writer.js';

/** AccessEntry is one request as logged. */
export interface AccessEntry {
  request_id: string;
  trace_id: string;
  method: string;
  path: string;
  model: string | null;
  /** served_model is the model whose targets answered (a split's choice, a fallback, else the model itself); null when none was reached. */
  served_model: string | null;
  status: number;
  total_ms: number;
  /** queue_ms is the part of total_ms spent waiting for a concurrency slot or in the flow-control queue (0 when none was awaited). */
  queue_ms: number;
  /** connect_ms is the answering attempt's time to connect to its target: 0 on a kept-alive connection; null when unknown (undici, HTTPS targets) or no target answered. */
  connect_ms: number | null;
  upstream_ms: number | null;
  ttfb_ms: number | null;
  target: string | null;
  bytes_in: number;
  bytes_out: number;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  key: string | null;
  error: string | null;
}

/** AccessLogFormat is how lines are written. */
export type AccessLogFormat = 'json' | 'text';

// Most values never need escaping (ids, names from config, fingerprints): test before paying for JSON.stringify.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/;
const str = (v: string | null): string => (v === null ? 'null' : NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`);

/** isoNow is the current time as ISO 8601, recomputed at most once per millisecond. */
let lastMs = 0;
let lastIso = '';
function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}

/** toJsonLine renders an entry as one JSON line. */
export function toJsonLine(e: AccessEntry, time: string): string {
  return (
    `{"time":"${time}","request_id":${str(e.request_id)},"trace_id":"${e.trace_id}","method":${str(e.method)},"path":${str(e.path)},` +
    `"model":${str(e.model)},"served_model":${str(e.served_model)},"status":${e.status},"total_ms":${e.total_ms},"queue_ms":${e.queue_ms},"connect_ms":${e.connect_ms},"upstream_ms":${e.upstream_ms},"ttfb_ms":${e.ttfb_ms},` +
    `"target":${str(e.target)},"bytes_in":${e.bytes_in},"bytes_out":${e.bytes_out},"prompt_tokens":${e.prompt_tokens},` +
    `"completion_tokens":${e.completion_tokens},"key":${str(e.key)},"error":${str(e.error)}}\n`
  );
}

/** toTextLine renders an entry as one human-readable line. */
export function toTextLine(e: AccessEntry, time: string): string {
  return (
    `${time} ${e.request_id} ${e.method} ${JSON.stringify(e.path)} ${e.status} ${e.total_ms}ms model=${e.model ?? '-'} served_model=${e.served_model ?? '-'} target=${e.target ?? '-'} ` +
    `queue_ms=${e.queue_ms} connect_ms=${e.connect_ms ?? '-'} upstream_ms=${e.upstream_ms ?? '-'} ttfb_ms=${e.ttfb_ms ?? '-'} in=${e.bytes_in} out=${e.bytes_out} ` +
    `tokens=${e.prompt_tokens ?? '-'}/${e.completion_tokens ?? '-'} key=${e.key ?? '-'} trace=${e.trace_id}${e.error ? ` error=${e.error}` : ''}\n`
  );
}

/** AccessLog writes access lines; a disabled log writes nothing. */
export class AccessLog {
  /** #out takes the lines: a given destination (tests), else stdout's writer (#stdout); null when disabled. */
  readonly #out: { write(line: string): unknown } | null;
  readonly #stdout: LineWriter | null;
  readonly #format: (e: AccessEntry, time: string) => string;
  /**
   * tap, when set, sees every entry as it is written (the dashboard's Requests page sets it only
   * while someone watches); null otherwise, so the request path pays one null check.
   */
  tap: ((e: AccessEntry, timeMs: number) => void) | null = null;

  constructor(opts: { enabled: boolean; format: AccessLogFormat; dest?: DestinationStream }) {
    this.#format = opts.format === 'text' ? toTextLine : toJsonLine;
    this.#stdout = opts.enabled && opts.dest === undefined ? new LineWriter(1) : null;
    this.#out = opts.enabled ? (opts.dest ?? this.#stdout) : null;
  }

  /** write logs one request. */
  write(e: AccessEntry): void {
    if (this.#out !== null) this.#out.write(this.#format(e, isoNow()));
    if (this.tap !== null) this.tap(e, Date.now());
  }

  /** dropped is how many lines stdout's writer could not write (its reader too slow, or gone). */
  get dropped(): number {
    return this.#stdout === null ? 0 : this.#stdout.dropped;
  }

  /** close writes out what is buffered (on stop). */
  close(): Promise<void> {
    return this.#stdout === null ? Promise.resolve() : this.#stdout.close();
  }
}
