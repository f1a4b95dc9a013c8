import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { Cleanup, chat, post, startGateway, startSim } from '../helpers/harness.js';
import { parsePrometheus, valueOf } from '../helpers/prometheus.js';

const KEY = 'ops-secret-key-123456';
const ADMIN_TOKEN = 'admin-secret-token-987';

describe('metrics, access log and tracing', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('counts requests, statuses and tokens (streams included) and never labels what clients invent', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', path: '/ai', api_keys: [KEY], targets: [{ url: sim.url }] }] });
    const url = `${gw.url}/ai/v1/chat/completions`;
    for (let i = 0; i < 3; i++) {
      const r = await post(url, chat('m', { max_tokens: 5 }), { 'x-model': 'm', apikey: KEY });
      await r.arrayBuffer();
    }
    const s = await post(url, chat('m', { max_tokens: 7, stream: true, stream_options: { include_usage: true } }), { 'x-model': 'm', apikey: KEY });
    await s.text();
    const denied = await post(url, chat('m'), { 'x-model': 'm' });
    await denied.arrayBuffer();
    for (const name of ['evil-1', 'evil-2', 'evil-3']) {
      const r = await post(url, chat(name), { 'x-model': name });
      await r.arrayBuffer();
      const r2 = await post(`${gw.url}/${name}/v1/chat/completions`, chat(name));
      await r2.arrayBuffer();
    }
    const text = await (await fetch(`${gw.statusUrl}/metrics`)).text();
    const samples = parsePrometheus(text);
    assert.equal(valueOf(samples, 'igw_requests_total', { model: 'm', path: '/ai', status: '200' }), 4);
    assert.equal(valueOf(samples, 'igw_requests_total', { model: 'm', path: '/ai', status: '401' }), 1);
    assert.equal(valueOf(samples, 'igw_requests_total', { model: 'unmatched', path: '/ai', status: '404' }), 3);
    assert.equal(valueOf(samples, 'igw_requests_total', { model: 'unmatched', path: 'unmatched', status: '404' }), 3);
    assert.equal(valueOf(samples, 'igw_tokens_total', { model: 'm', kind: 'completion' }), 3 * 5 + 7);
    assert.ok(valueOf(samples, 'igw_tokens_total', { model: 'm', kind: 'prompt' }) > 0);
    assert.equal(valueOf(samples, 'igw_request_duration_seconds_count', { model: 'm' }), 5);
    assert.equal(valueOf(samples, 'igw_upstream_ttfb_seconds_count', { model: 'm' }), 4);
    assert.equal(valueOf(samples, 'igw_inflight_requests', { model: 'm' }), 0);
    assert.equal(valueOf(samples, 'igw_target_up', { model: 'm', target: sim.url }), 1);
    assert.ok(valueOf(samples, 'process_resident_memory_bytes') > 0);
    assert.ok(!/evil/.test(text), 'client-sent names must not become label values');
    assert.ok(!text.includes(KEY));
  });

  it('writes exactly one access line per request, errors included, with no key in it', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', api_keys: [KEY], targets: [{ url: sim.url }] }] });
    const ok = await post(`${gw.url}/v1/chat/completions?apikey=${KEY}`, chat('m', { max_tokens: 3 }), { 'x-model': 'm', apikey: KEY, 'x-request-id': 'req-ok' });
    await ok.arrayBuffer();
    const bad = await post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm', apikey: 'wrong-key', 'x-request-id': 'req-bad' });
    await bad.arrayBuffer();
    const deadline = Date.now() + 1000;
    while (gw.accessLog.lines.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const lines = gw.accessLog.json<Record<string, unknown>>();
    assert.equal(lines.length, 2);
    const [a, b] = lines;
    assert.equal(a!.request_id, 'req-ok');
    assert.equal(a!.status, 200);
    assert.equal(a!.model, 'm');
    assert.equal(a!.target, sim.url);
    assert.equal(a!.completion_tokens, 3);
    assert.match(String(a!.key), /^key#[0-9a-f]{8}$/);
    assert.match(String(a!.trace_id), /^[0-9a-f]{32}$/);
    for (const f of ['time', 'method', 'path', 'total_ms', 'queue_ms', 'connect_ms', 'upstream_ms', 'ttfb_ms', 'bytes_in', 'bytes_out', 'prompt_tokens']) assert.ok(f in a!, f);
    assert.equal(b!.request_id, 'req-bad');
    assert.equal(b!.status, 401);
    assert.equal(b!.error, 'invalid_api_key');
    const all = gw.accessLog.lines.join('\n') + gw.log.lines.join('\n');
    assert.ok(!all.includes(KEY) && !all.includes('wrong-key'));
  });

  it('logs the time to connect to the target: a number for a new connection, 0 for a kept-alive one', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    for (const id of ['first', 'second']) {
      const r = await post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm', 'x-request-id': id });
      await r.arrayBuffer();
    }
    const deadline = Date.now() + 1000;
    while (gw.accessLog.lines.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const [first, second] = gw.accessLog.json<{ request_id: string; connect_ms: number | null; upstream_ms: number }>();
    assert.equal(first!.request_id, 'first');
    assert.equal(typeof first!.connect_ms, 'number');
    assert.ok(first!.connect_ms! > 0 && first!.connect_ms! <= first!.upstream_ms, `connect_ms ${first!.connect_ms} within upstream_ms ${first!.upstream_ms}`);
    assert.equal(second!.connect_ms, 0, 'the kept-alive connection');
  });

  it('propagates a W3C traceparent to the upstream, or starts one', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const r = await post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm', traceparent: incoming });
    await r.arrayBuffer();
    const sent = String(sim.received.at(-1)!.headers.traceparent);
    assert.match(sent, /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    assert.notEqual(sent, incoming);
    const r2 = await post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm', traceparent: 'garbage' });
    await r2.arrayBuffer();
    assert.match(String(sim.received.at(-1)!.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });
});

describe('status listener', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('reports requests in flight, totals and readiness', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    type Status = { server: { requests_inflight: number; total_requests: number }; ready: boolean };
    const status = async (): Promise<Status> => (await (await fetch(`${gw.statusUrl}/status`)).json()) as Status;
    const res = await post(`${gw.url}/v1/chat/completions`, chat('m', { stream: true, max_tokens: 10 }), { 'x-model': 'm', 'x-sim-itl-ms': '20' });
    const during = await status();
    assert.equal(during.server.requests_inflight, 1);
    assert.equal(during.ready, true);
    await res.text();
    const deadline = Date.now() + 1000;
    while ((await status()).server.requests_inflight !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const after = await status();
    assert.equal(after.server.requests_inflight, 0);
    assert.equal(after.server.total_requests, 1);
    assert.equal((await fetch(`${gw.statusUrl}/status/ready`)).status, 200);
  });
});

