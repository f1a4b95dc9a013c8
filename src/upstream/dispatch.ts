/**
 * The upstream dispatch interface forwarding is written against. It is the subset of undici's
 * Dispatcher API that forwarding uses, so an undici Pool (HTTPS targets, or `proxy.fast_upstream:
 * false`) and the built-in HTTP/1.1 client (src/upstream/h1) are interchangeable behind it.
 */

/** UpstreamHeaders are response header fields: lower-case names, repeated fields as arrays. */
export type UpstreamHeaders = Record<string, string | string[] | undefined>;

/** UpstreamController lets a handler steer its exchange. */
export interface UpstreamController {
  /** abort ends the exchange now (the connection is closed); onResponseError follows with reason. */
  abort(reason: Error): void;
  /** pause stops reading the upstream until resume (the client's socket is full). */
  pause(): void;
  resume(): void;
  /**
   * connectMs is how long this exchange waited for its connection to be established: 0 on a
   * kept-alive one; undefined when the transport does not tell (undici).
   */
  readonly connectMs?: number | undefined;
}

/** UpstreamHandler receives one exchange's events, in order; exactly one of End or Error ends it. */
export interface UpstreamHandler {
  onRequestStart?(controller: UpstreamController, context: unknown): void;
  onResponseStart?(controller: UpstreamController, statusCode: number, headers: UpstreamHeaders, statusMessage?: string): void;
  onResponseData?(controller: UpstreamController, chunk: Buffer): void;
  /**
   * onResponseRun is offered, by a transport that can (the built-in HTTP/1.1 client), a run of
   * whole chunks of a chunked body that arrived in one read: read[start, end) holds them with
   * their framing, dataBytes is their data's length. Returns where the chunks taken as they are
   * (relayed with their framing) end, at a chunk boundary: `end` for all, `start` for none; the
   * transport delivers the data of the others chunk by chunk through onResponseData.
   */
  onResponseRun?(controller: UpstreamController, read: Buffer, start: number, end: number, dataBytes: number): number;
  onResponseEnd?(controller: UpstreamController, trailers: UpstreamHeaders): void;
  onResponseError?(controller: UpstreamController, err: Error): void;
}

/** UpstreamRequest is one request to send. */
export interface UpstreamRequest {
  /** path is the request target (origin form, query included). */
  path: string;
  method: string;
  /** headers is a flat [name, value, ...] list; Host and Content-Length are the dispatcher's. */
  headers: string[];
  body: Buffer | null;
  /** headersTimeout bounds the wait for the response head after the request was sent (ms). */
  headersTimeout: number;
  /** bodyTimeout bounds the silence between two chunks of the response body (ms). */
  bodyTimeout: number;
}

/** UpstreamDispatcher sends requests to one origin. */
export interface UpstreamDispatcher {
  dispatch(request: UpstreamRequest, handler: UpstreamHandler): void;
  close(): Promise<void>;
  destroy(): Promise<void>;
}
