/**
 * The request pipeline: fixed, named stages in a fixed order over one RequestContext:
 * route -> authenticate -> list-models -> translate -> admit -> select -> forward, then record
 * when the response closes.
 * A stage ends the request by throwing a GatewayError, which only this runner turns into a
 * response. Stages are synchronous today; the runner awaits only a stage that returns a promise.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Snapshot } from '../config/index.js';
import { isResponseComplete } from '../http/index.js';
import { GatewayError, sendError, toGatewayError } from '../errors/index.js';
import type { AccessLog } from '../log/index.js';
import type { GatewayMetrics } from '../metrics/index.js';
import { forward, toTraceContext, type ForwardDeps } from '../proxy/index.js';
import type { PoolRegistry } from '../upstream/index.js';
import { createAdmit, type AdmitDeps } from './admit.js';
import { authenticate } from './authenticate.js';
import { RequestContext } from './context.js';
import { listModels } from './list-models.js';
import { Recorder } from './record.js';
import { route } from './route.js';
import { translate } from './translate.js';
import { nextTarget, select } from './select.js';

/** Stage is one pipeline step. */
export type Stage = (ctx: RequestContext) => void | Promise<void>;

/** PipelineDeps are the long-lived parts the pipeline needs besides the snapshot. */
export interface PipelineDeps {
  /** current returns the snapshot to serve a new request with. */
  current: () => Snapshot;
  pools: PoolRegistry;
  metrics: GatewayMetrics;
  accessLog: AccessLog;
  isTls: boolean;
  /** limits are the rate-limit store and its failure mode. */
  limits: Omit<AdmitDeps, 'metrics'>;
  /** counters are plain process-wide counts the status document reports. */
  counters: { inflight: number };
  /** onError sees every error answered with a 5xx the gateway made itself (for logs). */
  onError?: (err: GatewayError, ctx: RequestContext) => void;
}

// A request id from the client is kept only if it is short and plain, so it can go into headers
// and logs as is.
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:\-]{1,128}$/;

// The context rides on the response so one shared 'close' listener serves every request
// (no closure per request).
const kContext = Symbol('igw.context');
const kRecorder = Symbol('igw.recorder');
const kCounters = Symbol('igw.counters');
type ResponseWithContext = ServerResponse & { [kContext]?: RequestContext; [kRecorder]?: Recorder; [kCounters]?: { inflight: number } };

function onResponseClose(this: ResponseWithContext): void {
  const ctx = this[kContext]!;
  ctx.isClosed = true;
  this[kCounters]!.inflight--;
  if (!isResponseComplete(this)) ctx.onClientGone?.();
  this[kRecorder]!.record(ctx);
}

/** createPipeline returns the HTTP request listener of the proxy. */
export function createPipeline(deps: PipelineDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const forwardDeps: ForwardDeps = { pools: deps.pools, metrics: deps.metrics, isTls: deps.isTls, nextTarget };
  const recorder = new Recorder(deps.metrics, deps.accessLog);
  const dispatch: Stage = (ctx) => {
    deps.metrics.of(ctx.model!).inflight.inc();
    forward(ctx, forwardDeps);
  };
  const admit = createAdmit({ ...deps.limits, metrics: deps.metrics });
  const stages: readonly Stage[] = [route, authenticate, listModels, translate, admit, select, dispatch];

  const fail = (ctx: RequestContext, err: unknown): void => {
    const gwErr = toGatewayError(err);
    ctx.errorCode = gwErr.expose ? gwErr.code : 'internal_error';
    if (gwErr.status >= 500) deps.onError?.(gwErr, ctx);
    sendError(ctx.res, gwErr, ctx.requestId, undefined, ctx.limitHeaders, ctx.errorFormat);
  };

  const run = (ctx: RequestContext, from: number): void => {
    try {
      for (let i = from; i < stages.length; i++) {
        if (ctx.res.headersSent) return;
        const pending = stages[i]!(ctx);
        if (pending !== undefined) {
          pending.then(() => run(ctx, i + 1), (err: unknown) => fail(ctx, err));
          return;
        }
      }
    } catch (err) {
      fail(ctx, err);
    }
  };

  return (req, res) => {
    const startedAt = performance.now();
    const given = req.headers['x-request-id'];
    const requestId = typeof given === 'string' && SAFE_REQUEST_ID.test(given) ? given : randomUUID();
    const ctx = new RequestContext(req, res, deps.current(), startedAt, requestId);
    const tp = req.headers.traceparent;
    const trace = toTraceContext(typeof tp === 'string' ? tp : undefined);
    ctx.traceId = trace.traceId;
    ctx.traceparent = trace.traceparent;
    const r = res as ResponseWithContext;
    r[kContext] = ctx;
    r[kRecorder] = recorder;
    r[kCounters] = deps.counters;
    deps.counters.inflight++;
    res.once('close', onResponseClose);

    const limit = ctx.snapshot.settings.maxBodyBytes;
    const declared = req.headers['content-length'];
    // HTTP/1.1 announces a body with Content-Length or Transfer-Encoding; HTTP/2 need not announce it.
    if (declared === undefined && req.headers['transfer-encoding'] === undefined && req.httpVersionMajor < 2) {
      run(ctx, 0);
      return;
    }
    if (declared !== undefined && Number(declared) > limit) {
      // Refused before reading: the rest of the upload is not wanted, so the connection closes.
      tooLarge(ctx);
      return;
    }
    readBody(ctx, limit, () => run(ctx, 0), () => tooLarge(ctx));
  };
}

function tooLarge(ctx: RequestContext): void {
  ctx.errorCode = 'payload_too_large';
  // HTTP/1.1: the rest of the upload is not wanted, so the connection closes. (HTTP/2 resets just the stream.)
  sendError(ctx.res, new GatewayError('payload_too_large'), ctx.requestId, ctx.req.httpVersionMajor < 2 ? { connection: 'close' } : undefined, null, ctx.errorFormat);
}

/** readBody buffers the request body up to `limit` bytes; bodies are small JSON and may be parsed for routing. */
function readBody(ctx: RequestContext, limit: number, done: () => void, onTooLarge: () => void): void {
  const req = ctx.req;
  const chunks: Buffer[] = [];
  let size = 0;
  let isOver = false;
  req.on('data', (chunk: Buffer) => {
    if (isOver) return;
    size += chunk.length;
    if (size > limit) {
      isOver = true;
      chunks.length = 0;
      onTooLarge();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (isOver) return;
    ctx.body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
    done();
  });
  // A client that vanishes mid-upload leaves nothing to answer.
  req.on('error', () => {});
}
