/**
 * select: pick the target. The model's balancer chooses among its healthy targets; when none is
 * healthy, the model's fallbacks are tried in order (not chained). With nothing healthy anywhere
 * the answer is 503 at once, without trying to connect, with Retry-After set to when the first
 * ejected target gets its next chance. Retries (forward.ts) come back here with ctx.tried set; a
 * flow-controlled request retries only on a target that is not saturated. Flow control's dispatch
 * (schedule.ts) picks with the same balancer, through pickWithRoom.
 */
import type { Model, Target } from '../config/index.js';
import { GatewayError } from '../errors/index.js';
import { pickTarget, type FlowControl, type FlowModel } from '../flow/index.js';
import { pickForAdapter, toPromptBlocks, toPromptPrefixKey, type PromptBlocks } from '../upstream/index.js';
import { parsedBody } from './body.js';
import { useServedModel } from './prepare.js';
import type { RequestContext } from './context.js';

/** hashKeyOf computes the balancing key of a request for a model (consistent-hash key, prefix-aware prompt blocks), or null. */
export function hashKeyOf(ctx: RequestContext, model: Model): string | PromptBlocks | null {
  const on = model.hashOn;
  if (on === null) return null;
  if (on.kind === 'header') {
    const v = ctx.req.headers[on.header];
    return typeof v === 'string' ? v : null;
  }
  if (on.kind === 'api_key') return ctx.keyHash;
  if (on.kind === 'prompt_blocks') return toPromptBlocks(parsedBody(ctx), on.blockChars, on.maxBlocks);
  return toPromptPrefixKey(parsedBody(ctx), on.chars);
}

/** pickFrom asks one model's upstream for a target not in `excluded`; it asks for the hash key only when a balancer uses one. */
function pickFrom(ctx: RequestContext, model: Model, nowMs: number, excluded: ReadonlySet<Target> | null): Target | undefined {
  const adapter = ctx.adapter;
  if (adapter !== null && model.adapters?.has(adapter) === true) return pickForAdapter(model.upstream.targets, adapter, excluded, model.learnedAdapters);
  return model.upstream.pick(excluded, nowMs, hashKeyOf, ctx, model, ctx.body === null ? 0 : ctx.body.length);
}

/**
 * pickWithRoom is flow control's FlowPick: the model's balancer (or the LoRA adapter pick) chooses
 * the request's target, leaving out the targets without room. The flow queue gives back the model
 * it was built with (a Model) and the request it was given (a RequestContext).
 */
export function pickWithRoom(model: FlowModel, request: unknown, full: ReadonlySet<Target>, nowMs: number): Target | undefined {
  return pickFrom(request as RequestContext, model as Model, nowMs, full);
}

/** retryFull is the reused set of the targets a flow-controlled retry leaves out (tried or saturated); filled and read within one call. */
const retryFull = new Set<Target>();

/**
 * retryUnderFlow is a flow-controlled request's retry target: the balancer's pick among the
 * untried targets that are not saturated (the request had its turn; it does not go to a full
 * engine), else none.
 */
function retryUnderFlow(ctx: RequestContext, model: Model, flow: FlowControl, tried: ReadonlySet<unknown>, nowMs: number): Target | undefined {
  const r = pickTarget(model.upstream.targets, flow, nowMs, null, tried, retryFull);
  if (typeof r === 'number') return undefined;
  const t = pickFrom(ctx, model, nowMs, retryFull);
  retryFull.clear();
  return t ?? r;
}

/** nextTarget picks from the requested model (or the one its split chose), then its fallbacks; sets ctx.serving and ctx.target. */
export function nextTarget(ctx: RequestContext): boolean {
  const model = ctx.chosen ?? ctx.model!;
  const now = Date.now();
  const flow = model.flow;
  let target = flow !== null && ctx.flowTicket !== null && ctx.tried !== null ? retryUnderFlow(ctx, model, flow, ctx.tried, now) : pickFrom(ctx, model, now, ctx.tried);
  let serving = model;
  for (let i = 0; target === undefined && i < model.fallback.length; i++) {
    serving = model.fallback[i]!;
    target = pickFrom(ctx, serving, now, ctx.tried);
  }
  if (target === undefined) return false;
  if (serving !== ctx.serving) {
    ctx.serving = serving;
    if (serving !== model) useServedModel(ctx, serving);
  }
  ctx.target = target;
  return true;
}

/** retryAfterSec is when the first ejected target of a model (or its fallbacks) gets its next chance. */
function retryAfterSec(model: Model): number {
  const now = Date.now();
  let soonest = Infinity;
  for (const m of [model, ...model.fallback]) {
    for (const t of m.upstream.targets) if (t.state.ejectedUntilMs > now) soonest = Math.min(soonest, t.state.ejectedUntilMs - now);
    if (soonest === Infinity) soonest = Math.min(soonest, m.health.intervalMs);
  }
  return Math.max(1, Math.ceil(soonest / 1000));
}

/** select picks the first target of a request, or answers 503 no_healthy_upstream. */
export function select(ctx: RequestContext): void {
  // Flow control already released the request to a target.
  if (ctx.target !== null) return;
  if (!nextTarget(ctx)) throw new GatewayError('no_healthy_upstream', { retryAfterSec: retryAfterSec(ctx.chosen ?? ctx.model!) });
}
