import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import { Simulator } from '../../src/sim/index.js';
import { Cleanup, chat, deadUrl, post, startGateway, startSim, writeConfig, type RunningGateway } from '../helpers/harness.js';
import { parsePrometheus, valueOf } from '../helpers/prometheus.js';

const KEY = 'answers-secret-key-1234';

/** until polls a condition until it holds or the deadline passes. */
async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

type AccessLine = { request_id: string; status: number; bytes_out: number; error: string | null; model: string | null };

/** accessLine waits for the access line of one request id. */
async function accessLine(gw: RunningGateway, requestId: string): Promise<AccessLine> {
  await until(() => gw.accessLog.json<AccessLine>().some((l) => l.request_id === requestId), 2000, `access line ${requestId}`);
  return gw.accessLog.json<AccessLine>().find((l) => l.request_id === requestId)!;
}

async function metrics(gw: RunningGateway): Promise<ReturnType<typeof parsePrometheus>> {
  return parsePrometheus(await (await fetch(`${gw.statusUrl}/metrics`)).text());
}

describe('GET <path>/v1/models', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('lists the same ids with and without X-Model, and every listed id works as the request model either way', async () => {
    const a = await startSim(cleanup, { model: 'org/model-a', id: 'a' });
    const b = await startSim(cleanup, { model: 'b', id: 'b' });
    const gw = await startGateway(cleanup, {
      models: [
        { name: 'a', path: '/ai', served_model: 'org/model-a', targets: [{ url: a.url }] },
        { name: 'b', path: '/ai', targets: [{ url: b.url }] },
      ],
    });
    const plain = new OpenAI({ apiKey: 'unused', baseURL: `${gw.url}/ai/v1`, maxRetries: 0 });
    const plainIds = (await plain.models.list()).data.map((m) => m.id).sort();
    assert.deepEqual(plainIds, ['b', 'org/model-a']);
    for (const [name, sim] of [['a', a], ['b', b]] as const) {
      const withHeader = new OpenAI({ apiKey: 'unused', baseURL: `${gw.url}/ai/v1`, defaultHeaders: { 'X-Model': name }, maxRetries: 0 });
      const ids = (await withHeader.models.list()).data.map((m) => m.id);
      assert.equal(ids.length, 1);
      assert.ok(plainIds.includes(ids[0]!), `${ids[0]} is also listed without X-Model`);
      // The listed id round-trips as `model`: with X-Model (body forwarded as is) and without (body routing).
      for (const client of [withHeader, plain]) {
        const before = sim.stats.requests;
        const r = await client.chat.completions.create({ model: ids[0]!, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
        assert.equal(r.object, 'chat.completion');
        assert.equal(sim.stats.requests, before + 1);
      }
    }
  });

  it('lists a model by its gateway name when its upstream id would route to another model of the path', async () => {
    const first = await startSim(cleanup, { model: 'shared/id', id: 'first' });
    const second = await startSim(cleanup, { model: 'shared/id', id: 'second' });
    const gw = await startGateway(cleanup, {
      models: [
        { name: 'first', served_model: 'shared/id', targets: [{ url: first.url }] },
        { name: 'second', served_model: 'shared/id', targets: [{ url: second.url }] },
      ],
    });
    const client = new OpenAI({ apiKey: 'unused', baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const ids = (await client.models.list()).data.map((m) => m.id);
    assert.deepEqual(ids, ['shared/id', 'second']);
    for (const [id, sim] of [['shared/id', first], ['second', second]] as const) {
      const r = await post(`${gw.url}/v1/chat/completions`, chat(id));
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-sim-id'), sim === first ? 'first' : 'second');
      await r.arrayBuffer();
    }
  });

  it('refuses a key it does not know where every model needs one, and lists the open models where some need none', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, {
      models: [
        { name: 'locked', path: '/locked', api_keys: [KEY], targets: [{ url: sim.url }] },
        { name: 'm', path: '/mixed', targets: [{ url: sim.url }] },
        { name: 'other', path: '/mixed', api_keys: ['another-key-0123456789'], targets: [{ url: sim.url }] },
      ],
    });
    const stranger = (path: string): OpenAI => new OpenAI({ apiKey: 'EMPTY', baseURL: `${gw.url}${path}/v1`, maxRetries: 0 });
    await assert.rejects(stranger('/locked').models.list(), (err: unknown) => err instanceof OpenAI.APIError && err.status === 401 && err.code === 'invalid_api_key');
    assert.deepEqual((await stranger('/mixed').models.list()).data.map((m) => m.id), ['m']);
    const owner = new OpenAI({ apiKey: KEY, baseURL: `${gw.url}/locked/v1`, maxRetries: 0 });
    assert.deepEqual((await owner.models.list()).data.map((m) => m.id), ['locked']);
  });

  it('counts model listings under model="_models", not as unmatched', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', path: '/ai', api_keys: [KEY], targets: [{ url: sim.url }] }] });
    for (let i = 0; i < 2; i++) await (await fetch(`${gw.url}/ai/v1/models`, { headers: { apikey: KEY } })).arrayBuffer();
    await (await fetch(`${gw.url}/ai/v1/models`, { headers: { apikey: 'not-a-key' } })).arrayBuffer();
    const samples = await metrics(gw);
    assert.equal(valueOf(samples, 'igw_requests_total', { model: '_models', path: '/ai', status: '200' }), 2);
    assert.equal(valueOf(samples, 'igw_requests_total', { model: '_models', path: '/ai', status: '401' }), 1);
    assert.equal(valueOf(samples, 'igw_requests_total', { model: 'unmatched' }), 0);
  });
});