describe('admin API', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };

  it('rejects a missing or wrong token and shows models without keys', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { admin: { token: ADMIN_TOKEN }, models: [{ name: 'm', api_keys: [KEY], targets: [{ url: sim.url }] }] });
    assert.equal((await fetch(`${gw.adminUrl}/models`)).status, 401);
    assert.equal((await fetch(`${gw.adminUrl}/models`, { headers: { authorization: 'Bearer nope' } })).status, 401);
    const models = (await (await fetch(`${gw.adminUrl}/models`, { headers: auth })).json()) as { data: Array<{ name: string; keys: number; inflight: number; targets: Array<{ url: string }> }> };
    assert.equal(models.data[0]!.name, 'm');
    assert.equal(models.data[0]!.keys, 1);
    assert.equal(models.data[0]!.inflight, 0);
    assert.equal(models.data[0]!.targets[0]!.url, sim.url);
    const one = await fetch(`${gw.adminUrl}/models/m`, { headers: auth });
    assert.equal(one.status, 200);
    assert.equal((await fetch(`${gw.adminUrl}/models/none`, { headers: auth })).status, 404);
    const config = await (await fetch(`${gw.adminUrl}/config`, { headers: auth })).text();
    assert.ok(!config.includes(KEY) && !config.includes(ADMIN_TOKEN));
    const status = (await (await fetch(`${gw.adminUrl}/status`, { headers: auth })).json()) as { configuration_hash: string };
    assert.equal(status.configuration_hash, gw.gateway.snapshot.hash);
  });

  it('POST /config: 400 with every error and the old config serving; 201 applies; check_hash=1 gives 304', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    const postConfig = (body: string, q = '') => fetch(`${gw.adminUrl}/config${q}`, { method: 'POST', body, headers: { 'content-type': 'application/yaml' } });
    const bad = await postConfig(stringify({ models: [{ name: 'm', path: 'x/', targets: [] }, { name: 'n', targets: [{ url: 'nope' }] }] }));
    assert.equal(bad.status, 400);
    const errors = ((await bad.json()) as { errors: Array<{ file: string; field: string }> }).errors;
    assert.deepEqual(errors.map((e) => e.field).sort(), ['models[0].path', 'models[0].name', 'models[1].targets[0].url'].sort());
    const still = await post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm' });
    assert.equal(still.status, 200);
    await still.arrayBuffer();

    const next = stringify({ models: [{ name: 'm', targets: [{ url: sim.url }] }, { name: 'added', targets: [{ url: sim.url }] }] });
    const applied = await postConfig(next);
    assert.equal(applied.status, 201);
    const hash = ((await applied.json()) as { configuration_hash: string }).configuration_hash;
    assert.equal(hash, gw.gateway.snapshot.hash);
    const added = await post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'added' });
    assert.equal(added.status, 200);
    await added.arrayBuffer();
    const same = await postConfig(next, '?check_hash=1');
    assert.equal(same.status, 304);
  });

  it('POST /config: a 201 lists the warnings: each static setting that waits for a restart, weak keys, and that the config file takes over again', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    const token = 'tok-9f8e7d6c5b4a';
    const key = 'kq7-zp2';
    const body = stringify({ proxy: { listen: '127.0.0.1:1' }, admin: { listen: '127.0.0.1:0', token }, models: [{ name: 'm', api_keys: [key], targets: [{ url: sim.url }] }] });
    const res = await fetch(`${gw.adminUrl}/config`, { method: 'POST', body, headers: { 'content-type': 'application/yaml' } });
    assert.equal(res.status, 201);
    const text = await res.text();
    const { warnings, result } = JSON.parse(text) as { warnings: string[]; result: string };
    assert.equal(result, 'applied');
    assert.ok(warnings.includes('proxy.listen changed: takes effect after a restart'), text);
    assert.ok(warnings.includes('admin.token changed: takes effect after a restart'), text);
    assert.ok(warnings.includes('status.listen changed: takes effect after a restart'), text);
    assert.ok(!warnings.some((w) => w.startsWith('admin.listen')), 'admin.listen did not change');
    assert.ok(warnings.some((w) => /^POST \/config: models\[0\]\.api_keys\[0\]: API key key#[0-9a-f]{8} is shorter than 16/.test(w)), text);
    assert.ok(warnings.some((w) => /gateway\.yaml replaces this configuration at the next SIGHUP/.test(w)), text);
    assert.ok(!text.includes(token) && !text.includes(key));
    // The log says the same, naming the setting.
    assert.ok(gw.log.json<{ msg: string }>().some((l) => l.msg === 'proxy.listen changed: takes effect after a restart'));
  });

  it('survives 100 reloads under streaming and non-streaming load with zero failed requests', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    let isRunning = true;
    let sent = 0;
    const failures: string[] = [];
    const worker = async (stream: boolean): Promise<void> => {
      while (isRunning) {
        sent++;
        const r = await post(`${gw.url}/v1/chat/completions`, chat('m', { stream, max_tokens: 8 }), { 'x-model': 'm', 'x-sim-itl-ms': stream ? '2' : '0' });
        const body = await r.text();
        if (r.status !== 200 || (stream && !body.includes('[DONE]'))) failures.push(`${r.status} ${body.slice(0, 100)}`);
      }
    };
    const workers = [worker(false), worker(false), worker(true), worker(true)];
    for (let i = 0; i < 100; i++) {
      const extra = `route-${i}`;
      const res = await fetch(`${gw.adminUrl}/config`, { method: 'POST', body: stringify({ models: [{ name: 'm', targets: [{ url: sim.url }] }, { name: extra, targets: [{ url: sim.url }] }] }) });
      assert.equal(res.status, 201);
      await res.arrayBuffer();
      const r = await post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': extra });
      assert.equal(r.status, 200, `route ${extra} served right after its reload`);
      await r.arrayBuffer();
    }
    isRunning = false;
    await Promise.all(workers);
    assert.deepEqual(failures, []);
    assert.ok(sent > 100);
    const samples = parsePrometheus(await (await fetch(`${gw.statusUrl}/metrics`)).text());
    assert.equal(valueOf(samples, 'igw_config_reloads_total', { result: 'applied' }), 100);
  });
});
