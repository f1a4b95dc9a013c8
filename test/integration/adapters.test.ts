import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { Simulator } from '../../src/sim/index.js';
import { waitFor } from '../helpers/gateway-process.js';
import { Cleanup, chat, post, startGateway, startSim, type RunningGateway } from '../helpers/harness.js';

const ADAPTERS = ['sql', 'code', 'chat-de', 'legal'];

interface AdminTarget {
  url: string;
  load: { loras?: { adapters: string[]; max_lora: number } } | null;
}

async function targets(gw: RunningGateway): Promise<AdminTarget[]> {
  const res = await fetch(`${gw.adminUrl}/models`);
  return ((await res.json()) as { data: { name: string; targets: AdminTarget[] }[] }).data.find((m) => m.name === 'base')!.targets;
}

async function loraLine(sim: Simulator): Promise<string> {
  const text = await (await fetch(`${sim.url}/metrics`)).text();
  return text.split('\n').find((l) => l.startsWith('vllm:lora_requests_info{'))!;
}

describe('LoRA adapters', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function fleet(): Promise<{ sims: Simulator[]; gw: RunningGateway }> {
    const sims = await Promise.all(['r0', 'r1', 'r2'].map((id) => startSim(cleanup, { model: 'org/base', id, loraModules: ADAPTERS, maxLoras: 1, loraLoadMs: 0 })));
    const gw = await startGateway(cleanup, {
      models: [{ name: 'base', path: '/ai', served_model: 'org/base', adapters: ADAPTERS, load_metrics: { interval: '50ms' }, targets: sims.map((s) => ({ url: s.url })) }],
    });
    await waitFor('adapter samples of every target', async () => (await targets(gw)).every((t) => t.load?.loras?.max_lora === 1), 5000);
    return { sims, gw };
  }

  it('sends an adapter to the replica that has it loaded, else to one with a free slot', async () => {
    const { sims, gw } = await fleet();
    const client = new OpenAI({ baseURL: `${gw.url}/ai/v1`, apiKey: 'unused', maxRetries: 0 });
    const home = new Map<string, number>();
    for (const adapter of ['sql', 'code', 'chat-de']) {
      const before = sims.map((s) => s.stats.requests);
      for (let i = 0; i < 8; i++) await client.chat.completions.create({ model: adapter, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 });
      home.set(adapter, sims.findIndex((s, i) => s.stats.requests - before[i]! === 8));
    }
    // Each adapter was loaded once, each on its own replica, which then got all of its requests.
    assert.deepEqual(sims.map((s) => s.stats.loraLoads), [1, 1, 1]);
    assert.deepEqual(sims.map((s) => s.stats.requests), [8, 8, 8]);
    assert.deepEqual([...home.values()].sort(), [0, 1, 2]);
    // With X-Model, the body's adapter is routed the same way.
    const res = await post(`${gw.url}/ai/v1/chat/completions`, chat('code', { max_tokens: 1 }), { 'x-model': 'base' });
    await res.arrayBuffer();
    assert.equal(res.status, 200);
    assert.equal(sims[home.get('code')!]!.stats.requests, 9);
    assert.deepEqual(sims.map((s) => s.stats.loraLoads), [1, 1, 1]);
  });

  it('evicts the least recently used adapter when every slot is taken, and the metric shows it', async () => {
    const { sims, gw } = await fleet();
    const client = new OpenAI({ baseURL: `${gw.url}/ai/v1`, apiKey: 'unused', maxRetries: 0 });
    for (const adapter of ['sql', 'code', 'chat-de', 'legal']) {
      await client.chat.completions.create({ model: adapter, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 });
      // The next pick must see this load: the gateway learns loaded adapters from the next metrics sample.
      await waitFor(`${adapter} seen loaded`, async () => (await targets(gw)).some((t) => t.load?.loras?.adapters.includes(adapter) === true), 5000);
    }
    const loads = sims.map((s) => s.stats.loraLoads);
    assert.equal(loads.reduce((a, b) => a + b, 0), 4);
    const evicted = sims[loads.indexOf(2)]!;
    assert.match(await loraLine(evicted), /running_lora_adapters="legal"/);
    assert.match(await loraLine(evicted), /max_lora="1"/);
    await waitFor('the new adapter in the gateway', async () => (await targets(gw)).some((t) => t.url === evicted.url && t.load?.loras?.adapters.join() === 'legal'), 5000);
  });

  it('answers 404 model_not_found for an adapter the model does not list', async () => {
    const { sims, gw } = await fleet();
    for (const headers of [{}, { 'x-model': 'base' }] as Record<string, string>[]) {
      const res = await post(`${gw.url}/ai/v1/chat/completions`, chat('finance', { max_tokens: 1 }), headers);
      assert.equal(res.status, 404);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'model_not_found');
    }
    assert.equal(sims.reduce((n, s) => n + s.stats.requests, 0), 0);
  });
});

describe('simulator LoRA adapters', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('loads an adapter that is not loaded (slower), evicting the least recently used', async () => {
    const sim = await startSim(cleanup, { model: 'org/base', loraModules: ['a', 'b', 'c'], maxLoras: 2, loraLoadMs: 150 });
    const models = (await (await fetch(`${sim.url}/v1/models`)).json()) as { data: { id: string; parent: string | null }[] };
    assert.deepEqual(models.data.map((m) => [m.id, m.parent]), [['org/base', null], ['a', 'org/base'], ['b', 'org/base'], ['c', 'org/base']]);
    const timed = async (model: string): Promise<number> => {
      const t0 = performance.now();
      const res = await post(`${sim.url}/v1/chat/completions`, chat(model, { max_tokens: 1 }));
      await res.arrayBuffer();
      assert.equal(res.status, 200);
      return performance.now() - t0;
    };
    assert.ok((await timed('a')) >= 150);
    await timed('b');
    assert.ok((await timed('a')) < 150, 'a loaded adapter costs no load');
    await timed('c'); // evicts b, the least recently used
    assert.equal(sim.stats.loraLoads, 3);
    assert.match(await loraLine(sim), /running_lora_adapters="a,c"/);
    await timed('b');
    assert.equal(sim.stats.loraLoads, 4);
    const unknown = await post(`${sim.url}/v1/chat/completions`, chat('z', { max_tokens: 1 }));
    assert.equal(unknown.status, 404);
  });
});