describe('access log bytes_out of answers the gateway makes itself', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('counts the body bytes of model lists and of errors, whichever stage made them, and of a broken stream with its error event', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, {
      models: [
        { name: 'm', path: '/ai', targets: [{ url: sim.url }] },
        { name: 'down', path: '/ai', targets: [{ url: await deadUrl() }], health_check: { active: false }, retries: 0 },
      ],
    });
    const cases: Array<[string, () => Promise<Response>]> = [
      ['list', () => fetch(`${gw.url}/ai/v1/models`, { headers: { 'x-request-id': 'list' } })],
      ['no-route', () => post(`${gw.url}/elsewhere/v1/chat/completions`, chat('m'), { 'x-request-id': 'no-route' })],
      ['no-model', () => post(`${gw.url}/ai/v1/chat/completions`, chat('nope'), { 'x-request-id': 'no-model' })],
      ['bad-json', () => post(`${gw.url}/ai/v1/chat/completions`, '{"model":', { 'x-request-id': 'bad-json' })],
      ['connect-failed', () => post(`${gw.url}/ai/v1/chat/completions`, chat('down'), { 'x-request-id': 'connect-failed' })],
      // A stream the engine broke off: the content it relayed plus the error event it appended.
      ['stream-failed', () => post(`${gw.url}/ai/v1/chat/completions`, chat('m', { stream: true }), { 'x-request-id': 'stream-failed', 'x-sim-fail-after-chunks': '3' })],
    ];
    for (const [id, send] of cases) {
      const res = await send();
      const body = Buffer.from(await res.arrayBuffer());
      assert.ok(body.length > 0, id);
      const line = await accessLine(gw, id);
      assert.equal(line.status, res.status, id);
      assert.equal(line.bytes_out, body.length, `${id}: bytes_out`);
    }
  });
});

describe('error answers that say where to look', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('route_not_found names the configured path prefixes, never a key', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, {
      models: [
        { name: 'm', path: '/ai/models', api_keys: [KEY], targets: [{ url: sim.url }] },
        { name: 'n', path: '/beta', targets: [{ url: sim.url }] },
      ],
    });
    const res = await post(`${gw.url}/other/v1/chat/completions`, chat('m'), { 'x-model': 'm' });
    assert.equal(res.status, 404);
    const text = await res.text();
    const body = JSON.parse(text) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'route_not_found');
    assert.match(body.error.message, /\/ai\/models/);
    assert.match(body.error.message, /\/beta/);
    assert.ok(!text.includes(KEY));
  });

  it('route_not_found lists at most a few prefixes and says how many more there are', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const models = Array.from({ length: 40 }, (_, i) => ({ name: 'm', path: `/team-${String(i).padStart(2, '0')}`, targets: [{ url: sim.url }] }));
    const gw = await startGateway(cleanup, { models });
    const res = await post(`${gw.url}/other/v1/chat/completions`, chat('m'), { 'x-model': 'm' });
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'route_not_found');
    const listed = body.error.message.match(/\/team-\d\d/g) ?? [];
    assert.ok(listed.length > 0 && listed.length <= 10, `${listed.length} prefixes listed`);
    assert.match(body.error.message, new RegExp(`${40 - listed.length} more`));
  });

  it('model_not_found points at GET <path>/v1/models', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', path: '/ai/models', targets: [{ url: sim.url }] }] });
    for (const res of [
      await post(`${gw.url}/ai/models/v1/chat/completions`, chat('m'), { 'x-model': 'nope' }),
      await post(`${gw.url}/ai/models/v1/chat/completions`, chat('nope')),
    ]) {
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'model_not_found');
      assert.ok(body.error.message.includes('GET /ai/models/v1/models'), body.error.message);
    }
  });
});

