import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Cleanup, chat, post, startGateway, startSim, type RunningGateway } from '../helpers/harness.js';
import { rawExchange, statusOf } from '../helpers/raw-socket.js';
import type { Simulator } from '../../src/sim/index.js';

const KEY = 'bad-input-secret-key-42';
const OTHER_KEY = 'other-model-secret-key-43';
const ADMIN_TOKEN = 'bad-input-admin-token-44';
const UPSTREAM_KEY = 'upstream-secret-key-45';
const SECRETS = [KEY, OTHER_KEY, ADMIN_TOKEN, UPSTREAM_KEY];

describe('bad input cannot knock the gateway over', () => {
  const cleanup = new Cleanup();
  let sim: Simulator;
  let gw: RunningGateway;
  let port: number;
  const bodies: string[] = [];
  const body = (json: string, headers: Record<string, string> = {}) => `POST /ai/v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(json)}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}connection: close\r\n\r\n${json}`;

  before(async () => {
    sim = await startSim(cleanup, { model: 'm' });
    gw = await startGateway(cleanup, {
      admin: { token: ADMIN_TOKEN },
      proxy: { max_body_size: '64KiB', max_header_size: '8KiB', max_url_length: 2048, header_timeout: '1s', max_connections: 200 },
      models: [
        { name: 'm', path: '/ai', api_keys: [KEY], upstream_api_key: UPSTREAM_KEY, targets: [{ url: sim.url }] },
        { name: 'other', path: '/ai', api_keys: [OTHER_KEY], targets: [{ url: sim.url }] },
      ],
    });
    port = gw.gateway.ports.proxy;
  });
  after(() => cleanup.run());

  const alive = async (): Promise<void> => {
    const r = await post(`${gw.url}/ai/v1/chat/completions`, chat('m'), { 'x-model': 'm', apikey: KEY });
    assert.equal(r.status, 200, 'the gateway still serves');
    await r.arrayBuffer();
  };

  it('answers malformed, truncated, empty, deeply nested, non-UTF-8 and NUL-laden bodies with 400 JSON', async () => {
    const cases: Array<[string, string | Buffer]> = [
      ['malformed', '{"model": m}'],
      ['truncated', '{"model": "m", "messages": [{"role"'],
      ['empty', ''],
      ['deeply nested', `{"model": ${'['.repeat(30_000)}${']'.repeat(30_000)}}`],
      ['array', '[1,2,3]'],
      ['number', '42'],
      ['invalid utf-8', Buffer.concat([Buffer.from('{"model": "'), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from('"}')])],
      ['NUL bytes', Buffer.from('{"model": "m\u0000", \u0000}')],
      ['wrong content type', 'model=m&messages=hi'],
    ];
    for (const [name, payload] of cases) {
      const raw = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
      const head = `POST /ai/v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: ${name === 'wrong content type' ? 'application/x-www-form-urlencoded' : 'application/json'}\r\ncontent-length: ${raw.length}\r\napikey: ${KEY}\r\nconnection: close\r\n\r\n`;
      const res = await rawExchange(port, [Buffer.concat([Buffer.from(head), raw])]);
      assert.equal(statusOf(res.text), name === 'invalid utf-8' ? 404 : 400, `${name}: ${res.text.slice(0, 200)}`);
      const json = JSON.parse(res.text.slice(res.text.indexOf('\r\n\r\n') + 4)) as { error: { code: string; type: string } };
      assert.equal(typeof json.error.code, 'string');
      bodies.push(res.text);
    }
    await alive();
  });

  it('refuses oversized headers (431), URLs (414) and bodies (413)', async () => {
    const big = await rawExchange(port, [`GET /ai/v1/models HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(10_000)}\r\n\r\n`]);
    assert.equal(statusOf(big.text), 431);
    const url = await rawExchange(port, [`GET /ai/v1/models?q=${'a'.repeat(3000)} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`]);
    assert.equal(statusOf(url.text), 414);
    const body = await post(`${gw.url}/ai/v1/chat/completions`, JSON.stringify({ model: 'm', pad: 'x'.repeat(70_000) }), { 'x-model': 'm', apikey: KEY });
    assert.equal(body.status, 413);
    bodies.push(big.text, url.text, await body.text());
    await alive();
  });

  it('rejects request smuggling shapes and header injection', async () => {
    const shapes = [
      'POST /ai/v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST /ai/v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!',
      'POST /ai/v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked, identity\r\n\r\n0\r\n\r\n',
      'GET /ai/v1/models HTTP/1.1\r\nhost: x\r\nx-a: b\rx-injected: c\r\n\r\n',
      'GET /ai/v1/models HTTP/1.1\r\nhost: x\r\nx-a: b\nx-injected: c\r\n\r\n',
      'GET /ai/v1/models HTTP/1.1\r\nhost: x\r\n folded: header\r\n\r\n',
      'GET /ai/v1/models HTTP/1.1\r\n\r\n',
    ];
    for (const shape of shapes) {
      const res = await rawExchange(port, [shape]);
      assert.equal(statusOf(res.text), 400, JSON.stringify(shape));
      assert.ok(res.closed, 'the connection is closed after a refused request');
    }
    assert.ok(sim.received.every((r) => r.headers['x-injected'] === undefined));
    await alive();
  });

  it('answers HTTP/1.0 without Host, and pipelined requests in order', async () => {
    const h10 = await rawExchange(port, [`GET /ai/v1/models HTTP/1.0\r\napikey: ${KEY}\r\n\r\n`]);
    assert.equal(statusOf(h10.text), 200);
    const three = [1, 2, 3].map((i) => `GET /ai/v1/models HTTP/1.1\r\nhost: x\r\nx-request-id: pipe-${i}\r\napikey: ${KEY}\r\n${i === 3 ? 'connection: close\r\n' : ''}\r\n`).join('');
    const piped = await rawExchange(port, [three]);
    const ids = [...piped.text.matchAll(/x-request-id: (pipe-\d)/gi)].map((m) => m[1]);
    assert.deepEqual(ids, ['pipe-1', 'pipe-2', 'pipe-3']);
  });

  it('runs none of the requests an upgrade carries behind its head when the engine refuses to switch', async () => {
    const json = chat('m', { max_tokens: 500 });
    const early = `POST /v1/chat/completions HTTP/1.1\r\nhost: engine\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(json)}\r\n\r\n${json}`.repeat(5);
    const upgrade = `GET /ai/v1/realtime?model=m HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\napikey: ${KEY}\r\n\r\n`;
    for (const pieces of [[upgrade + early], [upgrade, { waitMs: 20 }, early]]) {
      const before = sim.stats.requests;
      const res = await rawExchange(port, pieces);
      assert.equal(statusOf(res.text), 404, res.text);
      assert.equal(res.text.match(/HTTP\/1\.1 \d{3}/g)?.length, 1, 'one response');
      assert.ok(res.closed);
      assert.equal(sim.stats.requests, before, 'no request behind the upgrade reached the engine');
      bodies.push(res.text);
    }
    await alive();
  });

  it('survives abrupt disconnects during headers, during the body upload and mid-stream', async () => {
    await rawExchange(port, ['POST /ai/v1/chat/comp'], 50);
    await rawExchange(port, [`POST /ai/v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-model: m\r\napikey: ${KEY}\r\ncontent-length: 1000\r\n\r\n{"model": "m", "mess`], 50);
    const abortedBefore = sim.stats.aborted;
    const streamReq = body(chat('m', { stream: true, max_tokens: 200 }), { 'x-model': 'm', apikey: KEY, 'x-sim-itl-ms': '20' });
    await rawExchange(port, [streamReq, { waitMs: 80 }], 100);
    await sim.waitFor((s) => s.aborted === abortedBefore + 1, 500);
    await alive();
  });

  it('cuts slow-loris connections after header_timeout but not a long stream', async () => {
    const slow = await rawExchange(port, ['GET /ai/v1/models HTTP/1.1\r\n', { waitMs: 400 }, 'host: x\r\n', { waitMs: 400 }, 'x-a: 1\r\n', { waitMs: 400 }, 'x-b: 2\r\n', { waitMs: 2000 }], 4000);
    assert.ok(slow.closed, 'closed');
    assert.ok(slow.ms < 3000, `closed after ${slow.ms.toFixed(0)} ms`);
    assert.ok([0, 408].includes(statusOf(slow.text)));
    // A stream lasting longer than header_timeout completes.
    const res = await post(`${gw.url}/ai/v1/chat/completions`, chat('m', { stream: true, max_tokens: 30 }), { 'x-model': 'm', apikey: KEY, 'x-sim-itl-ms': '60' });
    assert.match(await res.text(), /\[DONE\]/);
  });

  it('closes connections beyond max_connections', async () => {
    const sockets = await Promise.all(
      Array.from({ length: 210 }, () => new Promise<{ closed: boolean; destroy: () => void }>((resolve) => {
        const s = connect(port, '127.0.0.1');
        const state = { closed: false, destroy: () => s.destroy() };
        s.on('close', () => (state.closed = true));
        s.on('error', () => {});
        s.on('connect', () => setTimeout(() => resolve(state), 100));
      })),
    );
    const closed = sockets.filter((s) => s.closed).length;
    for (const s of sockets) s.destroy();
    assert.ok(closed >= 10, `${closed} of 210 connections were closed at once`);
    await new Promise((r) => setTimeout(r, 100));
    await alive();
  });

  it('survives a bounded fuzz run of random and mutated HTTP, and its memory returns to baseline', async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const before = process.memoryUsage().heapUsed;
    const seeds = [
      body(chat('m'), { 'x-model': 'm', apikey: KEY }),
      `GET /ai/v1/models HTTP/1.1\r\nhost: x\r\napikey: ${KEY}\r\n\r\n`,
      'POST /ai/v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    ];
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const mutate = (s: string): Buffer => {
      const b = Buffer.from(s);
      const kind = rnd(4);
      if (kind === 0) return randomBytes(1 + rnd(2000));
      const out = Buffer.from(b);
      for (let i = 0; i < 1 + rnd(8); i++) out[rnd(out.length)] = rnd(256);
      if (kind === 2) return out.subarray(0, rnd(out.length));
      if (kind === 3) return Buffer.concat([out, out.subarray(rnd(out.length))]);
      return out;
    };
    const deadline = Date.now() + 3000;
    let runs = 0;
    while (Date.now() < deadline) {
      await Promise.all(Array.from({ length: 8 }, () => rawExchange(port, [mutate(seeds[rnd(seeds.length)]!)], 150).then((r) => bodies.push(r.text))));
      runs += 8;
    }
    assert.ok(runs > 50);
    await alive();
    await new Promise((r) => setTimeout(r, 200));
    gc?.();
    const grown = process.memoryUsage().heapUsed - before;
    assert.ok(grown < 20 * 1024 * 1024, `heap grew by ${(grown / 1048576).toFixed(1)} MiB`);
  });

  it('never shows a key or token in logs, error bodies, metrics or GET /config', async () => {
    // A few more requests that put keys in every place a careless gateway might echo them.
    await (await post(`${gw.url}/ai/v1/chat/completions`, chat('m'), { 'x-model': 'm', apikey: OTHER_KEY })).arrayBuffer();
    await (await post(`${gw.url}/ai/v1/chat/completions?apikey=${KEY}`, chat('m'), { 'x-model': 'm', authorization: `Bearer ${OTHER_KEY}x` })).arrayBuffer();
    const metrics = await (await fetch(`${gw.statusUrl}/metrics`)).text();
    const config = await (await fetch(`${gw.adminUrl}/config`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
    const models = await (await fetch(`${gw.adminUrl}/models`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
    const badAdmin = await (await fetch(`${gw.adminUrl}/config`, { headers: { authorization: `Bearer ${KEY}` } })).text();
    await new Promise((r) => setTimeout(r, 50));
    const everything = [...bodies, metrics, config, models, badAdmin, ...gw.accessLog.lines, ...gw.log.lines].join('\n');
    for (const secret of SECRETS) {
      const at = everything.indexOf(secret);
      assert.ok(at === -1, `a secret leaked: …${everything.slice(Math.max(0, at - 80), at).replaceAll(secret, '<secret>')}<secret>`);
    }
    // The upstream got its own key, never a client's.
    assert.ok(sim.received.every((r) => !JSON.stringify(r.headers).includes(KEY) && !JSON.stringify(r.headers).includes(OTHER_KEY)));
  });
});

/** dechunk reads a chunked body from `text` (starting just past the head): its data and what follows it, or null when the framing is broken. */
function dechunk(text: string): { data: string; after: string } | null {
  let at = 0;
  let data = '';
  for (;;) {
    const lineEnd = text.indexOf('\r\n', at);
    if (lineEnd === -1) return null;
    const size = Number.parseInt(text.slice(at, lineEnd), 16);
    if (!/^[0-9a-f]+$/i.test(text.slice(at, lineEnd))) return null;
    at = lineEnd + 2;
    if (size === 0) return text.startsWith('\r\n', at) ? { data, after: text.slice(at + 2) } : null;
    data += text.slice(at, at + size);
    at += size;
    if (!text.startsWith('\r\n', at)) return null;
    at += 2;
  }
}

for (const isFast of [true, false]) {
  describe(`a malformed request pipelined behind a response in progress (fast_http1: ${isFast})`, () => {
    const cleanup = new Cleanup();
    let port: number;
    const GARBAGE = 'NOT HTTP AT ALL\r\n\r\n';

    before(async () => {
      const sim = await startSim(cleanup, { model: 'm' });
      const gw = await startGateway(cleanup, { proxy: { fast_http1: isFast }, models: [{ name: 'm', api_keys: [KEY], targets: [{ url: sim.url }] }] });
      port = gw.gateway.ports.proxy;
    });
    after(() => cleanup.run());

    /** request is a completion request; a chunked body makes the fast front hand the connection to node:http. */
    const request = (json: string, headers: string, isChunked: boolean): string =>
      `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\napikey: ${KEY}\r\nx-model: m\r\n${headers}` +
      (isChunked ? `transfer-encoding: chunked\r\n\r\n${Buffer.byteLength(json).toString(16)}\r\n${json}\r\n0\r\n\r\n` : `content-length: ${Buffer.byteLength(json)}\r\n\r\n${json}`);

    for (const isChunked of [true, false]) {
      it(`lets a stream finish intact, then closes (request body ${isChunked ? 'chunked' : 'with Content-Length'})`, async () => {
        const streaming = request(chat('m', { stream: true, max_tokens: 12 }), 'x-sim-itl-ms: 15\r\n', isChunked);
        const r = await rawExchange(port, [streaming, { until: /data: / }, GARBAGE], 5000);
        assert.equal(statusOf(r.text), 200, r.text);
        const body = dechunk(r.text.slice(r.text.indexOf('\r\n\r\n') + 4));
        assert.ok(body !== null, `the chunked body is intact: ${JSON.stringify(r.text.slice(-300))}`);
        assert.match(body.data, /data: \[DONE\]\n\n$/);
        // What follows the stream on this connection: nothing, or the 400 of an idle connection.
        assert.ok(body.after === '' || statusOf(body.after) === 400, JSON.stringify(body.after));
        assert.ok(r.closed, 'the connection closes');
      });

      it(`answers a request still waiting for its engine, not a 400 in its place (request body ${isChunked ? 'chunked' : 'with Content-Length'})`, async () => {
        const r = await rawExchange(port, [request(chat('m'), 'x-sim-ttft-ms: 100\r\n', isChunked) + GARBAGE], 5000);
        assert.equal(statusOf(r.text), 200, r.text);
        assert.match(r.text, /"object":"chat\.completion"/);
        assert.ok(r.closed, 'the connection closes');
      });
    }

    it('answers every request pipelined before the garbage, in order, then closes', async () => {
      const streaming = request(chat('m', { stream: true, max_tokens: 6 }), 'x-sim-itl-ms: 10\r\n', true);
      const models = `GET /v1/models HTTP/1.1\r\nhost: x\r\nx-model: m\r\napikey: ${KEY}\r\nx-request-id: second\r\n\r\n`;
      const r = await rawExchange(port, [streaming + models + GARBAGE], 5000);
      const heads = [...r.text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
      assert.deepEqual(heads, ['200', '200'], r.text);
      assert.match(r.text, /data: \[DONE\][\s\S]*x-request-id: second/i);
      assert.ok(r.closed, 'the connection closes');
    });

    it('answers garbage on an idle connection with a 400 and closes', async () => {
      const r = await rawExchange(port, [`GET /v1/models HTTP/1.1\r\nhost: x\r\nx-model: m\r\napikey: ${KEY}\r\n\r\n`, { until: /"object":"list"|"data"/ }, GARBAGE], 3000);
      assert.equal(statusOf(r.text), 200);
      const second = r.text.slice(r.text.indexOf('HTTP/1.1', 1));
      assert.equal(statusOf(second), 400, r.text);
      assert.ok(r.closed);
    });
  });
}

/*
 * An SSE answer whose upstream sent a Content-Length: the gateway changes such a body (the hidden
 * usage event) or appends to it (the error event after an engine died mid-stream), so it must
 * frame the body itself. Otherwise, on a kept-alive client connection, the client reads the next
 * response's head as the rest of this body (response-queue poisoning behind a shared balancer).
 */
const SSE_KEY = 'sse-framing-key-0123456789';
const event = (o: object): string => `data: ${JSON.stringify(o)}\n\n`;
const delta = (content: string, finish: string | null = null): string =>
  event({ id: 'c1', object: 'chat.completion.chunk', model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: finish }] });
const USAGE = event({ id: 'c1', object: 'chat.completion.chunk', model: 'm', choices: [], usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } });
const JSON_ANSWER = JSON.stringify({ id: 'c2', object: 'chat.completion', model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'second' }, finish_reason: 'stop' }] });

