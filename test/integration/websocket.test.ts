/**
 * WebSocket passthrough: a real `ws` echo server behind the gateway and `ws` clients in front,
 * over plain HTTP/1.1 and TLS (HTTP/1.1 by ALPN).
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { parsePrometheus, valueOf } from '../helpers/prometheus.js';
import { rawExchange, statusOf } from '../helpers/raw-socket.js';
import { Cleanup, chat, deadUrl, startGateway, startSim, type RunningGateway } from '../helpers/harness.js';

const KEY = 'ws-key-0123456789';
const CHAT_KEY = 'ws-chat-key-0123456789';

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
  let gw: RunningGateway;
  let ws: string;

  before(async () => {
    up = await startEcho(cleanup);
    const sim = await startSim(cleanup, { model: 'chat' });
    gw = await startGateway(cleanup, {
      proxy: { tls_listen: '127.0.0.1:0' },
      models: [
        { name: 'rt', path: '/ai/models', served_model: 'realtime-x', api_keys: [KEY], key_in_query: true, targets: [{ url: up.url }] },
        { name: 'dead', path: '/ai/models', retries: 0, targets: [{ url: await deadUrl() }], health_check: { active: false } },
        { name: 'chat', path: '/ai/models', api_keys: [CHAT_KEY], targets: [{ url: sim.url }] },
      ],
    });
    ws = gw.url.replace('http://', 'ws://');
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
});
