import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import { stringify } from 'yaml';
import { ConfigError, loadConfigText, type ConfigIssue } from '../../src/config/index.js';
import type { Simulator } from '../../src/sim/index.js';
import { waitFor } from '../helpers/gateway-process.js';
import { performance } from 'node:perf_hooks';
import { Cleanup, chat, deadUrl, post, startGateway, startSim, tempDir, type RunningGateway } from '../helpers/harness.js';
import { parsePrometheus, valueOf } from '../helpers/prometheus.js';

const KEY = 'split-test-key-0001';
const LISTENERS = { proxy: { listen: '127.0.0.1:0' }, status: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' } };

/** fleet is two versions of a model (v1 with a served id of its own, v2 served by its name) and `chat` splitting between them. */
function fleet(v1: Simulator, v2: Simulator, chatFields: Record<string, unknown>): Record<string, unknown> {
  return {
    models: [
      { name: 'llama-v1', path: '/ai', served_model: 'org/llama-v1', targets: [{ url: v1.url }] },
      { name: 'llama-v2', path: '/ai', targets: [{ url: v2.url }] },
      { name: 'chat', path: '/ai', split: [{ model: 'llama-v1', weight: 90 }, { model: 'llama-v2', weight: 10 }], ...chatFields },
    ],
  };
}

/** load sends `total` chat requests for `chat`, `concurrency` at a time, and counts the answers by X-Served-Model (status other than 200: "failed"). */
async function load(gw: RunningGateway, total: number, concurrency: number, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const body = chat('chat', { max_tokens: 1 });
  let sent = 0;
  const worker = async (): Promise<void> => {
    while (sent < total) {
      sent++;
      const res = await post(`${gw.url}/ai/v1/chat/completions`, body, headers);
      await res.arrayBuffer();
      const key = res.status === 200 ? (res.headers.get('x-served-model') ?? 'none') : 'failed';
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return counts;
}

describe('split and alias models', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('lands a 90/10 split within 90 ± 2 % over 10,000 requests', async () => {
    const v1 = await startSim(cleanup, { model: 'org/llama-v1', id: 'v1' });
    const v2 = await startSim(cleanup, { model: 'llama-v2', id: 'v2' });
    const gw = await startGateway(cleanup, { log: { access_log: false }, ...fleet(v1, v2, {}) });
    const counts = await load(gw, 10_000, 64);
    assert.equal((counts.get('llama-v1') ?? 0) + (counts.get('llama-v2') ?? 0), 10_000, JSON.stringify([...counts]));
    const share = counts.get('llama-v1')! / 10_000;
    assert.ok(Math.abs(share - 0.9) <= 0.02, `llama-v1 got ${share}`);
    // Each side's engine saw exactly its share (the header tells the truth).
    assert.equal(v1.stats.requests, counts.get('llama-v1'));
    assert.equal(v2.stats.requests, counts.get('llama-v2'));
  });

  it('rewrites the body model to the chosen model\'s served id and says which one served (openai client)', async () => {
    const v1 = await startSim(cleanup, { model: 'org/llama-v1', id: 'v1' });
    const v2 = await startSim(cleanup, { model: 'llama-v2', id: 'v2' });
    // An alias: one entry. Auth is the alias's own.
    const config = fleet(v1, v2, { api_keys: [KEY] });
    (config.models as Array<Record<string, unknown>>)[2]!.split = [{ model: 'llama-v1', weight: 1 }];
    (config.models as Array<Record<string, unknown>>).push({ name: 'latest', path: '/ai', split: [{ model: 'llama-v2', weight: 1 }] });
    const gw = await startGateway(cleanup, config);
    const client = new OpenAI({ baseURL: `${gw.url}/ai/v1`, apiKey: KEY, maxRetries: 0 });
    const { data, response } = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }).withResponse();
    assert.equal(response.headers.get('x-served-model'), 'llama-v1');
    assert.equal(data.model, 'org/llama-v1');
    assert.equal(JSON.parse(v1.received.at(-1)!.body).model, 'org/llama-v1');
    // A model without served_model is sent its name; X-Model routing rewrites the body too.
    const res = await post(`${gw.url}/ai/v1/chat/completions`, chat('latest'), { 'x-model': 'latest' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-served-model'), 'llama-v2');
    assert.equal(JSON.parse(v2.received.at(-1)!.body).model, 'llama-v2');
    // Streams too.
    const stream = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.ok(text.length > 0);
    // Auth is the alias's: no key, 401; the keys of the models it splits to are not asked for.
    const denied = await post(`${gw.url}/ai/v1/chat/completions`, chat('chat'));
    assert.equal(denied.status, 401);
  });

  it('sticky: api_key keeps each key on one side; header:<Name> does the same per header value', async () => {
    const v1 = await startSim(cleanup, { model: 'org/llama-v1', id: 'v1' });
    const v2 = await startSim(cleanup, { model: 'llama-v2', id: 'v2' });
    const keys = Array.from({ length: 24 }, (_, i) => `sticky-key-${String(i).padStart(4, '0')}`);
    const config = fleet(v1, v2, { api_keys: keys, sticky: 'api_key' });
    const models = config.models as Array<Record<string, unknown>>;
    models[2]!.split = [{ model: 'llama-v1', weight: 50 }, { model: 'llama-v2', weight: 50 }];
    models.push({ name: 'by-user', path: '/ai', sticky: 'header:X-User', split: [{ model: 'llama-v1', weight: 50 }, { model: 'llama-v2', weight: 50 }] });
    const gw = await startGateway(cleanup, config);
    const sides = new Set<string>();
    for (const key of keys) {
      const counts = await load(gw, 10, 5, { authorization: `Bearer ${key}` });
      assert.equal(counts.size, 1, `${key}: ${JSON.stringify([...counts])}`);
      sides.add([...counts.keys()][0]!);
    }
    assert.deepEqual([...sides].sort(), ['llama-v1', 'llama-v2']);
    const userSides = new Set<string>();
    for (let u = 0; u < 24; u++) {
      const seen = new Set<string>();
      for (let i = 0; i < 6; i++) {
        const res = await post(`${gw.url}/ai/v1/chat/completions`, chat('by-user'), { 'x-user': `user-${u}` });
        await res.arrayBuffer();
        assert.equal(res.status, 200);
        seen.add(res.headers.get('x-served-model')!);
      }
      assert.equal(seen.size, 1, `user-${u}`);
      userSides.add([...seen][0]!);
    }
    assert.deepEqual([...userSides].sort(), ['llama-v1', 'llama-v2']);
  });

  it('counts and logs both the requested and the served model', async () => {
    const v1 = await startSim(cleanup, { model: 'org/llama-v1', id: 'v1' });
    const v2 = await startSim(cleanup, { model: 'llama-v2', id: 'v2' });
    const gw = await startGateway(cleanup, fleet(v1, v2, {}));
    const counts = await load(gw, 200, 8);
    const direct = await post(`${gw.url}/ai/v1/chat/completions`, chat('llama-v2'));
    await direct.arrayBuffer();
    const samples = parsePrometheus(await (await fetch(`${gw.statusUrl}/metrics`)).text());
    for (const side of ['llama-v1', 'llama-v2']) {
      assert.equal(valueOf(samples, 'igw_requests_total', { model: 'chat', served_model: side, path: '/ai', status: '200' }), counts.get(side));
      assert.equal(valueOf(samples, 'igw_request_duration_seconds_count', { model: 'chat', served_model: side }), counts.get(side));
    }
    assert.equal(valueOf(samples, 'igw_requests_total', { model: 'llama-v2', served_model: 'llama-v2', status: '200' }), 1);
    const lines = await waitFor('access log lines', () => {
      const all = gw.accessLog.json<{ model: string; served_model: string | null }>();
      return all.length >= 201 ? all : undefined;
    });
    const bySide = (side: string): number => lines.filter((l) => l.model === 'chat' && l.served_model === side).length;
    assert.equal(bySide('llama-v1'), counts.get('llama-v1'));
    assert.equal(bySide('llama-v2'), counts.get('llama-v2'));
    assert.ok(lines.some((l) => l.model === 'llama-v2' && l.served_model === 'llama-v2'));
  });

  it('mirror: a slow shadow copy never delays or changes the answer, and is cancelled once it outlives it by timeout', async () => {
    const v1 = await startSim(cleanup, { model: 'org/llama-v1', id: 'v1' });
    const v2 = await startSim(cleanup, { model: 'llama-v2', id: 'v2' });
    const shadow = await startSim(cleanup, { model: 'llama-v3', id: 'v3', ttftMs: 5000 });
    const config = fleet(v1, v2, { mirror: { model: 'llama-v3', fraction: 1, timeout: '300ms' } });
    (config.models as Array<Record<string, unknown>>)[2]!.split = [{ model: 'llama-v1', weight: 1 }];
    (config.models as Array<Record<string, unknown>>).push({ name: 'llama-v3', path: '/ai', targets: [{ url: shadow.url }] });
    const gw = await startGateway(cleanup, config);
    const started = performance.now();
    const res = await post(`${gw.url}/ai/v1/chat/completions`, chat('chat'));
    const answer = (await res.json()) as { model: string; choices: unknown[] };
    assert.ok(performance.now() - started < 2000, 'the answer did not wait for the 5 s shadow');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-served-model'), 'llama-v1');
    assert.equal(answer.model, 'org/llama-v1');
    const copy = await waitFor('the copy at the shadow engine', () => shadow.received.find((r) => r.url === '/v1/chat/completions'));
    assert.equal(JSON.parse(copy.body).model, 'llama-v3');
    assert.equal(copy.headers.authorization, undefined);
    // 300 ms after the answer ended, the copy is cancelled: counted, and the shadow engine sees it go.
    await waitFor('the shadow engine sees the copy aborted', () => shadow.stats.aborted === 1, 3000);
    const samples = parsePrometheus(await (await fetch(`${gw.statusUrl}/metrics`)).text());
    assert.equal(valueOf(samples, 'igw_mirror_requests_total', { model: 'chat', mirror: 'llama-v3', result: 'cancelled' }), 1);
    assert.equal(valueOf(samples, 'igw_mirror_requests_total', { result: 'completed' }), 0);
  });

  it('mirror: copies the given fraction, counts completed and failed copies, and a dead mirror changes nothing for clients', async () => {
    const v1 = await startSim(cleanup, { model: 'org/llama-v1', id: 'v1' });
    const v2 = await startSim(cleanup, { model: 'llama-v2', id: 'v2' });
    const shadow = await startSim(cleanup, { model: 'llama-v3', id: 'v3' });
    const config = fleet(v1, v2, { mirror: { model: 'llama-v3', fraction: 0.5 } });
    const models = config.models as Array<Record<string, unknown>>;
    models.push({ name: 'llama-v3', path: '/ai', targets: [{ url: shadow.url }] });
    models.push({ name: 'gone', path: '/ai', targets: [{ url: await deadUrl() }], health_check: { active: false, passive: { enabled: false } }, retries: 0 });
    models[0]!.mirror = { model: 'gone', fraction: 1 };
    const gw = await startGateway(cleanup, config);
    const counts = await load(gw, 400, 8);
    assert.equal(counts.get('failed'), undefined);
    const metric = async (labels: Record<string, string>): Promise<number> => valueOf(parsePrometheus(await (await fetch(`${gw.statusUrl}/metrics`)).text()), 'igw_mirror_requests_total', labels);
    const completed = await waitFor('copies counted', async () => {
      const n = await metric({ model: 'chat', mirror: 'llama-v3', result: 'completed' });
      return n > 0 && n === shadow.stats.completed ? n : undefined;
    });
    assert.ok(completed > 140 && completed < 260, `copied ${completed} of 400`);
    // Copies of requests for llama-v1 (sent to it directly) go to a target that refuses connections: the clients never notice.
    for (let i = 0; i < 5; i++) {
      const res = await post(`${gw.url}/ai/v1/chat/completions`, chat('llama-v1'));
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
    await waitFor('failed copies counted', async () => (await metric({ model: 'llama-v1', mirror: 'gone', result: 'failed' })) === 5);
  });

  it('reloads new weights under load with zero failed requests', async () => {
    const v1 = await startSim(cleanup, { model: 'org/llama-v1', id: 'v1' });
    const v2 = await startSim(cleanup, { model: 'llama-v2', id: 'v2' });
    const dir = tempDir();
    const file = join(dir, 'gateway.yaml');
    const withWeights = (w1: number, w2: number): Record<string, unknown> => {
      const config = fleet(v1, v2, {});
      (config.models as Array<Record<string, unknown>>)[2]!.split = [{ model: 'llama-v1', weight: w1 }, { model: 'llama-v2', weight: w2 }];
      return config;
    };
    const gw = await startGateway(cleanup, { log: { access_log: false }, ...withWeights(90, 10) }, { dir });
    let isLoading = true;
    const during = (async () => {
      const all = new Map<string, number>();
      while (isLoading) for (const [k, n] of await load(gw, 64, 16)) all.set(k, (all.get(k) ?? 0) + n);
      return all;
    })();
    for (const [w1, w2] of [[10, 90], [50, 50], [90, 10], [10, 90]] as const) {
      const before = v1.stats.requests + v2.stats.requests;
      writeFileSync(file, stringify({ ...LISTENERS, log: { access_log: false }, ...withWeights(w1, w2) }));
      assert.equal(gw.gateway.reload(), 'applied');
      await waitFor('requests on the new weights', () => v1.stats.requests + v2.stats.requests > before + 100);
    }
    isLoading = false;
    const counts = await during;
    assert.equal(counts.get('failed'), undefined, JSON.stringify([...counts]));
    // The last weights (10/90) serve.
    const after = await load(gw, 1000, 16);
    const share = (after.get('llama-v2') ?? 0) / 1000;
    assert.ok(share > 0.85 && share < 0.95, `llama-v2 got ${share}`);
  });
});

describe('split configuration errors', () => {
  /** issuesOf loads YAML that must fail and returns its issues as "field: message". */
  function issuesOf(models: string): string[] {
    try {
      loadConfigText(`models:\n${models}`, { file: 'gateway.yaml', baseDir: '.' });
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.issues.map((i: ConfigIssue) => `${i.file} ${i.field}: ${i.message}`);
    }
    assert.fail('the load should have failed');
  }
  const V1 = '  - { name: v1, path: /ai, targets: [{ url: "http://h:1" }] }\n';

  it('names the entry and field of each mistake', () => {
    const issues = issuesOf(
      V1 +
        '  - { name: a, path: /ai, split: [{ model: nope, weight: 1 }, { model: v1, weight: 1 }, { model: v1, weight: 2 }] }\n' +
        '  - { name: b, path: /other, split: [{ model: v1, weight: 1 }] }\n' +
        '  - { name: c, path: /ai, split: [{ model: c, weight: 1 }] }\n' +
        '  - { name: d, path: /ai, split: [{ model: v1, weight: 1 }], targets: [{ url: "http://h:2" }], retries: 1 }\n' +
        '  - { name: e, path: /ai, sticky: api_key, targets: [{ url: "http://h:3" }] }\n',
    );
    const has = (field: string, ...words: string[]): void => {
      assert.ok(issues.some((i) => i.startsWith(`gateway.yaml ${field}:`) && words.every((w) => i.includes(w))), `${field} ${words.join(' ')} in:\n${issues.join('\n')}`);
    };
    has('models[1].split[0].model', '"nope"', 'not defined', '/ai');
    has('models[1].split[2].model', '"v1"', 'twice');
    has('models[2].split[0].model', '"v1"', 'not defined', '/other');
    has('models[3].split[0].model', 'itself');
    has('models[4].targets', 'split');
    has('models[4].retries', 'split');
    has('models[5].sticky', 'split');
    assert.equal(issues.length, 7, issues.join('\n'));
  });

  it('refuses a cycle of splits, weights that are not positive and a malformed sticky', () => {
    const cycle = issuesOf(V1 + '  - { name: a, path: /ai, split: [{ model: b, weight: 1 }] }\n  - { name: b, path: /ai, split: [{ model: v1, weight: 1 }, { model: a, weight: 1 }] }\n');
    assert.equal(cycle.length, 1, cycle.join('\n'));
    assert.match(cycle[0]!, /^gateway\.yaml models\[\d\]\.split: .*cycle.*"a".*"b"/);
    const schema = issuesOf(V1 + '  - { name: a, path: /ai, split: [{ model: v1, weight: 0 }], sticky: "cookie:x" }\n  - { name: b, path: /ai, split: [] }\n');
    for (const field of ['models[1].split[0].weight', 'models[1].sticky', 'models[2].split']) assert.ok(schema.some((i) => i.startsWith(`gateway.yaml ${field}:`)), `${field} in:\n${schema.join('\n')}`);
  });

  it('refuses a mirror that is not another model with targets on the same path', () => {
    const issues = issuesOf(
      V1 +
        '  - { name: a, path: /ai, mirror: { model: nope, fraction: 0.1 }, targets: [{ url: "http://h:2" }] }\n' +
        '  - { name: b, path: /ai, mirror: { model: b, fraction: 0.1 }, targets: [{ url: "http://h:3" }] }\n' +
        '  - { name: c, path: /ai, mirror: { model: d, fraction: 1.5 }, targets: [{ url: "http://h:4" }] }\n' +
        '  - { name: d, path: /ai, split: [{ model: v1, weight: 1 }], mirror: { model: e, fraction: 0.5 } }\n' +
        '  - { name: e, path: /ai, split: [{ model: v1, weight: 1 }] }\n',
    );
    for (const [field, word] of [['models[1].mirror.model', 'not defined'], ['models[2].mirror.model', 'itself'], ['models[3].mirror.fraction', ''], ['models[4].mirror.model', 'split']] as const) {
      assert.ok(issues.some((i) => i.startsWith(`gateway.yaml ${field}:`) && i.includes(word)), `${field} in:\n${issues.join('\n')}`);
    }
  });

  it('accepts an alias of a split (no cycle) and fields inherited from defaults', () => {
    const loaded = loadConfigText(
      'defaults: { retries: 1, targets: [{ url: "http://h:9" }] }\nmodels:\n' + V1 + '  - { name: canary, path: /ai, split: [{ model: v1, weight: 3 }, { model: v2, weight: 1 }] }\n  - { name: v2, path: /ai }\n  - { name: chat, path: /ai, split: [{ model: canary, weight: 1 }] }\n',
      { file: 'gateway.yaml', baseDir: '.' },
    );
    assert.deepEqual(loaded.models.map((m) => m.targets?.length ?? 0), [1, 0, 1, 0]);
  });
});