/**
 * An engine that frames its streams with Content-Length (x-case: usage sends a whole stream with
 * a usage event; x-case: early declares more than it sends, then closes), and answers JSON otherwise.
 */
function startLengthFramedEngine(cleanup: Cleanup): Promise<string> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const which = req.headers['x-case'];
      if (which === 'usage' || which === 'early') {
        const body = delta('a') + delta('b') + delta('c', 'stop') + USAGE + 'data: [DONE]\n\n';
        res.writeHead(200, { 'content-type': 'text/event-stream', 'content-length': Buffer.byteLength(body) + (which === 'early' ? 500 : 0) });
        if (which === 'usage') return void res.end(body);
        res.write(delta('a'));
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(JSON_ANSWER) });
      res.end(JSON_ANSWER);
    });
  });
  cleanup.add(() => new Promise<void>((r) => server.close(() => r())));
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

/** Response is one HTTP/1.1 response read off a connection by its own framing. */
interface Response {
  head: string;
  body: string;
}

/** readResponses splits raw connection text into responses, each by the framing its head declares. */
function readResponses(text: string): Response[] {
  const out: Response[] = [];
  let rest = text;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    assert.ok(end !== -1, `a response head: ${JSON.stringify(rest.slice(0, 200))}`);
    const head = rest.slice(0, end);
    rest = rest.slice(end + 4);
    const length = /\r\ncontent-length: (\d+)/i.exec(head);
    if (/\r\ntransfer-encoding: chunked/i.test(head)) {
      let body = '';
      for (;;) {
        const line = rest.indexOf('\r\n');
        const size = Number.parseInt(rest.slice(0, line), 16);
        assert.ok(line !== -1 && Number.isInteger(size), `a chunk size line: ${JSON.stringify(rest.slice(0, 80))}`);
        body += rest.slice(line + 2, line + 2 + size);
        rest = rest.slice(line + 2 + size + 2);
        if (size === 0) break;
      }
      out.push({ head, body });
    } else if (length !== null) {
      out.push({ head, body: rest.slice(0, Number(length[1])) });
      rest = rest.slice(Number(length[1]));
    } else {
      out.push({ head, body: rest });
      rest = '';
    }
  }
  return out;
}

