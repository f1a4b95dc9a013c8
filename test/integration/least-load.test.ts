/**
 * least-load against real simulators that model a KV cache (--kv-cache-tokens): what the engines'
 * /metrics say (queue, KV-cache usage) and the size of each request decide where it goes.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { Simulator } from '../../src/sim/index.js';
import { Cleanup, chat, post, startGateway, startSim } from '../helpers/harness.js';

/** A 10,001-token prompt: 61 % of a 16,384-token cache. */
const longPrompt = 'x'.repeat(40_000);

/**
 * unevenEngines starts two engines with 16,384 tokens of KV cache whose own requests hang (ttft one
 * minute): a runs one long prompt (fewest requests, cache 61 % full), b three short ones (more
 * requests, cache almost empty). held settles once the engines close.
 */
async function unevenEngines(cleanup: Cleanup): Promise<{ a: Simulator; b: Simulator; held: Promise<unknown>[] }> {
  const a = await startSim(cleanup, { model: 'm', id: 'a', kvCacheTokens: 16_384, ttftMs: 60_000 });
  const b = await startSim(cleanup, { model: 'm', id: 'b', kvCacheTokens: 16_384, ttftMs: 60_000 });
  const direct = (url: string, body: string) => post(`${url}/v1/chat/completions`, body).then((r) => r.arrayBuffer()).catch(() => null);
  const held = [direct(a.url, chat('m', { messages: [{ role: 'user', content: longPrompt }] })), ...Array.from({ length: 3 }, () => direct(b.url, chat('m')))];
  await a.waitFor((s) => s.running === 1);
  await b.waitFor((s) => s.running === 3);
  return { a, b, held };
}

describe('least-load with KV-cache pressure', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('sends small requests by queue and a large prompt to the replica whose KV cache has room', async () => {
    const { a, b, held } = await unevenEngines(cleanup);
    const gw = await startGateway(cleanup, { models: [{ name: 'm', balancer: 'least-load', load_metrics: { interval: '50ms' }, targets: [{ url: a.url }, { url: b.url }] }] });
    await new Promise((r) => setTimeout(r, 300));
    // Through the gateway, answered at once (x-sim-ttft-ms: 0).
    const headers = { 'x-model': 'm', 'x-sim-ttft-ms': '0' };
    for (let i = 0; i < 5; i++) {
      const res = await post(`${gw.url}/v1/chat/completions`, chat('m'), headers);
      await res.arrayBuffer();
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-sim-id'), 'a', `small request ${i + 1} goes by queue`);
    }
    const large = await post(`${gw.url}/v1/chat/completions`, chat('m', { messages: [{ role: 'user', content: longPrompt }] }), headers);
    await large.arrayBuffer();
    assert.equal(large.status, 200);
    assert.equal(large.headers.get('x-sim-id'), 'b', 'the large prompt goes where its KV blocks fit');
    await Promise.all([a.close(), b.close()]);
    await Promise.all(held);
  });
});

describe('least-load under flow control', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('flow control decides whether a request goes; least-load still sends a large prompt away from the replica whose KV cache is nearly full', async () => {
    const { a, b, held } = await unevenEngines(cleanup);
    // Neither replica is saturated by flow control's defaults (5 waiting, KV cache 0.8): both have room.
    const gw = await startGateway(cleanup, {
      models: [{ name: 'm', balancer: 'least-load', load_metrics: { interval: '50ms' }, flow_control: { enabled: true }, targets: [{ url: a.url }, { url: b.url }] }],
    });
    await new Promise((r) => setTimeout(r, 300));
    const headers = { 'x-model': 'm', 'x-sim-ttft-ms': '0' };
    const small = await post(`${gw.url}/v1/chat/completions`, chat('m'), headers);
    await small.arrayBuffer();
    assert.equal(small.status, 200);
    assert.equal(small.headers.get('x-sim-id'), 'a', 'a small request goes by queue');
    // The least-loaded replica by request count is a; its cache cannot hold a second long prompt.
    const large = await post(`${gw.url}/v1/chat/completions`, chat('m', { messages: [{ role: 'user', content: longPrompt }] }), headers);
    await large.arrayBuffer();
    assert.equal(large.status, 200);
    assert.equal(large.headers.get('x-sim-id'), 'b', 'the large prompt goes where its KV blocks fit');
    const view = (await (await fetch(`${gw.adminUrl}/models`)).json()) as { data: Array<{ name: string; flow_control: { saturated: boolean } | null }> };
    assert.equal(view.data.find((m) => m.name === 'm')!.flow_control!.saturated, false);
    await Promise.all([a.close(), b.close()]);
    await Promise.all(held);
  });
});
