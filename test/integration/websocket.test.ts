/**
 * WebSocket passthrough: a real `ws` echo server behind the gateway and `ws` clients in front,
 * over plain HTTP/1.1 and TLS (HTTP/1.1 by ALPN).
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { parsePrometheus, valueOf } from '../helpers/prometheus.js';
import { rawExchange, statusOf } from '../helpers/raw-socket.js';
import { Cleanup, chat, deadUrl, post, startGateway, startSim, type RunningGateway } from '../helpers/harness.js';
import type { Simulator } from '../../src/sim/index.js';

const KEY = 'ws-key-0123456789';
const CHAT_KEY = 'ws-chat-key-0123456789';
const LIMITED_KEY = 'ws-limited-key-0123456789';

/** upgradeHead is a raw WebSocket upgrade request for `path` (the key is RFC 6455's sample nonce). */
function upgradeHead(path: string, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`;
}

/** maskedText is one masked (client-to-server) WebSocket text frame. */
function maskedText(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload.map((b, i) => b ^ mask[i % 4]!)]);
}

/** Refuser is a raw engine that refuses every upgrade with the answer the path names, keeps what it read, and leaves the connection open. */
interface Refuser {
  url: string;
  received: string[];
  closed: number;
}

async function startRefuser(cleanup: Cleanup): Promise<Refuser> {
  const answers: Record<string, string> = {
    // Each answer is followed, in the same write, by bytes that are not part of it.
    '/v1/length': 'HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nnope!HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nSMUGGL',
    '/v1/chunked': 'HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n5\r\nnope!\r\n0\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nSMUGGL',
  };
  const sockets = new Set<Socket>();
  const server = createNetServer((sock) => {
    sockets.add(sock);
    const at = ref.received.push('') - 1;
    sock.on('error', () => {});
    sock.on('close', () => {
      sockets.delete(sock);
      ref.closed++;
    });
    sock.on('data', (chunk: Buffer) => {
      const seen = (ref.received[at] += chunk.toString('latin1'));
      if (!seen.includes('\r\n\r\n') || seen.length - chunk.length > seen.indexOf('\r\n\r\n')) return;
      const path = seen.slice(4, seen.indexOf(' ', 4)).split('?')[0]!;
      // Close-delimited: the answer ends when the engine closes.
      if (path === '/v1/close') sock.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n\r\nnope, closing');
      else sock.write(answers[path] ?? answers['/v1/length']!);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const ref: Refuser = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received: [], closed: 0 };
  cleanup.add(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  }));
  return ref;
}

/** Upstream is the echo server and what it saw. */
interface Upstream {
  url: string;
  requests: IncomingMessage[];
  closes: Array<{ code: number; reason: string }>;
  sockets: Set<WebSocket>;
}

/** startEcho starts a ws server on /v1/realtime: it greets, echoes, and closes with 4000 on "close-me". */
async function startEcho(cleanup: Cleanup): Promise<Upstream> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/v1/realtime' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const up: Upstream = { url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`, requests: [], closes: [], sockets: new Set() };
  wss.on('connection', (ws, req) => {
    up.requests.push(req);
    up.sockets.add(ws);
    ws.send('welcome');
    ws.on('message', (data, isBinary) => {
      if (!isBinary && data.toString() === 'close-me') ws.close(4000, 'bye');
      else if (!isBinary && data.toString() === 'drop-me') ws.terminate();
      else ws.send(isBinary ? data : `echo:${data.toString()}`, { binary: isBinary });
    });
    ws.on('close', (code, reason) => {
      up.sockets.delete(ws);
      up.closes.push({ code, reason: reason.toString() });
    });
  });
  cleanup.add(() => new Promise<void>((r) => {
    for (const ws of wss.clients) ws.terminate();
    wss.close(() => r());
  }));
  return up;
}

/** open connects a client and resolves with it and the first message (the server's greeting). */
function open(url: string, opts: WebSocket.ClientOptions = {}): Promise<{ ws: WebSocket; greeting: string; headers: IncomingMessage['headers'] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    let headers: IncomingMessage['headers'] = {};
    ws.once('upgrade', (res) => (headers = res.headers));
    ws.once('message', (data) => resolve({ ws, greeting: data.toString(), headers }));
    ws.once('error', reject);
  });
}

/** refused connects a client that must be refused before the upgrade; resolves with the HTTP answer. */
function refused(url: string, opts: WebSocket.ClientOptions = {}): Promise<{ status: number; body: string; headers: IncomingMessage['headers'] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    ws.once('open', () => reject(new Error('the upgrade was accepted')));
    ws.once('error', () => {});
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
  });
}

