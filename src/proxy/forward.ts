/**
 * forward: send the request to the chosen target through its keep-alive pool and relay the
 * answer. It uses undici's dispatch handler directly (no intermediate Readable): each upstream
 * chunk is written to the client as it arrives, and when the client socket's buffer is full the
 * upstream is paused until it drains, so a slow reader never makes the gateway hold a stream.
 * A client that goes away aborts the upstream request at once, which makes vLLM stop generating,
 * except after the stream's last content event: the engine is done, and the usage event it is
 * about to send is awaited (briefly) so the request's tokens are still counted.
 */
import { performance } from 'node:perf_hooks';
import { GatewayError, sendError, toSseErrorEvent, type ErrorCode } from '../errors/index.js';
import type { GatewayMetrics } from '../metrics/index.js';
import type { Target } from '../config/index.js';
import type { RequestContext } from '../pipeline/context.js';
import { TRANSPORT_CODES, type Outcome, type PassivePolicy, type PoolRegistry, type UpstreamController, type UpstreamHandler, type UpstreamHeaders } from '../upstream/index.js';
import { toClientHeaders, toUpstreamHeaders } from './headers.js';
import { UsageTap } from './usage-tap.js';

const SSE = 'text/event-stream';
// A choice that ended: the generation is over (null is sent while it goes on).
const FINISHED = Buffer.from('"finish_reason":"');
const FINISHED_SPACED = Buffer.from('"finish_reason": "');
/** USAGE_GRACE_MS bounds the wait for the usage event after the client left (engines send it at once). */
const USAGE_GRACE_MS = 2000;

/** ForwardDeps are the long-lived parts forwarding uses. */
export interface ForwardDeps {
  pools: PoolRegistry;
  /** nextTarget picks another target for a retry (excluding ctx.tried); false when none is left. */
  nextTarget: (ctx: RequestContext) => boolean;
  metrics: GatewayMetrics;
  isTls: boolean;
  /** record accounts for a request whose recording the client's departure deferred (ctx.isRecordDeferred). */
  record: (ctx: RequestContext) => void;
}

/** forward dispatches ctx to ctx.target; it answers the client itself, errors included. */
export function forward(ctx: RequestContext, deps: ForwardDeps): void {
  ctx.dispatchedAt = performance.now();
  dispatchAttempt(ctx, deps);
}

/** dispatchAttempt sends one attempt to ctx.target (the first, or a retry on another target). */
function dispatchAttempt(ctx: RequestContext, deps: ForwardDeps): void {
  const serving = ctx.serving!;
  const target = ctx.target!;
  const req = ctx.req;
  ctx.attempts++;
  const headers = toUpstreamHeaders(req.headers, {
    requestId: ctx.requestId,
    traceparent: ctx.traceparent,
    remoteAddress: req.socket.remoteAddress,
    isTls: deps.isTls,
    shouldDropAuthorization: ctx.model!.keyHashes !== null,
    upstreamAuthorization: serving.upstreamAuthorization,
    // A transformer reads the upstream's bytes, so they must come uncompressed.
    isIdentityEncoding: ctx.transformer !== null,
  });
  const query = ctx.keyFromQuery ? withoutQueryKey(ctx.query) : ctx.query;
  const handler = new ForwardHandler(ctx, deps);
  ctx.onClientGone = handler.onClientGone;
  target.state.begin();
  // Inference requests are not idempotent: the transport never retries them; our own retry
  // (below) only resends requests that provably never reached the engine.
  deps.pools.forwarder(target.origin, serving.timeouts.connectMs, ctx.snapshot.settings.isFastUpstream).dispatch(
    {
      path: target.basePath + ctx.upstreamPath + query,
      method: req.method!,
      headers,
      body: ctx.body !== null && ctx.body.length > 0 ? ctx.body : null,
      headersTimeout: serving.timeouts.firstByteMs,
      bodyTimeout: serving.timeouts.idleMs,
    },
    handler,
  );
}

/** isRetryable tells whether an attempt's failure happened before the upstream could have acted. */
function isRetryable(ctx: RequestContext, code: ErrorCode): boolean {
  const model = ctx.model!;
  return (
    (code === 'upstream_connect_failed' || code === 'upstream_error') &&
    ctx.attempts <= model.retries &&
    performance.now() - ctx.startedAt < model.retryTimeoutMs
  );
}

