/**
 * The access log: exactly one line per request on stdout, errors included, as JSON (pino) or as
 * plain text. The entry never holds a key: only its fingerprint (first 8 hex digits of its hash).
 */
import { destination, pino, stdTimeFunctions, type DestinationStream, type Logger } from 'pino';

/** AccessEntry is one request as logged. */
export interface AccessEntry {
  request_id: string;
  trace_id: string;
  method: string;
  path: string;
  model: string | null;
  status: number;
  total_ms: number;
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

/** AccessLog writes access lines; a disabled log writes nothing. */
export class AccessLog {
  readonly #json: Logger | null;
  readonly #dest: DestinationStream | null;

  constructor(opts: { enabled: boolean; format: AccessLogFormat; dest?: DestinationStream }) {
    if (!opts.enabled) {
      this.#json = null;
      this.#dest = null;
      return;
    }
    // Asynchronous writes: a slow stdout must not stall the event loop that proxies streams.
    const dest = opts.dest ?? destination({ dest: 1, sync: false });
    this.#dest = opts.format === 'text' ? dest : null;
    this.#json = opts.format === 'json' ? pino({ base: null, timestamp: stdTimeFunctions.isoTime, messageKey: 'msg' }, dest) : null;
  }

  /** write logs one request. */
  write(e: AccessEntry): void {
    if (this.#json !== null) this.#json.info(e);
    else if (this.#dest !== null) {
      this.#dest.write(
        `${new Date().toISOString()} ${e.request_id} ${e.method} ${e.path} ${e.status} ${e.total_ms}ms model=${e.model ?? '-'} target=${e.target ?? '-'} ` +
          `upstream_ms=${e.upstream_ms ?? '-'} ttfb_ms=${e.ttfb_ms ?? '-'} in=${e.bytes_in} out=${e.bytes_out} ` +
          `tokens=${e.prompt_tokens ?? '-'}/${e.completion_tokens ?? '-'} key=${e.key ?? '-'} trace=${e.trace_id}${e.error ? ` error=${e.error}` : ''}\n`,
      );
    }
  }
}
