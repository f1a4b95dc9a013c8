import type { RequestContext } from './context.js';

/** parsedBody parses the request body once per request (null when it is empty or not JSON). */
export function parsedBody(ctx: RequestContext): unknown {
  if (ctx.parsedBody === undefined) {
    try {
      ctx.parsedBody = ctx.body === null || ctx.body.length === 0 ? null : JSON.parse(ctx.body.toString('utf8'));
    } catch {
      ctx.parsedBody = null;
    }
  }
  return ctx.parsedBody;
}

/** rewriteBody re-serializes the parsed body after a stage changed it. */
export function rewriteBody(ctx: RequestContext): void {
  ctx.body = Buffer.from(JSON.stringify(ctx.parsedBody));
  ctx.bodyRewritten = true;
}
