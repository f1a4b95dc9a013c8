import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { Simulator } from '../../src/sim/index.js';
import { waitFor } from '../helpers/gateway-process.js';
import { stringify } from 'yaml';
import { Cleanup, chat, post, startGateway, startSim, tempDir, type RunningGateway } from '../helpers/harness.js';

interface AdminTarget {
  url: string;
  served_adapters: string[] | null;
}
interface AdminModel {
  name: string;
  adapters?: string[];
  adapters_auto?: boolean;
  targets: AdminTarget[];
}

async function adminModel(gw: RunningGateway, name: string): Promise<AdminModel> {
  const res = await fetch(`${gw.adminUrl}/models`);
  return ((await res.json()) as { data: AdminModel[] }).data.find((m) => m.name === name)!;
}

async function adapters(gw: RunningGateway, name: string): Promise<string[]> {
  return [...((await adminModel(gw, name)).adapters ?? [])].sort();
}

/** loraUpdate calls vLLM's run-time adapter API on a simulator. */
async function loraUpdate(sim: Simulator, action: 'load' | 'unload', name: string): Promise<number> {
  const body = action === 'load' ? { lora_name: name, lora_path: `/adapters/${name}` } : { lora_name: name };
  const res = await post(`${sim.url}/v1/${action}_lora_adapter`, JSON.stringify(body));
  await res.arrayBuffer();
  return res.status;
}

async function status404Code(res: Response): Promise<string> {
  assert.equal(res.status, 404);
  return ((await res.json()) as { error: { code: string } }).error.code;
}

describe('adapters: auto', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('learns the adapters from the targets and sends each only to targets that list it', async () => {
    const sims = await Promise.all([
      startSim(cleanup, { model: 'org/base', id: 'r0', loraModules: ['sql', 'code'], maxLoras: 1, loraLoadMs: 0 }),
      startSim(cleanup, { model: 'org/base', id: 'r1', loraModules: ['sql', 'code'], maxLoras: 1, loraLoadMs: 0 }),
      startSim(cleanup, { model: 'org/base', id: 'r2', loraModules: ['legal'], maxLoras: 1, loraLoadMs: 0 }),
    ]);
    const gw = await startGateway(cleanup, {
      models: [{ name: 'base', path: '/ai', served_model: 'org/base', adapters: 'auto', health_check: { interval: '100ms' }, load_metrics: { interval: '50ms' }, targets: sims.map((s) => ({ url: s.url })) }],
    });
    await waitFor('the learned adapters', async () => (await adapters(gw, 'base')).join() === 'code,legal,sql', 5000);
    const m = await adminModel(gw, 'base');
    assert.equal(m.adapters_auto, true);
    assert.deepEqual(m.targets.map((t) => t.served_adapters), [['sql', 'code'], ['sql', 'code'], ['legal']]);
    assert.ok(gw.log.json<{ msg: string; added?: string[] }>().some((l) => l.msg === 'adapters changed' && l.added?.includes('legal')));

    const client = new OpenAI({ baseURL: `${gw.url}/ai/v1`, apiKey: 'unused', maxRetries: 0 });
    for (let i = 0; i < 4; i++) {
      const r = await client.chat.completions.create({ model: 'legal', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 });
      assert.equal(r.model, 'org/base');
    }
    // Only r2 lists "legal": every request went there, though it was not the least loaded.
    assert.deepEqual(sims.map((s) => s.stats.requests), [0, 0, 4]);
    for (let i = 0; i < 4; i++) await client.chat.completions.create({ model: 'sql', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 });
    assert.equal(sims[2]!.stats.requests, 4, 'r2 does not list sql');
    assert.equal(sims[0]!.stats.requests + sims[1]!.stats.requests, 4);
    // Loaded once, then kept where it is.
    assert.equal(sims[0]!.stats.loraLoads + sims[1]!.stats.loraLoads, 1);
    // With X-Model the body's adapter is routed the same way; the base model still works.
    const viaHeader = await post(`${gw.url}/ai/v1/chat/completions`, chat('legal', { max_tokens: 1 }), { 'x-model': 'base' });
    await viaHeader.arrayBuffer();
    assert.equal(viaHeader.status, 200);
    assert.equal(sims[2]!.stats.requests, 5);
    const base = await post(`${gw.url}/ai/v1/chat/completions`, chat('org/base', { max_tokens: 1 }), { 'x-model': 'base' });
    await base.arrayBuffer();
    assert.equal(base.status, 200);
  });

  it('routes an adapter loaded on a target later, and answers 404 for one no target lists', async () => {
    const sims = await Promise.all(['r0', 'r1'].map((id) => startSim(cleanup, { model: 'org/base', id, maxLoras: 2, loraLoadMs: 0 })));
    const gw = await startGateway(cleanup, {
      models: [{ name: 'base', path: '/ai', served_model: 'auto', adapters: 'auto', health_check: { interval: '100ms' }, load_metrics: { interval: '50ms' }, targets: sims.map((s) => ({ url: s.url })) }],
    });
    await waitFor('the targets read', async () => (await adminModel(gw, 'base')).targets.every((t) => t.served_adapters !== null), 5000);
    for (const headers of [{}, { 'x-model': 'base' }] as Record<string, string>[]) {
      assert.equal(await status404Code(await post(`${gw.url}/ai/v1/chat/completions`, chat('finance', { max_tokens: 1 }), headers)), 'model_not_found');
    }

    assert.equal(await loraUpdate(sims[1]!, 'load', 'finance'), 200);
    await waitFor('the new adapter', async () => (await adapters(gw, 'base')).join() === 'finance', 5000);
    const client = new OpenAI({ baseURL: `${gw.url}/ai/v1`, apiKey: 'unused', maxRetries: 0 });
    for (let i = 0; i < 5; i++) await client.chat.completions.create({ model: 'finance', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 });
    assert.deepEqual(sims.map((s) => s.stats.requests), [0, 5]);

    // Unloaded everywhere: unknown again, and nothing reaches an engine.
    assert.equal(await loraUpdate(sims[1]!, 'unload', 'finance'), 200);
    await waitFor('the adapter gone', async () => (await adapters(gw, 'base')).length === 0, 5000);
    assert.equal(await status404Code(await post(`${gw.url}/ai/v1/chat/completions`, chat('finance', { max_tokens: 1 }))), 'model_not_found');
    assert.deepEqual(sims.map((s) => s.stats.requests), [0, 5]);
    assert.ok(gw.log.json<{ msg: string; removed?: string[] }>().some((l) => l.msg === 'adapters changed' && l.removed?.includes('finance')));
  });

  it('takes only adapters of the served model, and re-learns them after a reload from a list to auto', async () => {
    const right = await startSim(cleanup, { model: 'org/base', id: 'right', loraModules: ['sql'] });
    const other = await startSim(cleanup, { model: 'org/other', id: 'other', loraModules: ['poems'] });
    const model = { name: 'base', path: '/ai', served_model: 'org/base', health_check: { interval: '100ms' }, targets: [{ url: right.url }, { url: other.url }] };
    const dir = tempDir();
    const gw = await startGateway(cleanup, { models: [{ ...model, adapters: ['sql'] }] }, { dir });
    assert.equal(await status404Code(await post(`${gw.url}/ai/v1/chat/completions`, chat('poems', { max_tokens: 1 }))), 'model_not_found');
    const listeners = { proxy: { listen: '127.0.0.1:0' }, status: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' } };
    writeFileSync(join(dir, 'gateway.yaml'), stringify({ ...listeners, models: [{ ...model, adapters: 'auto' }] }));
    assert.equal(gw.gateway.reload(), 'applied');
    await waitFor('the learned adapters', async () => (await adminModel(gw, 'base')).targets.every((t) => t.served_adapters !== null), 5000);
    // "poems" is an adapter of org/other, not of this model's served model.
    assert.deepEqual(await adapters(gw, 'base'), ['sql']);
    assert.equal(await status404Code(await post(`${gw.url}/ai/v1/chat/completions`, chat('poems', { max_tokens: 1 }))), 'model_not_found');
    const res = await post(`${gw.url}/ai/v1/chat/completions`, chat('sql', { max_tokens: 1 }));
    await res.arrayBuffer();
    assert.equal(res.status, 200);
    assert.equal(right.stats.requests, 1);
  });
});

