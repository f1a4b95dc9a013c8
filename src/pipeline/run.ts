/**
 * The request pipeline: fixed, named stages in a fixed order over one RequestContext. A stage ends
 * the request by throwing a GatewayError, which only this runner turns into a response. Stages
 * are synchronous today; the runner awaits only a stage that returns a promise (rate limiting will).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Snapshot } from '../config/index.js';
import { GatewayError, sendError, toGatewayError } from '../errors/index.js';
import { forward } from '../proxy/index.js';
import type { PoolRegistry } from '../upstream/index.js';
import { authenticate } from './authenticate.js';
import { RequestContext } from './context.js';
import { listModels } from './list-models.js';
import { route } from './route.js';
import { select } from './select.js';

/** Stage is one pipeline step. */
export type Stage = (ctx: RequestContext) => void | Promise<void>;

/** PipelineDeps are the long-lived parts the pipeline needs besides the snapshot. */
export interface PipelineDeps {
  /** current returns the snapshot to serve a new request with. */
  current: () => Snapshot;
  pools: PoolRegistry;
  isTls: boolean;
  /** onError sees every error answered with a 5xx the gateway made itself (for logs). */
  onError?: (err: GatewayError, ctx: RequestContext) => void;
}

// A request id from the client is kept only if it is short and plain, so it can go into headers
// and logs as is.
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:\-]{1,128}$/;

/** createPipeline returns the HTTP request listener of the proxy. */
export function createPipeline(deps: PipelineDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const stages: readonly Stage[] = [route, authenticate, listModels, select, (ctx) => forward(ctx, deps.pools, deps.isTls)];

  const fail = (ctx: RequestContext, err: unknown): void => {
    const gwErr = toGatewayError(err);
    if (gwErr.status >= 500) deps.onError?.(gwErr, ctx);
    sendError(ctx.res, gwErr, ctx.requestId);
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
    const limit = ctx.snapshot.settings.maxBodyBytes;
    const declared = req.headers['content-length'];
    if (declared === undefined && req.headers['transfer-encoding'] === undefined) {
      run(ctx, 0);
      return;
    }
    if (declared !== undefined && Number(declared) > limit) {
      // Refused before reading: the rest of the upload is not wanted, so the connection closes.
      sendError(res, new GatewayError('payload_too_large'), requestId, { connection: 'close' });
      return;
    }
    readBody(ctx, limit, () => run(ctx, 0), () => sendError(res, new GatewayError('payload_too_large'), requestId, { connection: 'close' }));
  };
}

/** readBody buffers the request body up to `limit` bytes; bodies are small JSON and may be parsed for routing. */
function readBody(ctx: RequestContext, limit: number, done: () => void, tooLarge: () => void): void {
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
      tooLarge();
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
