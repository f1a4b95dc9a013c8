/**
 * Fakes for the request tail's unit tests: plain objects implementing the gateway's own
 * interfaces (GatewayResponse, TailHandler, UpstreamController, TailContext), recording calls.
 */
import { EventEmitter } from 'node:events';
import type { OutgoingHttpHeaders } from 'node:http';
import { Socket } from 'node:net';
import type { GatewayRequest, GatewayResponse } from '../../src/http/index.js';
import type { TailContext, TailModel, TailTarget } from '../../src/proxy/tail-context.js';
import type { TailHandler } from '../../src/proxy/tail-handler.js';
import type { ResponseTransformer } from '../../src/transform/index.js';
import { TargetState, type PassivePolicy, type UpstreamController, type UpstreamHeaders } from '../../src/upstream/index.js';

/** FakeResponse records what the tail writes to the client. */
export class FakeResponse extends EventEmitter implements GatewayResponse {
  statusCode = 200;
  headersSent = false;
  destroyed = false;
  writableFinished = false;
  head: string[] | OutgoingHttpHeaders | undefined = undefined;
  body: string[] = [];
  isEnded = false;
  isFlushed = false;
  /** isFull makes write() report a full socket. */
  isFull = false;

  writeHead(status: number, headers?: string[] | OutgoingHttpHeaders): this {
    this.statusCode = status;
    this.head = headers;
    this.headersSent = true;
    return this;
  }

  write(chunk: Buffer | string): boolean {
    this.headersSent = true;
    this.body.push(chunk.toString());
    return !this.isFull;
  }

  end(chunk?: Buffer | string): this {
    this.headersSent = true;
    if (chunk !== undefined) this.body.push(chunk.toString());
    this.isEnded = true;
    return this;
  }

  flushHeaders(): void {
    this.isFlushed = true;
  }

  destroy(): this {
    this.destroyed = true;
    return this;
  }

  /** header returns the value of a header written as a flat list. */
  header(name: string): string | undefined {
    const list = this.head as string[];
    for (let i = 0; i < list.length; i += 2) if (list[i] === name) return list[i + 1];
    return undefined;
  }
}

/** FakeController records what a link asked of its exchange. */
export class FakeController implements UpstreamController {
  calls: string[] = [];
  aborted: Error | null = null;
  abort(reason: Error): void {
    this.calls.push('abort');
    this.aborted = reason;
  }
  pause(): void {
    this.calls.push('pause');
  }
  resume(): void {
    this.calls.push('resume');
  }
}

/** FakeNext records the events a link passes on. */
export class FakeNext implements TailHandler {
  takesRuns = true;
  events: string[] = [];
  chunks: string[] = [];
  status = 0;
  error: Error | null = null;
  onResponseStart(_c: UpstreamController, statusCode: number, _h: UpstreamHeaders): void {
    this.status = statusCode;
    this.events.push('start');
  }
  onResponseData(_c: UpstreamController, chunk: Buffer): void {
    this.chunks.push(chunk.toString());
    this.events.push('data');
  }
  onResponseRun(_c: UpstreamController, read: Buffer, start: number, end: number): number {
    this.chunks.push(read.toString('latin1', start, end));
    this.events.push('run');
    return end;
  }
  onResponseEnd(): void {
    this.events.push('end');
  }
  onResponseError(_c: UpstreamController, err: Error): void {
    this.error = err;
    this.events.push('error');
  }
  onClientGone(): void {
    this.events.push('gone');
  }
}

export const passive: PassivePolicy = { isEnabled: true, failures: 1, ejectionMs: 60_000, maxEjectionMs: 60_000, statusCodes: new Set([503]) };

/** model is a model as the tail reads it. */
export function model(name = 'm', retries = 1): TailModel {
  return {
    name,
    keyHashes: null,
    upstreamAuthorization: null,
    timeouts: { connectMs: 1000, firstByteMs: 1000, idleMs: 1000 },
    health: { path: '/health', isActive: false, intervalMs: 1000, timeoutMs: 1000, healthyThreshold: 1, unhealthyThreshold: 1, passive },
    retries,
    retryTimeoutMs: 60_000,
  };
}

/** target is a target with its own, real health record. */
export function target(url = 'http://127.0.0.1:1'): TailTarget {
  return { url, origin: url, basePath: '', state: new TargetState(url) };
}

const request: GatewayRequest = Object.assign(new EventEmitter(), {
  method: 'POST',
  url: '/v1/chat/completions',
  headers: { 'content-type': 'application/json' },
  httpVersionMajor: 1,
  socket: new Socket(),
});

/** context is a request that reached the tail. */
export function context(res: FakeResponse, transformer: ResponseTransformer | null = null): TailContext {
  const m = model();
  return {
    req: request,
    res,
    snapshot: { settings: { isFastUpstream: true } },
    startedAt: 0,
    requestId: 'req-1',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    query: '',
    upstreamPath: '/v1/chat/completions',
    body: Buffer.from('{}'),
    keyFromQuery: false,
    model: m,
    serving: m,
    chosen: null,
    target: target(),
    tried: null,
    attempts: 0,
    transformer,
    limitHeaders: null,
    errorFormat: 'openai',
    dispatchedAt: 1,
    headersAt: 2,
    connectMs: -1,
    firstByteAt: 0,
    bytesOut: 0,
    promptTokens: -1,
    completionTokens: -1,
    errorCode: null,
    onClientGone: null,
    isClosed: false,
    isRecordDeferred: false,
    upgradeHead: null,
    tunnelStatus: 0,
    tunnelBytesIn: 0,
  };
}