for (const isFast of [true, false]) {
  describe(`an SSE answer the upstream framed with Content-Length (fast_http1: ${isFast})`, () => {
    const cleanup = new Cleanup();
    let port: number;

    before(async () => {
      const url = await startLengthFramedEngine(cleanup);
      const gw = await startGateway(cleanup, { proxy: { fast_http1: isFast }, models: [{ name: 'm', api_keys: [SSE_KEY], targets: [{ url }] }] });
      port = gw.gateway.ports.proxy;
    });
    after(() => cleanup.run());

    const request = (which: string, json: string, close = false): string =>
      `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\napikey: ${SSE_KEY}\r\nx-model: m\r\nx-case: ${which}\r\n` +
      `${close ? 'connection: close\r\n' : ''}content-length: ${Buffer.byteLength(json)}\r\n\r\n${json}`;

    /** exchange sends a stream request, waits for its end, then a JSON request on the same connection. */
    const exchange = async (which: string, streamEnd: RegExp): Promise<Response[]> => {
      const r = await rawExchange(port, [request(which, chat('m', { stream: true })), { until: streamEnd }, request('json', chat('m'), true)], 5000);
      assert.ok(r.closed, `the exchange completes: ${JSON.stringify(r.text.slice(-300))}`);
      return readResponses(r.text);
    };

    it('hides the usage event and frames the shorter body itself: the next response on the connection is intact', async () => {
      const [stream, next, ...more] = await exchange('usage', /data: \[DONE\]\n\n/);
      assert.match(stream!.head, /^HTTP\/1\.1 200/);
      assert.doesNotMatch(stream!.head, /content-length/i);
      assert.match(stream!.body, /"content":"c"[\s\S]*data: \[DONE\]\n\n$/);
      assert.doesNotMatch(stream!.body, /"usage"/, 'the client did not ask for usage');
      assert.match(next!.head, /^HTTP\/1\.1 200/, `the second response starts where the first ends: ${JSON.stringify(next!.head)}`);
      assert.equal(next!.body, JSON_ANSWER);
      assert.equal(more.length, 0);
    });

    it('appends the error event of an engine that ended early inside its own framing: the next response is intact', async () => {
      const [stream, next, ...more] = await exchange('early', /"error"/);
      assert.match(stream!.head, /^HTTP\/1\.1 200/);
      assert.doesNotMatch(stream!.head, /content-length/i);
      assert.match(stream!.body, /"content":"a"[\s\S]*data: \{"error":/);
      assert.match(next!.head, /^HTTP\/1\.1 200/, `the second response starts where the first ends: ${JSON.stringify(next!.head)}`);
      assert.equal(next!.body, JSON_ANSWER);
      assert.equal(more.length, 0);
    });
  });
}
