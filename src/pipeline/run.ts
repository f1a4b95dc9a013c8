/**
 * The request pipeline: fixed, named stages in a fixed order over one RequestContext:
 * route -> authenticate -> list-models -> translate -> prepare -> admit -> (schedule) -> select ->
 * forward, then record when the response closes.
 * A stage ends the request by throwing a GatewayError, which only this runner turns into a
 * response. A stage returns a promise only when it has to wait (admit: a Redis answer or a
 * concurrency slot); the runner continues when it settles, and a stage that finishes at once costs
 * no promise.
 */
import { randomUUID } from 'node:crypto';
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { Snapshot } from '../config/index.js';
import { isResponseComplete, type GatewayRequest, type GatewayResponse } from '../http/index.js';
import { GatewayError, sendError, toGatewayError } from '../errors/index.js';
import type { AccessLog } from '../log/index.js';
import type { GatewayMetrics } from '../metrics/index.js';
import { forward, toTraceContext, tunnel, type ForwardDeps, type Reselect, type TunnelDeps } from '../proxy/index.js';
import type { PoolRegistry } from '../upstream/index.js';
import { createAdmit, type AdmitDeps } from './admit.js';
import { authenticate } from './authenticate.js';
import { RequestContext } from './context.js';
import { listModels } from './list-models.js';
import { createMirror } from './mirror.js';
import { Recorder } from './record.js';
import { route } from './route.js';
import { translate } from './translate.js';
import { prepare } from './prepare.js';
import { createSchedule } from './schedule.js';
import type { FlowScheduler } from '../flow/index.js';
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
  /** flow holds the flow-control queues of the process (shared by every listener's pipeline). */
  flow: FlowScheduler;
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
type ResponseWithContext = GatewayResponse & { [kContext]?: RequestContext; [kRecorder]?: Recorder; [kCounters]?: { inflight: number } };

function onResponseClose(this: ResponseWithContext): void {
  const ctx = this[kContext]!;
  ctx.isClosed = true;
  this[kCounters]!.inflight--;
  if (!isResponseComplete(this)) ctx.onClientGone?.();
  // The engine's usage is still on the way: forward records the request once it has arrived.
  if (ctx.isRecordDeferred) return;
  this[kRecorder]!.record(ctx);
}