function next(ws: WebSocket): Promise<{ data: string; isBinary: boolean }> {
  return new Promise((resolve) => ws.once('message', (data, isBinary) => resolve({ data: data.toString(), isBinary })));
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

async function until(pred: () => boolean | Promise<boolean>, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('WebSocket passthrough', () => {
  const cleanup = new Cleanup();
  let up: Upstream;
  let refuser: Refuser;
  let sim: Simulator;
  let gw: RunningGateway;
  let ws: string;
  let port: number;

  before(async () => {
    up = await startEcho(cleanup);
    refuser = await startRefuser(cleanup);
    sim = await startSim(cleanup, { model: 'chat' });
    gw = await startGateway(cleanup, {
      proxy: { tls_listen: '127.0.0.1:0' },
      models: [
        { name: 'rt', path: '/ai/models', served_model: 'realtime-x', api_keys: [KEY], key_in_query: true, targets: [{ url: up.url }] },
        { name: 'dead', path: '/ai/models', retries: 0, targets: [{ url: await deadUrl() }], health_check: { active: false } },
        { name: 'chat', path: '/ai/models', api_keys: [CHAT_KEY], targets: [{ url: sim.url }] },
        { name: 'limited', path: '/ai/models', served_model: 'chat', api_keys: [{ key: LIMITED_KEY, name: 'limited', limits: { requests: { per_minute: 2 } } }], targets: [{ url: sim.url }] },
        { name: 'refuser', path: '/ai/models', retries: 0, targets: [{ url: refuser.url }], health_check: { active: false } },
      ],
    });
    ws = gw.url.replace('http://', 'ws://');
    port = Number(new URL(gw.url).port);
  });
  after(() => cleanup.run());

  it('relays messages both ways, with the stripped path, the served model and no client credential upstream', async () => {
    const { ws: client, greeting, headers } = await open(`${ws}/ai/models/v1/realtime?model=rt`, { headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(greeting, 'welcome');
    assert.ok(headers['x-request-id']);
    client.send('hello');
    assert.deepEqual(await next(client), { data: 'echo:hello', isBinary: false });
    client.send(Buffer.from([1, 2, 3, 250]), { binary: true });
    const bin = await new Promise<Buffer>((r) => client.once('message', (d) => r(d as Buffer)));
    assert.deepEqual([...bin], [1, 2, 3, 250]);
    const req = up.requests.at(-1)!;
    assert.equal(req.url, '/v1/realtime?model=realtime-x');
    assert.equal(req.headers.authorization, undefined);
    assert.ok(!JSON.stringify(req.headers).includes(KEY));
    assert.equal(req.headers['x-request-id'], headers['x-request-id']);
    assert.equal(req.headers['x-forwarded-proto'], 'http');
    const done = closed(client);
    client.close(1000, 'done');
    await done;
  });

  it('requires the key before the upgrade: 401 JSON, nothing reaches the upstream', async () => {
    const count = up.requests.length;
    const r = await refused(`${ws}/ai/models/v1/realtime?model=rt`);
    assert.equal(r.status, 401);
    assert.match(String(r.headers['www-authenticate']), /^Key /);
    assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'missing_api_key');
    assert.equal((await refused(`${ws}/ai/models/v1/realtime?model=rt`, { headers: { 'x-api-key': 'wrong' } })).status, 401);
    assert.equal((await refused(`${ws}/ai/models/v1/realtime`, { headers: { apikey: KEY } })).status, 400);
    assert.equal(up.requests.length, count);
  });

  it('routes by X-Model and takes the key from x-api-key or, where allowed, the query (stripped)', async () => {
    const a = await open(`${ws}/ai/models/v1/realtime`, { headers: { 'x-model': 'rt', 'x-api-key': KEY } });
    a.ws.terminate();
    const b = await open(`${ws}/ai/models/v1/realtime?model=rt&apikey=${KEY}&x=1`);
    assert.equal(up.requests.at(-1)!.url, '/v1/realtime?model=realtime-x&x=1');
    b.ws.terminate();
  });

  it('closes the upstream when the client closes, counts the session in flight, and logs one 101 line', async () => {
    const { ws: client } = await open(`${ws}/ai/models/v1/realtime?model=rt`, { headers: { apikey: KEY, 'x-request-id': 'ws-close-client' } });
    const status = (await (await fetch(`${gw.statusUrl}/status`)).json()) as { server: { requests_inflight: number } };
    assert.equal(status.server.requests_inflight, 1);
    assert.equal(valueOf(parsePrometheus(await (await fetch(`${gw.statusUrl}/metrics`)).text()), 'igw_inflight_requests', { model: 'rt' }), 1);
    const closes = up.closes.length;
    client.close(1000, 'client done');
    await until(() => up.closes.length === closes + 1);
    assert.deepEqual(up.closes.at(-1), { code: 1000, reason: 'client done' });
    await until(() => gw.accessLog.json<{ request_id: string }>().some((l) => l.request_id === 'ws-close-client'));
    const lines = gw.accessLog.json<{ request_id: string; status: number; model: string; bytes_in: number; bytes_out: number }>().filter((l) => l.request_id === 'ws-close-client');
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.status, 101);
    assert.equal(lines[0]!.model, 'rt');
    assert.ok(lines[0]!.bytes_in > 0 && lines[0]!.bytes_out > 0);
    await until(async () => ((await (await fetch(`${gw.statusUrl}/status`)).json()) as { server: { requests_inflight: number } }).server.requests_inflight === 0);
  });

  it('closes the client when the upstream closes, cleanly or by dropping the connection', async () => {
    const a = await open(`${ws}/ai/models/v1/realtime?model=rt`, { headers: { apikey: KEY } });
    const aClosed = closed(a.ws);
    a.ws.send('close-me');
    assert.deepEqual(await aClosed, { code: 4000, reason: 'bye' });
    const b = await open(`${ws}/ai/models/v1/realtime?model=rt`, { headers: { apikey: KEY } });
    const bClosed = closed(b.ws);
    b.ws.send('drop-me');
    assert.equal((await bClosed).code, 1006);
  });

  it("relays the upstream's refusal of an upgrade as is", async () => {
    const r = await refused(`${ws}/ai/models/v1/other?model=rt`, { headers: { apikey: KEY } });
    assert.equal(r.status, 400);
    assert.ok(r.headers['x-request-id']);
  });

  it('answers 502 JSON when the target cannot be reached', async () => {
    const r = await refused(`${ws}/ai/models/v1/realtime?model=dead`);
    assert.equal(r.status, 502);
    assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'upstream_connect_failed');
  });

  it('relays over the TLS listener (HTTP/1.1 by ALPN)', async () => {
    const url = `wss://127.0.0.1:${gw.gateway.ports.tls}/ai/models/v1/realtime?model=rt`;
    const { ws: client, greeting } = await open(url, { headers: { apikey: KEY }, rejectUnauthorized: false });
    assert.equal(greeting, 'welcome');
    client.send('over tls');
    assert.equal((await next(client)).data, 'echo:over tls');
    assert.equal(up.requests.at(-1)!.headers['x-forwarded-proto'], 'https');
    client.terminate();
  });

  it('serves an upgrade it does not relay (curl --http2 sends Upgrade: h2c) as a plain request', async () => {
    const body = chat('chat');
    const r = await rawExchange(Number(new URL(gw.url).port), [
      `POST /ai/models/v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\napikey: ${CHAT_KEY}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 10)}`,
      { waitMs: 20 },
      body.slice(10),
    ]);
    assert.equal(statusOf(r.text), 200, JSON.stringify(r));
    assert.match(r.text, /"object":"chat\.completion"/);
    assert.ok(r.closed);
  });
  it('holds what the client sent after the upgrade head until the engine switches: requests smuggled there never run', async () => {
    const completion = JSON.stringify({ model: 'chat', prompt: 'hi', max_tokens: 500 });
    const smuggled = `POST /v1/completions HTTP/1.1\r\nhost: engine\r\ncontent-type: application/json\r\ncontent-length: ${completion.length}\r\n\r\n${completion}`.repeat(5);
    const requestsBefore = sim.stats.requests;
    // The simulator speaks no WebSocket: it refuses the upgrade (404) and keeps its connection open.
    const r = await rawExchange(port, [upgradeHead('/ai/models/v1/realtime?model=limited', `apikey: ${LIMITED_KEY}\r\n`) + smuggled]);
    assert.equal(statusOf(r.text), 404, r.text);
    assert.ok(r.closed, 'the connection closes after the refusal');
    assert.equal(r.text.match(/HTTP\/1\.1 \d{3}/g)?.length, 1, 'exactly one response reaches the client');
    assert.equal(sim.stats.requests, requestsBefore, 'no smuggled request reached the engine');
    // The key was charged for its one upgrade, not for the five requests behind it.
    const ok = await post(`${gw.url}/ai/models/v1/completions`, completion, { 'x-model': 'limited', apikey: LIMITED_KEY });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('ratelimit-remaining'), '0');
    await ok.arrayBuffer();
    assert.equal(sim.stats.requests, requestsBefore + 1);
    const over = await post(`${gw.url}/ai/models/v1/completions`, completion, { 'x-model': 'limited', apikey: LIMITED_KEY });
    assert.equal(over.status, 429);
    await over.arrayBuffer();
  });

  it('relays held bytes (frames sent before the 101 arrived) once the engine switched', async () => {
    const r = await rawExchange(port, [upgradeHead('/ai/models/v1/realtime?model=rt', `apikey: ${KEY}\r\n`), maskedText('early'), { until: /echo:early/ }]);
    assert.equal(statusOf(r.text), 101, r.text);
    assert.match(r.text, /echo:early/);
  });

  it("relays exactly the engine's refusal, by its framing, then closes", async () => {
    for (const path of ['/v1/length', '/v1/chunked', '/v1/close']) {
      const closedBefore = refuser.closed;
      const r = await rawExchange(port, [upgradeHead(`/ai/models${path}?model=refuser`) + 'EARLY-BYTES']);
      assert.equal(statusOf(r.text), 403, `${path}: ${r.text}`);
      assert.ok(r.closed, `${path}: the connection closes after the refusal`);
      assert.match(r.text, /\r\nx-request-id: /i);
      assert.match(r.text, /nope/);
      assert.doesNotMatch(r.text, /SMUGGL|HTTP\/1\.1 200/, `${path}: bytes after the refusal were relayed`);
      await until(() => refuser.closed === closedBefore + 1);
      assert.doesNotMatch(refuser.received.at(-1)!, /EARLY-BYTES/, `${path}: the engine got bytes meant for after the switch`);
    }
  });
});
