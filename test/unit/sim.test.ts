/**
 * Unit tests of the vLLM-compatible simulator over real sockets: wire shapes, steering headers,
 * queueing and the abort accounting the gateway's cancellation tests depend on.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { Simulator } from '../../src/sim/index.js';
import type { SimulatorOptions } from '../../src/sim/index.js';

const MODEL = 'openai/gpt-oss-120b';

/** Starts a simulator that is closed when the test ends. */
async function startSim(t: TestContext, opts: Partial<SimulatorOptions> = {}): Promise<Simulator> {
  const sim = new Simulator({ model: MODEL, ...opts });
  await sim.listen();
  t.after(() => sim.close());
  return sim;
}

function post(sim: Simulator, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(sim.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Splits an SSE body into its `data:` payloads. */
function sseData(text: string): string[] {
  return text
    .split('\n\n')
    .filter((e) => e.length > 0)
    .map((e) => {
      assert.ok(e.startsWith('data: '), `unexpected SSE event ${JSON.stringify(e)}`);
      return e.slice('data: '.length);
    });
}

interface Chunk {
  object: string;
  choices: Array<{ index: number; delta?: { role?: string; content?: string }; text?: string; finish_reason: string | null }>;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

/** Opens a streaming POST with node:http so the test controls the socket. */
function openStream(sim: Simulator, path: string, body: unknown, headers: Record<string, string> = {}) {
  const req = request(sim.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  // Tests destroy these requests on purpose; the resulting errors are expected, not failures.
  req.on('error', () => {});
  response.catch(() => {});
  req.end(JSON.stringify(body));
  return { req, response };
}

const chatBody = (extra: Record<string, unknown> = {}) => ({
  model: MODEL,
  messages: [
    { role: 'system', content: 'be brief' }, // 8 chars
    { role: 'user', content: 'hello world!' }, // 12 chars
  ],
  ...extra,
});

test('non-stream chat: shape, usage and max_tokens', async (t) => {
  const sim = await startSim(t);
  const res = await post(sim, '/v1/chat/completions', chatBody({ max_tokens: 5 }));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-sim-id'), `127.0.0.1:${sim.port}`);
  assert.equal(res.headers.get('x-simulator-id'), `127.0.0.1:${sim.port}`);
  const body = (await res.json()) as {
    id: string;
    object: string;
    model: string;
    choices: Array<{ message: { role: string; content: string }; finish_reason: string }>;
    usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  };
  assert.match(body.id, /^chatcmpl-/);
  assert.equal(body.object, 'chat.completion');
  assert.equal(body.model, MODEL);
  assert.deepEqual(body.choices[0]?.message, { role: 'assistant', content: 'tok tok tok tok tok ' });
  assert.equal(body.choices[0]?.finish_reason, 'length');
  // ceil(20 chars / 4) + 1 per message
  assert.deepEqual(body.usage, { prompt_tokens: 7, completion_tokens: 5, total_tokens: 12 });

  const viaMct = (await (await post(sim, '/v1/chat/completions', chatBody({ max_completion_tokens: 2 }))).json()) as typeof body;
  assert.equal(viaMct.usage.completion_tokens, 2);
  const dflt = (await (await post(sim, '/v1/chat/completions', chatBody())).json()) as typeof body;
  assert.equal(dflt.usage.completion_tokens, 16);

  await sim.waitFor((s) => s.completed === 3);
  assert.deepEqual(sim.stats, { requests: 3, completed: 3, aborted: 0, failed: 0, running: 0, waiting: 0, prefixHits: 0, prefixQueries: 0, loraLoads: 0 });
});

test('stream chat: role chunk, content chunks, usage chunk, [DONE]', async (t) => {
  const sim = await startSim(t);
  const res = await post(sim, '/v1/chat/completions', chatBody({ max_tokens: 3, stream: true, stream_options: { include_usage: true } }));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  const data = sseData(await res.text());
  assert.equal(data.at(-1), '[DONE]');
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as Chunk);
  assert.equal(chunks.length, 5); // role + 3 content + usage
  assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
  assert.deepEqual(chunks[0]?.choices[0]?.delta, { role: 'assistant', content: '' });
  assert.deepEqual(
    chunks.slice(1, 4).map((c) => [c.choices[0]?.delta?.content, c.choices[0]?.finish_reason]),
    [
      ['tok ', null],
      ['tok ', null],
      ['tok ', 'length'],
    ],
  );
  assert.deepEqual(chunks[4]?.choices, []);
  assert.deepEqual(chunks[4]?.usage, { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });

  // Without include_usage there is no usage chunk.
  const plain = sseData(await (await post(sim, '/v1/chat/completions', chatBody({ max_tokens: 2, stream: true }))).text());
  assert.equal(plain.length, 4);
  assert.ok(!plain.some((d) => d.includes('"usage"')));
});

test('stream honours ttft and x-sim-chunks', async (t) => {
  const sim = await startSim(t, { ttftMs: 60 });
  const t0 = Date.now();
  const res = await post(sim, '/v1/chat/completions', chatBody({ max_tokens: 10, stream: true, stream_options: { include_usage: true } }), {
    'x-sim-chunks': '3',
  });
  const chunks = sseData(await res.text())
    .slice(0, -1)
    .map((d) => JSON.parse(d) as Chunk);
  assert.ok(Date.now() - t0 >= 55, 'ttft delay applied');
  const content = chunks.filter((c) => c.choices[0]?.delta?.content === 'tok ');
  assert.equal(content.length, 3);
  assert.equal(content[2]?.choices[0]?.finish_reason, 'stop'); // fewer than max_tokens
  assert.equal(chunks.at(-1)?.usage?.completion_tokens, 3);
});

test('completions: non-stream and stream', async (t) => {
  const sim = await startSim(t);
  const res = await post(sim, '/v1/completions', { model: MODEL, prompt: ['abcd', 'efgh'], max_tokens: 2 });
  assert.equal(res.status, 200);
  const body = (await res.json()) as {
    object: string;
    choices: Array<{ text: string; finish_reason: string }>;
    usage: { prompt_tokens: number; completion_tokens: number };
  };
  assert.equal(body.object, 'text_completion');
  assert.equal(body.choices[0]?.text, 'tok tok ');
  assert.equal(body.choices[0]?.finish_reason, 'length');
  assert.equal(body.usage.prompt_tokens, 2);
  assert.equal(body.usage.completion_tokens, 2);

  const data = sseData(
    await (await post(sim, '/v1/completions', { prompt: 'hi', max_tokens: 2, stream: true, stream_options: { include_usage: true } })).text(),
  );
  assert.equal(data.length, 4); // 2 content + usage + [DONE]; no role chunk for text completions
  const first = JSON.parse(data[0] ?? '') as Chunk;
  assert.equal(first.object, 'text_completion');
  assert.equal(first.choices[0]?.text, 'tok ');
  assert.equal((JSON.parse(data[2] ?? '') as Chunk).usage?.completion_tokens, 2);
  assert.equal(data[3], '[DONE]');
});

test('embeddings for string and string[]', async (t) => {
  const sim = await startSim(t);
  type Emb = { object: string; model: string; data: Array<{ object: string; index: number; embedding: number[] }>; usage: { prompt_tokens: number; total_tokens: number } };
  const one = (await (await post(sim, '/v1/embeddings', { model: MODEL, input: 'hello' })).json()) as Emb;
  assert.equal(one.object, 'list');
  assert.equal(one.model, MODEL);
  assert.equal(one.data.length, 1);
  assert.equal(one.data[0]?.embedding.length, 8);
  assert.deepEqual(one.usage, { prompt_tokens: 2, total_tokens: 2 });
  const many = (await (await post(sim, '/v1/embeddings', { input: ['hello', 'world', 'hello'] })).json()) as Emb;
  assert.deepEqual(
    many.data.map((d) => [d.object, d.index]),
    [
      ['embedding', 0],
      ['embedding', 1],
      ['embedding', 2],
    ],
  );
  assert.deepEqual(many.data[0]?.embedding, one.data[0]?.embedding, 'deterministic');
  assert.notDeepEqual(many.data[1]?.embedding, many.data[0]?.embedding);
});

test('models, health, metrics, stats and 404', async (t) => {
  const sim = await startSim(t, { id: 'sim-a', maxConcurrency: 4 });
  const models = await fetch(sim.url + '/v1/models');
  assert.equal(models.headers.get('x-sim-id'), 'sim-a');
  const list = (await models.json()) as { object: string; data: Array<{ id: string; object: string; owned_by: string; root: string }> };
  assert.equal(list.object, 'list');
  assert.deepEqual(
    list.data.map((m) => [m.id, m.object, m.owned_by, m.root]),
    [[MODEL, 'model', 'vllm', MODEL]],
  );

  const health = await fetch(sim.url + '/health');
  assert.equal(health.status, 200);
  assert.equal(await health.text(), '');

  await (await post(sim, '/v1/chat/completions', chatBody({ max_tokens: 4 }))).text();
  const metrics = await (await fetch(sim.url + '/metrics')).text();
  const label = `{model_name="${MODEL}"}`;
  for (const name of ['vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:kv_cache_usage_perc']) {
    assert.match(metrics, new RegExp(`# TYPE ${name} gauge\n`));
    assert.ok(metrics.includes(`${name}${label} 0\n`), name);
  }
  assert.ok(metrics.includes(`vllm:prompt_tokens_total${label} 7\n`));
  assert.ok(metrics.includes(`vllm:generation_tokens_total${label} 4\n`));
  assert.ok(metrics.includes(`vllm:request_success_total${label} 1\n`));
  assert.ok(metrics.includes(`sim_requests_aborted_total${label} 0\n`));

  const stats = (await (await fetch(sim.url + '/sim/stats')).json()) as { requests: number };
  assert.equal(stats.requests, 1);

  const missing = await fetch(sim.url + '/v1/nope');
  assert.equal(missing.status, 404);
  assert.deepEqual(await missing.json(), { detail: 'Not Found' });
  assert.equal(missing.headers.get('x-sim-id'), 'sim-a');
});

test('received keeps method, url, headers and full body', async (t) => {
  const sim = await startSim(t);
  const body = JSON.stringify(chatBody({ max_tokens: 1 }));
  await (await post(sim, '/v1/chat/completions?x=1', body, { authorization: 'Bearer k' })).text();
  await (await fetch(sim.url + '/health')).text();
  const [chat, health] = sim.received;
  assert.equal(sim.received.length, 2);
  assert.equal(chat?.method, 'POST');
  assert.equal(chat?.url, '/v1/chat/completions?x=1');
  assert.equal(chat?.headers.authorization, 'Bearer k');
  assert.equal(chat?.body, body);
  assert.equal(health?.url, '/health');
});

test('errors: x-sim-status, failRate, wrong model, invalid JSON, bad max_tokens', async (t) => {
  let roll = 0;
  const sim = await startSim(t, { failRate: 0.5, random: () => roll });

  const s503 = await post(sim, '/v1/chat/completions', chatBody(), { 'x-sim-status': '503' });
  assert.equal(s503.status, 503);
  assert.deepEqual(await s503.json(), { error: { message: 'simulated', type: 'sim_error', code: 503 } });

  roll = 0.9;
  const ok = await post(sim, '/v1/chat/completions', chatBody({ max_tokens: 1 }), { 'x-sim-status': '200' });
  assert.equal(ok.status, 200);
  await ok.text();

  roll = 0.1;
  const failed = await post(sim, '/v1/chat/completions', chatBody());
  assert.equal(failed.status, 500);
  assert.equal(((await failed.json()) as { error: { type: string } }).error.type, 'InternalServerError');
  roll = 0.9;

  const wrongModel = await post(sim, '/v1/chat/completions', { ...chatBody(), model: 'other' });
  assert.equal(wrongModel.status, 404);
  assert.deepEqual(await wrongModel.json(), {
    error: { message: 'The model `other` does not exist.', type: 'NotFoundError', param: null, code: 404 },
  });

  for (const path of ['/v1/chat/completions', '/v1/completions', '/v1/embeddings']) {
    const bad = await post(sim, path, '{"messages": [');
    assert.equal(bad.status, 400, path);
    const err = (await bad.json()) as { error: { type: string; code: number } };
    assert.equal(err.error.type, 'BadRequestError');
    assert.equal(err.error.code, 400);
  }
  assert.equal((await post(sim, '/v1/chat/completions', '[1,2]')).status, 400);
  assert.equal((await post(sim, '/v1/chat/completions', chatBody({ max_tokens: -1 }))).status, 400);
  assert.equal((await post(sim, '/v1/completions', { max_tokens: 2 })).status, 400);

  await sim.waitFor((s) => s.completed === s.requests);
  assert.equal(sim.stats.aborted, 0);
});

test('x-sim-latency-ms delays the response headers', async (t) => {
  const sim = await startSim(t);
  const t0 = Date.now();
  const res = await post(sim, '/v1/chat/completions', chatBody({ max_tokens: 1 }), { 'x-sim-latency-ms': '80' });
  assert.ok(Date.now() - t0 >= 75);
  assert.equal(res.status, 200);
  await res.text();
});

test('queue: maxConcurrency 1 makes the second request wait', async (t) => {
  const sim = await startSim(t, { maxConcurrency: 1, ttftMs: 150 });
  const first = post(sim, '/v1/chat/completions', chatBody({ max_tokens: 1 }));
  await sim.waitFor((s) => s.running === 1);
  const second = post(sim, '/v1/chat/completions', chatBody({ max_tokens: 1 }));
  await sim.waitFor((s) => s.running === 1 && s.waiting === 1);

  const metrics = await (await fetch(sim.url + '/metrics')).text(); // not queued itself
  assert.ok(metrics.includes(`vllm:num_requests_waiting{model_name="${MODEL}"} 1\n`));
  assert.ok(metrics.includes(`vllm:num_requests_running{model_name="${MODEL}"} 1\n`));
  assert.ok(metrics.includes(`vllm:kv_cache_usage_perc{model_name="${MODEL}"} 1\n`));

  const [a, b] = await Promise.all([first, second]);
  assert.equal(a.status, 200);
  assert.equal(b.status, 200);
  await Promise.all([a.text(), b.text()]);
  await sim.waitFor((s) => s.completed === 2);
  assert.equal(sim.stats.running, 0);
  assert.equal(sim.stats.waiting, 0);
});

test('abort: client disconnect mid-stream stops generation and is counted once', async (t) => {
  const sim = await startSim(t, { itlMs: 50 });
  const { req, response } = openStream(sim, '/v1/chat/completions', chatBody({ max_tokens: 100, stream: true }));
  const res = await response;
  await new Promise<void>((resolve) => res.once('data', () => resolve()));
  req.destroy();
  await sim.waitFor((s) => s.aborted === 1, 1000);
  assert.equal(sim.stats.completed, 0);
  assert.equal(sim.stats.running, 0);
  const metrics = await (await fetch(sim.url + '/metrics')).text();
  assert.ok(metrics.includes(`sim_requests_aborted_total{model_name="${MODEL}"} 1\n`));
  const generated = Number(/vllm:generation_tokens_total\{[^}]*\} (\d+)/.exec(metrics)?.[1]);
  assert.ok(generated < 5, `generation stopped early (generated ${generated})`);
  assert.deepEqual(sim.stats, { requests: 1, completed: 0, aborted: 1, failed: 0, running: 0, waiting: 0, prefixHits: 0, prefixQueries: 0, loraLoads: 0 });
});

test('abort while queued leaves the queue', async (t) => {
  const sim = await startSim(t, { maxConcurrency: 1, ttftMs: 200 });
  const first = post(sim, '/v1/chat/completions', chatBody({ max_tokens: 1 }));
  await sim.waitFor((s) => s.running === 1);
  const { req } = openStream(sim, '/v1/chat/completions', chatBody({ max_tokens: 1 }));
  await sim.waitFor((s) => s.waiting === 1);
  req.destroy();
  await sim.waitFor((s) => s.aborted === 1 && s.waiting === 0);
  assert.equal((await first).status, 200);
  await sim.waitFor((s) => s.completed === 1 && s.running === 0);
});

test('x-sim-fail-after-chunks resets the stream after N content chunks', async (t) => {
  const sim = await startSim(t);
  const { response } = openStream(sim, '/v1/chat/completions', chatBody({ max_tokens: 10, stream: true }), {
    'x-sim-fail-after-chunks': '2',
  });
  const res = await response;
  assert.equal(res.statusCode, 200);
  res.on('error', () => {}); // 'aborted' ECONNRESET is the point of the test
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (c: string) => (text += c));
  await new Promise<void>((resolve) => res.once('close', () => resolve()));
  assert.equal(res.complete, false, 'response must end abruptly');
  const data = sseData(text);
  assert.ok(!data.includes('[DONE]'));
  const content = data.map((d) => JSON.parse(d) as Chunk).filter((c) => c.choices[0]?.delta?.content === 'tok ');
  assert.equal(content.length, 2);
  await sim.waitFor((s) => s.failed === 1);
  assert.equal(sim.stats.aborted, 0);
  assert.equal(sim.stats.completed, 0);
});

test('large zero-delay stream is delivered completely (backpressure path)', async (t) => {
  const sim = await startSim(t);
  const n = 20_000;
  const res = await post(sim, '/v1/completions', { prompt: 'x', max_tokens: n, stream: true });
  const data = sseData(await res.text());
  assert.equal(data.length, n + 1);
  assert.equal(data.at(-1), '[DONE]');
  await sim.waitFor((s) => s.completed === 1);
});

test('close() drops in-flight requests and clears their timers', async (t) => {
  const sim = new Simulator({ model: MODEL, ttftMs: 60_000 });
  await sim.listen();
  t.after(() => sim.close());
  const pending = post(sim, '/v1/chat/completions', chatBody()).catch((err: unknown) => err);
  await sim.waitFor((s) => s.running === 1);
  await sim.close();
  assert.ok((await pending) instanceof Error);
  assert.equal(sim.stats.aborted, 1);
  assert.equal(sim.stats.running, 0);
});

// ---------------------------------------------------------------------------------------------
// Inference-aware additions: identity, speed factor, queue contention, prefix cache

/** Resolves the ms from sending a streaming request to its first content token (then drains the rest). */
async function timeToFirstToken(sim: Simulator, body: unknown, headers: Record<string, string> = {}): Promise<number> {
  const t0 = performance.now();
  const { response } = openStream(sim, '/v1/chat/completions', body, headers);
  const res = await response;
  res.setEncoding('utf8');
  let text = '';
  let ttft = -1;
  await new Promise<void>((resolve, reject) => {
    res.on('data', (c: string) => {
      text += c;
      if (ttft < 0 && text.includes('"content":"tok ')) ttft = performance.now() - t0;
    });
    res.once('end', () => resolve());
    res.once('error', reject);
  });
  assert.ok(ttft >= 0, 'a content token arrived');
  return ttft;
}

/** Value of one exact metric series (name + labels) in a /metrics text. */
function metricValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('identity: X-Simulator-Id on every response and sim_requests_total{simulator_id}', async (t) => {
  const named = await startSim(t, { id: 'sim-a' });
  const dflt = await startSim(t);
  assert.equal(dflt.id, `127.0.0.1:${dflt.port}`);

  const chat = await post(named, '/v1/chat/completions', chatBody({ max_tokens: 1 }));
  assert.equal(chat.headers.get('x-simulator-id'), 'sim-a');
  assert.equal(chat.headers.get('x-sim-id'), 'sim-a');
  await chat.text();
  const stream = await post(named, '/v1/chat/completions', chatBody({ max_tokens: 1, stream: true }));
  assert.equal(stream.headers.get('x-simulator-id'), 'sim-a');
  await stream.text();
  for (const path of ['/health', '/v1/models', '/metrics', '/sim/stats', '/nope']) {
    const r = await fetch(named.url + path);
    assert.equal(r.headers.get('x-simulator-id'), 'sim-a', path);
    await r.text();
  }
  const err = await post(named, '/v1/chat/completions', chatBody(), { 'x-sim-status': '503' });
  assert.equal(err.headers.get('x-simulator-id'), 'sim-a');
  await err.text();

  await named.waitFor((s) => s.completed === 3);
  const metrics = await (await fetch(named.url + '/metrics')).text();
  assert.match(metrics, /# TYPE sim_requests_total counter\n/);
  assert.equal(metricValue(metrics, 'sim_requests_total{simulator_id="sim-a"}'), 3);

  await (await post(dflt, '/v1/completions', { prompt: 'x', max_tokens: 1 })).text();
  const res = await fetch(dflt.url + '/metrics');
  assert.equal(res.headers.get('x-simulator-id'), `127.0.0.1:${dflt.port}`);
  assert.equal(metricValue(await res.text(), `sim_requests_total{simulator_id="127.0.0.1:${dflt.port}"}`), 1);
});

test('speedFactor multiplies ttft and itl', async (t) => {
  const sim = await startSim(t, { ttftMs: 30, speedFactor: 3 });
  const ttft = await timeToFirstToken(sim, chatBody({ max_tokens: 1, stream: true }));
  assert.ok(ttft >= 80, `ttft 30ms x 3 took only ${ttft.toFixed(1)}ms`);

  const slowItl = await startSim(t, { itlMs: 10, speedFactor: 3 });
  const t0 = performance.now();
  await (await post(slowItl, '/v1/chat/completions', chatBody({ max_tokens: 4, stream: true }))).text();
  const took = performance.now() - t0;
  assert.ok(took >= 80, `3 gaps of 10ms x 3 took only ${took.toFixed(1)}ms`);
});

test('ttftPerWaitingMs raises ttft by the queue length when a request starts', async (t) => {
  const sim = await startSim(t, { maxConcurrency: 1, ttftPerWaitingMs: 40 });
  // Hold the only slot with a slow request, queue two behind it, then measure the first queued one:
  // when it starts, one request is still waiting, so its own ttft is 40ms (measured from its start).
  const hold = post(sim, '/v1/chat/completions', chatBody({ max_tokens: 1 }), { 'x-sim-ttft-ms': '100' });
  await sim.waitFor((s) => s.running === 1);
  const { response } = openStream(sim, '/v1/chat/completions', chatBody({ max_tokens: 1, stream: true }));
  await sim.waitFor((s) => s.waiting === 1);
  const last = post(sim, '/v1/chat/completions', chatBody({ max_tokens: 1 }));
  await sim.waitFor((s) => s.waiting === 2);

  const res = await response; // headers are written when it starts generating (after the holder)
  const started = performance.now();
  res.setEncoding('utf8');
  let text = '';
  let first = -1;
  await new Promise<void>((resolve) => {
    res.on('data', (c: string) => {
      text += c;
      if (first < 0 && text.includes('"content":"tok ')) first = performance.now() - started;
    });
    res.once('end', () => resolve());
  });
  assert.ok(first >= 30, `contention ttft (1 waiting x 40ms) was only ${first.toFixed(1)}ms`);
  await Promise.all([(await hold).text(), (await last).text()]);
  await sim.waitFor((s) => s.completed === 3 && s.running === 0 && s.waiting === 0);

  // Without waiting requests there is no extra delay.
  const idle = await timeToFirstToken(sim, chatBody({ max_tokens: 1, stream: true }));
  assert.ok(idle < 30, `idle ttft should carry no contention (${idle.toFixed(1)}ms)`);
});

test('prefix cache: second identical system prompt hits (stats and metrics)', async (t) => {
  const sim = await startSim(t, { ttftMs: 100, prefixCache: { capacity: 2, prefixChars: 64, hitTtftFactor: 0.1 } });
  const sys = (s: string, user = 'hi') => ({
    model: MODEL,
    max_tokens: 1,
    stream: true,
    messages: [
      { role: 'system', content: s },
      { role: 'user', content: [{ type: 'text', text: user }] },
      { role: 'assistant', content: 'ignored' },
    ],
  });
  const miss = await timeToFirstToken(sim, sys('you are a pirate'));
  assert.ok(miss >= 90, `miss pays the full ttft (${miss.toFixed(1)}ms)`);
  const hit = await timeToFirstToken(sim, sys('you are a pirate'));
  assert.ok(hit < 60, `hit ttft is reduced (${hit.toFixed(1)}ms)`);
  await sim.waitFor((s) => s.completed === 2);
  assert.equal(sim.stats.prefixQueries, 2);
  assert.equal(sim.stats.prefixHits, 1);

  // Only the prefix counts: a long shared prefix with different tails still hits.
  const long = 'x'.repeat(100);
  await timeToFirstToken(sim, sys(long + 'A'));
  await timeToFirstToken(sim, sys(long + 'B'));
  await sim.waitFor((s) => s.prefixQueries === 4);
  assert.equal(sim.stats.prefixHits, 2);
  // Capacity 2 (LRU): the pirate prefix is older than the long one, another new prefix evicts it.
  await timeToFirstToken(sim, sys('new one'));
  await timeToFirstToken(sim, sys('you are a pirate'));
  await sim.waitFor((s) => s.prefixQueries === 6);
  assert.equal(sim.stats.prefixHits, 2, 'evicted prefix misses');

  // Completions: the prompt is the prefix.
  await (await post(sim, '/v1/completions', { prompt: 'same prompt', max_tokens: 1 }, { 'x-sim-ttft-ms': '0' })).text();
  await (await post(sim, '/v1/completions', { prompt: 'same prompt', max_tokens: 1 }, { 'x-sim-ttft-ms': '0' })).text();
  await sim.waitFor((s) => s.prefixQueries === 8);
  assert.equal(sim.stats.prefixHits, 3);

  const metrics = await (await fetch(sim.url + '/metrics')).text();
  const label = `{model_name="${MODEL}"}`;
  assert.match(metrics, /# TYPE vllm:prefix_cache_hits_total counter\n/);
  assert.equal(metricValue(metrics, `vllm:prefix_cache_queries_total${label}`), 8);
  assert.equal(metricValue(metrics, `vllm:prefix_cache_hits_total${label}`), 3);
  assert.equal(metricValue(metrics, `sim_prefix_cache_queries_total${label}`), 8);
  assert.equal(metricValue(metrics, `sim_prefix_cache_hits_total${label}`), 3);
  const stats = (await (await fetch(sim.url + '/sim/stats')).json()) as { prefixHits: number; prefixQueries: number };
  assert.deepEqual([stats.prefixHits, stats.prefixQueries], [3, 8]);
});

test('prefix cache in blocks: a later turn reuses the blocks of the turn before, counted in blocks, evicting prompt tails first', async (t) => {
  // Blocks of 10 characters; the chat text is "role:content\n" per message.
  const sim = await startSim(t, { ttftMs: 100, prefixCache: { capacity: 12, prefixChars: 64, hitTtftFactor: 0.1, blockChars: 10 } });
  const turn1 = [
    { role: 'system', content: 'S'.repeat(23) },
    { role: 'user', content: 'U'.repeat(24) },
  ];
  // "system:" + 23 + "\n" = 31, "user:" + 24 + "\n" = 30: 61 characters, 6 full blocks.
  const body = (messages: unknown[]) => ({ model: MODEL, max_tokens: 1, stream: true, messages });
  const miss = await timeToFirstToken(sim, body(turn1));
  assert.ok(miss >= 90, `a cold prompt pays the full ttft (${miss.toFixed(1)}ms)`);
  await sim.waitFor((s) => s.prefixQueries === 6);
  assert.equal(sim.stats.prefixHits, 0);
  // Turn 2 resends turn 1 and adds 60 characters: 12 blocks, the first 6 cached.
  const turn2 = [...turn1, { role: 'assistant', content: 'A'.repeat(19) }, { role: 'user', content: 'V'.repeat(24) }];
  const half = await timeToFirstToken(sim, body(turn2));
  assert.ok(half >= 45 && half < 90, `half the blocks cached: ttft x (0.1 + 0.9 x 0.5) (${half.toFixed(1)}ms)`);
  await sim.waitFor((s) => s.prefixQueries === 18);
  assert.equal(sim.stats.prefixHits, 6);
  // Another prompt of 6 blocks fills the cache past 12: turn 2's tail goes first, its head stays.
  await timeToFirstToken(sim, body([{ role: 'user', content: 'Z'.repeat(54) }]));
  await timeToFirstToken(sim, body(turn1));
  await sim.waitFor((s) => s.prefixQueries === 30);
  assert.equal(sim.stats.prefixHits, 12, 'turn 1 still cached in full');
});

test('prefix cache off: no lookups, zero counters', async (t) => {
  const sim = await startSim(t);
  await (await post(sim, '/v1/chat/completions', chatBody({ max_tokens: 1 }))).text();
  await (await post(sim, '/v1/chat/completions', chatBody({ max_tokens: 1 }))).text();
  await sim.waitFor((s) => s.completed === 2);
  assert.equal(sim.stats.prefixQueries, 0);
  const metrics = await (await fetch(sim.url + '/metrics')).text();
  assert.equal(metricValue(metrics, `vllm:prefix_cache_queries_total{model_name="${MODEL}"}`), 0);
});

test('scheduling policy priority runs lower priority values first; fcfs refuses a non-zero priority as vLLM does', async (t) => {
  const fcfs = await startSim(t);
  const refused = await post(fcfs, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, priority: 3 });
  assert.equal(refused.status, 400);
  await refused.arrayBuffer();

  const sim = await startSim(t, { maxConcurrency: 1, ttftMs: 5, schedulingPolicy: 'priority' });
  const body = (priority: number) => ({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, priority });
  const done: number[] = [];
  const first = post(sim, '/v1/chat/completions', body(0), { 'x-sim-ttft-ms': '300' }).then(async (r) => (await r.arrayBuffer(), done.push(0)));
  while (sim.stats.running < 1) await new Promise((r) => setTimeout(r, 5));
  const later = [5, 1, 3].map((p) => post(sim, '/v1/chat/completions', body(p)).then(async (r) => (await r.arrayBuffer(), done.push(p))));
  while (sim.stats.waiting < 3) await new Promise((r) => setTimeout(r, 5));
  await Promise.all([first, ...later]);
  assert.deepEqual(done, [0, 1, 3, 5]);
});

/** kvUsage reads vllm:kv_cache_usage_perc from the simulator's /metrics. */
async function kvUsage(sim: Simulator): Promise<number> {
  const metrics = await (await fetch(sim.url + '/metrics')).text();
  return Number(/vllm:kv_cache_usage_perc\{[^}]*\} (\S+)/.exec(metrics)?.[1]);
}

test('KV cache: running requests hold their prompt blocks, reported as kv_cache_usage_perc; a request waits while its blocks do not fit', async (t) => {
  // 10 blocks of 16 tokens. A prompt of 400 characters is 101 tokens (7 blocks); with max_tokens 16 it may grow to 8.
  const sim = await startSim(t, { kvCacheTokens: 160, ttftMs: 60_000 });
  const long = (extra: Record<string, unknown>) => ({ model: MODEL, messages: [{ role: 'user', content: 'x'.repeat(400) }], max_tokens: 16, ...extra });
  const a = openStream(sim, '/v1/chat/completions', long({ stream: true }));
  await sim.waitFor((s) => s.running === 1);
  assert.equal(await kvUsage(sim), 0.7);
  // The second one would need 8 more blocks beside the first one's 8: it waits, and so does a small one behind it (first come, first served).
  const b = openStream(sim, '/v1/chat/completions', long({ stream: true }));
  await sim.waitFor((s) => s.waiting === 1);
  const small = openStream(sim, '/v1/chat/completions', chatBody({ max_tokens: 1, stream: true }));
  await sim.waitFor((s) => s.waiting === 2);
  assert.equal(sim.stats.running, 1);
  // When the first one ends, its blocks go back and both queued requests fit (8 + 1 of 10 blocks).
  a.req.destroy();
  await sim.waitFor((s) => s.aborted === 1 && s.running === 2 && s.waiting === 0);
  assert.equal(await kvUsage(sim), 0.8);
  b.req.destroy();
  small.req.destroy();
  await sim.waitFor((s) => s.running === 0);
  assert.equal(await kvUsage(sim), 0);
});

test('KV cache: a request larger than the whole cache starts alone instead of waiting forever', async (t) => {
  const sim = await startSim(t, { kvCacheTokens: 32 });
  const res = await post(sim, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'x'.repeat(400) }], max_tokens: 4 });
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens, 101);
});

