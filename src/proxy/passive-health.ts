/**
 * PassiveHealth is the link nearest the transport, one per attempt: it holds the attempt's target
 * in flight (balancers see it) from dispatch until the exchange ends, then reports the outcome to
 * the target's passive health (a failure status or a transport error: failure; a client that
 * left: neutral). It also counts the upstream's errors by target and reason.
 *
 * It is the controller of the links below it. Their abort ends the exchange for them at once,
 * whatever the transport does with it: the outcome is settled and onResponseError runs before
 * abort returns, so the request's accounting (which may run right after a client left) sees a
 * settled attempt and the usage seen so far. What the transport reports afterwards is dropped.
 */
import type { GatewayMetrics } from '../metrics/index.js';
import type { Outcome, PassivePolicy, UpstreamController, UpstreamHandler, UpstreamHeaders } from '../upstream/index.js';
import type { TailContext, TailTarget } from './tail-context.js';
import { ClientGoneError, type ResponseHandler } from './tail-handler.js';
import { UPSTREAM_ERROR_REASONS, toUpstreamErrorCode } from './upstream-error.js';

/** toOutcome is the passive-health outcome of an answer with `status`: a status the policy counts as failure, or success. */
export function toOutcome(policy: PassivePolicy, status: number): Outcome {
  return policy.statusCodes.has(status) ? 'failure' : 'success';
}

/** PassiveHealth follows one attempt on one target. */
export class PassiveHealth implements UpstreamHandler, UpstreamController {
  readonly #ctx: TailContext;
  readonly #next: ResponseHandler;
  readonly #metrics: GatewayMetrics;
  readonly #target: TailTarget;
  /** #passive is the serving model's passive health policy, read while the model is in cache. */
  readonly #passive: PassivePolicy;
  readonly #model: string;
  /** #controller is the transport's (null until the request started). */
  #controller: UpstreamController | null = null;
  /** #aborted is an abort asked for before the transport started the request. */
  #aborted: Error | null = null;
  #status = 0;
  #isDone = false;

  /** The attempt begins here: ctx.target is in flight on behalf of ctx.serving. */
  constructor(ctx: TailContext, metrics: GatewayMetrics, next: ResponseHandler) {
    this.#ctx = ctx;
    this.#next = next;
    this.#metrics = metrics;
    this.#target = ctx.target!;
    const serving = ctx.serving!;
    this.#passive = serving.health.passive;
    this.#model = serving.name;
    this.#target.state.begin();
  }

  /** #settle ends this attempt on its target exactly once, with its passive-health outcome. */
  #settle(outcome: Outcome): void {
    this.#isDone = true;
    this.#target.state.end(outcome, this.#passive, Date.now());
  }

  abort(reason: Error): void {
    if (this.#isDone) return;
    this.#settle(reason instanceof ClientGoneError ? 'neutral' : 'failure');
    this.#next.onResponseError(this, reason);
    if (this.#controller !== null) this.#controller.abort(reason);
    else this.#aborted = reason;
  }

  pause(): void {
    if (!this.#isDone) this.#controller?.pause();
  }

  resume(): void {
    if (!this.#isDone) this.#controller?.resume();
  }

  /** connectMs is the transport's connect time for this attempt (see UpstreamController). */
  get connectMs(): number | undefined {
    return this.#controller?.connectMs;
  }

  onRequestStart(controller: UpstreamController): void {
    this.#controller = controller;
    if (this.#aborted !== null) controller.abort(this.#aborted);
  }

  onResponseStart(_controller: UpstreamController, statusCode: number, headers: UpstreamHeaders): void {
    if (this.#isDone) return;
    this.#status = statusCode;
    if (statusCode >= 500) this.#metrics.upstreamErrors.labels(this.#model, this.#target.url, 'status_5xx').inc();
    this.#next.onResponseStart(this, statusCode, headers);
  }

  onResponseData(_controller: UpstreamController, chunk: Buffer): void {
    if (this.#isDone) return;
    this.#next.onResponseData(this, chunk);
  }

  onResponseRun(_controller: UpstreamController, read: Buffer, start: number, end: number, dataBytes: number): number {
    if (this.#isDone) return end;
    return this.#next.onResponseRun(this, read, start, end, dataBytes);
  }

  onResponseEnd(_controller: UpstreamController, trailers: UpstreamHeaders): void {
    if (this.#isDone) return;
    this.#settle(toOutcome(this.#passive, this.#status));
    this.#next.onResponseEnd(this, trailers);
  }

  onResponseError(_controller: UpstreamController, err: Error): void {
    if (this.#isDone) return;
    this.#settle('failure');
    // The failure of an exchange the client had left is not the upstream's to answer for in metrics.
    if (!this.#ctx.isClosed) this.#metrics.upstreamErrors.labels(this.#model, this.#target.url, UPSTREAM_ERROR_REASONS[toUpstreamErrorCode(err)] ?? 'error').inc();
    this.#next.onResponseError(this, err);
  }
}
