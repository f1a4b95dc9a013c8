import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { Cleanup, chat, post, startGateway, startSim } from '../helpers/harness.js';
import { parsePrometheus, valueOf } from '../helpers/prometheus.js';

const ADMIN_TOKEN = 'admin-writes-token-0123456';
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** until polls a condition until a deadline. */
async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const adminPost = (url: string, body = '', headers: Record<string, string> = {}): Promise<Response> => fetch(url, { method: 'POST', body, headers: { ...AUTH, ...headers } });

describe('admin writes: drain, config history, rollback, audit', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('a drained target gets no new requests while its in-flight one finishes; undrain brings it back', async () => {
    const a = await startSim(cleanup, { model: 'm', id: 'a' });
    const b = await startSim(cleanup, { model: 'm', id: 'b' });
    const gw = await startGateway(cleanup, { admin: { token: ADMIN_TOKEN }, models: [{ name: 'm', balancer: 'round-robin', targets: [{ url: a.url }, { url: b.url }] }] });
    // A slow request on each target, so one is surely in flight on a.
    const slow = [0, 1].map(() => post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-sim-latency-ms': '800' }));
    await until('a slow request on a', () => a.stats.running + a.stats.waiting + (a.stats.requests - a.stats.completed) > 0);
    const drained = await adminPost(`${gw.adminUrl}/models/m/targets/0/drain`);
    assert.equal(drained.status, 200);
    const body = (await drained.json()) as { targets: Array<{ url: string; drained: boolean }> };
    assert.deepEqual(body.targets.map((t) => [t.url, t.drained]), [[a.url, true]]);
    const before = a.stats.requests;
    for (let i = 0; i < 6; i++) await (await post(`${gw.url}/v1/chat/completions`, chat('m'))).arrayBuffer();
    assert.equal(a.stats.requests, before, 'a drained target gets no new request');
    for (const r of await Promise.all(slow)) assert.equal(r.status, 200, 'in-flight requests finish');
    const models = (await (await fetch(`${gw.adminUrl}/models`, { headers: AUTH })).json()) as { data: Array<{ targets: Array<{ url: string; drained: boolean }> }> };
    assert.deepEqual(models.data[0]!.targets.map((t) => t.drained), [true, false]);
    const metrics = parsePrometheus(await (await fetch(`${gw.statusUrl}/metrics`)).text());
    assert.equal(valueOf(metrics, 'igw_target_up', { model: 'm', target: a.url }), 0);
    assert.equal(valueOf(metrics, 'igw_target_up', { model: 'm', target: b.url }), 1);
    // By URL this time, URL-encoded.
    assert.equal((await adminPost(`${gw.adminUrl}/models/m/targets/${encodeURIComponent(a.url)}/undrain`)).status, 200);
    for (let i = 0; i < 4; i++) await (await post(`${gw.url}/v1/chat/completions`, chat('m'))).arrayBuffer();
    assert.ok(a.stats.requests > before, 'undrained, it gets requests again');
  });

  it('a model whose only target is drained answers 503 no_healthy_upstream; unknown models and targets are 404', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'org/m', targets: [{ url: sim.url }] }] });
    assert.equal((await adminPost(`${gw.adminUrl}/models/${encodeURIComponent('org/m')}/targets/0/drain`)).status, 200);
    const r = await post(`${gw.url}/v1/chat/completions`, chat('org/m'));
    assert.equal(r.status, 503);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'no_healthy_upstream');
    assert.equal((await adminPost(`${gw.adminUrl}/models/nope/targets/0/drain`)).status, 404);
    assert.equal((await adminPost(`${gw.adminUrl}/models/${encodeURIComponent('org/m')}/targets/5/drain`)).status, 404);
    assert.equal((await adminPost(`${gw.adminUrl}/models/${encodeURIComponent('org/m')}/targets/%E0%A4%A/drain`)).status, 400);
  });

  it('lists every load in /config/history and rolls back to an earlier hash; an unknown hash is 404', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { admin: { token: ADMIN_TOKEN }, models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    const first = gw.gateway.snapshot.hash;
    const next = stringify({ admin: { listen: '127.0.0.1:0', token: ADMIN_TOKEN }, models: [{ name: 'm', targets: [{ url: sim.url }] }, { name: 'm2', targets: [{ url: sim.url }] }] });
    const applied = await adminPost(`${gw.adminUrl}/config`, next, { 'x-config-source': 'ui' });
    assert.equal(applied.status, 201);
    const second = ((await applied.json()) as { configuration_hash: string }).configuration_hash;
    assert.notEqual(second, first);
    const bad = await adminPost(`${gw.adminUrl}/config`, 'models:\n  - name: x\n    targets: nope\n');
    assert.equal(bad.status, 400);
    const history = (await (await fetch(`${gw.adminUrl}/config/history`, { headers: AUTH })).json()) as { data: Array<{ source: string; result: string; hash: string; errors: unknown[]; can_rollback: boolean }> };
    assert.deepEqual(history.data.map((e) => [e.source, e.result, e.hash]), [['POST', 'failed', second], ['UI', 'applied', second], ['file', 'applied', first]]);
    assert.ok(history.data[0]!.errors.length > 0);
    assert.equal(history.data[2]!.can_rollback, true);
    const back = await adminPost(`${gw.adminUrl}/config/rollback/${first}`);
    assert.equal(back.status, 201);
    assert.equal(((await back.json()) as { configuration_hash: string }).configuration_hash, first);
    assert.equal(gw.gateway.snapshot.hash, first);
    assert.deepEqual(gw.gateway.snapshot.models.map((m) => m.name), ['m']);
    assert.equal((await adminPost(`${gw.adminUrl}/config/rollback/${'0'.repeat(64)}`)).status, 404);
    const after = (await (await fetch(`${gw.adminUrl}/config/history`, { headers: AUTH })).json()) as { data: Array<{ source: string; result: string }> };
    assert.deepEqual([after.data[0]!.source, after.data[0]!.result], ['rollback', 'applied']);
  });

  it('POST /config/validate answers what POST /config would, with line and column, and applies nothing', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const key = 'validate-key-0123456789abcdef';
    const gw = await startGateway(cleanup, { admin: { token: ADMIN_TOKEN }, models: [{ name: 'm', api_keys: [key], targets: [{ url: sim.url }] }] });
    const first = gw.gateway.snapshot.hash;
    const historyLength = async (): Promise<number> => ((await (await fetch(`${gw.adminUrl}/config/history`, { headers: AUTH })).json()) as { data: unknown[] }).data.length;
    const loads = await historyLength();
    assert.equal((await fetch(`${gw.adminUrl}/config/validate`, { method: 'POST', body: 'models: []' })).status, 401);
    const bad = await adminPost(`${gw.adminUrl}/config/validate`, `models:\n  - name: m\n    targets: [{ url: ${sim.url} }]\n  - name: x\n    targets: nope\n`);
    assert.equal(bad.status, 400);
    const badBody = (await bad.json()) as { valid: boolean; errors: Array<{ file: string; field: string; line?: number; column?: number }> };
    assert.equal(badBody.valid, false);
    assert.deepEqual(badBody.errors.map((e) => [e.file, e.field, e.line]), [['POST /config', 'models[1].targets', 5]]);
    assert.ok((badBody.errors[0]!.column ?? 0) > 0);
    // A start check (two listeners on one port) is refused as POST /config would.
    const clash = await adminPost(`${gw.adminUrl}/config/validate`, stringify({ proxy: { listen: '127.0.0.1:9000' }, status: { listen: '127.0.0.1:9000' }, models: [{ name: 'm', targets: [{ url: sim.url }] }] }));
    assert.equal(clash.status, 400);
    assert.equal(((await clash.json()) as { errors: Array<{ field: string }> }).errors[0]!.field, 'status.listen');
    const next = stringify({ admin: { listen: '127.0.0.1:0', token: ADMIN_TOKEN }, proxy: { listen: '127.0.0.1:0', max_body_size: '2MiB' }, status: { listen: '127.0.0.1:0' }, log: { level: 'debug' }, models: [{ name: 'm', api_keys: [key], targets: [{ url: sim.url }] }, { name: 'm2', targets: [{ url: sim.url }] }] });
    const good = await adminPost(`${gw.adminUrl}/config/validate`, next);
    assert.equal(good.status, 200);
    const body = (await good.json()) as { valid: boolean; warnings: string[]; config: string; running: string };
    assert.equal(body.valid, true);
    assert.ok(body.warnings.includes('log.level changed: takes effect after a restart'), body.warnings.join('\n'));
    assert.ok(body.warnings.some((w) => w.includes('written in plain text')), 'the key warnings of a start');
    assert.match(body.config, /name: m2/);
    assert.doesNotMatch(body.running, /name: m2/);
    const fingerprint = `key#${createHash('sha256').update(key).digest('hex').slice(0, 8)}`;
    for (const text of [body.config, body.running]) {
      assert.ok(text.includes(fingerprint), 'keys as fingerprints');
      assert.ok(!text.includes(key) && !text.includes(ADMIN_TOKEN), 'never a key or the token');
    }
    assert.equal(gw.gateway.snapshot.hash, first, 'nothing applied');
    assert.equal(await historyLength(), loads, 'not a load');
    // The running configuration as loaded, as the Config page shows it: keys as fingerprints.
    assert.equal((await fetch(`${gw.adminUrl}/config/document`)).status, 401);
    const doc = (await (await fetch(`${gw.adminUrl}/config/document`, { headers: AUTH })).json()) as { hash: string; document: string };
    assert.equal(doc.hash, first);
    assert.equal(doc.document, body.running);
    assert.ok(doc.document.includes(fingerprint) && !doc.document.includes(key) && !doc.document.includes(ADMIN_TOKEN));
    type Audit = { audit?: { action: string; status: number } };
    await until('the audit lines', () => gw.log.json<Audit>().filter((l) => l.audit?.action === 'config_validate').length === 4);
    assert.deepEqual(gw.log.json<Audit>().filter((l) => l.audit?.action === 'config_validate').map((l) => l.audit!.status), [401, 400, 400, 200]);
  });

  it('logs every admin write as an audit line with client, action and status, refused ones included, never the token', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { admin: { token: ADMIN_TOKEN }, models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    assert.equal((await adminPost(`${gw.adminUrl}/models/m/targets/0/drain`)).status, 200);
    assert.equal((await fetch(`${gw.adminUrl}/models/m/targets/0/undrain`, { method: 'POST', headers: { authorization: 'Bearer wrong-token' } })).status, 401);
    await (await fetch(`${gw.adminUrl}/models`, { headers: AUTH })).arrayBuffer();
    type Audit = { audit?: { client: string; method: string; path: string; action: string; status: number } };
    await until('two audit lines', () => gw.log.json<Audit>().filter((l) => l.audit !== undefined).length >= 2);
    const lines = gw.log.json<Audit>().filter((l) => l.audit !== undefined).map((l) => l.audit!);
    assert.deepEqual(lines.map((l) => [l.action, l.status, l.path]), [['target_drain', 200, '/models/m/targets/0/drain'], ['target_undrain', 401, '/models/m/targets/0/undrain']]);
    assert.equal(lines[0]!.client, '127.0.0.1');
    assert.ok(!gw.log.lines.join('\n').includes(ADMIN_TOKEN));
    assert.ok(!gw.log.lines.join('\n').includes('wrong-token'));
  });
});
