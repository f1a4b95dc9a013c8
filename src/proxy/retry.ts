/**
 * Retry owns a request's exchange with the upstream: it sends each attempt (wrapped in its own
 * PassiveHealth link), notes when the upstream answered, and when an attempt failed before the
 * engine could have acted on it (no connection, or a reset before any answer), asks the select
 * stage for another target through Reselect and sends the request again. Inference requests are
 * not idempotent: the transport never retries them itself, and this link resends only requests
 * that provably never reached an engine, within the model's retry count and time budget.
 */
import { performance } from 'node:perf_hooks';
import type { ErrorCode } from '../errors/index.js';
import type { GatewayMetrics } from '../metrics/index.js';
import type { UpstreamController, UpstreamDispatcher, UpstreamHeaders } from '../upstream/index.js';
import { headersForAttempt } from './headers.js';
import { PassiveHealth } from './passive-health.js';
import type { Reselect, TailContext, TailTarget } from './tail-context.js';
import { ClientGoneError, type ResponseHandler, type TailHandler } from './tail-handler.js';
import { toUpstreamErrorCode } from './upstream-error.js';

/** Forwarders hands out the dispatcher of an origin (the pool registry). */
export interface Forwarders {
  forwarder(origin: string, connectTimeoutMs: number, isFastUpstream: boolean): UpstreamDispatcher;
}

/** RetryDeps are the long-lived parts a retry link uses. */
export interface RetryDeps<C extends TailContext> {
  pools: Forwarders;
  reselect: Reselect<C>;
  metrics: GatewayMetrics;
  isTls: boolean;
}

/** Retry is the top of one request's tail: the handler each attempt's PassiveHealth passes events to. */
export class Retry<C extends TailContext> implements ResponseHandler {
  readonly #ctx: C;
  readonly #deps: RetryDeps<C>;
  readonly #next: TailHandler;
  /** #attempt is the current attempt's link: the controller of the links below. */
  #attempt: PassiveHealth | null = null;
  #isAnswered = false;
  #isClientGone = false;
  #isDone = false;

  constructor(ctx: C, deps: RetryDeps<C>, next: TailHandler) {
    this.#ctx = ctx;
    this.#deps = deps;
    this.#next = next;
  }

  /** start sends the first attempt to ctx.target and takes over the client's departure. */
  start(): void {
    this.#ctx.onClientGone = this.#onClientGone;
    this.#dispatch();
  }

  /** #dispatch sends one attempt to ctx.target (the first, or a retry on another target). */
  #dispatch(): void {
    const ctx = this.#ctx;
    const serving = ctx.serving!;
    const target = ctx.target!;
    const req = ctx.req;
    ctx.attempts++;
    // A transformer reads the upstream's bytes, so they must come uncompressed.
    const headers = headersForAttempt(ctx, serving, this.#deps.isTls, ctx.transformer !== null);
    const attempt = new PassiveHealth(ctx, this.#deps.metrics, this);
    this.#attempt = attempt;
    this.#deps.pools.forwarder(target.origin, serving.timeouts.connectMs, ctx.snapshot.settings.isFastUpstream).dispatch(
      {
        path: upstreamPathOf(ctx, target),
        method: req.method!,
        headers,
        body: ctx.body !== null && ctx.body.length > 0 ? ctx.body : null,
        headersTimeout: serving.timeouts.firstByteMs,
        bodyTimeout: serving.timeouts.idleMs,
      },
      attempt,
    );
  }

  /** #onClientGone is called by the pipeline when the client closed before the response finished (one per request). */
  readonly #onClientGone = (): void => {
    if (this.#isDone) return;
    this.#isClientGone = true;
    const attempt = this.#attempt!;
    this.#next.onClientGone(attempt);
    if (!this.#ctx.isRecordDeferred) attempt.abort(new ClientGoneError());
  };

  onResponseStart(controller: UpstreamController, statusCode: number, headers: UpstreamHeaders): void {
    this.#isAnswered = true;
    this.#ctx.headersAt = performance.now();
    this.#ctx.connectMs = controller.connectMs ?? -1;
    this.#next.onResponseStart(controller, statusCode, headers);
  }

  onResponseData(controller: UpstreamController, chunk: Buffer): void {
    const ctx = this.#ctx;
    if (ctx.firstByteAt === 0) ctx.firstByteAt = performance.now();
    this.#next.onResponseData(controller, chunk);
  }

  onResponseRun(controller: UpstreamController, read: Buffer, start: number, end: number, dataBytes: number): number {
    const ctx = this.#ctx;
    if (ctx.firstByteAt === 0) ctx.firstByteAt = performance.now();
    return this.#next.onResponseRun(controller, read, start, end, dataBytes);
  }

  onResponseEnd(controller: UpstreamController, trailers: UpstreamHeaders): void {
    this.#isDone = true;
    this.#next.onResponseEnd(controller, trailers);
  }

  onResponseError(controller: UpstreamController, err: Error): void {
    const ctx = this.#ctx;
    // Nothing reached the client and the engine never answered: try another target.
    if (!this.#isAnswered && !this.#isClientGone && retryTarget(ctx, toUpstreamErrorCode(err), this.#deps.reselect)) {
      this.#dispatch();
      return;
    }
    this.#isDone = true;
    this.#next.onResponseError(controller, err);
  }
}

/**
 * retryTarget decides whether an attempt that failed with `code` before any answer is sent again:
 * only a failure that happened before the upstream could have acted, within the model's retries
 * and retry time budget, and only if another target is left (ctx.target is then that target).
 */
export function retryTarget<C extends TailContext>(ctx: C, code: ErrorCode, reselect: Reselect<C>): boolean {
  // A split's chosen model owns the upstream, so its retry budget applies.
  const model = ctx.chosen ?? ctx.model!;
  if (!((code === 'upstream_connect_failed' || code === 'upstream_error') && ctx.attempts <= model.retries && performance.now() - ctx.startedAt < model.retryTimeoutMs)) return false;
  (ctx.tried ??= new Set()).add(ctx.target!);
  return reselect.next(ctx);
}

/** upstreamPathOf is the request target sent to `target`: its base path, the stripped path, the query without a query-string key. */
export function upstreamPathOf(ctx: TailContext, target: TailTarget): string {
  return target.basePath + ctx.upstreamPath + (ctx.keyFromQuery ? withoutQueryKey(ctx.query) : ctx.query);
}

/** withoutQueryKey removes the `apikey` parameter so a query-string key never reaches the upstream. */
function withoutQueryKey(query: string): string {
  const params = new URLSearchParams(query);
  params.delete('apikey');
  const s = params.toString();
  return s === '' ? '' : `?${s}`;
}
