import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI, { APIError } from 'openai';
import { Cleanup, startGateway, startSim, type RunningGateway } from '../helpers/harness.js';

const KEY = 'openai-client-key-42';

describe('the official openai client (v6) through the gateway', () => {
  const cleanup = new Cleanup();
  let gw: RunningGateway;
  let client: OpenAI;

  before(async () => {
    const sim = await startSim(cleanup, { model: 'openai/gpt-oss-120b' });
    gw = await startGateway(cleanup, {
      models: [{ name: 'gpt-oss-120b', path: '/ai/models', served_model: 'openai/gpt-oss-120b', api_keys: [KEY], targets: [{ url: sim.url }] }],
    });
    client = new OpenAI({ apiKey: KEY, baseURL: `${gw.url}/ai/models/v1`, defaultHeaders: { 'X-Model': 'gpt-oss-120b' }, maxRetries: 0 });
  });
  after(() => cleanup.run());

  it('creates a chat completion', async () => {
    const r = await client.chat.completions.create({ model: 'openai/gpt-oss-120b', messages: [{ role: 'user', content: 'What is Kong Gateway?' }], max_tokens: 7 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.usage?.completion_tokens, 7);
    assert.equal(typeof r.choices[0]?.message.content, 'string');
  });

  it('streams a chat completion with usage', async () => {
    const stream = await client.chat.completions.create({
      model: 'openai/gpt-oss-120b',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 5,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.ok(text.length > 0);
    assert.equal(usage?.completion_tokens, 5);
  });

  it('creates a text completion', async () => {
    const r = await client.completions.create({ model: 'openai/gpt-oss-120b', prompt: 'Once upon', max_tokens: 3 });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.usage?.completion_tokens, 3);
  });

  it('creates embeddings', async () => {
    const r = await client.embeddings.create({ model: 'openai/gpt-oss-120b', input: ['a', 'b'] });
    assert.equal(r.data.length, 2);
    assert.ok(r.data[0]!.embedding.length > 0);
  });

  it('lists models (X-Model set: the upstream answers)', async () => {
    const page = await client.models.list();
    assert.deepEqual(page.data.map((m) => m.id), ['openai/gpt-oss-120b']);
  });

  it('lists models without X-Model: the gateway answers with the models the key may use, under the same ids', async () => {
    const plain = new OpenAI({ apiKey: KEY, baseURL: `${gw.url}/ai/models/v1`, maxRetries: 0 });
    const page = await plain.models.list();
    assert.deepEqual(page.data.map((m) => m.id), ['openai/gpt-oss-120b']);
  });

  it('surfaces gateway errors as typed API errors with the right status', async () => {
    const wrong = new OpenAI({ apiKey: 'not-a-key', baseURL: `${gw.url}/ai/models/v1`, defaultHeaders: { 'X-Model': 'gpt-oss-120b' }, maxRetries: 0 });
    await assert.rejects(
      wrong.chat.completions.create({ model: 'openai/gpt-oss-120b', messages: [{ role: 'user', content: 'hi' }] }),
      (err: unknown) => err instanceof APIError && err.status === 401 && err.code === 'invalid_api_key',
    );
  });
});
