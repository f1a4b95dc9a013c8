/**
 * mirror: after a request went to its engine, a share of the requests of a model with `mirror`
 * is copied to the mirror model (src/proxy/mirror.ts sends and drops the copy). The copy's body
 * names the mirror model's served id (else its name); its target is picked by the mirror model's
 * balancer among its healthy targets. A model without a mirror pays one null check.
 */
import type { Mirror, Model } from '../config/index.js';
import type { GatewayMetrics } from '../metrics/index.js';
import { sendMirror, type MirrorCounters, type MirrorDeps } from '../proxy/index.js';
import { parsedBody } from './body.js';
import type { RequestContext } from './context.js';
import { hashKeyOf } from './select.js';

/** createMirror returns what the dispatch stage calls once a request went upstream. */
export function createMirror(deps: MirrorDeps, metrics: GatewayMetrics): (ctx: RequestContext) => void {
  // One set of counter children per compiled mirror: no label lookup per copy.
  const countersOf = new WeakMap<Mirror, MirrorCounters>();
  const counters = (model: Model, m: Mirror): MirrorCounters => {
    let c = countersOf.get(m);
    if (c === undefined) {
      const child = (result: string) => metrics.mirrorRequests.labels(model.name, m.model.name, result);
      countersOf.set(m, (c = { completed: child('completed'), failed: child('failed'), cancelled: child('cancelled') }));
    }
    return c;
  };
  return (ctx) => {
    const model = ctx.model!;
    const m = model.mirror;
    if (m === null || Math.random() >= m.fraction) return;
    const target = m.model.upstream.pick(null, Date.now(), hashKeyOf, ctx, m.model);
    if (target === undefined) {
      counters(model, m).failed.inc();
      return;
    }
    const copy = sendMirror(ctx, m.model, target, mirrorBody(ctx, m.model), m.timeoutMs, counters(model, m), deps);
    if (ctx.isClosed) copy.originalEnded();
    else ctx.res.once('close', () => copy.originalEnded());
  };
}

/** mirrorBody is the request's body naming the mirror model (a JSON body with a `model`), else the body as sent upstream. */
function mirrorBody(ctx: RequestContext, mirror: Model): Buffer | null {
  const body = parsedBody(ctx);
  if (body === null || typeof body !== 'object' || Array.isArray(body) || !('model' in body)) return ctx.body;
  return Buffer.from(JSON.stringify({ ...body, model: mirror.servedModel ?? mirror.name }));
}
