import { GatewayError } from '../errors/index.js';
import type { RequestContext } from './context.js';

/** select picks the target of the routed model with the model's balancer. */
export function select(ctx: RequestContext): void {
  const target = ctx.model!.balancer.pick();
  if (target === undefined) throw new GatewayError('no_healthy_upstream', { retryAfterSec: 1 });
  ctx.target = target;
}
