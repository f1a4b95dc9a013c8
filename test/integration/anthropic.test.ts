/**
 * The Anthropic Messages API through the gateway, with the official @anthropic-ai/sdk client in
 * front and the vLLM-compatible simulator behind: the translation end to end, on real sockets.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import Anthropic, { APIError, AuthenticationError, BadRequestError, NotFoundError, RateLimitError } from '@anthropic-ai/sdk';
import type { Simulator } from '../../src/sim/index.js';
import { parsePrometheus, valueOf } from '../helpers/prometheus.js';
import { Cleanup, post, rawRequest, startGateway, startSim, type RunningGateway } from '../helpers/harness.js';

const KEY = 'anthropic-client-key-42';
const LIMITED_KEY = 'anthropic-limited-key-42';
const NATIVE_KEY = 'anthropic-native-key-42';
const SERVED = 'openai/gpt-oss-120b';
const WEATHER_TOOL = { name: 'get_weather', description: 'Weather of a city.', input_schema: { type: 'object' as const, properties: { city: { type: 'string' } }, required: ['city'] } };
// A 1x1 PNG.
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';

type Usage = { prompt_tokens: number; completion_tokens: number };

describe('the Anthropic Messages API (official SDK) in front of an OpenAI-compatible engine', () => {
  const cleanup = new Cleanup();
  let sim: Simulator;
  let gw: RunningGateway;
  let client: Anthropic;
  const nativeReceived: Array<{ url: string; headers: IncomingHttpHeaders; body: string }> = [];

  /** upstreamUsage replays the last request the engine got, directly, and returns the usage it reports. */
  const upstreamUsage = async (): Promise<Usage> => {
    const body = JSON.parse(sim.received.at(-1)!.body) as Record<string, unknown>;
    const res = await post(`${sim.url}/v1/chat/completions`, JSON.stringify({ ...body, stream: false, stream_options: undefined }));
    return ((await res.json()) as { usage: Usage }).usage;
  };

  before(async () => {
    sim = await startSim(cleanup, { model: SERVED });
    // An engine that serves the Messages API itself, for passthrough.
    const native = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        nativeReceived.push({ url: req.url ?? '', headers: req.headers, body });
        const answer = JSON.stringify({ id: 'msg_native', type: 'message', role: 'assistant', model: 'native', content: [{ type: 'text', text: 'hi' }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 11, output_tokens: 7 } });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) }).end(answer);
      });
    });
    await new Promise<void>((r) => native.listen(0, '127.0.0.1', r));
    cleanup.add(() => new Promise<void>((r) => native.close(() => r())));
    gw = await startGateway(cleanup, {
      models: [
        { name: 'gpt-oss-120b', path: '/ai/models', served_model: SERVED, api_keys: [KEY], targets: [{ url: sim.url }] },
        { name: 'limited', path: '/ai/models', served_model: SERVED, api_keys: [LIMITED_KEY], limits: { tokens: { per_minute: 60 } }, targets: [{ url: sim.url }] },
        { name: 'native', path: '/ai/models', protocols: { anthropic: 'passthrough' }, api_keys: [NATIVE_KEY], targets: [{ url: `http://127.0.0.1:${(native.address() as AddressInfo).port}` }] },
        { name: 'closed', path: '/ai/models', protocols: { anthropic: 'off' }, targets: [{ url: sim.url }] },
      ],
    });
    client = new Anthropic({ apiKey: KEY, baseURL: `${gw.url}/ai/models`, maxRetries: 0 });
  });
  after(() => cleanup.run());

  it('creates a message (non-streaming), with the engine usage and the served model', async () => {
    const msg = await client.messages.create({ model: 'gpt-oss-120b', max_tokens: 5, system: 'Be terse.', messages: [{ role: 'user', content: 'What is Kong Gateway?' }] });
    assert.equal(msg.type, 'message');
    assert.equal(msg.role, 'assistant');
    assert.match(msg.id, /^msg_/);
    assert.equal(msg.model, SERVED);
    assert.equal(msg.content[0]?.type, 'text');
    assert.equal(msg.stop_reason, 'max_tokens');
    const sent = JSON.parse(sim.received.at(-1)!.body) as { model: string; messages: unknown[] };
    assert.equal(sim.received.at(-1)!.url, '/v1/chat/completions');
    assert.equal(sent.model, SERVED);
    assert.deepEqual(sent.messages, [{ role: 'system', content: 'Be terse.' }, { role: 'user', content: 'What is Kong Gateway?' }]);
    const usage = await upstreamUsage();
    assert.deepEqual({ input: msg.usage.input_tokens, output: msg.usage.output_tokens }, { input: usage.prompt_tokens, output: usage.completion_tokens });
    // The client's credential never reaches the engine.
    assert.equal(sim.received.at(-2)!.headers['x-api-key'], undefined);
    assert.ok(!JSON.stringify(sim.received.at(-2)!.headers).includes(KEY));
  });

  it('streams a message: the full event sequence, usage in message_delta equal to the engine usage', async () => {
    const stream = client.messages.stream({ model: 'gpt-oss-120b', max_tokens: 6, messages: [{ role: 'user', content: 'hello there' }] });
    const types: string[] = [];
    let text = '';
    for await (const e of stream) {
      types.push(e.type);
      if (e.type === 'content_block_delta' && e.delta.type === 'text_delta') text += e.delta.text;
    }
    const msg = await stream.finalMessage();
    assert.deepEqual(types, ['message_start', 'content_block_start', ...Array(6).fill('content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop']);
    assert.equal(text, 'tok '.repeat(6));
    assert.equal(msg.stop_reason, 'max_tokens');
    const sent = JSON.parse(sim.received.at(-1)!.body) as { stream_options: unknown };
    assert.deepEqual(sent.stream_options, { include_usage: true });
    const usage = await upstreamUsage();
    assert.deepEqual({ input: msg.usage.input_tokens, output: msg.usage.output_tokens }, { input: usage.prompt_tokens, output: usage.completion_tokens });
  });

  it('sends ping after message_start on the wire', async () => {
    const res = await post(`${gw.url}/ai/models/v1/messages`, JSON.stringify({ model: 'gpt-oss-120b', max_tokens: 1, stream: true, messages: [{ role: 'user', content: 'hi' }] }), { 'x-api-key': KEY });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const names = [...(await res.text()).matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    assert.deepEqual(names.slice(0, 2), ['message_start', 'ping']);
    assert.equal(names.at(-1), 'message_stop');
  });

  it('reports end_turn and stop_sequence stop reasons', async () => {
    const natural = await client.messages.create({ model: 'gpt-oss-120b', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-sim-chunks': '2' } });
    assert.equal(natural.stop_reason, 'end_turn');
    assert.equal(natural.stop_sequence, null);
    const stopped = await client.messages.create({ model: 'gpt-oss-120b', max_tokens: 10, stop_sequences: ['###'], messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-sim-chunks': '2' } });
    assert.equal(stopped.stop_reason, 'stop_sequence');
    assert.equal(stopped.stop_sequence, '###');
    const stream = client.messages.stream({ model: 'gpt-oss-120b', max_tokens: 10, stop_sequences: ['###'], messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-sim-chunks': '3' } });
    const streamed = await stream.finalMessage();
    assert.equal(streamed.stop_reason, 'stop_sequence');
    assert.equal(streamed.stop_sequence, '###');
  });

  it('runs a tool-use round trip: tool call, tool result, final answer', async () => {
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];
    const first = await client.messages.create({ model: 'gpt-oss-120b', max_tokens: 50, tools: [WEATHER_TOOL], messages });
    assert.equal(first.stop_reason, 'tool_use');
    const call = first.content.find((b) => b.type === 'tool_use');
    assert.ok(call !== undefined && call.type === 'tool_use');
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(call.input, { city: 'tok' });
    messages.push({ role: 'assistant', content: first.content });
    messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '18C and cloudy' }] });
    const final = await client.messages.create({ model: 'gpt-oss-120b', max_tokens: 4, tools: [WEATHER_TOOL], messages });
    assert.equal(final.stop_reason, 'max_tokens');
    assert.equal(final.content[0]?.type, 'text');
    const sent = JSON.parse(sim.received.at(-1)!.body) as { messages: Array<Record<string, unknown>> };
    assert.deepEqual(sent.messages.slice(1), [
      { role: 'assistant', content: null, tool_calls: [{ id: call.id, type: 'function', function: { name: 'get_weather', arguments: '{"city":"tok"}' } }] },
      { role: 'tool', tool_call_id: call.id, content: '18C and cloudy' },
    ]);
  });

  it('streams a tool call as input_json_delta events the SDK assembles', async () => {
    const stream = client.messages.stream({ model: 'gpt-oss-120b', max_tokens: 50, tools: [WEATHER_TOOL], tool_choice: { type: 'tool', name: 'get_weather' }, messages: [{ role: 'user', content: 'Paris?' }] });
    let deltas = 0;
    for await (const e of stream) if (e.type === 'content_block_delta' && e.delta.type === 'input_json_delta') deltas++;
    const msg = await stream.finalMessage();
    assert.ok(deltas >= 2);
    assert.equal(msg.stop_reason, 'tool_use');
    assert.deepEqual(msg.content.map((b) => (b.type === 'tool_use' ? [b.name, b.input] : b.type)), [['get_weather', { city: 'tok' }]]);
    assert.deepEqual((JSON.parse(sim.received.at(-1)!.body) as { tool_choice: unknown }).tool_choice, { type: 'function', function: { name: 'get_weather' } });
  });

  it('sends an image block to the engine as an image_url data URL', async () => {
    const msg = await client.messages.create({
      model: 'gpt-oss-120b',
      max_tokens: 3,
      messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } }, { type: 'text', text: 'What is this?' }] }],
    });
    assert.equal(msg.content[0]?.type, 'text');
    const sent = JSON.parse(sim.received.at(-1)!.body) as { messages: Array<{ content: unknown }> };
    assert.deepEqual(sent.messages[0]!.content, [{ type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }, { type: 'text', text: 'What is this?' }]);
  });

  it('answers a wrong key with the SDK AuthenticationError (Anthropic error shape)', async () => {
    const wrong = new Anthropic({ apiKey: 'not-a-key', baseURL: `${gw.url}/ai/models`, maxRetries: 0 });
    await assert.rejects(wrong.messages.create({ model: 'gpt-oss-120b', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }), (err: unknown) => {
      assert.ok(err instanceof AuthenticationError);
      assert.equal(err.status, 401);
      assert.equal((err.error as { type: string; error: { type: string } }).error.type, 'authentication_error');
      assert.equal(err.headers?.get('x-gateway-error'), 'invalid_api_key');
      return true;
    });
  });

  it('refuses an unsupported field with BadRequestError naming it, without calling the engine', async () => {
    const before = sim.stats.requests;
    await assert.rejects(
      client.messages.create({ model: 'gpt-oss-120b', max_tokens: 5, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [{ role: 'user', content: 'hi' }] }),
      (err: unknown) => err instanceof BadRequestError && (err.error as { error: { type: string } }).error.type === 'invalid_request_error' && err.message.includes('thinking'),
    );
    assert.equal(sim.stats.requests, before);
  });

  it('translates an engine error body into the Anthropic shape, keeping its status', async () => {
    await assert.rejects(client.messages.create({ model: 'gpt-oss-120b', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-sim-status': '400' } }), (err: unknown) => {
      assert.ok(err instanceof BadRequestError);
      assert.deepEqual((err.error as { error: unknown }).error, { type: 'invalid_request_error', message: 'simulated' });
      return true;
    });
  });

  it('ends a stream the engine breaks with an error event the SDK raises', async () => {
    const stream = client.messages.stream({ model: 'gpt-oss-120b', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-sim-fail-after-chunks': '2' } });
    let deltas = 0;
    await assert.rejects(
      (async () => {
        for await (const e of stream) if (e.type === 'content_block_delta') deltas++;
      })(),
      (err: unknown) => err instanceof APIError && (err.error as { error: { type: string } }).error.type === 'api_error',
    );
    assert.equal(deltas, 2);
  });

  it('aborts the engine request when the client cancels a stream', async () => {
    const aborted = sim.stats.aborted;
    const stream = client.messages.stream({ model: 'gpt-oss-120b', max_tokens: 200, messages: [{ role: 'user', content: 'long story' }] }, { headers: { 'x-sim-itl-ms': '20' } });
    for await (const e of stream) if (e.type === 'content_block_delta') break;
    await sim.waitFor((s) => s.aborted === aborted + 1);
  });

  it('reserves tokens on max_tokens and answers the limit in Anthropic shape with its headers', async () => {
    const limited = new Anthropic({ apiKey: LIMITED_KEY, baseURL: `${gw.url}/ai/models`, maxRetries: 0 });
    const ok = await limited.messages.create({ model: 'limited', max_tokens: 3, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(ok.stop_reason, 'max_tokens');
    await assert.rejects(limited.messages.create({ model: 'limited', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }), (err: unknown) => {
      assert.ok(err instanceof RateLimitError);
      assert.equal((err.error as { error: { type: string } }).error.type, 'rate_limit_error');
      assert.ok(Number(err.headers?.get('retry-after')) >= 1);
      assert.ok(err.headers?.get('x-request-id'));
      return true;
    });
  });

  it('counts translated requests in the access log and metrics like any other', async () => {
    const line = gw.accessLog.json<{ path: string; model: string; status: number; prompt_tokens: number; completion_tokens: number }>().find((l) => l.path === '/ai/models/v1/messages' && l.status === 200);
    assert.ok(line !== undefined);
    assert.equal(line.model, 'gpt-oss-120b');
    assert.ok(line.prompt_tokens > 0 && line.completion_tokens > 0);
    const samples = parsePrometheus(await (await fetch(`${gw.statusUrl}/metrics`)).text());
    assert.ok(valueOf(samples, 'igw_tokens_total', { model: 'gpt-oss-120b', kind: 'completion' }) > 0);
    assert.ok(valueOf(samples, 'igw_requests_total', { model: 'gpt-oss-120b', status: '200' }) >= 8);
  });

  it('forwards /v1/messages untouched in passthrough mode (usage still counted), and answers 404 in Anthropic shape when off', async () => {
    const native = new Anthropic({ apiKey: NATIVE_KEY, baseURL: `${gw.url}/ai/models`, maxRetries: 0 });
    const msg = await native.messages.create({ model: 'native', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(msg.id, 'msg_native');
    const got = nativeReceived.at(-1)!;
    assert.equal(got.url, '/v1/messages');
    assert.deepEqual(JSON.parse(got.body), { model: 'native', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(got.headers['x-api-key'], undefined);
    const line = gw.accessLog.json<{ model: string; prompt_tokens: number; completion_tokens: number }>().findLast((l) => l.model === 'native');
    assert.deepEqual([line?.prompt_tokens, line?.completion_tokens], [11, 7]);
    const closed = new Anthropic({ apiKey: 'unused', baseURL: `${gw.url}/ai/models`, maxRetries: 0 });
    await assert.rejects(closed.messages.create({ model: 'closed', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }), (err: unknown) => err instanceof NotFoundError && err.headers?.get('x-gateway-error') === 'endpoint_not_found');
  });

  it('answers the gateway own errors on this route in Anthropic shape', async () => {
    const unknown = await post(`${gw.url}/ai/models/v1/messages`, JSON.stringify({ model: 'nope', max_tokens: 5, messages: [] }), { 'x-api-key': KEY });
    assert.equal(unknown.status, 404);
    const body = (await unknown.json()) as { type: string; error: { type: string; message: string }; request_id: string };
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, 'not_found_error');
    assert.equal(body.request_id, unknown.headers.get('x-request-id'));
    const notJson = await post(`${gw.url}/ai/models/v1/messages`, '{not json', { 'x-api-key': KEY, 'x-model': 'gpt-oss-120b' });
    assert.equal(notJson.status, 400);
    assert.equal(((await notJson.json()) as { error: { type: string } }).error.type, 'invalid_request_error');
    // Translation is decided on the normalized path, whatever the client's spelling.
    const dotted = await rawRequest(gw.url, { method: 'POST', path: '/ai/models/v1/x/../messages', headers: { 'x-api-key': KEY, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-oss-120b', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] }) });
    assert.equal((JSON.parse(dotted.body) as { type: string }).type, 'message');
    const noRoute = await post(`${gw.url}/elsewhere/v1/messages`, '{}');
    assert.equal(noRoute.status, 404);
    assert.equal(((await noRoute.json()) as { type: string }).type, 'error');
  });
});