describe('the admin and status listeners at /', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('answer GET / with a JSON index of their endpoints', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    for (const [base, expected] of [
      [gw.statusUrl, ['/status', '/status/ready', '/metrics']],
      [gw.adminUrl, ['/status', '/models', '/models/{name}', '/config']],
    ] as const) {
      const res = await fetch(`${base}/`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      const index = (await res.json()) as { endpoints: Array<{ method: string; path: string }> };
      const paths = index.endpoints.map((e) => e.path);
      for (const p of expected) assert.ok(paths.includes(p), `${base}: ${p} in ${paths.join(', ')}`);
      const missing = await fetch(`${base}/nope`);
      assert.equal(missing.status, 404);
      await missing.arrayBuffer();
    }
  });
});

describe('health logs', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  type LogLine = { level: number; msg: string; model?: string; path?: string; target?: string; code?: string };

  it('name the model, warn when a target goes down, inform when it is back, and log a model without healthy targets once, not per request', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const port = sim.port;
    const url = sim.url;
    const gw = await startGateway(cleanup, {
      models: [{ name: 'solo', path: '/ai', targets: [{ url: sim.url }], health_check: { interval: '50ms', timeout: '100ms', healthy_threshold: 1, unhealthy_threshold: 1 } }],
    });
    const lines = (): LogLine[] => gw.log.json<LogLine>();
    await sim.close();
    await until(() => lines().some((l) => l.msg === 'target unhealthy'), 3000, 'target unhealthy');
    for (let i = 0; i < 5; i++) {
      const r = await post(`${gw.url}/ai/v1/chat/completions`, chat('m'), { 'x-model': 'solo' });
      assert.equal(r.status, 503);
      await r.arrayBuffer();
    }
    const down = lines().filter((l) => l.msg === 'target unhealthy');
    assert.equal(down.length, 1);
    assert.equal(down[0]!.level, 40);
    assert.equal(down[0]!.model, 'solo');
    assert.equal(down[0]!.target, url);
    const modelDown = lines().filter((l) => l.msg === 'model has no healthy target');
    assert.equal(modelDown.length, 1);
    assert.equal(modelDown[0]!.model, 'solo');
    assert.equal(modelDown[0]!.path, '/ai');
    assert.equal(lines().filter((l) => l.code === 'no_healthy_upstream').length, 0, 'no error line per refused request');

    const restarted = new Simulator({ model: 'm' });
    await restarted.listen(port, '127.0.0.1');
    cleanup.add(() => restarted.close());
    await until(() => lines().some((l) => l.msg === 'model has a healthy target again'), 3000, 'model back');
    const up = lines().filter((l) => l.msg === 'target healthy');
    assert.equal(up.length, 1);
    assert.equal(up[0]!.level, 30);
    assert.equal(up[0]!.model, 'solo');
    const modelUp = lines().filter((l) => l.msg === 'model has a healthy target again');
    assert.equal(modelUp.length, 1);
    assert.equal(modelUp[0]!.level, 30);
    assert.equal(modelUp[0]!.model, 'solo');
  });
});

describe('validate --print', () => {
  it('shows each model\'s limits (keys by name or fingerprint, never the key)', () => {
    const path = writeConfig({
      limits: { requests: { per_second: 100 } },
      models: [
        {
          name: 'a',
          api_keys: [{ key: KEY, limits: { tokens: { per_minute: 5000 } } }],
          limits: { requests: { per_minute: 60 }, concurrency: { max: 4, queue: 8 } },
          targets: [{ url: 'http://h:1' }],
        },
        { name: 'b', path: '/b', targets: [{ url: 'http://h:1' }] },
      ],
    });
    const r = spawnSync(process.execPath, ['--import', 'tsx', resolve('src/main.ts'), 'validate', '--config', path, '--print'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    type Scope = { scope: string; rules: string[]; concurrency: { max: number; queue: number } | null };
    const printed = JSON.parse(r.stdout) as { models: Array<{ name: string; limits: Scope[] | null }> };
    const a = printed.models.find((m) => m.name === 'a')!;
    assert.ok(Array.isArray(a.limits), 'limits are printed');
    const rules = a.limits!.flatMap((s) => s.rules);
    assert.ok(rules.some((d) => d.includes('100 requests per second')), rules.join('; '));
    assert.ok(rules.some((d) => d.includes('60 requests per minute')), rules.join('; '));
    assert.ok(rules.some((d) => d.includes('5000 tokens per minute') && /key#[0-9a-f]{8}/.test(d)), rules.join('; '));
    assert.deepEqual(a.limits!.find((s) => s.concurrency !== null)!.concurrency, { max: 4, queue: 8, queue_timeout_ms: 10000 });
    const b = printed.models.find((m) => m.name === 'b')!;
    assert.ok(b.limits!.flatMap((s) => s.rules).some((d) => d.includes('100 requests per second')), 'the gateway-wide limit applies to b too');
    assert.ok(!r.stdout.includes(KEY));
  });
});