/** Pipeline is the proxy listener's two entry points. */
export interface Pipeline {
  /** onRequest is the HTTP request listener. */
  onRequest: (req: GatewayRequest, res: GatewayResponse) => void;
  /** onUpgrade is the HTTP/1.1 'upgrade' listener: WebSocket upgrades are tunneled, other upgrades (h2c) served as plain requests. */
  onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

/** createPipeline returns the request and upgrade listeners of the proxy. */
export function createPipeline(deps: PipelineDeps): Pipeline {
  const recorder = new Recorder(deps.metrics, deps.accessLog);
  // A retry asks the select stage for another target.
  const reselect: Reselect<RequestContext> = { next: nextTarget };
  const forwardDeps: ForwardDeps<RequestContext> = { pools: deps.pools, metrics: deps.metrics, isTls: deps.isTls, reselect, record: (ctx) => recorder.record(ctx) };
  const tunnelDeps: TunnelDeps<RequestContext> = { metrics: deps.metrics, isTls: deps.isTls, reselect };
  const mirror = createMirror({ pools: deps.pools, isTls: deps.isTls }, deps.metrics);
  const dispatch: Stage = (ctx) => {
    dispatched(ctx, deps.metrics);
    forward(ctx, forwardDeps);
    // After the real request went out: a copy never holds it up.
    mirror(ctx);
  };
  const tunnelStage: Stage = (ctx) => {
    dispatched(ctx, deps.metrics);
    tunnel(ctx, tunnelDeps);
  };
  const admit = createAdmit({ ...deps.limits, metrics: deps.metrics });
  // schedule decides when an admitted request goes: at once, or after waiting its turn (flow control).
  const schedule: Stage = createSchedule(deps.flow);
  const stages = toStageList([route, authenticate, listModels, translate, prepare, admit, schedule, select, dispatch]);
  // A WebSocket upgrade: no model listing or translation, and a tunnel instead of forward.
  const tunnelStages = toStageList([route, authenticate, prepare, admit, schedule, select, tunnelStage]);

  const fail = (ctx: RequestContext, err: unknown): void => {
    const gwErr = toGatewayError(err);
    ctx.errorCode = gwErr.expose ? gwErr.code : 'internal_error';
    if (gwErr.status >= 500) deps.onError?.(gwErr, ctx);
    ctx.bytesOut += sendError(ctx.res, gwErr, ctx.requestId, undefined, ctx.limitHeaders, ctx.errorFormat);
  };

  const run = (ctx: RequestContext, from: number, list: readonly Stage[] = stages): void => {
    try {
      for (let i = from; i < list.length; i++) {
        if (ctx.res.headersSent) return;
        const pending = list[i]!(ctx);
        if (pending !== undefined) {
          pending.then(() => run(ctx, i + 1, list), (err: unknown) => fail(ctx, err));
          return;
        }
      }
    } catch (err) {
      fail(ctx, err);
    }
  };

  /** begin makes the context of a request and hooks its accounting to the response's close. */
  const begin = (req: GatewayRequest, res: GatewayResponse): RequestContext => {
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
    return ctx;
  };

  const onRequest = (req: GatewayRequest, res: GatewayResponse): void => {
    const ctx = begin(req, res);
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

  const onUpgrade = (req: IncomingMessage, duplex: Duplex, head: Buffer): void => {
    const socket = duplex as Socket;
    // Node hands over the socket without its error listener: a reset must not become an uncaught error.
    socket.on('error', destroyOnError);
    // The gateway's own answers (errors, plain requests) go through a response bound to the
    // socket, so they are written, counted and logged like any other; then the connection closes.
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket);
    res.once('finish', closeAfterAnswer);
    if (req.headers.upgrade?.toLowerCase() !== 'websocket') {
      const limit = deps.current().settings.maxBodyBytes;
      readUpgradeBody(req, socket, head, limit, (body) => {
        const ctx = begin(req, res);
        if (Number(req.headers['content-length'] ?? 0) > limit) tooLarge(ctx);
        else {
          ctx.body = body;
          run(ctx, 0);
        }
      });
      return;
    }
    const ctx = begin(req, res);
    ctx.upgradeHead = head;
    run(ctx, 0, tunnelStages);
  };

  return { onRequest, onUpgrade };
}

/** toStageList drops the stages that are off (null), once per pipeline: a request never checks them. */
function toStageList(stages: ReadonlyArray<Stage | null>): readonly Stage[] {
  return Object.freeze(stages.filter((s): s is Stage => s !== null));
}

/** dispatched counts a request in flight and keeps what record() will need of its model. */
function dispatched(ctx: RequestContext, metrics: GatewayMetrics): void {
  const model = ctx.model!;
  const serving = ctx.serving!;
  // Served by another model (a split's choice, a fallback): that pair's row, made at compile.
  const row = serving === model ? model.statsRow : (model.servedRows?.get(serving) ?? model.statsRow);
  ctx.statsRow = row;
  ctx.modelName = model.name;
  ctx.servedName = serving.name;
  metrics.dispatched(row);
}

function destroyOnError(this: Socket): void {
  this.destroy();
}

function closeAfterAnswer(this: ServerResponse): void {
  this.socket?.destroySoon();
}

/**
 * readUpgradeBody reads the body of an upgrade the gateway does not tunnel (e.g. curl --http2's
 * `Upgrade: h2c`), which is then answered as the plain HTTP/1.1 request it also is (RFC 9110
 * 7.8 lets a server ignore Upgrade). Node hands such a request over before parsing its body: the
 * body is what follows the head, up to Content-Length. Over the limit nothing is read (413).
 */
function readUpgradeBody(req: IncomingMessage, socket: Socket, head: Buffer, limit: number, done: (body: Buffer | null) => void): void {
  const declared = req.headers['content-length'];
  const length = declared === undefined ? 0 : Number(declared);
  if (req.headers['transfer-encoding'] !== undefined || !Number.isSafeInteger(length) || length < 0) {
    // A chunked body cannot be delimited without the HTTP parser Node already detached.
    socket.destroy();
    return;
  }
  if (length === 0 || length > limit) return done(null);
  const chunks = [head];
  let size = head.length;
  if (size >= length) return done(head.subarray(0, length));
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    size += chunk.length;
    if (size < length) return;
    socket.off('data', onData);
    socket.pause();
    done(Buffer.concat(chunks, size).subarray(0, length));
  };
  socket.on('data', onData);
}

function tooLarge(ctx: RequestContext): void {
  ctx.errorCode = 'payload_too_large';
  // HTTP/1.1: the rest of the upload is not wanted, so the connection closes. (HTTP/2 resets just the stream.)
  ctx.bytesOut += sendError(ctx.res, new GatewayError('payload_too_large'), ctx.requestId, ctx.req.httpVersionMajor < 2 ? { connection: 'close' } : undefined, null, ctx.errorFormat);
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