test('prefill cost: a long prompt gets its first token after a short one sent later', async (t) => {
  // 5 ms per prompt token: a prompt of 4000 characters (1001 tokens) waits about 5 s, a short one under 0.1 s.
  const sim = await startSim(t, { prefillMsPerToken: 5 });
  const long = openStream(sim, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'x'.repeat(4000) }], max_tokens: 1, stream: true });
  await sim.waitFor((s) => s.running === 1);
  let longText = '';
  long.response.then(
    (res) => res.on('data', (c: Buffer) => (longText += c.toString())),
    () => {},
  );
  const short = await post(sim, '/v1/chat/completions', chatBody({ max_tokens: 1, stream: true }));
  assert.ok((await short.text()).includes('"content":"tok '));
  assert.ok(!longText.includes('"content":"tok '), 'the long prompt is still in prefill');
  long.req.destroy();
  await sim.waitFor((s) => s.running === 0);
});

test('nonStreamDecode: a non-streamed answer waits for every token, as a streamed one does', async (t) => {
  const body = chatBody({ max_tokens: 2 });
  // Without the option the answer comes after the ttft alone, however long the inter-token delay.
  const plain = await startSim(t, { itlMs: 60_000 });
  assert.equal((await post(plain, '/v1/chat/completions', body)).status, 200);
  // With it, the second token is a minute away: the request is still running after its first token.
  const sim = await startSim(t, { itlMs: 60_000, nonStreamDecode: true, kvCacheTokens: 1600 });
  const pending = openStream(sim, '/v1/chat/completions', body);
  await sim.waitFor((s) => s.running === 1);
  let answered = false;
  pending.response.then(
    () => (answered = true),
    () => {},
  );
  // KV usage counts the prompt (7 tokens) and the first generated token: 1 block of 100.
  assert.equal(await kvUsage(sim), 0.01);
  assert.equal(answered, false);
  pending.req.destroy();
  await sim.waitFor((s) => s.aborted === 1);
});
