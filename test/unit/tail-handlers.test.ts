import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayMetrics } from '../../src/metrics/index.js';
import { PassiveHealth } from '../../src/proxy/passive-health.js';
import { Respond } from '../../src/proxy/respond.js';
import { Retry } from '../../src/proxy/retry.js';
import type { TailContext } from '../../src/proxy/tail-context.js';
import { ClientGoneError } from '../../src/proxy/tail-handler.js';
import { TransformHandler } from '../../src/proxy/transform-handler.js';
import { UsageTapHandler } from '../../src/proxy/usage-tap-handler.js';
import type { ResponseTransformer } from '../../src/transform/index.js';
import type { UpstreamDispatcher, UpstreamHandler, UpstreamRequest } from '../../src/upstream/index.js';
import { FakeController, FakeNext, FakeResponse, context, target } from '../helpers/tail-fakes.js';

const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
const reset = (): Error => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

describe('Respond', () => {
  it('frames an SSE stream itself: no upstream Content-Length, no-buffering headers, head flushed', () => {
    const res = new FakeResponse();
    const respond = new Respond(context(res));
    const c = new FakeController();
    respond.onResponseStart(c, 200, { 'content-type': 'text/event-stream', 'content-length': '99' });
    assert.equal(res.header('content-length'), undefined);
    assert.equal(res.header('cache-control'), 'no-cache');
    assert.equal(res.header('x-accel-buffering'), 'no');
    assert.equal(res.header('x-request-id'), 'req-1');
    assert.equal(res.isFlushed, true);
  });

  it('keeps the upstream Content-Length of a plain body it passes unchanged', () => {
    const res = new FakeResponse();
    new Respond(context(res)).onResponseStart(new FakeController(), 200, { 'content-type': 'application/json', 'content-length': '2' });
    assert.equal(res.header('content-length'), '2');
  });

  it('answers an error before the head with a JSON error', () => {
    const res = new FakeResponse();
    const ctx = context(res);
    new Respond(ctx).onResponseError(new FakeController(), refused());
    assert.equal(res.statusCode, 502);
    assert.equal(res.header('x-gateway-error'), 'upstream_connect_failed');
    assert.equal(ctx.errorCode, 'upstream_connect_failed');
    assert.equal(JSON.parse(res.body.join('')).error.code, 'upstream_connect_failed');
  });

  it("ends a stream that fails after its 200 with one SSE error event", () => {
    const res = new FakeResponse();
    const respond = new Respond(context(res));
    const c = new FakeController();
    respond.onResponseStart(c, 200, { 'content-type': 'text/event-stream' });
    respond.onResponseData(c, Buffer.from('data: {}\n\n'));
    respond.onResponseError(c, reset());
    assert.equal(res.statusCode, 200);
    assert.equal(res.isEnded, true);
    const last = res.body.at(-1)!;
    assert.match(last, /^data: /);
    assert.equal(JSON.parse(last.slice(6)).error.code, 'upstream_error');
    assert.equal(res.destroyed, false);
  });

  it('destroys the connection when a non-stream body is cut', () => {
    const res = new FakeResponse();
    const respond = new Respond(context(res));
    const c = new FakeController();
    respond.onResponseStart(c, 200, { 'content-type': 'application/json', 'content-length': '100' });
    respond.onResponseData(c, Buffer.from('{"id":'));
    respond.onResponseError(c, reset());
    assert.equal(res.destroyed, true);
    assert.equal(res.isEnded, false);
  });

  it('pauses the upstream while the client socket is full and resumes it on drain', () => {
    const res = new FakeResponse();
    const respond = new Respond(context(res));
    const c = new FakeController();
    respond.onResponseStart(c, 200, { 'content-type': 'text/event-stream' });
    res.isFull = true;
    respond.onResponseData(c, Buffer.from('data: 1\n\n'));
    assert.deepEqual(c.calls, ['pause']);
    res.emit('drain');
    assert.deepEqual(c.calls, ['pause', 'resume']);
  });

  it("sends a buffered transformer's body with its head and its real length", () => {
    const res = new FakeResponse();
    const tf: ResponseTransformer = { status: 201, isBuffered: true, start() {}, data: () => null, end: () => null, error: () => null };
    const respond = new Respond(context(res, tf));
    const c = new FakeController();
    respond.onResponseStart(c, 200, { 'content-type': 'application/json', 'content-length': '7' });
    assert.equal(res.headersSent, false);
    respond.onResponseData(c, Buffer.from('{"a":1}!!'));
    respond.onResponseEnd();
    assert.equal(res.statusCode, 201);
    assert.equal(res.header('content-length'), '9');
    assert.deepEqual(res.body, ['{"a":1}!!']);
  });

  it('writes nothing more once the client left', () => {
    const res = new FakeResponse();
    const respond = new Respond(context(res));
    const c = new FakeController();
    respond.onResponseStart(c, 200, { 'content-type': 'text/event-stream' });
    respond.onClientGone();
    respond.onResponseData(c, Buffer.from('data: 1\n\n'));
    respond.onResponseEnd();
    assert.deepEqual(res.body, []);
    assert.equal(res.isEnded, false);
  });
});

