import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import { stringify } from 'yaml';
import { waitFor } from '../helpers/gateway-process.js';
import { Cleanup, chat, post, startGateway, startSim, tempDir, type RunningGateway } from '../helpers/harness.js';

interface AdminTarget {
  url: string;
  healthy: boolean;
  served_models: string[] | null;
  model_mismatch: boolean;
}
interface AdminModel {
  name: string;
  served_model: string | null;
  targets: AdminTarget[];
}

async function adminModel(gw: RunningGateway, name: string): Promise<AdminModel> {
  const res = await fetch(`${gw.adminUrl}/models`);
  const body = (await res.json()) as { data: AdminModel[] };
  return body.data.find((m) => m.name === name)!;
}

describe('served_model: auto', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('learns the id from the targets, rewrites the gateway name to it, and takes a target serving another model out of rotation', async () => {
    const a = await startSim(cleanup, { model: 'org/llama-3-8b', id: 'a' });
    const b = await startSim(cleanup, { model: 'org/llama-3-8b', id: 'b' });
    const odd = await startSim(cleanup, { model: 'org/mistral-7b', id: 'odd' });
    const gw = await startGateway(cleanup, {
      models: [
        {
          name: 'llama',
          path: '/ai',
          served_model: 'auto',
          balancer: 'round-robin',
          health_check: { interval: '100ms' },
          targets: [{ url: a.url }, { url: odd.url }, { url: b.url }],
        },
      ],
    });
    await waitFor('the learned id and a mismatched target', async () => {
      const m = await adminModel(gw, 'llama');
      return m.served_model === 'org/llama-3-8b' && m.targets.some((t) => t.model_mismatch);
    }, 5000);
    const m = await adminModel(gw, 'llama');
    const oddView = m.targets.find((t) => t.url === odd.url)!;
    assert.deepEqual(oddView.served_models, ['org/mistral-7b']);
    assert.equal(oddView.healthy, false);
    assert.ok(m.targets.filter((t) => t.url !== odd.url).every((t) => t.healthy && !t.model_mismatch && t.served_models?.[0] === 'org/llama-3-8b'));
    const logged = gw.log.json<{ msg: string; model?: string; target?: string; served?: string[]; expected?: string }>();
    const line = logged.find((l) => l.msg === 'target serves another model');
    assert.ok(line, JSON.stringify(logged.map((l) => l.msg)));
    assert.equal(line.target, odd.url);
    assert.deepEqual(line.served, ['org/mistral-7b']);
    assert.equal(line.expected, 'org/llama-3-8b');

    // The gateway's name is rewritten to the learned id (a simulator refuses any other id with 404).
    const client = new OpenAI({ baseURL: `${gw.url}/ai/v1`, apiKey: 'unused', maxRetries: 0 });
    for (let i = 0; i < 6; i++) {
      const r = await client.chat.completions.create({ model: 'llama', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 });
      assert.equal(r.model, 'org/llama-3-8b');
    }
    // Body routing matches the learned id too.
    const byId = await post(`${gw.url}/ai/v1/chat/completions`, chat('org/llama-3-8b', { max_tokens: 1 }));
    await byId.arrayBuffer();
    assert.equal(byId.status, 200);
    assert.equal(odd.stats.requests, 0);
    assert.equal(a.stats.requests + b.stats.requests, 7);
    // An id no target serves is still unknown.
    const unknown = await post(`${gw.url}/ai/v1/chat/completions`, chat('org/mistral-7b', { max_tokens: 1 }));
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'model_not_found');
  });

  it('puts a target back once it serves the model of its siblings', async () => {
    const a = await startSim(cleanup, { model: 'org/llama-3-8b', id: 'a' });
    const b = await startSim(cleanup, { model: 'org/llama-3-8b', id: 'b' });
    let odd = await startSim(cleanup, { model: 'org/mistral-7b', id: 'odd' });
    const port = Number(new URL(odd.url).port);
    const gw = await startGateway(cleanup, {
      models: [{ name: 'llama', served_model: 'auto', health_check: { interval: '100ms' }, targets: [{ url: a.url }, { url: b.url }, { url: odd.url }] }],
    });
    await waitFor('a mismatched target', async () => (await adminModel(gw, 'llama')).targets.some((t) => t.model_mismatch), 5000);
    // The replica is redeployed with the right model on the same address.
    await odd.close();
    const { Simulator } = await import('../../src/sim/index.js');
    odd = new Simulator({ model: 'org/llama-3-8b', id: 'odd2' });
    await odd.listen(port, '127.0.0.1');
    const fixed = odd;
    cleanup.add(() => fixed.close());
    await waitFor('every target back', async () => (await adminModel(gw, 'llama')).targets.every((t) => t.healthy && !t.model_mismatch), 5000);
  });

  it('stops judging targets by model id once the model no longer uses auto (reload)', async () => {
    const a = await startSim(cleanup, { model: 'org/llama-3-8b', id: 'a' });
    const b = await startSim(cleanup, { model: 'org/llama-3-8b', id: 'b' });
    const odd = await startSim(cleanup, { model: 'org/mistral-7b', id: 'odd' });
    const dir = tempDir();
    const model = { name: 'llama', health_check: { interval: '100ms' }, targets: [{ url: a.url }, { url: b.url }, { url: odd.url }] };
    const gw = await startGateway(cleanup, { models: [{ ...model, served_model: 'auto' }] }, { dir });
    await waitFor('a mismatched target', async () => (await adminModel(gw, 'llama')).targets.some((t) => t.model_mismatch), 5000);
    const listeners = { proxy: { listen: '127.0.0.1:0' }, status: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' } };
    writeFileSync(join(dir, 'gateway.yaml'), stringify({ ...listeners, models: [model] }));
    assert.equal(gw.gateway.reload(), 'applied');
    const m = await adminModel(gw, 'llama');
    assert.equal(m.served_model, null);
    assert.ok(m.targets.every((t) => t.healthy && !t.model_mismatch));
  });
});
