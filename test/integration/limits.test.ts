import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, afterEach, before, describe, it } from 'node:test';
import { Cleanup, chat, post, spawnGateway, startGateway, startSim } from '../helpers/harness.js';
import { parsePrometheus, valueOf } from '../helpers/prometheus.js';
import { RedisServer } from '../helpers/redis.js';

const KEY = 'team-a-secret-key-000';
type ErrorJson = { error: { code: string; message: string } };

/** untilMinuteHasSeconds waits until the current minute (Redis's clock) has at least `s` seconds left, so a test does not straddle a window. */
async function untilMinuteHasSeconds(redis: RedisServer, s: number): Promise<void> {
  const now = Number(redis.cli('TIME').split('\n')[0]);
  const left = 60 - (now % 60);
  if (left < s) await new Promise((r) => setTimeout(r, left * 1000 + 100));
}

describe('limits', () => {
  const cleanup = new Cleanup();
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.launch();
  });
  after(() => redis.kill());
  afterEach(() => cleanup.run());

  it('two gateway processes sharing one Redis let exactly 100 of 300 requests through a 100/minute key limit', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    redis.cli('FLUSHALL');
    const config = {
      limits_store: { policy: 'redis', redis_url: redis.url },
      models: [{ name: 'm', api_keys: [{ key: KEY, name: 'team-a', limits: { requests: { per_minute: 100 } } }], targets: [{ url: sim.url }] }],
    };
    const [g1, g2] = await Promise.all([spawnGateway(cleanup, config), spawnGateway(cleanup, config)]);
    await untilMinuteHasSeconds(redis, 15);
    const results = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const res = await post(`${(i % 2 === 0 ? g1 : g2).url}/v1/chat/completions`, chat('m'), { 'x-model': 'm', apikey: KEY });
        await res.arrayBuffer();
        return res.status;
      }),
    );
    assert.equal(results.filter((s) => s === 200).length, 100);
    assert.equal(results.filter((s) => s === 429).length, 200);
    assert.equal(sim.stats.requests, 100);
  });

  it('answers 429 rate_limit_exceeded naming the limit, with Retry-After, RateLimit-* and Kong X-RateLimit-* headers', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, {
      limits: { requests: { per_second: 1000 } },
      models: [{ name: 'm', limits: { requests: { per_minute: 3 } }, api_keys: [{ key: KEY, name: 'team-a', limits: { requests: { per_hour: 10 } } }], targets: [{ url: sim.url }] }],
    });
    const send = () => post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm', apikey: KEY });
    const first = await send();
    await first.arrayBuffer();
    assert.equal(first.headers.get('ratelimit-limit'), '3');
    assert.equal(first.headers.get('ratelimit-remaining'), '2');
    assert.equal(first.headers.get('x-ratelimit-limit-minute'), '3');
    assert.equal(first.headers.get('x-ratelimit-remaining-minute'), '2');
    assert.equal(first.headers.get('x-ratelimit-remaining-hour'), '9');
    assert.equal(first.headers.get('x-ratelimit-remaining-second'), '999');
    await (await send()).arrayBuffer();
    await (await send()).arrayBuffer();
    const refused = await send();
    assert.equal(refused.status, 429);
    const body = (await refused.json()) as ErrorJson;
    assert.equal(body.error.code, 'rate_limit_exceeded');
    assert.match(body.error.message, /3 requests per minute for model m/);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.equal(refused.headers.get('x-ratelimit-remaining-minute'), '0');
    const metrics = parsePrometheus(await (await fetch(`${gw.statusUrl}/metrics`)).text());
    assert.equal(valueOf(metrics, 'igw_rate_limited_total', { model: 'm', limit: 'model:requests_per_minute' }), 1);
    // The access log names the key, never shows it.
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(gw.accessLog.json<{ key: string }>().every((l) => l.key === 'team-a'));
  });

  it('settles token reservations with the real usage, streaming and not', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    redis.cli('FLUSHALL');
    const gw = await startGateway(cleanup, {
      limits_store: { policy: 'redis', redis_url: redis.url },
      models: [{ name: 'm', api_keys: [{ key: KEY, name: 'tok', limits: { tokens: { per_hour: 100000 } } }], targets: [{ url: sim.url }] }],
    });
    await untilMinuteHasSeconds(redis, 5);
    let reported = 0;
    const j = await post(`${gw.url}/v1/chat/completions`, chat('m', { max_tokens: 9 }), { 'x-model': 'm', apikey: KEY });
    // Only a token limit: RateLimit-* tells about it; Kong's per-window headers are for request limits.
    assert.equal(j.headers.get('ratelimit-limit'), '100000');
    assert.equal([...j.headers.keys()].filter((k) => k.startsWith('x-ratelimit-')).length, 0);
    reported += ((await j.json()) as { usage: { total_tokens: number } }).usage.total_tokens;
    const s = await post(`${gw.url}/v1/chat/completions`, chat('m', { max_tokens: 5, stream: true, stream_options: { include_usage: true } }), { 'x-model': 'm', apikey: KEY });
    const text = await s.text();
    const usageEvent = text.split('\n\n').find((e) => e.includes('"usage":{'))!;
    reported += (JSON.parse(usageEvent.slice(6)) as { usage: { total_tokens: number } }).usage.total_tokens;
    // A stream whose client did not ask for usage: the gateway asks for it and still counts it.
    const hidden = await post(`${gw.url}/v1/chat/completions`, chat('m', { max_tokens: 7, stream: true }), { 'x-model': 'm', apikey: KEY });
    const hiddenText = await hidden.text();
    assert.ok(!hiddenText.includes('"usage"'), 'the client did not ask for usage and gets none');
    assert.equal(JSON.parse(sim.received.at(-1)!.body).stream_options.include_usage, true);
    const simMetrics = parsePrometheus(await (await fetch(`${sim.url}/metrics`)).text());
    const simTotal = valueOf(simMetrics, 'vllm:prompt_tokens_total') + valueOf(simMetrics, 'vllm:generation_tokens_total');
    await new Promise((r) => setTimeout(r, 100));
    const counter = Number(redis.cli('GET', `igw:rl:key:tok:tokens:hour:${Math.floor(Number(redis.cli('TIME').split('\n')[0]) / 3600)}`));
    assert.equal(counter, simTotal);
    assert.ok(counter > reported, 'the hidden stream counted too');
  });

  it('a stream whose usage chunk is hidden is otherwise byte-identical, however the upstream cuts its chunks', async () => {
    const events = [
      'data: {"id":"x","choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n',
      'data: {"id":"x","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}\n\n',
    ];
    const usage = 'data: {"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n';
    const done = 'data: [DONE]\n\n';
    const upstream = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const wantsUsage = (JSON.parse(body) as { stream_options?: { include_usage?: boolean } }).stream_options?.include_usage === true;
        const all = events.join('') + (wantsUsage ? usage : '') + done;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        // Cut at awkward places: mid-event, and inside the usage event.
        const cuts = [5, 40, all.length - done.length - 30, all.length - 3];
        let at = 0;
        const next = (): void => {
          const cut = cuts.shift();
          if (cut === undefined) return void res.end(all.slice(at));
          res.write(all.slice(at, cut));
          at = cut;
          setTimeout(next, 5);
        };
        next();
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    cleanup.add(() => new Promise<void>((r) => upstream.close(() => r())));
    const url = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
    const gw = await startGateway(cleanup, { models: [{ name: 'm', limits: { tokens: { per_minute: 100000 } }, targets: [{ url }] }] });
    const res = await post(`${gw.url}/v1/chat/completions`, chat('m', { stream: true }), { 'x-model': 'm' });
    assert.equal(await res.text(), events.join('') + done);
    const asked = await post(`${gw.url}/v1/chat/completions`, chat('m', { stream: true, stream_options: { include_usage: true } }), { 'x-model': 'm' });
    assert.equal(await asked.text(), events.join('') + usage + done);
  });

  it('concurrency 2 with queue 3: the 6th simultaneous request is refused at once, the queued ones run in arrival order', async () => {
    const sim = await startSim(cleanup, { model: 'm', ttftMs: 150 });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', limits: { concurrency: { max: 2, queue: 3, queue_timeout_ms: 5000 } }, targets: [{ url: sim.url }] }] });
    const pending: Array<Promise<{ status: number; ms: number; code?: string }>> = [];
    const t0 = performance.now();
    for (let i = 1; i <= 6; i++) {
      pending.push(
        post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm', 'x-request-id': `r${i}` }).then(async (r) => ({
          status: r.status,
          ms: performance.now() - t0,
          ...(r.status === 429 ? { code: ((await r.json()) as ErrorJson).error.code } : (await r.arrayBuffer(), {})),
        })),
      );
      await new Promise((r) => setTimeout(r, 10));
    }
    const results = await Promise.all(pending);
    assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200, 200, 429]);
    assert.equal(results[5]!.code, 'queue_full');
    assert.ok(results[5]!.ms < 120, `refused at once (${results[5]!.ms.toFixed(0)} ms)`);
    assert.deepEqual(sim.received.map((r) => r.headers['x-request-id']), ['r1', 'r2', 'r3', 'r4', 'r5']);
  });

  it('a queued request that waits too long gets 429 queue_timeout', async () => {
    const sim = await startSim(cleanup, { model: 'm', ttftMs: 400 });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', limits: { concurrency: { max: 1, queue: 1, queue_timeout_ms: 100 } }, targets: [{ url: sim.url }] }] });
    const first = post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm' });
    await new Promise((r) => setTimeout(r, 20));
    const second = await post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm' });
    assert.equal(second.status, 429);
    assert.equal(((await second.json()) as ErrorJson).error.code, 'queue_timeout');
    assert.ok(Number(second.headers.get('retry-after')) >= 1);
    assert.equal((await first).status, 200);
  });

  it('Redis down: fault-tolerant keeps serving, strict answers 503 within a second; limits apply again once it is back', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    redis.cli('FLUSHALL');
    const models = (name: string) => [{ name: 'm', api_keys: [{ key: `${name}-key-123456`, name, limits: { requests: { per_hour: 5 } } }], targets: [{ url: sim.url }] }];
    const tolerant = await startGateway(cleanup, { limits_store: { policy: 'redis', redis_url: redis.url, fault_tolerant: true }, models: models('ft') });
    const strict = await startGateway(cleanup, { limits_store: { policy: 'redis', redis_url: redis.url, fault_tolerant: false }, models: models('st') });
    const ask = async (gw: { url: string }, key: string) => {
      const t = performance.now();
      const r = await post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm', apikey: key });
      await r.arrayBuffer();
      return { status: r.status, ms: performance.now() - t };
    };
    assert.equal((await ask(tolerant, 'ft-key-123456')).status, 200);
    assert.equal((await ask(strict, 'st-key-123456')).status, 200);
    await redis.kill();
    assert.equal((await ask(tolerant, 'ft-key-123456')).status, 200);
    const refused = await ask(strict, 'st-key-123456');
    assert.equal(refused.status, 503);
    assert.ok(refused.ms < 1000, `503 in ${refused.ms.toFixed(0)} ms`);
    await redis.start();
    // ioredis reconnects by itself (backoff up to 2 s); then the shared counters apply again.
    const deadline = Date.now() + 5000;
    while ((await ask(strict, 'st-key-123456')).status !== 200) {
      assert.ok(Date.now() < deadline, 'strict gateway serves again after Redis returns');
      await new Promise((r) => setTimeout(r, 100));
    }
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await ask(strict, 'st-key-123456')).status);
    // Redis restarted empty: one request above, then four more fit the 5/hour limit.
    assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429]);
    const m = parsePrometheus(await (await fetch(`${strict.statusUrl}/metrics`)).text());
    assert.ok(valueOf(m, 'igw_ratelimit_store_errors_total', { result: 'refused' }) >= 1);
  });

  it('the gateway-wide limit is one budget shared by all models', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { limits: { requests: { per_hour: 3 } }, models: [{ name: 'a', targets: [{ url: sim.url }] }, { name: 'b', targets: [{ url: sim.url }] }] });
    const statuses: number[] = [];
    for (const m of ['a', 'b', 'a', 'b']) {
      const r = await post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': m });
      await r.arrayBuffer();
      statuses.push(r.status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 429]);
  });

  it('reserves max_completion_tokens, else max_tokens, against a token limit before forwarding', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: sim.url }], limits: { tokens: { per_hour: 1000 } } }] });
    const ask = async (body: string): Promise<number> => {
      const r = await post(`${gw.url}/v1/chat/completions`, body, { 'x-model': 'm' });
      await r.arrayBuffer();
      return r.status;
    };
    // Over the hour's budget on its own: refused before it reaches the engine.
    assert.equal(await ask(chat('m', { max_tokens: 5000 })), 429);
    assert.equal(await ask(chat('m', { max_tokens: 4, max_completion_tokens: 5000 })), 429);
    // max_completion_tokens wins over max_tokens, whichever comes first in the body.
    assert.equal(await ask(chat('m', { max_completion_tokens: 4, max_tokens: 5000 })), 200);
    assert.equal(await ask(chat('m', { max_tokens: 4 })), 200);
    assert.equal(sim.stats.completed, 2);
    // Bytes that end inside a key are no problem for the estimate (the engine judges the JSON).
    assert.notEqual(await ask('{"model":"m","max_'), 500);
  });
});
