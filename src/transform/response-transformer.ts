/**
 * ResponseTransformer is the one hook through which forwarding changes what the upstream sent
 * before the client sees it (Kong's header_filter + body_filter phases, as one object per
 * request). forward() calls it only when the context holds one, so a plain request pays a null
 * check and nothing else. The usage tap always reads the upstream's own bytes, before any
 * transformation, so token accounting sees the engine's OpenAI `usage` whatever the client gets.
 *
 * Two ways to transform a body:
 *  - streaming (isBuffered false): data() maps each chunk as it arrives (holding at most a
 *    partial event), and the head goes out at once with start()'s status and headers;
 *  - buffered (isBuffered true, e.g. a JSON body that must be rewritten as a whole): data()
 *    collects, end() returns the whole new body, and the head waits for it so it can carry the
 *    real Content-Length and the final `status`.
 */
import type { GatewayError } from '../errors/index.js';

/** ResponseHeaders are the upstream's response headers as undici reports them (lower-case names). */
export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** ResponseTransformer rewrites one upstream response for the client. */
export interface ResponseTransformer {
  /** status is the status the client gets: set by start(), and for buffered bodies possibly changed by end(). */
  readonly status: number;
  /** isBuffered tells, after start(), that the whole body is produced by end() and the head waits for it. */
  readonly isBuffered: boolean;
  /** start sees the upstream's status and headers; it may edit the headers in place (content-type, content-length). */
  start(status: number, headers: ResponseHeaders): void;
  /**
   * data maps one upstream chunk to what the client gets now (null: nothing yet). `hasUsage` is
   * the usage tap's finding: whether the chunk holds part of an OpenAI usage object.
   */
  data(chunk: Buffer, hasUsage: boolean): Buffer | null;
  /**
   * passesRun, when given, tells whether data() would now return, unchanged, any chunks that hold
   * no usage object and end on an SSE event boundary: such runs are then relayed without calling
   * data() per chunk.
   */
  passesRun?(): boolean;
  /** end returns what is left to send when the upstream body ended (null: nothing). */
  end(): Buffer | null;
  /** error returns the last bytes of a stream that failed after its head went out (null: the default SSE error event). */
  error(err: GatewayError, requestId: string): Buffer | null;
}