describe('PassiveHealth', () => {
  const attempt = (): { ctx: TailContext; next: FakeNext; link: PassiveHealth; metrics: GatewayMetrics } => {
    const ctx = context(new FakeResponse());
    const next = new FakeNext();
    const metrics = new GatewayMetrics();
    return { ctx, next, link: new PassiveHealth(ctx, metrics, next), metrics };
  };

  it('holds its target in flight until the exchange ends, then reports success', () => {
    const { ctx, next, link } = attempt();
    const state = ctx.target!.state;
    assert.equal(state.inflight, 1);
    link.onRequestStart(new FakeController());
    link.onResponseStart(new FakeController(), 200, {});
    link.onResponseEnd(new FakeController(), {});
    assert.equal(state.inflight, 0);
    assert.equal(state.isHealthy, true);
    assert.deepEqual(next.events, ['start', 'end']);
  });

  it("counts a status of the passive policy as a failure (ejecting the target) and a 5xx as an upstream error", async () => {
    const { ctx, link, metrics } = attempt();
    link.onResponseStart(new FakeController(), 503, {});
    link.onResponseEnd(new FakeController(), {});
    assert.equal(ctx.target!.state.isHealthy, false);
    assert.match(await metrics.registry.metrics(), /igw_upstream_errors_total\{[^}]*reason="status_5xx"[^}]*\} 1/);
  });

  it('settles an abort from below at once: the links below see the error before abort returns, the transport is aborted, its late error dropped', () => {
    const { ctx, next, link } = attempt();
    const transport = new FakeController();
    link.onRequestStart(transport);
    const gone = new ClientGoneError();
    link.abort(gone);
    assert.deepEqual(next.events, ['error']);
    assert.equal(next.error, gone);
    assert.equal(transport.aborted, gone);
    assert.equal(ctx.target!.state.inflight, 0);
    // A client that left says nothing about the target.
    assert.equal(ctx.target!.state.isHealthy, true);
    link.onResponseError(transport, gone);
    assert.deepEqual(next.events, ['error']);
  });

  it('passes an abort asked for before the request started to the transport when it starts', () => {
    const { link } = attempt();
    link.abort(new ClientGoneError());
    const transport = new FakeController();
    link.onRequestStart(transport);
    assert.ok(transport.aborted instanceof ClientGoneError);
  });

  it('reports a transport error as a failure and counts it by reason', async () => {
    const { ctx, next, link, metrics } = attempt();
    link.onResponseError(new FakeController(), refused());
    assert.equal(ctx.target!.state.isHealthy, false);
    assert.deepEqual(next.events, ['error']);
    assert.match(await metrics.registry.metrics(), /igw_upstream_errors_total\{[^}]*reason="connect_failed"[^}]*\} 1/);
  });
});

