import type { UpstreamController, UpstreamHeaders } from '../upstream/index.js';

/**
 * ResponseHandler is undici's handler contract (UpstreamHandler) past the start of the request,
 * every event required. The links below the per-attempt passive-health link get that link as
 * their controller (it alone holds the transport's), with every event.
 */
export interface ResponseHandler {
  onResponseStart(controller: UpstreamController, statusCode: number, headers: UpstreamHeaders): void;
  onResponseData(controller: UpstreamController, chunk: Buffer): void;
  /**
   * onResponseRun is a run of whole chunks of a chunked body, relayed with their own framing
   * (UpstreamHandler.onResponseRun). A link passes on all of it, or the first chunks of it, or
   * none, before doing anything with what it does not pass, and returns where what was taken
   * ends (`start`: nothing); the transport delivers the rest through onResponseData.
   */
  onResponseRun(controller: UpstreamController, read: Buffer, start: number, end: number, dataBytes: number): number;
  onResponseEnd(controller: UpstreamController, trailers: UpstreamHeaders): void;
  onResponseError(controller: UpstreamController, err: Error): void;
}

/** TailHandler is one link of the request tail: the response's events, each passed to the next link, plus the client's departure. */
export interface TailHandler extends ResponseHandler {
  /**
   * takesRuns tells whether a run offered now could be taken by this link and those below it:
   * a link above that must search a run first (the usage tap) asks before it does.
   */
  readonly takesRuns: boolean;
  /**
   * onClientGone tells that the client closed before its response was complete. The exchange is
   * aborted right after, unless a link still wants its rest and set ctx.isRecordDeferred.
   */
  onClientGone(controller: UpstreamController): void;
}

/** ClientGoneError is the abort reason when the client disconnects. */
export class ClientGoneError extends Error {
  constructor() {
    super('client closed the connection');
    this.name = 'ClientGoneError';
  }
}