/** ForwardHandler relays one upstream response to the client. */
class ForwardHandler implements UpstreamHandler {
  readonly #ctx: RequestContext;
  readonly #deps: ForwardDeps;
  readonly #metrics: GatewayMetrics;
  readonly #target: Target;
  /** #passive is the serving model's passive health policy, read while the model is in cache. */
  readonly #passive: PassivePolicy;
  readonly #tap = new UsageTap();
  #controller: UpstreamController | null = null;
  #status = 0;
  /** #head is the client's response head while a buffered transformer builds the body (null otherwise). */
  #head: string[] | null = null;
  #isStream = false;
  #isClientGone = false;
  #isDone = false;
  /** #last is the last upstream chunk (a reference): whether it ended the generation decides a client-gone abort. */
  #last: Buffer | null = null;
  #graceTimer: NodeJS.Timeout | null = null;

  constructor(ctx: RequestContext, deps: ForwardDeps) {
    this.#ctx = ctx;
    this.#deps = deps;
    this.#metrics = deps.metrics;
    this.#target = ctx.target!;
    this.#passive = ctx.serving!.health.passive;
  }

  /** #settle ends this attempt on its target exactly once, with its passive-health outcome. */
  #settle(outcome: Outcome): void {
    this.#isDone = true;
    this.#target.state.end(outcome, this.#passive, Date.now());
  }

  /** onClientGone is called by the pipeline when the client closed before the response finished. */
  readonly onClientGone = (): void => {
    if (this.#isDone) return;
    this.#isClientGone = true;
    if (this.#isUsageDue()) {
      // Nothing left to generate: let the engine send its usage (it may have been paused for
      // the client), and record the request then.
      this.#ctx.isRecordDeferred = true;
      this.#graceTimer = setTimeout(ForwardHandler.#giveUp, USAGE_GRACE_MS, this).unref();
      this.#controller!.resume();
      return;
    }
    this.#settle('neutral');
    // Usage already seen (e.g. the client left between it and the stream's end) still counts.
    this.#settleUsage();
    this.#controller?.abort(new ClientGoneError());
  };

  /** #isUsageDue tells whether a stream's generation is over and its usage event not seen yet. */
  #isUsageDue(): boolean {
    const last = this.#last;
    if (!this.#isStream || this.#tap.hasUsage || last === null || this.#controller === null) return false;
    return last.indexOf(FINISHED) !== -1 || last.indexOf(FINISHED_SPACED) !== -1;
  }

  /** #giveUp ends the wait for a usage event that did not come in time (static: no closure per request). */
  static #giveUp(handler: ForwardHandler): void {
    handler.#controller?.abort(new ClientGoneError());
  }

  /** #recordDeferred ends an exchange the client left early, and records it now, exactly once. */
  #recordDeferred(outcome: Outcome): void {
    this.#settle(outcome);
    if (this.#graceTimer !== null) clearTimeout(this.#graceTimer);
    this.#settleUsage();
    this.#deps.record(this.#ctx);
  }

  onRequestStart(controller: UpstreamController): void {
    this.#controller = controller;
    if (this.#isClientGone) controller.abort(new ClientGoneError());
  }

  onResponseStart(controller: UpstreamController, statusCode: number, headers: UpstreamHeaders): void {
    const ctx = this.#ctx;
    const res = ctx.res;
    const now = performance.now();
    ctx.headersAt = now;
    this.#status = statusCode;
    if (statusCode >= 500) this.#metrics.upstreamErrors.labels(ctx.serving!.name, this.#target.url, 'status_5xx').inc();
    const tf = ctx.transformer;
    if (tf !== null) tf.start(statusCode, headers);
    if (res.destroyed) return;
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
      'x-upstream-latency', (now - ctx.dispatchedAt).toFixed(3),
    );
    if (ctx.serving !== ctx.model) out.push('x-served-model', ctx.serving!.name);
    if (ctx.limitHeaders !== null) for (const h of ctx.limitHeaders) out.push(h);
    if (tf !== null && tf.isBuffered) {
      // The body is rewritten as a whole: the head goes out with it, carrying its real length.
      this.#head = out;
      return;
    }
    try {
      res.writeHead(tf === null ? statusCode : tf.status, out);
    } catch (err) {
      // An upstream header Node will not re-emit: refuse the answer rather than crash on it.
      this.#settle('failure');
      controller.abort(err as Error);
      ctx.errorCode = 'upstream_error';
      sendError(res, new GatewayError('upstream_error', { cause: err }), ctx.requestId, undefined, null, ctx.errorFormat);
      return;
    }
    if (this.#isStream) res.flushHeaders();
    res.on('drain', () => controller.resume());
  }

  onResponseData(controller: UpstreamController, chunk: Buffer): void {
    const ctx = this.#ctx;
    if (ctx.firstByteAt === 0) ctx.firstByteAt = performance.now();
    const hasUsage = this.#tap.feed(chunk);
    this.#last = chunk;
    // Only the usage is still wanted from an exchange the client left.
    if (this.#isClientGone) return;
    const tf = ctx.transformer;
    const out = tf === null ? chunk : tf.data(chunk, hasUsage);
    if (out === null) return;
    ctx.bytesOut += out.length;
    const res = ctx.res;
    if (res.destroyed) return;
    if (!res.write(out)) controller.pause();
  }

  onResponseEnd(): void {
    if (this.#isDone) return;
    if (this.#isClientGone) {
      this.#recordDeferred(this.#passive.statusCodes.has(this.#status) ? 'failure' : 'success');
      return;
    }
    this.#settle(this.#passive.statusCodes.has(this.#status) ? 'failure' : 'success');
    this.#settleUsage();
    const ctx = this.#ctx;
    const tf = ctx.transformer;
    const rest = tf === null ? null : tf.end();
    if (rest !== null) ctx.bytesOut += rest.length;
    if (this.#head !== null) {
      this.#endBuffered(tf!.status, this.#head, rest);
      return;
    }
    if (rest !== null) ctx.res.end(rest);
    else ctx.res.end();
  }

  /** #endBuffered sends a buffered transformer's whole answer: head and body together. */
  #endBuffered(status: number, head: string[], body: Buffer | null): void {
    const ctx = this.#ctx;
    const res = ctx.res;
    this.#head = null;
    if (res.destroyed) return;
    head.push('content-length', String(body === null ? 0 : body.length));
    try {
      res.writeHead(status, head);
    } catch (err) {
      ctx.errorCode = 'upstream_error';
      sendError(res, new GatewayError('upstream_error', { cause: err }), ctx.requestId, undefined, null, ctx.errorFormat);
      return;
    }
    if (body !== null) res.end(body);
    else res.end();
  }

  onResponseError(_controller: UpstreamController, err: Error): void {
    if (this.#isDone) return;
    if (this.#isClientGone) {
      this.#recordDeferred(err instanceof ClientGoneError ? 'neutral' : 'failure');
      return;
    }
    if (err instanceof ClientGoneError) return;
    this.#settle('failure');
    this.#settleUsage();
    const ctx = this.#ctx;
    const res = ctx.res;
    const code = toUpstreamErrorCode(err);
    const target = this.#target.url;
    const model = ctx.serving!.name;
    this.#metrics.upstreamErrors.labels(model, target, REASONS[code] ?? 'error').inc();
    // Nothing reached the client and the engine never answered: try another target.
    if (this.#status === 0 && !res.headersSent && isRetryable(ctx, code)) {
      (ctx.tried ??= new Set()).add(this.#target);
      if (this.#deps.nextTarget(ctx)) {
        dispatchAttempt(ctx, this.#deps);
        return;
      }
    }
    ctx.errorCode = code;
    const gwErr = new GatewayError(code, { cause: err });
    if (!res.headersSent) {
      sendError(res, gwErr, ctx.requestId, undefined, ctx.limitHeaders, ctx.errorFormat);
      return;
    }
    if (this.#isStream && !res.destroyed) {
      // The client already has its 200: the error can only travel as a last SSE event.
      res.end(ctx.transformer?.error(gwErr, ctx.requestId) ?? toSseErrorEvent(gwErr, ctx.requestId, ctx.errorFormat));
      return;
    }
    // A truncated non-stream body must not look complete: cut the connection.
    res.destroy();
  }

  #settleUsage(): void {
    if (!this.#tap.hasUsage) return;
    this.#ctx.promptTokens = this.#tap.promptTokens;
    this.#ctx.completionTokens = this.#tap.completionTokens;
  }
}

/** ClientGoneError is the abort reason when the client disconnects. */
class ClientGoneError extends Error {
  constructor() {
    super('client closed the connection');
    this.name = 'ClientGoneError';
  }
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  TRANSPORT_CODES.connectTimeout,
  TRANSPORT_CODES.headersTimeout,
  TRANSPORT_CODES.bodyTimeout,
  'ETIMEDOUT',
]);
const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
const REASONS: Partial<Record<ErrorCode, string>> = { upstream_timeout: 'timeout', upstream_connect_failed: 'connect_failed', upstream_error: 'reset' };

/** toUpstreamErrorCode maps a transport (built-in or undici) or socket error to the gateway error code the client sees. */
export function toUpstreamErrorCode(err: Error): ErrorCode {
  const code = (err as { code?: string }).code ?? '';
  if (TIMEOUT_CODES.has(code)) return 'upstream_timeout';
  if (CONNECT_CODES.has(code)) return 'upstream_connect_failed';
  return 'upstream_error';
}

/** withoutQueryKey removes the `apikey` parameter so a query-string key never reaches the upstream. */
export function withoutQueryKey(query: string): string {
  const params = new URLSearchParams(query);
  params.delete('apikey');
  const s = params.toString();
  return s === '' ? '' : `?${s}`;
}