/** FakePool records requests and hands their handlers back to the test. */
class FakePool implements UpstreamDispatcher {
  sent: { origin: string; request: UpstreamRequest; handler: UpstreamHandler }[] = [];
  forwarder(origin: string): UpstreamDispatcher {
    this.#origin = origin;
    return this;
  }
  #origin = '';
  dispatch(request: UpstreamRequest, handler: UpstreamHandler): void {
    this.sent.push({ origin: this.#origin, request, handler });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  destroy(): Promise<void> {
    return Promise.resolve();
  }
}

describe('Retry', () => {
  const setup = (others: number) => {
    const ctx = context(new FakeResponse());
    const pool = new FakePool();
    const next = new FakeNext();
    const spare = Array.from({ length: others }, (_, i) => target(`http://127.0.0.1:${2 + i}`));
    const reselect = {
      next(c: TailContext): boolean {
        const t = spare.shift();
        if (t === undefined) return false;
        (c as { target: unknown }).target = t;
        return true;
      },
    };
    const retry = new Retry(ctx, { pools: pool, reselect, metrics: new GatewayMetrics(), isTls: false }, next);
    return { ctx, pool, next, retry };
  };

  it('sends the request again to the target Reselect gives when an attempt fails before any answer', () => {
    const { ctx, pool, next, retry } = setup(1);
    retry.start();
    const first = ctx.target!;
    pool.sent[0]!.handler.onResponseError!(new FakeController(), refused());
    assert.equal(pool.sent.length, 2);
    assert.equal(pool.sent[1]!.origin, 'http://127.0.0.1:2');
    assert.ok(ctx.tried!.has(first));
    assert.equal(ctx.attempts, 2);
    assert.deepEqual(next.events, []);
    // The failed attempt left its target; the new one holds its own.
    assert.equal(first.state.inflight, 0);
    assert.equal(ctx.target!.state.inflight, 1);
  });

  it('passes the error on when no target is left', () => {
    const { pool, next, retry } = setup(0);
    retry.start();
    pool.sent[0]!.handler.onResponseError!(new FakeController(), refused());
    assert.equal(pool.sent.length, 1);
    assert.deepEqual(next.events, ['error']);
  });

  it('never resends once the upstream answered', () => {
    const { pool, next, retry } = setup(1);
    retry.start();
    const h = pool.sent[0]!.handler;
    h.onRequestStart!(new FakeController(), null);
    h.onResponseStart!(new FakeController(), 200, {});
    h.onResponseError!(new FakeController(), reset());
    assert.equal(pool.sent.length, 1);
    assert.deepEqual(next.events, ['start', 'error']);
  });

  it('never resends a timeout (the engine may be working on it)', () => {
    const { pool, next, retry } = setup(1);
    retry.start();
    pool.sent[0]!.handler.onResponseError!(new FakeController(), Object.assign(new Error('t'), { code: 'UND_ERR_HEADERS_TIMEOUT' }));
    assert.equal(pool.sent.length, 1);
    assert.deepEqual(next.events, ['error']);
  });

  it('tells the links below when the client left, then aborts the exchange', () => {
    const { ctx, pool, next, retry } = setup(1);
    retry.start();
    const transport = new FakeController();
    pool.sent[0]!.handler.onRequestStart!(transport, null);
    ctx.onClientGone!();
    assert.deepEqual(next.events, ['gone', 'error']);
    assert.ok(transport.aborted instanceof ClientGoneError);
    assert.equal(pool.sent.length, 1);
  });

  it('keeps the exchange going when a link below deferred the record', () => {
    const ctx = context(new FakeResponse());
    const pool = new FakePool();
    const deferring = new FakeNext();
    deferring.onClientGone = () => {
      ctx.isRecordDeferred = true;
    };
    const r = new Retry(ctx, { pools: pool, reselect: { next: () => false }, metrics: new GatewayMetrics(), isTls: false }, deferring);
    r.start();
    const transport = new FakeController();
    pool.sent.at(-1)!.handler.onRequestStart!(transport, null);
    ctx.onClientGone!();
    assert.equal(transport.aborted, null);
  });
});

describe('UsageTapHandler', () => {
  const USAGE = 'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}\n\n';
  const FINISH = 'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n';

  it('hands the usage to the request when the exchange ends, and passes every event on', () => {
    const ctx = context(new FakeResponse());
    const next = new FakeNext();
    const tap = new UsageTapHandler(ctx, () => assert.fail('not deferred'), next);
    const c = new FakeController();
    tap.onResponseStart(c, 200, { 'content-type': 'text/event-stream' });
    tap.onResponseData(c, Buffer.from(USAGE));
    assert.equal(tap.isUsageChunk, true);
    assert.equal(ctx.promptTokens, -1);
    tap.onResponseEnd(c, {});
    assert.equal(ctx.promptTokens, 7);
    assert.equal(ctx.completionTokens, 3);
    assert.deepEqual(next.events, ['start', 'data', 'end']);
  });

  it('waits for the usage of a finished stream whose client left, and records the request when it came', () => {
    const ctx = context(new FakeResponse());
    const next = new FakeNext();
    const recorded: TailContext[] = [];
    const tap = new UsageTapHandler(ctx, (r) => recorded.push(r), next);
    const c = new FakeController();
    tap.onResponseStart(c, 200, { 'content-type': 'text/event-stream' });
    tap.onResponseData(c, Buffer.from(FINISH));
    tap.onClientGone(c);
    assert.equal(ctx.isRecordDeferred, true);
    assert.deepEqual(c.calls, ['resume']);
    assert.deepEqual(next.events, ['start', 'data', 'gone']);
    tap.onResponseData(c, Buffer.from(USAGE));
    tap.onResponseEnd(c, {});
    assert.deepEqual(recorded, [ctx]);
    assert.equal(ctx.completionTokens, 3);
  });

  it('looks for the end of generation in the last chunk of a run, as in the last chunk of data', () => {
    const chunked = (...events: string[]): Buffer => Buffer.from(events.map((e) => `${Buffer.byteLength(e).toString(16)}\r\n${e}\r\n`).join(''), 'latin1');
    const FIRST_DONE = 'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n';
    const SECOND_GOING = 'data: {"choices":[{"index":1,"delta":{"content":"a"},"finish_reason":null}]}\n\n';
    for (const [events, isDue] of [
      [[FIRST_DONE, SECOND_GOING], false],
      [[SECOND_GOING, FINISH], true],
    ] as const) {
      const ctx = context(new FakeResponse());
      const tap = new UsageTapHandler(ctx, () => {}, new FakeNext());
      const c = new FakeController();
      tap.onResponseStart(c, 200, { 'content-type': 'text/event-stream' });
      const run = chunked(...events);
      assert.equal(tap.onResponseRun(c, run, 0, run.length, 0), run.length);
      tap.onClientGone(c);
      assert.equal(ctx.isRecordDeferred, isDue, events.join(''));
    }
  });

  it('does not wait when the client leaves mid-generation', () => {
    const ctx = context(new FakeResponse());
    const tap = new UsageTapHandler(ctx, () => assert.fail('not deferred'), new FakeNext());
    const c = new FakeController();
    tap.onResponseStart(c, 200, { 'content-type': 'text/event-stream' });
    tap.onResponseData(c, Buffer.from('data: {"choices":[{"delta":{"content":"a"},"finish_reason":null}]}\n\n'));
    tap.onClientGone(c);
    assert.equal(ctx.isRecordDeferred, false);
    assert.deepEqual(c.calls, []);
  });
});

describe('TransformHandler', () => {
  it("maps each chunk with the usage tap's finding, and sends what is left before the end", () => {
    const seen: boolean[] = [];
    // Upper-cases chunks longer than a byte, holds the others; answers with status + 1.
    class Upper implements ResponseTransformer {
      status = 0;
      readonly isBuffered = false;
      start(status: number): void {
        this.status = status + 1;
      }
      data(chunk: Buffer, hasUsage: boolean): Buffer | null {
        seen.push(hasUsage);
        return chunk.length > 1 ? Buffer.from(chunk.toString().toUpperCase()) : null;
      }
      end(): Buffer {
        return Buffer.from('REST');
      }
      error(): null {
        return null;
      }
    }
    const tf = new Upper();
    const next = new FakeNext();
    const link = new TransformHandler(tf, next);
    link.usage = { isUsageChunk: true };
    const c = new FakeController();
    link.onResponseStart(c, 200, {});
    link.onResponseData(c, Buffer.from('ab'));
    link.onResponseData(c, Buffer.from('c'));
    link.onResponseEnd(c, {});
    assert.equal(next.status, 201);
    assert.deepEqual(next.chunks, ['AB', 'REST']);
    assert.deepEqual(next.events, ['start', 'data', 'data', 'end']);
    assert.deepEqual(seen, [true, true]);
  });

  it('stops transforming once the client left', () => {
    const tf: ResponseTransformer = { status: 200, isBuffered: false, start() {}, data: () => assert.fail('no data'), end: () => assert.fail('no end'), error: () => null };
    const next = new FakeNext();
    const link = new TransformHandler(tf, next);
    const c = new FakeController();
    link.onClientGone(c);
    link.onResponseData(c, Buffer.from('x'));
    link.onResponseEnd(c, {});
    assert.deepEqual(next.events, ['gone', 'end']);
  });
});
