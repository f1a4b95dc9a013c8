/**
 * admit: rate, token and concurrency limits (gateway-wide, model, key). Counters are checked and
 * taken in one atomic store call; token rules reserve an estimate (prompt size / 4 + max_tokens,
 * or the configured default) that record() later settles with the real usage. Then concurrency
 * slots are taken, waiting in a bounded FIFO queue when full. The (model, key) plan the take
 * follows was compiled with the snapshot (src/ratelimit/plan.ts). A model without limits compiles
 * to `limits: null` and this stage returns at its first line.
 */
import { GatewayError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { GatewayMetrics } from '../metrics/index.js';
import { maxTokensIn } from '../openai/index.js';
import { LimitTake, LocalStore, toRateLimitHeaders, type CounterStore, type LimitScope, type ModelLimits, type Plan, type TakeRequest, type TakeResult } from '../ratelimit/index.js';
import type { RequestContext } from './context.js';

/** AdmitDeps are the counter store and how to behave when it fails. */
export interface AdmitDeps {
  store: CounterStore;
  /** isFaultTolerant lets traffic through, counted locally, while the store is unreachable. */
  isFaultTolerant: boolean;
  metrics: GatewayMetrics;
  log: Logger;
}

/**
 * estimateTokens reserves prompt bytes / 4 plus the completion budget (none for embeddings).
 * A body already parsed (body routing, translation) is read; otherwise it is scanned rather than
 * parsed for one number: the reservation is settled with the real usage anyway.
 */
function estimateTokens(ctx: RequestContext, limits: ModelLimits): number {
  // A WebSocket session's usage never passes by as an OpenAI `usage` object: nothing could settle it.
  if (ctx.upgradeHead !== null) return 0;
  const body = ctx.body;
  const prompt = body === null ? 0 : Math.ceil(body.length / 4);
  if (ctx.upstreamPath.endsWith('/embeddings')) return prompt;
  let max: unknown;
  if (ctx.parsedBody !== undefined) {
    const parsed = ctx.parsedBody as { max_tokens?: unknown; max_completion_tokens?: unknown } | null;
    max = parsed?.max_completion_tokens ?? parsed?.max_tokens;
  } else if (body !== null) max = maxTokensIn(body);
  return prompt + (typeof max === 'number' && max > 0 ? max : limits.defaultMaxTokens);
}

/** createAdmit builds the admit stage over a counter store. */
export function createAdmit(deps: AdmitDeps): (ctx: RequestContext) => void | Promise<void> {
  const fallback = new LocalStore();
  let lastStoreErrorLogMs = 0;

  type Taken = { res: TakeResult; store: CounterStore };
  // On a store failure: count locally (fault tolerant) or refuse; log at most every 10 s.
  const takeFallback = (err: unknown, req: TakeRequest): Taken => {
    const now = Date.now();
    if (now - lastStoreErrorLogMs > 10_000) {
      lastStoreErrorLogMs = now;
      deps.log.error({ err: String(err), fault_tolerant: deps.isFaultTolerant }, 'rate-limit store unreachable');
    }
    deps.metrics.limitStoreErrors.labels(deps.isFaultTolerant ? 'allowed_locally' : 'refused').inc();
    if (!deps.isFaultTolerant) throw new GatewayError('limits_unavailable', { retryAfterSec: 1, cause: err });
    return { res: fallback.take(req), store: fallback };
  };
  const admitted = (ctx: RequestContext, plan: Plan, reservation: number, res: TakeResult, store: CounterStore): void | Promise<void> => {
    const { scopes, rules } = plan;
    if (!res.isAllowed) {
      const rule = rules[res.failed]!;
      deps.metrics.rateLimited.labels(ctx.model!.name, rule.metricLabel).inc();
      throw new GatewayError('rate_limit_exceeded', {
        message: `Rate limit exceeded: ${rule.description}.`,
        retryAfterSec: Math.max(1, Math.ceil(res.resetMs[res.failed]! / 1000)),
        headerList: toRateLimitHeaders(plan, res, res.failed),
      });
    }
    if (rules.length > 0) {
      ctx.limitTake = new LimitTake(store, plan, res.windowIds, reservation);
      ctx.limitHeaders = toRateLimitHeaders(plan, res, -1);
    }
    return acquireSlots(ctx, scopes, 0);
  };

  const acquireSlots = (ctx: RequestContext, scopes: readonly LimitScope[], from: number): void | Promise<void> => {
    for (let i = from; i < scopes.length; i++) {
      const sem = scopes[i]!.semaphore;
      if (sem === null) continue;
      const got = sem.acquire();
      if (got === null) {
        (ctx.heldSlots ??= []).push(sem);
        continue;
      }
      if (got === 'queue_full') {
        deps.metrics.rateLimited.labels(ctx.model!.name, `${scopes[i]!.metricScope}:queue_full`).inc();
        throw new GatewayError('queue_full', { retryAfterSec: 1 });
      }
      // Only a request that waits reads the clock for its queue time.
      const waitFrom = performance.now();
      ctx.onClientGone = got.cancel;
      return got.wait.then(
        () => {
          ctx.onClientGone = null;
          ctx.queueMs += performance.now() - waitFrom;
          (ctx.heldSlots ??= []).push(sem);
          // The client may have left while this slot was on its way: record() already ran.
          if (ctx.isClosed) {
            releaseSlots(ctx);
            return;
          }
          return acquireSlots(ctx, scopes, i + 1);
        },
        (reason: unknown) => {
          ctx.onClientGone = null;
          ctx.queueMs += performance.now() - waitFrom;
          if (reason === 'queue_timeout') {
            deps.metrics.rateLimited.labels(ctx.model!.name, `${scopes[i]!.metricScope}:queue_timeout`).inc();
            throw new GatewayError('queue_timeout', { retryAfterSec: 1 });
          }
          throw reason;
        },
      );
    }
  };

  return (ctx) => {
    const limits = ctx.model!.limits;
    if (limits === null) return;
    const plan = ctx.keyHash === null ? limits.plan : (limits.keyPlans.get(ctx.keyHash) ?? limits.plan);
    if (plan.rules.length === 0) return acquireSlots(ctx, plan.scopes, 0);
    let reservation = 0;
    let adds = plan.requestAdds;
    if (limits.hasTokenRules) {
      reservation = estimateTokens(ctx, limits);
      adds = plan.isTokenRule.map((isToken) => (isToken ? reservation : 1));
    }
    const req: TakeRequest = { keys: plan.keys, windowMs: plan.windowMs, adds, limits: plan.limits };
    // Which store answered (the shared one, or the local fallback) is where the tokens settle.
    // A store that answers at once (local) costs no promise and no closure.
    let r: TakeResult | Promise<TakeResult>;
    try {
      r = deps.store.take(req);
    } catch (err) {
      const t = takeFallback(err, req);
      return admitted(ctx, plan, reservation, t.res, t.store);
    }
    if (!(r instanceof Promise)) return admitted(ctx, plan, reservation, r, deps.store);
    return r.then(
      (res) => admitted(ctx, plan, reservation, res, deps.store),
      (err: unknown) => {
        const t = takeFallback(err, req);
        return admitted(ctx, plan, reservation, t.res, t.store);
      },
    );
  };
}

/** releaseSlots frees the concurrency slots a request holds. */
export function releaseSlots(ctx: RequestContext): void {
  const held = ctx.heldSlots;
  if (held === null) return;
  ctx.heldSlots = null;
  for (const s of held) s.release();
}

/**
 * settleLimits runs when a request ends: the token reservation meets the usage the engine
 * reported, or is refunded when the engine never answered (an answer without usage keeps it), and
 * concurrency slots are released.
 */
export function settleLimits(ctx: RequestContext): void {
  releaseSlots(ctx);
  const take = ctx.limitTake;
  if (take === null) return;
  ctx.limitTake = null;
  if (ctx.promptTokens >= 0) take.settle(ctx.promptTokens + Math.max(0, ctx.completionTokens));
  else if (ctx.headersAt === 0) take.settle(0);
}
