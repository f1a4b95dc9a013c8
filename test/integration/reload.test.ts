import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { fullGc } from '../../src/cli/full-gc.js';
import { ConfigError } from '../../src/config/index.js';
import { Cleanup, chat, post, startGateway, startSim, tempDir } from '../helpers/harness.js';

describe('reload', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('applies a changed file, skips an identical one, and keeps serving the old config on errors', async () => {
    const a = await startSim(cleanup, { model: 'm', id: 'a' });
    const b = await startSim(cleanup, { model: 'm', id: 'b' });
    const dir = tempDir();
    const listeners = { proxy: { listen: '127.0.0.1:0' }, status: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' } };
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: a.url }] }] }, { dir });
    const file = join(dir, 'gateway.yaml');
    const ask = async (): Promise<string | null> => {
      const res = await post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm' });
      await res.arrayBuffer();
      return res.headers.get('x-sim-id');
    };
    assert.equal(await ask(), 'a');

    writeFileSync(file, stringify({ ...listeners, models: [{ name: 'm', targets: [{ url: a.url }] }] }));
    assert.equal(gw.gateway.reload(), 'unchanged');

    const before = gw.gateway.snapshot.hash;
    writeFileSync(file, stringify({ ...listeners, models: [{ name: 'm', path: 'bad/', targets: [{ url: b.url }] }] }));
    assert.throws(() => gw.gateway.reload(), ConfigError);
    assert.equal(gw.gateway.snapshot.hash, before);
    assert.equal(await ask(), 'a');

    writeFileSync(file, stringify({ ...listeners, models: [{ name: 'm', targets: [{ url: b.url }] }] }));
    assert.equal(gw.gateway.reload(), 'applied');
    assert.equal(await ask(), 'b');
    const status = (await (await fetch(`${gw.statusUrl}/status`)).json()) as { configuration_hash: string };
    assert.equal(status.configuration_hash, gw.gateway.snapshot.hash);
  });

  it('a stream started before a reload finishes on the snapshot it started with', async () => {
    const a = await startSim(cleanup, { model: 'm', id: 'a' });
    const dir = tempDir();
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: a.url }] }] }, { dir });
    const res = await post(`${gw.url}/v1/chat/completions`, chat('m', { stream: true }), { 'x-model': 'm', 'x-sim-itl-ms': '20', 'x-sim-chunks': '10' });
    writeFileSync(join(dir, 'gateway.yaml'), stringify({ proxy: { listen: '127.0.0.1:0' }, models: [{ name: 'other', targets: [{ url: a.url }] }] }));
    assert.equal(gw.gateway.reload(), 'applied');
    const text = await res.text();
    assert.match(text, /data: \[DONE\]/);
    const gone = await post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm' });
    assert.equal(gone.status, 404);
    await gone.arrayBuffer();
  });

  it('runs afterCompile before listening and after each applied reload (the start command collects garbage there)', async () => {
    const a = await startSim(cleanup, { model: 'm', id: 'a' });
    const dir = tempDir();
    let calls = 0;
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: a.url }] }] }, { dir, afterCompile: () => void calls++ });
    assert.equal(calls, 1);
    const file = join(dir, 'gateway.yaml');
    const listeners = { proxy: { listen: '127.0.0.1:0' }, status: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' } };
    writeFileSync(file, stringify({ ...listeners, models: [{ name: 'm', targets: [{ url: a.url }] }] }));
    assert.equal(gw.gateway.reload(), 'unchanged');
    assert.equal(calls, 1, 'nothing new was compiled in');
    writeFileSync(file, stringify({ ...listeners, models: [{ name: 'm2', targets: [{ url: a.url }] }] }));
    assert.equal(gw.gateway.reload(), 'applied');
    assert.equal(calls, 2);
  });

  it('fullGc collects what is no longer reachable', async () => {
    const ref = ((): WeakRef<object> => new WeakRef({ payload: new Array(10_000).fill(1) }))();
    // A WeakRef keeps its target for the rest of the job that made it.
    await new Promise((r) => setImmediate(r));
    fullGc();
    assert.equal(ref.deref(), undefined);
  });
});
