import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Simulator } from '../../src/sim/index.js';
import { Dnsmasq } from '../helpers/dnsmasq.js';
import { Cleanup, chat, deadUrl, post, startGateway, startSim } from '../helpers/harness.js';
import { parsePrometheus, valueOf } from '../helpers/prometheus.js';

/** until polls a condition every 10 ms until it holds or the deadline passes. */
async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const ask = async (url: string, headers: Record<string, string> = { 'x-model': 'm' }, body = chat('m')): Promise<Response> => {
  const res = await post(`${url}/v1/chat/completions`, body, headers);
  await res.clone().arrayBuffer();
  return res;
};

const FAST_HEALTH = { interval: '200ms', timeout: '100ms', healthy_threshold: 2, unhealthy_threshold: 2, passive: { failures: 3, ejection: '10s' } };

describe('upstream targets', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('spreads requests by weight with round-robin', async () => {
    const a = await startSim(cleanup, { model: 'm', id: 'a' });
    const b = await startSim(cleanup, { model: 'm', id: 'b' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: a.url, weight: 1 }, { url: b.url, weight: 3 }] }] });
    for (let i = 0; i < 200; i++) await (await ask(gw.url)).arrayBuffer();
    assert.equal(a.stats.requests, 50);
    assert.equal(b.stats.requests, 150);
  });

  it('retries a refused connection on another target, never the same one twice', async () => {
    const live = await startSim(cleanup, { model: 'm' });
    const dead = await deadUrl();
    const gw = await startGateway(cleanup, {
      models: [{ name: 'm', targets: [{ url: dead }, { url: live.url }], health_check: { active: false, passive: { enabled: false } } }],
    });
    for (let i = 0; i < 20; i++) assert.equal((await ask(gw.url)).status, 200);
    assert.equal(live.stats.requests, 20);
    const samples = parsePrometheus(await (await fetch(`${gw.statusUrl}/metrics`)).text());
    assert.equal(valueOf(samples, 'igw_upstream_errors_total', { target: dead, reason: 'connect_failed' }), 10);
  });

  it('answers 503 no_healthy_upstream at once, with Retry-After, when every target is down', async () => {
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: await deadUrl() }, { url: await deadUrl() }], health_check: { ...FAST_HEALTH, interval: '50ms' } }] });
    await until(async () => (await ask(gw.url)).status === 503, 3000, 'both targets marked down');
    const errorsBefore = valueOf(parsePrometheus(await (await fetch(`${gw.statusUrl}/metrics`)).text()), 'igw_upstream_errors_total');
    const started = performance.now();
    const res = await ask(gw.url);
    const ms = performance.now() - started;
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'no_healthy_upstream');
    assert.ok(Number(res.headers.get('retry-after')) >= 1);
    assert.ok(ms < 100, `answered in ${ms.toFixed(1)} ms`);
    const errorsAfter = valueOf(parsePrometheus(await (await fetch(`${gw.statusUrl}/metrics`)).text()), 'igw_upstream_errors_total');
    assert.equal(errorsAfter, errorsBefore, 'no connection was attempted');
  });

  it('a replica killed under load stops getting requests, no request fails, and it is back within one health interval after a restart', async () => {
    const a = await startSim(cleanup, { model: 'm', id: 'a' });
    const b = await startSim(cleanup, { model: 'm', id: 'b' });
    const bPort = b.port;
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: a.url }, { url: b.url }], health_check: FAST_HEALTH }] });
    let isRunning = true;
    const failures: string[] = [];
    const worker = async (): Promise<void> => {
      while (isRunning) {
        const r = await ask(gw.url);
        if (r.status !== 200) failures.push(`${r.status} ${await r.text()}`);
      }
    };
    const workers = [worker(), worker(), worker(), worker()];
    await until(() => b.stats.requests > 20, 2000, 'traffic on b');
    await b.close();
    const metrics = async (): Promise<ReturnType<typeof parsePrometheus>> => parsePrometheus(await (await fetch(`${gw.statusUrl}/metrics`)).text());
    await until(async () => valueOf(await metrics(), 'igw_target_up', { target: `http://127.0.0.1:${bPort}` }) === 0, 2000, 'b marked down');
    const errorsAtTrip = valueOf(await metrics(), 'igw_upstream_errors_total', { target: `http://127.0.0.1:${bPort}` });
    const aBefore = a.stats.requests;
    await until(() => a.stats.requests > aBefore + 200, 5000, 'more traffic on a');
    assert.equal(valueOf(await metrics(), 'igw_upstream_errors_total', { target: `http://127.0.0.1:${bPort}` }), errorsAtTrip, 'no new attempts on the dead replica');

    // Probes see it down too (a restart takes longer than two probe intervals in real life).
    type Admin = { data: Array<{ targets: Array<{ url: string; active_healthy: boolean }> }> };
    await until(async () => {
      const v = (await (await fetch(`${gw.adminUrl}/models/m`)).json()) as Admin;
      return v.data[0]!.targets.some((t) => t.url === `http://127.0.0.1:${bPort}` && !t.active_healthy);
    }, 2000, 'probes mark b down');
    const restarted = new Simulator({ model: 'm', id: 'b2' });
    await restarted.listen(bPort, '127.0.0.1');
    cleanup.add(() => restarted.close());
    const t0 = Date.now();
    await until(() => restarted.stats.requests > 0, 1000, 'restarted replica gets traffic');
    const backMs = Date.now() - t0;
    isRunning = false;
    await Promise.all(workers);
    assert.deepEqual(failures, []);
    // One interval (200 ms) plus scheduling slack.
    assert.ok(backMs < 400, `back after ${backMs} ms`);
  });

  it('falls back to another model (under another path) when every target is down, and says so', async () => {
    const fb = await startSim(cleanup, { model: 'fallback-served' });
    const gw = await startGateway(cleanup, {
      models: [
        { name: 'm', path: '/a', api_keys: ['key-for-m'], targets: [{ url: await deadUrl() }], health_check: { ...FAST_HEALTH, interval: '50ms' }, fallback: [{ name: 'backup', path: '/b' }] },
        { name: 'backup', path: '/b', served_model: 'fallback-served', api_keys: ['key-for-backup'], targets: [{ url: fb.url }] },
      ],
    });
    await until(async () => (await ask(`${gw.url}/a`, { 'x-model': 'm', apikey: 'key-for-m' })).status === 200, 3000, 'fallback in use');
    const res = await ask(`${gw.url}/a`, { 'x-model': 'm', apikey: 'key-for-m' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-served-model'), 'backup');
    assert.equal(JSON.parse(fb.received.at(-1)!.body).model, 'fallback-served');
    // Auth is the requested model's: the fallback's key does not open it.
    assert.equal((await ask(`${gw.url}/a`, { 'x-model': 'm', apikey: 'key-for-backup' })).status, 403);
  });

  it('least-load prefers the replica whose /metrics shows the shorter queue', async () => {
    const busy = await startSim(cleanup, { model: 'm', id: 'busy', maxConcurrency: 1, ttftMs: 2000 });
    const idle = await startSim(cleanup, { model: 'm', id: 'idle' });
    // Five requests straight to the busy replica: one running, four waiting.
    const direct = Array.from({ length: 5 }, () => fetch(`${busy.url}/v1/chat/completions`, { method: 'POST', body: chat('m'), headers: { 'content-type': 'application/json' } }).catch(() => null));
    await busy.waitFor((s) => s.waiting === 4);
    const gw = await startGateway(cleanup, {
      models: [{ name: 'm', balancer: 'least-load', load_metrics: { interval: '50ms' }, targets: [{ url: busy.url }, { url: idle.url }] }],
    });
    await new Promise((r) => setTimeout(r, 200));
    const results = await Promise.all(Array.from({ length: 10 }, () => ask(gw.url)));
    assert.ok(results.every((r) => r.status === 200));
    assert.equal(idle.stats.requests, 10);
    await busy.close();
    await Promise.all(direct);
  });

  it('discovers targets from DNS (a real dnsmasq) and follows record changes', async () => {
    const port = Number(new URL(await deadUrl()).port);
    const one = new Simulator({ model: 'm', id: 'one' });
    const two = new Simulator({ model: 'm', id: 'two' });
    await one.listen(port, '127.0.0.1');
    await two.listen(port, '127.0.0.2');
    cleanup.add(() => one.close());
    cleanup.add(() => two.close());
    const dns = await Dnsmasq.start({ 'llm.test': ['127.0.0.1'] });
    cleanup.add(() => dns.stop());
    const gw = await startGateway(cleanup, {
      dns: { servers: [dns.server] },
      models: [{ name: 'm', targets: [{ dns: `llm.test:${port}`, min_ttl: '100ms' }] }],
    });
    await until(async () => (await ask(gw.url)).status === 200, 3000, 'first DNS answer');
    dns.set({ 'llm.test': ['127.0.0.1', '127.0.0.2'] });
    await until(async () => (await ask(gw.url)).headers.get('x-sim-id') === 'two', 5000, 'added record becomes a target');
    dns.set({ 'llm.test': ['127.0.0.2'] });
    await until(async () => {
      const ids = new Set<string | null>();
      for (let i = 0; i < 6; i++) ids.add((await ask(gw.url)).headers.get('x-sim-id'));
      return ids.size === 1 && ids.has('two');
    }, 5000, 'removed record stops getting requests');
    const admin = (await (await fetch(`${gw.adminUrl}/models/m`)).json()) as { data: Array<{ targets: Array<{ url: string }> }> };
    assert.deepEqual(admin.data[0]!.targets.map((t) => t.url), [`http://127.0.0.2:${port}`]);
  });
});

describe('dns targets through the system resolver', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('finds names the DNS query API cannot (e.g. /etc/hosts or resolv.conf search domains) through getaddrinfo', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    // "localhost" comes from /etc/hosts, which only getaddrinfo reads: the same path as a short Service name in a pod.
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ dns: `localhost:${sim.port}`, min_ttl: '100ms' }] }] });
    await until(async () => (await ask(gw.url)).status === 200, 3000, 'localhost resolved');
  });
});
