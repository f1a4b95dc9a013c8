/**
 * record: the last stage, run once per request when its response closes (finished or aborted),
 * errors included: metrics and the access log. It never throws.
 */
import { performance } from 'node:perf_hooks';
import { isResponseComplete } from '../http/index.js';
import type { AccessLog } from '../log/index.js';
import type { GatewayMetrics } from '../metrics/index.js';
import { settleLimits } from './admit.js';
import type { RequestContext } from './context.js';

/** CLIENT_CLOSED is the status logged when the client went away before the response ended (nginx's 499). */
export const CLIENT_CLOSED = 499;

const MAX_LOGGED_PATH = 512;

/** Recorder turns a finished RequestContext into metrics and an access log line. */
export class Recorder {
  readonly #metrics: GatewayMetrics;
  readonly #log: AccessLog;

  constructor(metrics: GatewayMetrics, log: AccessLog) {
    this.#metrics = metrics;
    this.#log = log;
  }

  /** record accounts for one closed request. */
  record(ctx: RequestContext): void {
    try {
      settleLimits(ctx);
      if (ctx.flowTicket !== null) endFlow(ctx);
      const res = ctx.res;
      const end = performance.now();
      // A WebSocket tunnel is logged once, when it closes, with the upstream's status.
      const status = ctx.tunnelStatus !== 0 ? ctx.tunnelStatus : isResponseComplete(res) ? res.statusCode : CLIENT_CLOSED;
      const model = ctx.model;
      const metrics = this.#metrics;
      const row = ctx.statsRow !== -1 ? ctx.statsRow : model !== null ? model.statsRow : unroutedRow(ctx, metrics);
      metrics.countRequest(row, status);
      metrics.observeDuration(row, (end - ctx.startedAt) / 1000);
      if (ctx.statsRow !== -1) {
        // Dispatched: off the in-flight gauge it went on in the dispatch stage.
        metrics.settled(row);
        if (ctx.firstByteAt > 0) metrics.observeTtfb(row, (ctx.firstByteAt - ctx.dispatchedAt) / 1000);
      }
      if (ctx.promptTokens > 0 || ctx.completionTokens > 0) metrics.addTokens(row, Math.max(0, ctx.promptTokens), Math.max(0, ctx.completionTokens));
      this.#log.write({
        request_id: ctx.requestId,
        trace_id: ctx.traceId,
        method: ctx.req.method ?? '',
        path: ctx.path.length > MAX_LOGGED_PATH ? `${ctx.path.slice(0, MAX_LOGGED_PATH)}…` : ctx.path,
        model: ctx.modelName ?? (model === null ? null : model.name),
        served_model: ctx.servedName,
        status,
        total_ms: round(end - ctx.startedAt),
        queue_ms: round(ctx.queueMs),
        connect_ms: ctx.connectMs >= 0 ? round(ctx.connectMs) : null,
        upstream_ms: ctx.headersAt > 0 ? round(ctx.headersAt - ctx.dispatchedAt) : null,
        ttfb_ms: ctx.firstByteAt > 0 ? round(ctx.firstByteAt - ctx.dispatchedAt) : null,
        target: ctx.target === null ? null : ctx.target.url,
        bytes_in: ctx.tunnelStatus !== 0 ? ctx.tunnelBytesIn : ctx.body === null ? 0 : ctx.body.length,
        bytes_out: ctx.bytesOut,
        prompt_tokens: ctx.promptTokens >= 0 ? ctx.promptTokens : null,
        completion_tokens: ctx.completionTokens >= 0 ? ctx.completionTokens : null,
        key: ctx.keyName ?? (ctx.keyHash === null ? null : `key#${ctx.keyHash.slice(0, 8)}`),
        error: ctx.errorCode,
      });
    } catch {
      // Accounting must never take a request or the process down.
    }
  }
}

/** endFlow settles a flow-controlled request's fair-share charge with its usage and lets the next waiting ones go. */
function endFlow(ctx: RequestContext): void {
  const ticket = ctx.flowTicket!;
  ctx.flowTicket = null;
  ticket.end(ctx.promptTokens, ctx.completionTokens);
}

/** unroutedRow is the metrics row of a request that reached no model: a model listing, or unmatched. */
function unroutedRow(ctx: RequestContext, metrics: GatewayMetrics): number {
  const route = ctx.route;
  if (route === null) return metrics.unmatchedRow(null);
  return ctx.isModelList ? metrics.modelListRow(route.path) : metrics.unmatchedRow(route.path);
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
