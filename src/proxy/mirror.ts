/**
 * MirrorCopy is one shadow copy of a request, sent to a mirror model's target after the real
 * request went out. It shares nothing with the client's exchange but the request's bytes: its own
 * connection from the target's pool, its answer read and dropped as it arrives (never paused, so
 * it never holds a socket), its failures counted and kept off the target's passive health. The
 * client's answer never waits for it. A copy still running when the client's answer has ended
 * gets `timeoutMs` more, then is cancelled, so a slow shadow engine cannot pile up copies.
 */
import type { Counter } from 'prom-client';
import type { UpstreamController, UpstreamHandler, UpstreamHeaders } from '../upstream/index.js';
import { headersForAttempt } from './headers.js';
import { upstreamPathOf, type Forwarders } from './retry.js';
import type { TailContext, TailModel, TailTarget } from './tail-context.js';

/** MirrorCounters are the children of igw_mirror_requests_total for one (model, mirror) pair, made once per compiled mirror. */
export interface MirrorCounters {
  readonly completed: Counter.Internal;
  readonly failed: Counter.Internal;
  readonly cancelled: Counter.Internal;
}

/** MirrorDeps are the long-lived parts a copy uses. */
export interface MirrorDeps {
  pools: Forwarders;
  isTls: boolean;
}

/** MirrorCancelled is the reason a copy that outlived the client's answer is aborted with. */
class MirrorCancelled extends Error {
  constructor() {
    super('mirror copy outlived the answer');
  }
}

/** sendMirror sends a copy of ctx's request, with `body`, to `target` of the `mirror` model; call originalEnded() when the client's answer ends. */
export function sendMirror(ctx: TailContext, mirror: TailModel, target: TailTarget, body: Buffer | null, timeoutMs: number, counters: MirrorCounters, deps: MirrorDeps): MirrorCopy {
  const copy = new MirrorCopy(target, mirror, counters, timeoutMs);
  const req = ctx.req;
  const headers = headersForAttempt(ctx, mirror, deps.isTls, false);
  deps.pools.forwarder(target.origin, mirror.timeouts.connectMs, ctx.snapshot.settings.isFastUpstream).dispatch(
    {
      path: upstreamPathOf(ctx, target),
      method: req.method!,
      headers,
      body: body !== null && body.length > 0 ? body : null,
      headersTimeout: mirror.timeouts.firstByteMs,
      bodyTimeout: mirror.timeouts.idleMs,
    },
    copy,
  );
  return copy;
}

/** MirrorCopy receives a copy's answer and drops it. */
export class MirrorCopy implements UpstreamHandler {
  readonly #target: TailTarget;
  readonly #mirror: TailModel;
  readonly #counters: MirrorCounters;
  readonly #timeoutMs: number;
  #controller: UpstreamController | null = null;
  #timer: NodeJS.Timeout | null = null;
  #status = 0;
  #isDone = false;

  constructor(target: TailTarget, mirror: TailModel, counters: MirrorCounters, timeoutMs: number) {
    this.#target = target;
    this.#mirror = mirror;
    this.#counters = counters;
    this.#timeoutMs = timeoutMs;
    // In flight on the target like any request, so balancers see the load the copies add.
    target.state.begin();
  }

  onRequestStart(controller: UpstreamController): void {
    this.#controller = controller;
  }

  onResponseStart(_controller: UpstreamController, statusCode: number): void {
    this.#status = statusCode;
  }

  onResponseData(): void {
    // The copy's answer is not wanted: read and dropped.
  }

  onResponseEnd(_controller: UpstreamController, _trailers: UpstreamHeaders): void {
    this.#finish(this.#status >= 500 ? this.#counters.failed : this.#counters.completed);
  }

  onResponseError(): void {
    this.#finish(this.#counters.failed);
  }

  /** originalEnded starts the copy's grace period: the client's answer has ended. */
  originalEnded(): void {
    if (this.#isDone || this.#timer !== null) return;
    this.#timer = setTimeout(this.#cancel, this.#timeoutMs);
    this.#timer.unref();
  }

  readonly #cancel = (): void => {
    if (this.#isDone) return;
    this.#finish(this.#counters.cancelled);
    this.#controller?.abort(new MirrorCancelled());
  };

  #finish(counter: Counter.Internal): void {
    if (this.#isDone) return;
    this.#isDone = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    // A shadow engine's failures are counted here, not held against the target's passive health.
    this.#target.state.end('neutral', this.#mirror.health.passive, Date.now());
    counter.inc();
  }
}
