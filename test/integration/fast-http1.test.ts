import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Cleanup, chat, startGateway, startSim, type RunningGateway } from '../helpers/harness.js';
import { rawExchange, statusOf, type RawPiece } from '../helpers/raw-socket.js';
import { MAX_HEADER_FIELDS } from '../../src/http/fast/parse-head.js';
import type { Simulator } from '../../src/sim/index.js';

const KEY = 'fast-front-key-0123';
const BROKEN_KEY = 'fast-front-broken-key-0123';

/** req builds one raw HTTP/1.1 request with a chat body. */
function req(id: string, opts: { chunked?: boolean; close?: boolean; stream?: boolean; path?: string; key?: string } = {}): string {
  const body = chat('m', { max_tokens: 2, ...(opts.stream ? { stream: true } : {}) });
  const framing = opts.chunked ? `transfer-encoding: chunked\r\n\r\n${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n` : `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  return `POST ${opts.path ?? '/v1/chat/completions'} HTTP/1.1\r\nhost: gw\r\nx-model: m\r\napikey: ${opts.key ?? KEY}\r\ncontent-type: application/json\r\nx-request-id: ${id}\r\n${opts.close ? 'connection: close\r\n' : ''}${framing}`;
}

/** responses splits raw response text into status and x-request-id per response, in order. */
function responses(text: string): Array<{ status: number; id: string | undefined }> {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3})[^]*?x-request-id: ([^\r]+)/gi)].map((m) => ({ status: Number(m[1]), id: m[2] }));
}

/** normalized drops what differs between two runs of the same request (ids, times, dates). */
function normalized(r: { status: number; headers: Headers; body: string }): unknown {
  const volatile = new Set(['date', 'x-request-id', 'x-gateway-latency', 'x-upstream-latency', 'keep-alive', 'connection']);
  const headers = [...r.headers.keys()].filter((k) => !volatile.has(k)).sort();
  const body = r.body.replace(/"(id|created|request_id)":("[^"]*"|\d+)/g, '"$1":_');
  return { status: r.status, headers, body };
}

describe('fast HTTP/1.1 front', () => {
  const cleanup = new Cleanup();
  let sim: Simulator;
  let fast: RunningGateway;
  let plain: RunningGateway;

  before(async () => {
    sim = await startSim(cleanup, { model: 'm' });
    // An upstream that sends a head promising 100 bytes, 10 of them, and hangs up. The gateway
    // may reset its end of such an exchange first: that reset is expected, not an error here.
    const broken = createServer((s: Socket) => {
      s.on('error', () => {});
      s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"partial"'));
    });
    broken.listen(0, '127.0.0.1');
    await once(broken, 'listening');
    cleanup.add(() => void broken.close());
    const brokenUrl = `http://127.0.0.1:${(broken.address() as { port: number }).port}`;
    const models = [
      { name: 'm', api_keys: [KEY], targets: [{ url: sim.url }] },
      { name: 'broken', api_keys: [BROKEN_KEY], targets: [{ url: brokenUrl }], retries: 0, health_check: { passive: { enabled: false } } },
    ];
    fast = await startGateway(cleanup, { proxy: { keepalive_timeout: '1s', header_timeout: '1s', max_body_size: '4KiB' }, models });
    plain = await startGateway(cleanup, { proxy: { fast_http1: false, keepalive_timeout: '1s', max_body_size: '4KiB' }, models });
  });
  after(() => cleanup.run());

  it('answers pipelined requests in order, also across a hand-over to node:http mid-connection', async () => {
    const port = fast.gateway.ports.proxy;
    // A chunked body is node:http's to read: the connection is handed over after r1, bytes and order intact.
    const a = await rawExchange(port, [req('r1') + req('r2', { chunked: true }) + req('r3', { stream: true }) + req('r4', { close: true })], 3000);
    assert.deepEqual(responses(a.text), ['r1', 'r2', 'r3', 'r4'].map((id) => ({ status: 200, id })));
    assert.ok(a.closed, 'closed after Connection: close');
    // Handed over from the first request on, with part of its body still to come: node:http
    // must read the bytes already taken from the socket before the ones that arrive later.
    const s1 = req('s1', { chunked: true });
    const cut = s1.indexOf('\r\n\r\n') + 10;
    const b = await rawExchange(port, [s1.slice(0, cut), { waitMs: 100 }, s1.slice(cut) + req('s2', { close: true })], 3000);
    assert.deepEqual(responses(b.text), ['s1', 's2'].map((id) => ({ status: 200, id })));
    // Errors answered by the gateway itself keep the connection in step too.
    const c = await rawExchange(port, [req('t1', { key: 'wrong' }) + req('t2', { path: '/nowhere/v1/chat/completions' }) + req('t3', { close: true })], 3000);
    assert.deepEqual(responses(c.text), [{ status: 401, id: 't1' }, { status: 404, id: 't2' }, { status: 200, id: 't3' }]);
  });

  it('answers as node:http does: same statuses, headers and bodies with fast_http1 on and off', async () => {
    const cases: Array<[string, RequestInit & { path?: string }]> = [
      ['json', { method: 'POST', headers: { 'x-model': 'm', apikey: KEY, 'content-type': 'application/json' }, body: chat('m') }],
      ['stream', { method: 'POST', headers: { 'x-model': 'm', apikey: KEY, 'content-type': 'application/json' }, body: chat('m', { stream: true }) }],
      ['models', { method: 'GET', path: '/v1/models', headers: { apikey: KEY } }],
      ['no key', { method: 'POST', headers: { 'x-model': 'm', 'content-type': 'application/json' }, body: chat('m') }],
      ['unknown model', { method: 'POST', headers: { 'x-model': 'nope', apikey: KEY, 'content-type': 'application/json' }, body: chat('nope') }],
      ['too large', { method: 'POST', headers: { 'x-model': 'm', apikey: KEY, 'content-type': 'application/json' }, body: chat('m', { pad: 'x'.repeat(5000) }) }],
      ['upstream 503', { method: 'POST', headers: { 'x-model': 'm', apikey: KEY, 'content-type': 'application/json', 'x-sim-status': '503' }, body: chat('m') }],
    ];
    for (const [name, init] of cases) {
      const run = async (gw: RunningGateway) => {
        const r = await fetch(`${gw.url}${init.path ?? '/v1/chat/completions'}`, init);
        return normalized({ status: r.status, headers: r.headers, body: await r.text() });
      };
      assert.deepEqual(await run(fast), await run(plain), name);
    }
  });

  it('times out slow heads: a byte at a time here, and on a connection handed to node:http', async () => {
    const head = 'POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\nx-model: m\r\n';
    const pieces: Array<string | { waitMs: number }> = [];
    for (const ch of head) pieces.push(ch, { waitMs: 1 });
    const slow = await rawExchange(fast.gateway.ports.proxy, [...pieces, { waitMs: 4000 }], 5000);
    assert.ok(slow.closed && slow.ms < 4000, `closed after ${slow.ms.toFixed(0)} ms`);
    assert.match(slow.text, /^HTTP\/1\.1 408 /);
    // A chunked request hands the connection over; the next head stalls: node:http's own timer answers.
    const handed = await rawExchange(fast.gateway.ports.proxy, [req('h1', { chunked: true }), { waitMs: 200 }, head, { waitMs: 4000 }], 5000);
    assert.equal(responses(handed.text)[0]?.status, 200);
    assert.ok(handed.closed && handed.ms < 4200, `closed after ${handed.ms.toFixed(0)} ms`);
    assert.match(handed.text, /HTTP\/1\.1 408 /);
  });

  it('an upstream that hangs up mid-body cuts the client connection and nothing else', async () => {
    const cut = await rawExchange(fast.gateway.ports.proxy, [req('b1', { key: BROKEN_KEY }).replace('x-model: m', 'x-model: broken')], 3000);
    assert.ok(cut.closed, 'the client connection is cut');
    assert.match(cut.text, /^HTTP\/1\.1 200 /);
    assert.ok(!cut.text.includes('upstream_error'), 'no second answer after the head');
    const ok = await rawExchange(fast.gateway.ports.proxy, [req('b2', { close: true })], 3000);
    assert.equal(responses(ok.text)[0]?.status, 200, 'the gateway still serves');
  });

  it('after a last response (Connection: close, or 413 before the body) nothing more is read as a request', async () => {
    const before = sim.received.length;
    const closed = await rawExchange(fast.gateway.ports.proxy, [req('c1', { close: true }) + req('c2')], 3000);
    assert.deepEqual(responses(closed.text), [{ status: 200, id: 'c1' }]);
    const big = `POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\nx-model: m\r\napikey: ${KEY}\r\nx-request-id: c3\r\ncontent-length: 5000\r\n\r\n`;
    const refused = await rawExchange(fast.gateway.ports.proxy, [big, { waitMs: 100 }, 'x'.repeat(5000) + req('c4')], 3000);
    assert.deepEqual(responses(refused.text), [{ status: 413, id: 'c3' }]);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(sim.received.length, before + 1, 'only c1 reached the upstream');
  });

  it('answers a head with bare LF line ends at once with 400, as node:http does, however it arrives', async () => {
    const lf = 'GET /v1/models HTTP/1.1\nhost: gw\nx-model: m\n\n';
    for (const gw of [fast, plain]) {
      const whole = await rawExchange(gw.gateway.ports.proxy, [lf], 3000);
      assert.equal(statusOf(whole.text), 400, whole.text);
      assert.ok(whole.closed);
      // The first line alone, then the rest: the front is waiting for the head's end when the LF comes.
      const split = await rawExchange(gw.gateway.ports.proxy, ['GET /v1/models HTTP/1.1\r\n', { waitMs: 50 }, 'host: gw\nx-model: m\n'], 3000);
      assert.equal(statusOf(split.text), 400, split.text);
      assert.ok(split.closed && split.ms < 900, `answered after ${split.ms.toFixed(0)} ms, not at the header timeout`);
      // Behind a response: the front reads it once that response is done (an idle connection: 400);
      // node:http reads it at once, while answering, and then closes without one.
      const behind = await rawExchange(gw.gateway.ports.proxy, [req('lf1') + 'GET /v1/models HTTP/1.1\nhost: gw\n'], 3000);
      const statuses = [...behind.text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
      assert.deepEqual(statuses, gw === fast ? ['200', '400'] : ['200'], behind.text);
      assert.ok(behind.closed && behind.ms < 900, `answered after ${behind.ms.toFixed(0)} ms`);
    }
  });

  it(`refuses a head with more than ${MAX_HEADER_FIELDS} header fields with 431 (node:http keeps ${MAX_HEADER_FIELDS} and drops the rest)`, async () => {
    const head = (fields: number): string => {
      const filler = Array.from({ length: fields - 3 }, (_, i) => `f${i.toString(36)}:\r\n`).join('');
      return `GET /v1/models HTTP/1.1\r\nhost: gw\r\napikey: ${KEY}\r\n${filler}x-model: m\r\n\r\n`;
    };
    const atCap = await rawExchange(fast.gateway.ports.proxy, [head(MAX_HEADER_FIELDS)], 3000);
    assert.equal(statusOf(atCap.text), 200, atCap.text.slice(0, 300));
    const over = await rawExchange(fast.gateway.ports.proxy, [head(MAX_HEADER_FIELDS + 1)], 3000);
    assert.equal(statusOf(over.text), 431, over.text.slice(0, 300));
    assert.match(over.text, /x-gateway-error: headers_too_large/);
    assert.ok(over.closed);
  });

  it('serves a pipelined request that drips in one byte at a time behind a stream', async () => {
    const stream = req('d1', { stream: true }).replace('x-request-id: d1\r\n', 'x-request-id: d1\r\nx-sim-itl-ms: 20\r\n');
    const pieces: RawPiece[] = [stream, { until: /data: / }];
    for (const ch of req('d2', { close: true })) pieces.push(ch);
    const r = await rawExchange(fast.gateway.ports.proxy, pieces, 3000);
    assert.deepEqual(responses(r.text), [{ status: 200, id: 'd1' }, { status: 200, id: 'd2' }]);
    assert.ok(r.closed);
  });

  it('a connection that never sends a byte gets 408 after header_timeout', async () => {
    const silent = await rawExchange(fast.gateway.ports.proxy, [{ waitMs: 4000 }], 5000);
    assert.ok(silent.closed && silent.ms < 3000, `closed after ${silent.ms.toFixed(0)} ms`);
    assert.match(silent.text, /^HTTP\/1\.1 408 /);
  });

  it('closes an idle keep-alive connection after keepalive_timeout', async () => {
    const idle = await rawExchange(fast.gateway.ports.proxy, [req('k1')], 4000);
    assert.equal(responses(idle.text)[0]?.status, 200);
    assert.ok(idle.closed && idle.ms > 900 && idle.ms < 3500, `closed after ${idle.ms.toFixed(0)} ms`);
  });
});
