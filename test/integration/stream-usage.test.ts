import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import { Cleanup, startGateway, startSim, type RunningGateway } from '../helpers/harness.js';
import { parsePrometheus, valueOf } from '../helpers/prometheus.js';

interface AccessLine {
  request_id: string;
  status: number;
  prompt_tokens: number | null;
  completion_tokens: number | null;
}

/** until polls `probe` until it returns a value other than undefined, or fails after 5 s. */
async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function tokens(gw: RunningGateway, model: string): Promise<{ prompt: number; completion: number }> {
  const samples = parsePrometheus(await (await fetch(`${gw.statusUrl}/metrics`)).text());
  return { prompt: valueOf(samples, 'igw_tokens_total', { model, kind: 'prompt' }), completion: valueOf(samples, 'igw_tokens_total', { model, kind: 'completion' }) };
}

function linesOf(gw: RunningGateway, requestId: string): AccessLine[] {
  return gw.accessLog.json<AccessLine>().filter((l) => l.request_id === requestId);
}

describe('token counts for streams', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('counts a stream whose client did not ask for usage, on a model without limits, and hides the extra usage event', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    const client = new OpenAI({ apiKey: 'unused', baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const { data: stream, response } = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hello there' }], max_tokens: 6, stream: true }).withResponse();
    const requestId = response.headers.get('x-request-id')!;
    let text = '';
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      assert.equal(chunk.usage ?? null, null, 'no usage in any chunk');
      assert.equal(chunk.choices.length, 1, 'no usage-only chunk');
      text += chunk.choices[0]!.delta.content ?? '';
    }
    assert.ok(text.length > 0 && chunks === 7, `role event + 6 tokens, got ${chunks}`);
    const sent = JSON.parse(sim.received.at(-1)!.body) as { stream_options?: { include_usage?: boolean } };
    assert.equal(sent.stream_options?.include_usage, true);
    const counted = await until('tokens in the metrics', async () => {
      const t = await tokens(gw, 'm');
      return t.completion > 0 ? t : undefined;
    });
    assert.equal(counted.completion, 6);
    assert.ok(counted.prompt > 0);
    const [line] = await until('the access log line', () => (linesOf(gw, requestId).length > 0 ? linesOf(gw, requestId) : undefined));
    assert.deepEqual([line!.status, line!.prompt_tokens, line!.completion_tokens], [200, counted.prompt, 6]);
  });

  it('injects usage into a body that is already parsed (routed by its model field) and into text completions', async () => {
    const sim = await startSim(cleanup, { model: 'served/m' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', served_model: 'served/m', targets: [{ url: sim.url }] }] });
    const client = new OpenAI({ apiKey: 'unused', baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const chat = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, stream: true, stream_options: null });
    for await (const chunk of chat) assert.equal(chunk.usage ?? null, null);
    assert.deepEqual(JSON.parse(sim.received.at(-1)!.body).stream_options, { include_usage: true });
    const completion = await client.completions.create({ model: 'served/m', prompt: 'Once upon', max_tokens: 4, stream: true });
    for await (const chunk of completion) assert.equal(chunk.usage ?? null, null);
    assert.deepEqual(JSON.parse(sim.received.at(-1)!.body).stream_options, { include_usage: true });
    await until('tokens of both streams', async () => ((await tokens(gw, 'm')).completion === 7 ? true : undefined));
  });

  it('still gives a client that asked for usage its usage event, and counts it once', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    const client = new OpenAI({ apiKey: 'unused', baseURL: `${gw.url}/v1`, defaultHeaders: { 'x-model': 'm' }, maxRetries: 0 });
    const body = { model: 'm', messages: [{ role: 'user' as const, content: 'hi' }], max_tokens: 5, stream: true as const, stream_options: { include_usage: true } };
    const stream = await client.chat.completions.create(body);
    const usages: OpenAI.CompletionUsage[] = [];
    for await (const chunk of stream) if (chunk.usage) usages.push(chunk.usage);
    assert.equal(usages.length, 1);
    assert.equal(usages[0]!.completion_tokens, 5);
    // The body went up as the client sent it (the SDK's own serialization).
    assert.equal(sim.received.at(-1)!.body, JSON.stringify(body));
    await until('tokens', async () => ((await tokens(gw, 'm')).completion === 5 ? true : undefined));
  });

  it('forwards the body unchanged and counts no stream tokens with track_stream_usage: false', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, {
      defaults: { track_stream_usage: false },
      models: [{ name: 'm', targets: [{ url: sim.url }] }, { name: 'tracked', track_stream_usage: true, targets: [{ url: sim.url }] }],
    });
    const raw = '{"model":"m","messages":[{"role":"user","content":"hi"}],  "max_tokens":4,"stream":true}';
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: raw, headers: { 'content-type': 'application/json', 'x-model': 'm', 'x-request-id': 'untracked-1' } });
    const text = await res.text();
    assert.equal(res.status, 200);
    assert.ok(!text.includes('"usage"'));
    assert.equal(sim.received.at(-1)!.body, raw);
    const [line] = await until('the access log line', () => (linesOf(gw, 'untracked-1').length > 0 ? linesOf(gw, 'untracked-1') : undefined));
    assert.deepEqual([line!.prompt_tokens, line!.completion_tokens], [null, null]);
    // The model that sets it back on is tracked.
    const tracked = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: raw, headers: { 'content-type': 'application/json', 'x-model': 'tracked' } });
    assert.ok(!(await tracked.text()).includes('"usage"'));
    assert.deepEqual(JSON.parse(sim.received.at(-1)!.body).stream_options, { include_usage: true });
    assert.equal((await tokens(gw, 'm')).completion, 0);
  });

  it('merges into the client own stream_options, and leaves a client that asked for usage alone', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    const msgs = '"messages":[{"role":"user","content":"hi"}],"max_tokens":2';
    const cases: Array<[string, unknown, boolean]> = [
      [`{"model":"m",${msgs},"stream":true,"stream_options":{"include_usage":false}}`, { include_usage: true }, false],
      [`{"model":"m",${msgs},"stream":true,"stream_options":{"continuous_usage_stats":false}}`, { continuous_usage_stats: false, include_usage: true }, false],
      [`{"model":"m",${msgs},"stream":true,"stream_options":null}`, { include_usage: true }, false],
      [`{"stream_options":{},"metadata":{"include_usage":true},"model":"m",${msgs},"stream":true}`, { include_usage: true }, false],
      [`{"metadata":{"stream_options":{"include_usage":true}},"model":"m",${msgs},"stream":true}`, { include_usage: true }, false],
      [`{"model":"m",${msgs},"stream":true,"stream_options":{ "include_usage" : true }}`, { include_usage: true }, true],
    ];
    for (const [body, sent, asked] of cases) {
      const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-model': 'm' } });
      const text = await res.text();
      assert.equal(res.status, 200, body);
      assert.deepEqual(JSON.parse(sim.received.at(-1)!.body).stream_options, sent, body);
      assert.equal(text.includes('"usage":{'), asked, body);
      if (asked) assert.equal(sim.received.at(-1)!.body, body, 'a client that asked for usage has its body forwarded as sent');
    }
    await until('tokens of every stream', async () => ((await tokens(gw, 'm')).completion === 2 * cases.length ? true : undefined));
  });

  it('reads a repeated key as the engine does, by its last value, so a stream cannot hide from usage tracking', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    const msgs = '"messages":[{"role":"user","content":"hi"}],"max_tokens":2';
    const streams = [`{"model":"m","stream":false,${msgs},"stream":true}`, `{"model":"m",${msgs},"stream":true,"stream_options":{"include_usage":true,"include_usage":false}}`];
    for (const body of streams) {
      const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-model': 'm' } });
      const text = await res.text();
      assert.equal(res.status, 200, body);
      assert.ok(text.startsWith('data: '), body);
      assert.deepEqual(JSON.parse(sim.received.at(-1)!.body).stream_options, { include_usage: true }, body);
      assert.equal(text.includes('"usage":{'), false, body);
    }
    await until('tokens of both streams', async () => ((await tokens(gw, 'm')).completion === 2 * streams.length ? true : undefined));
    const notStream = `{"model":"m","stream":true,${msgs},"stream":false}`;
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: notStream, headers: { 'content-type': 'application/json', 'x-model': 'm' } });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    assert.equal(sim.received.at(-1)!.body, notStream);
  });

  it('leaves non-stream requests and bodies that only mention "stream" untouched', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    const bodies = [
      '{"model":"m","messages":[{"role":"user","content":"\\"stream\\": true"}],"max_tokens":2}',
      '{"model":"m","metadata":{"stream":true},"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"stream":false}',
      '{"model":"m","messages":[{"role":"user","content":"x\\\\"}],"user":"\\"stream\\":true","max_tokens":2}',
    ];
    for (const body of bodies) {
      const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-model': 'm' } });
      assert.equal(res.status, 200, await res.clone().text());
      await res.arrayBuffer();
      assert.equal(sim.received.at(-1)!.body, body);
    }
  });

  it('records the tokens exactly once when the client leaves right after the last content event', async () => {
    // An engine that holds its usage event until the test lets it go: the client is gone by then.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let upstreamBody = '';
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((r) => (upstreamClosed = r));
    const head = 'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[';
    const upstream = createServer((req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        upstreamBody = body;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(`${head}{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n`);
        res.write(`${head}{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n`);
        res.write(`${head}{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}]}\n\n`);
        res.on('close', upstreamClosed);
        void released.then(() => res.end(`${head}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}\n\ndata: [DONE]\n\n`));
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    cleanup.add(() => new Promise<void>((r) => upstream.close(() => r())));
    cleanup.add(() => release());
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` }] }] });
    const client = new OpenAI({ apiKey: 'unused', baseURL: `${gw.url}/v1`, defaultHeaders: { 'x-request-id': 'leaves-early' }, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true });
    for await (const chunk of stream) if (chunk.choices[0]?.finish_reason) break;
    assert.equal(JSON.parse(upstreamBody).stream_options.include_usage, true);
    // The gateway has seen the client go.
    await until('the client close', async () => {
      const s = (await (await fetch(`${gw.statusUrl}/status`)).json()) as { server: { requests_inflight: number } };
      return s.server.requests_inflight === 0 ? true : undefined;
    });
    release();
    await closed;
    const counted = await until('tokens in the metrics', async () => {
      const t = await tokens(gw, 'm');
      return t.completion > 0 ? t : undefined;
    });
    assert.deepEqual(counted, { prompt: 9, completion: 2 });
    const lines = await until('the access log line', () => (linesOf(gw, 'leaves-early').length > 0 ? linesOf(gw, 'leaves-early') : undefined));
    assert.equal(lines.length, 1);
    assert.deepEqual([lines[0]!.status, lines[0]!.prompt_tokens, lines[0]!.completion_tokens], [499, 9, 2]);
    // Nothing is counted a second time once the upstream exchange is over.
    const samples = parsePrometheus(await (await fetch(`${gw.statusUrl}/metrics`)).text());
    assert.equal(valueOf(samples, 'igw_inflight_requests', { model: 'm' }), 0);
    assert.deepEqual(await tokens(gw, 'm'), { prompt: 9, completion: 2 });
    assert.equal(linesOf(gw, 'leaves-early').length, 1);
  });

  it('gives up on a usage event that never comes after the client left, and records the request once', async () => {
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((r) => (upstreamClosed = r));
    const head = 'data: {"id":"c2","object":"chat.completion.chunk","created":1,"model":"m","choices":[';
    const upstream = createServer((req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(`${head}{"index":0,"delta":{"content":"Hi"},"finish_reason": "stop"}]}\n\n`);
        res.on('close', upstreamClosed);
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    cleanup.add(() => new Promise<void>((r) => upstream.close(() => r())));
    cleanup.add(() => upstream.closeAllConnections());
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` }] }] });
    const client = new OpenAI({ apiKey: 'unused', baseURL: `${gw.url}/v1`, defaultHeaders: { 'x-request-id': 'never-usage' }, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true });
    for await (const chunk of stream) if (chunk.choices[0]?.finish_reason) break;
    await closed;
    const lines = await until('the access log line', () => (linesOf(gw, 'never-usage').length > 0 ? linesOf(gw, 'never-usage') : undefined));
    assert.deepEqual(lines.map((l) => [l.status, l.prompt_tokens, l.completion_tokens]), [[499, null, null]]);
    const samples = parsePrometheus(await (await fetch(`${gw.statusUrl}/metrics`)).text());
    assert.equal(valueOf(samples, 'igw_inflight_requests', { model: 'm' }), 0);
  });

  it('still aborts the upstream at once when the client leaves mid-generation', async () => {
    const sim = await startSim(cleanup, { model: 'm', itlMs: 20 });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    const client = new OpenAI({ apiKey: 'unused', baseURL: `${gw.url}/v1`, defaultHeaders: { 'x-model': 'm' }, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 200, stream: true });
    let n = 0;
    for await (const _ of stream) if (++n === 3) break;
    await sim.waitFor((s) => s.aborted === 1);
  });
});
