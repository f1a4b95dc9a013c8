/**
 * Respond is the last link of the tail: it writes the upstream's answer to the client as it
 * arrives, with backpressure (a full client socket pauses the upstream until it drains), so a
 * slow reader never makes the gateway hold a stream.
 *
 * Framing: an SSE stream, or a body a transformer changed, goes out without the upstream's
 * Content-Length (toClientHeaders' isReframed) and is framed by the gateway; a buffered
 * transformer's body goes out whole, head and body together, with its real length.
 * Errors: before the head went out, a JSON error (sendError); after a stream's head, one last SSE
 * error event; a cut non-stream body destroys the connection, so it cannot look complete.
 */
import { GatewayError, sendError, toSseErrorEvent } from '../errors/index.js';
import { frame } from '../http/relay.js';
import type { UpstreamController, UpstreamHeaders } from '../upstream/index.js';
import { toClientHeaders } from './headers.js';
import type { TailContext } from './tail-context.js';
import { ClientGoneError, type TailHandler } from './tail-handler.js';
import { toUpstreamErrorCode } from './upstream-error.js';

const SSE = 'text/event-stream';

/** Respond answers one request's client. */
export class Respond implements TailHandler {
  readonly #ctx: TailContext;
  /** #head is the client's response head while a buffered transformer builds the body (null otherwise). */
  #head: string[] | null = null;
  /** #body is a buffered transformer's body, held with its head until the end. */
  #body: Buffer | null = null;
  #isStream = false;
  #isClientGone = false;
  #isDone = false;
  #isWaitingDrain = false;
  /** takesRuns tells, once the head is written, whether this client response can relay runs of chunks (the fast HTTP/1.1 front). */
  takesRuns = false;

  constructor(ctx: TailContext) {
    this.#ctx = ctx;
  }

  onResponseStart(controller: UpstreamController, statusCode: number, headers: UpstreamHeaders): void {
    const ctx = this.#ctx;
    const res = ctx.res;
    if (res.destroyed) return;
    const tf = ctx.transformer;
    const type = headers['content-type'];
    this.#isStream = typeof type === 'string' && type.startsWith(SSE);
    // A stream may get an error event appended, a transformed body changes length: either is framed anew.
    const out = toClientHeaders(headers, this.#isStream, this.#isStream || tf !== null);
    if (this.#isStream) {
      // DESIGN 7: no proxy in front may buffer a stream.
      out.push('cache-control', 'no-cache', 'x-accel-buffering', 'no');
    }
    out.push(
      'x-request-id', ctx.requestId,
      'x-gateway-latency', (ctx.dispatchedAt - ctx.startedAt).toFixed(3),
      'x-upstream-latency', (ctx.headersAt - ctx.dispatchedAt).toFixed(3),
    );
    if (ctx.serving !== ctx.model) out.push('x-served-model', ctx.serving!.name);
    if (ctx.limitHeaders !== null) for (const h of ctx.limitHeaders) out.push(h);
    if (tf !== null && tf.isBuffered) {
      // The body is rewritten as a whole: the head goes out with it, carrying its real length.
      this.#head = out;
      return;
    }
    try {
      res.writeHead(statusCode, out);
    } catch (err) {
      // An upstream header Node will not re-emit: refuse the answer rather than crash on it.
      this.#isDone = true;
      controller.abort(err as Error);
      ctx.errorCode = 'upstream_error';
      ctx.bytesOut += sendError(res, new GatewayError('upstream_error', { cause: err }), ctx.requestId, undefined, null, ctx.errorFormat);
      return;
    }
    this.takesRuns = res.relayRun !== undefined;
    if (this.#isStream) res.flushHeaders();
  }

  /** #pauseUntilDrain stops the upstream while the client's socket is full (a listener only then, not per response). */
  #pauseUntilDrain(controller: UpstreamController): void {
    controller.pause();
    if (this.#isWaitingDrain) return;
    this.#isWaitingDrain = true;
    this.#ctx.res.once('drain', () => {
      this.#isWaitingDrain = false;
      controller.resume();
    });
  }

  onResponseData(controller: UpstreamController, chunk: Buffer): void {
    if (this.#isClientGone || this.#isDone) return;
    const ctx = this.#ctx;
    ctx.bytesOut += chunk.length;
    if (this.#head !== null) {
      this.#body = this.#body === null ? chunk : Buffer.concat([this.#body, chunk]);
      return;
    }
    const res = ctx.res;
    if (res.destroyed) return;
    // A whole upstream chunk passed on unchanged goes out with its own framing (src/http/relay.ts).
    const isSent = (chunk === frame.data ? res.relayRun?.(frame.read!, frame.start, frame.end) : undefined) ?? res.write(chunk);
    if (!isSent) this.#pauseUntilDrain(controller);
  }

  onResponseRun(controller: UpstreamController, read: Buffer, start: number, end: number, dataBytes: number): number {
    if (this.#isClientGone || this.#isDone) return end;
    if (this.#head !== null) return start;
    const ctx = this.#ctx;
    const res = ctx.res;
    if (res.destroyed) return end;
    const isSent = res.relayRun?.(read, start, end);
    if (isSent === undefined) return start;
    ctx.bytesOut += dataBytes;
    if (!isSent) this.#pauseUntilDrain(controller);
    return end;
  }

  onResponseEnd(): void {
    if (this.#isClientGone || this.#isDone) return;
    this.#isDone = true;
    if (this.#head !== null) this.#endBuffered(this.#head, this.#body);
    else this.#ctx.res.end();
  }

  /** #endBuffered sends a buffered transformer's whole answer: head and body together. */
  #endBuffered(head: string[], body: Buffer | null): void {
    const ctx = this.#ctx;
    const res = ctx.res;
    this.#head = null;
    this.#body = null;
    if (res.destroyed) return;
    head.push('content-length', String(body === null ? 0 : body.length));
    try {
      // The transformer may set the final status only once it has the whole body.
      res.writeHead(ctx.transformer!.status, head);
    } catch (err) {
      ctx.errorCode = 'upstream_error';
      ctx.bytesOut += sendError(res, new GatewayError('upstream_error', { cause: err }), ctx.requestId, undefined, null, ctx.errorFormat);
      return;
    }
    if (body !== null) res.end(body);
    else res.end();
  }

  onResponseError(_controller: UpstreamController, err: Error): void {
    if (this.#isClientGone || this.#isDone || err instanceof ClientGoneError) return;
    this.#isDone = true;
    const ctx = this.#ctx;
    const res = ctx.res;
    const code = toUpstreamErrorCode(err);
    ctx.errorCode = code;
    const gwErr = new GatewayError(code, { cause: err });
    if (!res.headersSent) {
      ctx.bytesOut += sendError(res, gwErr, ctx.requestId, undefined, ctx.limitHeaders, ctx.errorFormat);
      return;
    }
    if (this.#isStream && !res.destroyed) {
      // The client already has its 200: the error can only travel as a last SSE event.
      const event = ctx.transformer?.error(gwErr, ctx.requestId) ?? toSseErrorEvent(gwErr, ctx.requestId, ctx.errorFormat);
      ctx.bytesOut += typeof event === 'string' ? Buffer.byteLength(event) : event.length;
      res.end(event);
      return;
    }
    // A truncated non-stream body must not look complete: cut the connection.
    res.destroy();
  }

  onClientGone(): void {
    this.#isClientGone = true;
  }
}
