/**
 * forward: send the request to the chosen target through its keep-alive pool and answer the
 * client with what comes back. The upstream exchange runs through a chain of small handlers over
 * the undici-style UpstreamHandler contract (src/upstream/dispatch.ts), each wrapping the next,
 * as undici's interceptors do:
 *
 *   upstream --> PassiveHealth --> Retry --> UsageTapHandler --> [TransformHandler] --> Respond --> client
 *               (one per attempt)   (owns attempts and re-selection)   (only with a transformer)
 *
 * Retry sends each attempt wrapped in its own PassiveHealth link (the attempt's target), and
 * resends a failed one to the target the select stage's Reselect gives it; the usage tap hands
 * the token counts to the request; the transformer rewrites the body; Respond frames and writes.
 * No handler is in a request's chain that it does not need: a request without a transformer has
 * no transform link. Per request that is three small objects, plus one per attempt.
 *
 * A client that goes away aborts the upstream request at once, which makes vLLM stop generating,
 * except after the stream's last content event: the engine is done, and the usage event it is
 * about to send is awaited (briefly) so the request's tokens are still counted.
 */
import { performance } from 'node:perf_hooks';
import { Respond } from './respond.js';
import { Retry, type RetryDeps } from './retry.js';
import type { TailContext } from './tail-context.js';
import { TransformHandler } from './transform-handler.js';
import { UsageTapHandler } from './usage-tap-handler.js';

/** ForwardDeps are the long-lived parts forwarding uses. */
export interface ForwardDeps<C extends TailContext> extends RetryDeps<C> {
  /** record accounts for a request whose recording the client's departure deferred (ctx.isRecordDeferred). */
  record: (ctx: C) => void;
}

/** forward dispatches ctx to ctx.target; it answers the client itself, errors included. */
export function forward<C extends TailContext>(ctx: C, deps: ForwardDeps<C>): void {
  ctx.dispatchedAt = performance.now();
  const respond = new Respond(ctx);
  const tf = ctx.transformer;
  let usage: UsageTapHandler<C>;
  if (tf === null) usage = new UsageTapHandler(ctx, deps.record, respond);
  else {
    const transform = new TransformHandler(tf, respond);
    usage = new UsageTapHandler(ctx, deps.record, transform);
    transform.usage = usage;
  }
  new Retry(ctx, deps, usage).start();
}