describe('the gateway\'s /v1/models with adapters', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('lists each model\'s adapters, configured and learned, with the model as parent, to the callers who may use the model', async () => {
    const sim = await startSim(cleanup, { model: 'org/base', id: 'base', loraModules: ['a1', 'a2'] });
    const open = await startSim(cleanup, { model: 'org/open', id: 'open' });
    const gw = await startGateway(cleanup, {
      models: [
        { name: 'base', path: '/ai', served_model: 'org/base', adapters: 'auto', api_keys: ['base-key-0123456789'], health_check: { interval: '100ms' }, targets: [{ url: sim.url }] },
        { name: 'open', path: '/ai', served_model: 'org/open', adapters: ['x1', 'a1'], targets: [{ url: open.url }] },
      ],
    });
    await waitFor('the learned adapters', async () => (await adapters(gw, 'base')).length === 2, 5000);
    const list = async (apiKey: string): Promise<[string, string | null | undefined][]> => {
      const client = new OpenAI({ baseURL: `${gw.url}/ai/v1`, apiKey, maxRetries: 0 });
      const cards: [string, string | null | undefined][] = [];
      for await (const m of client.models.list()) cards.push([m.id, (m as { parent?: string | null }).parent]);
      return cards;
    };
    // Without the key: the open model and its adapters only. "a1" is listed once, by the model body routing takes it to.
    assert.deepEqual(await list('any'), [['org/open', undefined], ['x1', 'org/open'], ['a1', 'org/open']]);
    assert.deepEqual(await list('base-key-0123456789'), [
      ['org/base', undefined],
      ['a2', 'org/base'],
      ['org/open', undefined],
      ['x1', 'org/open'],
      ['a1', 'org/open'],
    ]);
  });
});
