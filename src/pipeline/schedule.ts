/**
 * schedule: when does an admitted request go. A model without flow control compiles to
 * `flow: null` and this stage returns at its first line. With flow control, a request goes at once
 * while some target has room, to the one the model's balancer picks among those with room (also
 * when it is released later); while every target is saturated (or none is healthy)
 * it waits in the model's queue, by priority and fair share (src/flow/), and a sheddable one
 * (negative priority) is refused at once.
 */
import { performance } from 'node:perf_hooks';
import type { FlowScheduler } from '../flow/index.js';
import { maxTokensIn } from '../openai/index.js';
import { DEFAULTS } from '../config/defaults.js';
import { parsedBody, rewriteBody } from './body.js';
import { pickWithRoom } from './select.js';
import type { RequestContext } from './context.js';

/** estimateTokens is a request's provisional fair-share charge: prompt bytes / 4 plus its completion budget. */
function estimateTokens(ctx: RequestContext): number {
  const body = ctx.body;
  if (body === null) return 1;
  return Math.ceil(body.length / 4) + (maxTokensIn(body) ?? DEFAULTS.limits.defaultMaxTokens);
}

/**
 * toUpstreamPriority writes the request's priority into the body as vLLM's `priority`. vLLM runs
 * lower values first and ours higher first, so it is negated; 0 (vLLM's default) is left out.
 */
function toUpstreamPriority(ctx: RequestContext, priority: number): void {
  if (priority === 0) return;
  const body = parsedBody(ctx);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return;
  (body as { priority?: number }).priority = -priority;
  rewriteBody(ctx);
}

/** createSchedule builds the schedule stage over the process's flow-control queues. */
export function createSchedule(scheduler: FlowScheduler): (ctx: RequestContext) => void | Promise<void> {
  return (ctx) => {
    const model = ctx.model!;
    const flow = model.flow;
    if (flow === null) return;
    const scheduled = scheduler.schedule(flow, model, ctx.keyHash, ctx.req.headers['x-priority'], flow.fairness === 'tokens' ? estimateTokens(ctx) : 1, ctx, pickWithRoom);
    // The model left the configuration's flow control (a reload) after this request was admitted.
    if (scheduled === null) return;
    const { ticket, target, wait } = scheduled;
    if (flow.isUpstreamPriority) toUpstreamPriority(ctx, ticket.level.priority);
    if (wait === null) {
      ctx.flowTicket = ticket;
      if (target !== null) {
        ctx.serving = model;
        ctx.target = target;
      }
      return;
    }
    ctx.onClientGone = ticket.cancel;
    const from = performance.now();
    return wait.then((t) => {
      ctx.onClientGone = null;
      // The access log's queue_ms: the time waited in the gateway for a target.
      ctx.queueMs += performance.now() - from;
      ctx.flowTicket = ticket;
      // null: the model's queue closed (flow control turned off by a reload): select picks.
      if (t === null) return;
      ctx.serving = model;
      ctx.target = t;
    });
  };
}
