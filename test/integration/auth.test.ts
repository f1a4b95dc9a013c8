import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { hashKey } from '../../src/auth/index.js';
import type { Simulator } from '../../src/sim/index.js';
import { Cleanup, chat, post, rawRequest, startGateway, startSim, type RunningGateway } from '../helpers/harness.js';

const GPT_KEY = 'gpt-key-0123456789';
const SCOUT_KEY = 'scout-key-0123456789';
const HASHED_KEY = 'hashed-key-0123456789';

describe('per-model API keys', () => {
  let cleanup: Cleanup;
  let gpt: Simulator;
  let scout: Simulator;
  let open: Simulator;
  let gw: RunningGateway;
  const url = (): string => `${gw.url}/ai/models/v1/chat/completions`;

  beforeEach(async () => {
    cleanup = new Cleanup();
    gpt = await startSim(cleanup, { model: 'gpt' });
    scout = await startSim(cleanup, { model: 'scout' });
    open = await startSim(cleanup, { model: 'open' });
    gw = await startGateway(cleanup, {
      models: [
        { name: 'gpt', path: '/ai/models', api_keys: [GPT_KEY], targets: [{ url: gpt.url }] },
        { name: 'scout', path: '/ai/models', api_keys: [SCOUT_KEY, `sha256:${hashKey(HASHED_KEY)}`], key_in_query: true, upstream_api_key: 'upstream-secret', targets: [{ url: scout.url }] },
        { name: 'open', path: '/ai/models', targets: [{ url: open.url }] },
      ],
    });
  });
  afterEach(() => cleanup.run());

  it('answers 401 missing_api_key with a Key challenge when no key is sent', async () => {
    const res = await post(url(), chat('gpt'), { 'x-model': 'gpt' });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Key /);
    const body = (await res.json()) as { error: { code: string; type: string } };
    assert.equal(body.error.code, 'missing_api_key');
    assert.equal(body.error.type, 'authentication_error');
  });

  it('answers 401 invalid_api_key for an unknown key', async () => {
    const res = await post(url(), chat('gpt'), { 'x-model': 'gpt', apikey: 'wrong' });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Key /);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'invalid_api_key');
  });

  it("answers 403 for a key issued for another model", async () => {
    const res = await post(url(), chat('gpt'), { 'x-model': 'gpt', apikey: SCOUT_KEY });
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'key_not_allowed');
    assert.equal(gpt.received.length, 0);
  });

  it('accepts the key from apikey, x-api-key or Authorization: Bearer and forwards none of them', async () => {
    const a = await post(url(), chat('gpt'), { 'x-model': 'gpt', apikey: GPT_KEY });
    assert.equal(a.status, 200);
    await a.arrayBuffer();
    const b = await post(url(), chat('gpt'), { 'x-model': 'gpt', authorization: `Bearer ${GPT_KEY}` });
    assert.equal(b.status, 200);
    await b.arrayBuffer();
    const c = await post(url(), chat('gpt'), { 'x-model': 'gpt', 'x-api-key': GPT_KEY });
    assert.equal(c.status, 200);
    await c.arrayBuffer();
    assert.equal(gpt.received.length, 3);
    for (const r of gpt.received) {
      assert.equal(r.headers.apikey, undefined);
      assert.equal(r.headers['x-api-key'], undefined);
      assert.equal(r.headers.authorization, undefined);
      assert.ok(!JSON.stringify(r.headers).includes(GPT_KEY));
    }
  });

  it("sends the model's own upstream key instead of the client's", async () => {
    const res = await post(url(), chat('scout'), { 'x-model': 'scout', authorization: `Bearer ${SCOUT_KEY}` });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    assert.equal(scout.received.at(-1)!.headers.authorization, 'Bearer upstream-secret');
  });

  it('accepts a key configured by its sha256 form, but not the hash itself', async () => {
    const ok = await post(url(), chat('scout'), { 'x-model': 'scout', apikey: HASHED_KEY });
    assert.equal(ok.status, 200);
    await ok.arrayBuffer();
    const hashAsKey = await post(url(), chat('scout'), { 'x-model': 'scout', apikey: `sha256:${hashKey(HASHED_KEY)}` });
    assert.equal(hashAsKey.status, 401);
    await hashAsKey.arrayBuffer();
  });

  it('takes the key from the apikey query parameter only where key_in_query is on, and strips it', async () => {
    const res = await rawRequest(gw.url, { method: 'POST', path: `/ai/models/v1/chat/completions?apikey=${SCOUT_KEY}&x=1`, headers: { 'x-model': 'scout' }, body: chat('scout') });
    assert.equal(res.status, 200);
    assert.equal(scout.received.at(-1)!.url, '/v1/chat/completions?x=1');
    const refused = await rawRequest(gw.url, { method: 'POST', path: `/ai/models/v1/chat/completions?apikey=${GPT_KEY}`, headers: { 'x-model': 'gpt' }, body: chat('gpt') });
    assert.equal(refused.status, 401);
  });

  it('lets any caller use a model without keys, passing its Authorization through', async () => {
    const res = await post(url(), chat('open'), { 'x-model': 'open', authorization: 'Bearer for-the-upstream' });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    assert.equal(open.received.at(-1)!.headers.authorization, 'Bearer for-the-upstream');
  });

  it('lists only the models the caller may use', async () => {
    const anon = (await (await fetch(`${gw.url}/ai/models/v1/models`)).json()) as { data: Array<{ id: string }> };
    assert.deepEqual(anon.data.map((m) => m.id), ['open']);
    const withKey = (await (await fetch(`${gw.url}/ai/models/v1/models`, { headers: { apikey: GPT_KEY } })).json()) as { data: Array<{ id: string }> };
    assert.deepEqual(withKey.data.map((m) => m.id).sort(), ['gpt', 'open']);
    // A key the gateway does not know may be meant for an open model's upstream: the open ones are listed.
    const unknown = (await (await fetch(`${gw.url}/ai/models/v1/models`, { headers: { authorization: 'Bearer nope' } })).json()) as { data: Array<{ id: string }> };
    assert.deepEqual(unknown.data.map((m) => m.id), ['open']);
  });
});
