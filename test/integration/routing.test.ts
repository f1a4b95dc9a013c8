import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Cleanup, chat, post, rawRequest, startGateway, startSim, type RunningGateway } from '../helpers/harness.js';
import type { Simulator } from '../../src/sim/index.js';

describe('routing by path and model', () => {
  let cleanup: Cleanup;
  let gpt: Simulator;
  let scout: Simulator;
  let deep: Simulator;
  let root: Simulator;
  let gw: RunningGateway;

  beforeEach(async () => {
    cleanup = new Cleanup();
    gpt = await startSim(cleanup, { model: 'openai/gpt-oss-120b', id: 'gpt' });
    scout = await startSim(cleanup, { model: 'Llama-4-Scout', id: 'scout' });
    deep = await startSim(cleanup, { model: 'deep-model', id: 'deep' });
    root = await startSim(cleanup, { model: 'root-model', id: 'root' });
    gw = await startGateway(cleanup, {
      models: [
        { name: 'gpt-oss-120b', path: '/ai/models', served_model: 'openai/gpt-oss-120b', targets: [{ url: gpt.url }] },
        { name: 'scout', path: '/ai/models', served_model: 'Llama-4-Scout', targets: [{ url: scout.url }] },
        { name: 'scout', path: '/ai/models/deep', served_model: 'deep-model', targets: [{ url: deep.url }] },
        { name: 'rooted', served_model: 'root-model', targets: [{ url: root.url }] },
      ],
    });
  });
  afterEach(() => cleanup.run());

  it('routes by the X-Model header', async () => {
    const res = await post(`${gw.url}/ai/models/v1/chat/completions`, chat('openai/gpt-oss-120b'), { 'x-model': 'gpt-oss-120b' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-sim-id'), 'gpt');
    const res2 = await post(`${gw.url}/ai/models/v1/chat/completions`, chat('Llama-4-Scout'), { 'x-model': 'scout' });
    assert.equal(res2.headers.get('x-sim-id'), 'scout');
    await res.arrayBuffer();
    await res2.arrayBuffer();
  });

  it('routes by the body model when X-Model is absent, by name then by served id', async () => {
    const byServed = await post(`${gw.url}/ai/models/v1/chat/completions`, chat('Llama-4-Scout'));
    assert.equal(byServed.status, 200);
    assert.equal(byServed.headers.get('x-sim-id'), 'scout');
    await byServed.arrayBuffer();
    const byName = await post(`${gw.url}/ai/models/v1/chat/completions`, chat('gpt-oss-120b'));
    assert.equal(byName.status, 200);
    assert.equal(byName.headers.get('x-sim-id'), 'gpt');
    await byName.arrayBuffer();
    // The alias is replaced by the upstream's own id, which is all vLLM answers to.
    assert.equal(JSON.parse(gpt.received.at(-1)!.body).model, 'openai/gpt-oss-120b');
  });

  it('strips the path prefix and keeps the query string', async () => {
    const res = await post(`${gw.url}/ai/models/v1/chat/completions?foo=1&bar=two`, chat('x'), { 'x-model': 'scout' });
    await res.arrayBuffer();
    assert.equal(scout.received.at(-1)!.url, '/v1/chat/completions?foo=1&bar=two');
  });

  it('picks the longest segment prefix', async () => {
    const res = await post(`${gw.url}/ai/models/deep/v1/chat/completions`, chat('deep-model'), { 'x-model': 'scout' });
    assert.equal(res.headers.get('x-sim-id'), 'deep');
    await res.arrayBuffer();
    assert.equal(deep.received.at(-1)!.url, '/v1/chat/completions');
  });

  it('serves the same name on two paths as two models', async () => {
    const a = await post(`${gw.url}/ai/models/v1/chat/completions`, chat('x'), { 'x-model': 'scout' });
    const b = await post(`${gw.url}/ai/models/deep/v1/chat/completions`, chat('x'), { 'x-model': 'scout' });
    assert.equal(a.headers.get('x-sim-id'), 'scout');
    assert.equal(b.headers.get('x-sim-id'), 'deep');
    await a.arrayBuffer();
    await b.arrayBuffer();
  });

  it('matches prefixes on segment boundaries only', async () => {
    // "/ai/modelsX" is not under "/ai/models": it falls through to the root route.
    const res = await post(`${gw.url}/ai/modelsX/v1/chat/completions`, chat('root-model'));
    assert.equal(res.headers.get('x-sim-id'), 'root');
    await res.arrayBuffer();
    assert.equal(root.received.at(-1)!.url, '/ai/modelsX/v1/chat/completions');
  });

  it('answers 404 model_not_found for an unknown X-Model or body model', async () => {
    for (const res of [
      await post(`${gw.url}/ai/models/v1/chat/completions`, chat('x'), { 'x-model': 'nope' }),
      await post(`${gw.url}/ai/models/v1/chat/completions`, chat('nope')),
    ]) {
      assert.equal(res.status, 404);
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      const body = (await res.json()) as { error: { code: string; type: string }; request_id: string; message: string };
      assert.equal(body.error.code, 'model_not_found');
      assert.equal(body.error.type, 'not_found_error');
      assert.equal(typeof body.message, 'string');
      assert.equal(body.request_id, res.headers.get('x-request-id'));
    }
  });

  it('answers 400 for invalid JSON or no model when the body is needed', async () => {
    const bad = await post(`${gw.url}/ai/models/v1/chat/completions`, '{"model": "gpt-');
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'invalid_request_body');
    const none = await fetch(`${gw.url}/ai/models/v1/chat/completions`, { method: 'POST' });
    assert.equal(none.status, 400);
    assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'model_not_specified');
    const noModel = await post(`${gw.url}/ai/models/v1/chat/completions`, '{"messages": []}');
    assert.equal(noModel.status, 400);
    await noModel.arrayBuffer();
  });

  it('refuses dot segments and encoded slashes instead of forwarding them', async () => {
    for (const path of ['/ai/models/a%2Fb/v1/models', '/ai/models/a%5cb', '/ai/models\\..\\x', '/../ai/models/v1/models', '/ai/models/%2e%2e/%2e%2e/%2e%2e/x']) {
      const res = await rawRequest(gw.url, { method: 'POST', path, body: chat('x'), headers: { 'x-model': 'scout' } });
      assert.equal(res.status, 400, path);
      assert.equal((JSON.parse(res.body) as { error: { code: string } }).error.code, 'invalid_path');
    }
    assert.equal(scout.received.length, 0);
  });

  it('routes on the normalized path: dot segments and doubled slashes cannot escape or confuse a prefix', async () => {
    const cases: Array<[string, number, string | null]> = [
      ['/ai/models//v1/./chat/completions', 200, '/v1/chat/completions'],
      ['/ai/models/x/../v1/chat/completions', 200, '/v1/chat/completions'],
      ['/ai/models/%2E/v1/chat/completions', 200, '/v1/chat/completions'],
      // Climbs out of /ai/models: matched as /ai/v1/..., where no "scout" is served.
      ['/ai/models/../v1/chat/completions', 404, null],
      ['/ai/models/%2e%2e/v1/chat/completions', 404, null],
    ];
    for (const [path, status, upstream] of cases) {
      const res = await rawRequest(gw.url, { method: 'POST', path, body: chat('Llama-4-Scout'), headers: { 'x-model': 'scout' } });
      assert.equal(res.status, status, `${path}: ${res.body}`);
      if (upstream !== null) assert.equal(scout.received.at(-1)!.url, upstream);
    }
  });

  it('lists the models of a path at GET <path>/v1/models without X-Model', async () => {
    const res = await fetch(`${gw.url}/ai/models/v1/models`);
    assert.equal(res.status, 200);
    const list = (await res.json()) as { object: string; data: Array<{ id: string }> };
    assert.equal(list.object, 'list');
    // Listed by the upstreams' own ids, which body routing matches too.
    assert.deepEqual(list.data.map((m) => m.id).sort(), ['Llama-4-Scout', 'openai/gpt-oss-120b']);
  });
});

describe('routing without a root route', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('answers 404 route_not_found for a path no model is under', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', path: '/ai/models', targets: [{ url: sim.url }] }] });
    const res = await post(`${gw.url}/other/v1/chat/completions`, chat('m'), { 'x-model': 'm' });
    assert.equal(res.status, 404);
    const body = (await res.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'route_not_found');
  });
});
