import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { quantileMs, type EventSample, type FleetModel, type KeyStat, type RequestEntry } from '../../src/admin/index.js';
import { hashKey } from '../../src/auth/index.js';
import { Cleanup, chat, post, startGateway, startSim } from '../helpers/harness.js';
import { RedisServer } from '../helpers/redis.js';
import { SseReader } from '../helpers/sse.js';

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ADMIN_TOKEN = 'admin-events-token-0123456';
const KEY = 'events-key-0123456789abcdef';
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };

type History = { interval_ms: number; samples: EventSample[]; fleet: FleetModel[]; requests: RequestEntry[] };
type Tick = { sample: EventSample; fleet: FleetModel[]; requests: RequestEntry[]; keys: KeyStat[] };

describe('GET /events: live samples for the dashboard', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('counts requests waiting in a flow-control queue as queued', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, {
      admin: { token: ADMIN_TOKEN },
      models: [{ name: 'm', targets: [{ url: sim.url }], flow_control: { enabled: true, saturation: { max_inflight: 1, queue_depth: null, kv_cache: null } } }],
    });
    const sse = new SseReader();
    cleanup.add(() => sse.close());
    await sse.open(`${gw.adminUrl}/events`, AUTH);
    // One request holds the only slot for 3 s; three more wait in the gateway's queue.
    const held = [post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm', 'x-sim-ttft-ms': '3000' })];
    await until('the first request running', () => sim.stats.running === 1);
    for (let i = 0; i < 3; i++) held.push(post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm' }));
    const t = await sse.next<Tick>((e) => e.event === 'tick' && (e.data as Tick).sample.queued >= 3, 0, 4000);
    assert.equal(t.sample.queued, 3);
    for (const r of await Promise.all(held)) assert.equal(r.status, 200);
  });

  it('needs the admin token, then sends history and a tick a second with rates, fleet and new requests', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { admin: { token: ADMIN_TOKEN }, models: [{ name: 'm', api_keys: [KEY], targets: [{ url: sim.url }] }] });
    assert.equal((await fetch(`${gw.adminUrl}/events`)).status, 401);
    // Before anyone watches: this request is counted in the samples but not kept for the Requests page.
    await (await post(`${gw.url}/v1/chat/completions`, chat('m'), { authorization: `Bearer ${KEY}`, 'x-request-id': 'unwatched' })).arrayBuffer();
    const sse = new SseReader();
    cleanup.add(() => sse.close());
    const res = await sse.open(`${gw.adminUrl}/events`, AUTH);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const history = await sse.next<History>((e) => e.event === 'history');
    assert.equal(history.interval_ms, 1000);
    assert.deepEqual(history.requests, []);
    assert.deepEqual(history.fleet.map((m) => [m.name, m.targets.map((t) => [t.url, t.state])]), [['m', [[sim.url, 'healthy']]]]);
    // Traffic flowing: the rate shows within 3 s, and each request appears once.
    const stop = Date.now() + 2500;
    let sent = 0;
    const tick = (async () => sse.next<Tick>((e) => e.event === 'tick' && (e.data as Tick).sample.requests_per_s > 0, 0, 3000))();
    while (Date.now() < stop && sent < 20) {
      await (await post(`${gw.url}/v1/chat/completions`, chat('m'), { authorization: `Bearer ${KEY}`, 'x-request-id': `watched-${sent}` })).arrayBuffer();
      sent++;
      await new Promise((r) => setTimeout(r, 50));
    }
    const t = await tick;
    assert.ok(t.sample.requests_per_s > 0);
    assert.ok((t.sample.status_per_s['2xx'] ?? 0) > 0);
    assert.ok((t.sample.requests_per_s_by_model.m ?? 0) > 0);
    assert.ok(t.sample.latency_ms.p50 !== null && t.sample.latency_ms.p50 > 0);
    assert.ok(t.sample.completion_tokens_per_s > 0);
    const entries = await sse.next<Tick>((e) => e.event === 'tick' && (e.data as Tick).requests.length > 0);
    const entry = entries.requests[0]!;
    assert.match(entry.request_id, /^watched-/);
    assert.equal(entry.model, 'm');
    assert.equal(entry.status, 200);
    assert.match(entry.key ?? '', /^key#[0-9a-f]{8}$/);
    assert.ok(!JSON.stringify(sse.events).includes(KEY), 'never a key');
    await sse.close();
    // A new watcher gets the history: samples, and the entries seen while someone watched (not the unwatched one).
    const again = new SseReader();
    cleanup.add(() => again.close());
    await again.open(`${gw.adminUrl}/events`, AUTH);
    const h2 = await again.next<History>((e) => e.event === 'history');
    assert.ok(h2.samples.some((s) => s.requests_per_s > 0));
    assert.ok(h2.requests.length > 0);
    assert.ok(h2.requests.every((r) => r.request_id.startsWith('watched-')));
  });

  it('counts each key by name or fingerprint while watched, with what each limit on it leaves; never a key', async () => {
    const named = 'events-key-team-a-0123456789';
    const other = 'events-key-other-0123456789';
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, {
      admin: { token: ADMIN_TOKEN },
      models: [
        { name: 'm', limits: { requests: { per_day: 1000 } }, api_keys: [{ key: named, name: 'team-a', limits: { requests: { per_day: 3 }, tokens: { per_day: 100000 } } }, other], targets: [{ url: sim.url }] },
        { name: 'free', api_keys: [KEY], targets: [{ url: (await startSim(cleanup, { model: 'free' })).url }] },
      ],
    });
    const send = async (model: string, key: string): Promise<number> => {
      const r = await post(`${gw.url}/v1/chat/completions`, chat(model), { authorization: `Bearer ${key}` });
      await r.arrayBuffer();
      return r.status;
    };
    // Before anyone watches: not counted.
    assert.equal(await send('m', other), 200);
    const sse = new SseReader();
    cleanup.add(() => sse.close());
    await sse.open(`${gw.adminUrl}/events`, AUTH);
    const history = await sse.next<History & { keys: KeyStat[]; keys_since: string }>((e) => e.event === 'history');
    assert.deepEqual(history.keys, []);
    assert.ok(Date.parse(history.keys_since) > 0);
    assert.deepEqual(await Promise.all([send('m', named), send('m', named), send('m', named), send('m', named)]).then((s) => s.sort()), [200, 200, 200, 429]);
    assert.equal(await send('m', other), 200);
    assert.equal(await send('free', KEY), 200);
    const tick = await sse.next<Tick>((e) => e.event === 'tick' && (e.data as Tick).keys.reduce((n, k) => n + k.requests, 0) === 6, 0, 3000);
    const byKey = new Map(tick.keys.map((k) => [k.key, k]));
    const teamA = byKey.get('team-a')!;
    assert.deepEqual([teamA.model, teamA.requests, teamA.limited], ['m', 4, 1]);
    assert.ok(teamA.prompt_tokens > 0 && teamA.completion_tokens > 0);
    const room = new Map(teamA.headroom!.map((h) => [h.limit, h]));
    assert.deepEqual([room.get('key:team-a:requests_per_day')?.max, room.get('key:team-a:requests_per_day')?.remaining], [3, 0]);
    assert.equal(room.get('model:requests_per_day')?.max, 1000);
    // The day's count: the unwatched request too, but not the refused one.
    assert.equal(room.get('model:requests_per_day')?.remaining, 1000 - 5);
    assert.ok((room.get('key:team-a:tokens_per_day')?.remaining ?? 0) < 100000);
    assert.ok(teamA.headroom!.every((h) => h.reset_s > 0 && h.reset_s <= 86400));
    const anonymous = byKey.get(`key#${hashKey(other).slice(0, 8)}`)!;
    assert.deepEqual([anonymous.requests, anonymous.limited, anonymous.headroom?.map((h) => h.limit)], [1, 0, ['model:requests_per_day']]);
    assert.deepEqual(byKey.get(`key#${hashKey(KEY).slice(0, 8)}`)?.headroom, [], 'a key nothing limits');
    const all = JSON.stringify(sse.events);
    for (const k of [named, other, KEY]) assert.ok(!all.includes(k), 'never a key');
  });

  it('with the Redis limit store, headroom is the count every replica shares, and reading it adds nothing', async () => {
    const redis = await RedisServer.launch();
    cleanup.add(() => redis.kill());
    const key = 'events-key-shared-0123456789';
    const sim = await startSim(cleanup, { model: 'm' });
    const config = { admin: { token: ADMIN_TOKEN }, limits_store: { policy: 'redis', redis_url: redis.url }, models: [{ name: 'm', api_keys: [{ key, name: 'shared', limits: { requests: { per_day: 10 } } }], targets: [{ url: sim.url }] }] };
    const [a, b] = [await startGateway(cleanup, config), await startGateway(cleanup, config)];
    const send = async (url: string): Promise<void> => {
      const r = await post(`${url}/v1/chat/completions`, chat('m'), { authorization: `Bearer ${key}` });
      await r.arrayBuffer();
      assert.equal(r.status, 200);
    };
    await send(b.url);
    await send(b.url);
    const sse = new SseReader();
    cleanup.add(() => sse.close());
    await sse.open(`${a.adminUrl}/events`, AUTH);
    await sse.next((e) => e.event === 'history');
    await send(a.url);
    const remaining = (t: Tick): number | undefined => t.keys.find((k) => k.key === 'shared')?.headroom?.find((h) => h.limit === 'key:shared:requests_per_day')?.remaining;
    const first = await sse.next<Tick>((e) => e.event === 'tick' && remaining(e.data as Tick) !== undefined, 0, 3000);
    const at = sse.events.length;
    assert.equal(remaining(first), 10 - 3, 'the requests through the other replica count');
    assert.equal(first.keys.find((k) => k.key === 'shared')?.requests, 1, 'this replica served one while watched');
    // Two more ticks read the counter again: it does not move.
    await sse.next((e) => e.event === 'tick', at);
    const later = await sse.next<Tick>((e) => e.event === 'tick', sse.events.length);
    assert.equal(remaining(later), 10 - 3);
  });

  it('each request entry carries its time in the concurrency queue: 0 when a slot was free, the wait when it queued', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { admin: { token: ADMIN_TOKEN }, models: [{ name: 'm', limits: { concurrency: { max: 1, queue: 4 } }, targets: [{ url: sim.url }] }] });
    const sse = new SseReader();
    cleanup.add(() => sse.close());
    await sse.open(`${gw.adminUrl}/events`, AUTH);
    await sse.next((e) => e.event === 'history');
    const first = post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-request-id': 'first', 'x-sim-latency-ms': '400' });
    await until('the first request holds the slot', () => sim.stats.requests === 1);
    const second = post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-request-id': 'second' });
    for (const r of await Promise.all([first, second])) assert.equal(r.status, 200);
    const entries = new Map<string, RequestEntry>();
    await until('both entries', async () => {
      const t = await sse.next<Tick>((e) => e.event === 'tick', sse.events.length, 3000);
      for (const r of t.requests) entries.set(r.request_id, r);
      return entries.size === 2;
    });
    assert.equal(entries.get('first')!.queue_ms, 0);
    const waited = entries.get('second')!;
    assert.ok(waited.queue_ms >= 200 && waited.queue_ms <= waited.total_ms, `queue_ms ${waited.queue_ms} of total ${waited.total_ms}`);
    assert.match(waited.trace_id, /^[0-9a-f]{32}$/);
  });

  it('quantileMs interpolates inside the bucket that holds the rank, like histogram_quantile', () => {
    const bounds = [0.1, 0.2, 0.4];
    assert.equal(quantileMs(bounds, [0, 0, 0, 0], 0.5), null);
    assert.equal(quantileMs(bounds, [0, 2, 0, 0], 0.5), 150);
    assert.equal(quantileMs(bounds, [1, 0, 0, 1], 0.95), 400);
    assert.equal(quantileMs(bounds, [4, 0, 0, 0], 0.5), 50);
  });
});
