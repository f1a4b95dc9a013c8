import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage } from 'node:http';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Simulator } from '../../src/sim/index.js';
import { Cleanup, chat, deadUrl, post, rawRequest, startGateway, startSim, type RunningGateway } from '../helpers/harness.js';

type ErrorJson = { error: { code: string; type: string; message: string }; message: string; request_id: string };

/** streamRequest opens a streaming chat request with node:http and resolves on the response headers. */
function streamRequest(gwUrl: string, headers: Record<string, string>): Promise<{ res: IncomingMessage; destroy: () => void }> {
  const u = new URL(gwUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json', 'x-model': 'm', ...headers }, agent: false }, (res) =>
      resolve({ res, destroy: () => req.destroy() }),
    );
    req.on('error', () => {});
    req.end(chat('m', { stream: true, max_tokens: 50 }));
    req.on('error', reject);
  });
}

describe('forwarding', () => {
  let cleanup: Cleanup;
  let sim: Simulator;
  let gw: RunningGateway;

  beforeEach(async () => {
    cleanup = new Cleanup();
    sim = await startSim(cleanup, { model: 'm' });
    gw = await startGateway(cleanup, {
      proxy: { max_body_size: '1KiB' },
      models: [{ name: 'm', targets: [{ url: sim.url }], timeouts: { first_byte: '300ms', idle: '300ms' } }],
    });
  });
  afterEach(() => cleanup.run());

  it('keeps a sane client X-Request-Id and generates one otherwise, on both sides', async () => {
    const given = await post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm', 'x-request-id': 'abc-123' });
    assert.equal(given.headers.get('x-request-id'), 'abc-123');
    await given.arrayBuffer();
    assert.equal(sim.received.at(-1)!.headers['x-request-id'], 'abc-123');
    const fresh = await post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm' });
    const id = fresh.headers.get('x-request-id');
    assert.match(id ?? '', /^[0-9a-f-]{36}$/);
    await fresh.arrayBuffer();
    assert.equal(sim.received.at(-1)!.headers['x-request-id'], id);
  });

  it('sets X-Forwarded-*, latency headers, and drops hop-by-hop headers', async () => {
    const res = await rawRequest(gw.url, {
      method: 'POST',
      path: '/v1/chat/completions',
      body: chat('m'),
      headers: { 'content-type': 'application/json', 'x-model': 'm', connection: 'keep-alive, x-secret-hop', 'x-secret-hop': '1', 'x-end-to-end': 'kept' },
    });
    assert.equal(res.status, 200);
    assert.ok(Number(res.headers['x-gateway-latency']) >= 0);
    assert.ok(Number(res.headers['x-upstream-latency']) >= 0);
    const seen = sim.received.at(-1)!.headers;
    assert.equal(seen['x-secret-hop'], undefined);
    assert.equal(seen['x-end-to-end'], 'kept');
    assert.equal(seen['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen['x-forwarded-proto'], 'http');
    assert.match(String(seen['x-forwarded-host']), /^127\.0\.0\.1:\d+$/);
  });

  it('streams: the first chunk reaches the client before the upstream has finished', async () => {
    const { res, destroy } = await streamRequest(gw.url, { 'x-sim-itl-ms': '100', 'x-sim-chunks': '5' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.equal(res.headers['x-accel-buffering'], 'no');
    const first = await new Promise<Buffer>((resolve) => res.once('data', resolve));
    assert.match(first.toString(), /^data: /);
    assert.equal(sim.stats.completed, 0);
    destroy();
  });

  it('aborts the upstream request within 100 ms of the client going away', async () => {
    const { res, destroy } = await streamRequest(gw.url, { 'x-sim-itl-ms': '50', 'x-sim-chunks': '100' });
    await new Promise((resolve) => res.once('data', resolve));
    assert.equal(sim.stats.aborted, 0);
    destroy();
    await sim.waitFor((s) => s.aborted === 1, 100);
    assert.equal(sim.stats.completed, 0);
  });

  it('ends a stream that breaks mid-way with a final SSE error event', async () => {
    const res = await post(`${gw.url}/v1/chat/completions`, chat('m', { stream: true }), { 'x-model': 'm', 'x-sim-fail-after-chunks': '2' });
    assert.equal(res.status, 200);
    const text = await res.text();
    const last = text.trim().split('\n\n').at(-1)!;
    assert.match(last, /^data: /);
    assert.equal((JSON.parse(last.slice(6)) as ErrorJson).error.code, 'upstream_error');
  });

  it('passes upstream error bodies through unchanged', async () => {
    const res = await post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm', 'x-sim-status': '429' });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('x-gateway-error'), null);
    const body = (await res.json()) as { error: { type: string } };
    assert.equal(body.error.type, 'sim_error');
  });

  it('answers 504 upstream_timeout when the upstream sends no headers within first_byte', async () => {
    const res = await post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm', 'x-sim-latency-ms': '2000' });
    assert.equal(res.status, 504);
    const body = (await res.json()) as ErrorJson;
    assert.equal(body.error.code, 'upstream_timeout');
    assert.equal(res.headers.get('x-gateway-error'), 'upstream_timeout');
  });

  it('answers 413 for a body over max_body_size, declared or streamed', async () => {
    const big = JSON.stringify({ model: 'm', pad: 'x'.repeat(2000) });
    const declared = await post(`${gw.url}/v1/chat/completions`, big, { 'x-model': 'm' });
    assert.equal(declared.status, 413);
    assert.equal(((await declared.json()) as ErrorJson).error.code, 'payload_too_large');
    const u = new URL(gw.url);
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request({ host: u.hostname, port: u.port, method: 'POST', path: '/v1/chat/completions', headers: { 'x-model': 'm', 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write(big.slice(0, 600));
      req.end(big.slice(600));
    });
    assert.equal(chunked, 413);
    assert.equal(sim.stats.requests, 0);
  });
});

describe('upstream failures', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('answers 502 upstream_connect_failed JSON when the upstream refuses connections', async () => {
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: await deadUrl() }] }] });
    const res = await post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm' });
    assert.equal(res.status, 502);
    const body = (await res.json()) as ErrorJson;
    assert.equal(body.error.code, 'upstream_connect_failed');
    assert.equal(body.error.type, 'server_error');
    assert.equal(body.request_id, res.headers.get('x-request-id'));
  });

  it('does not buffer a stream for a client that stops reading', async () => {
    // An upstream that writes 64 MiB in 64 KiB chunks as fast as its socket drains.
    const chunk = Buffer.alloc(64 * 1024, 'a');
    const total = 1024;
    let written = 0;
    const upstream = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const pump = (): void => {
        while (written < total) {
          written++;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    cleanup.add(() => new Promise<void>((r) => { upstream.closeAllConnections(); upstream.close(() => r()); }));
    const port = (upstream.address() as { port: number }).port;
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: `http://127.0.0.1:${port}` }] }] });
    const { res, destroy } = await streamRequest(gw.url, {});
    res.pause();
    await new Promise((r) => setTimeout(r, 300));
    const stalledAt = written;
    // Only socket buffers (a few MiB on loopback) may sit between the two ends, never the whole stream.
    assert.ok(stalledAt < total / 2, `upstream wrote ${stalledAt} of ${total} chunks while the client read nothing`);
    let received = 0;
    res.on('data', (c: Buffer) => (received += c.length));
    res.resume();
    await new Promise((r) => res.once('end', r));
    assert.equal(received, total * chunk.length);
    destroy();
  });
});
