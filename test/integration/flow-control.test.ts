import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { waitFor } from '../helpers/gateway-process.js';
import { Cleanup, chat, deadUrl, post, startGateway, startSim, type RunningGateway } from '../helpers/harness.js';
import { parsePrometheus, valueOf } from '../helpers/prometheus.js';

type ErrorJson = { error: { code: string } };
type FlowView = { saturated: boolean; waiting: number; by_priority: Record<string, number>; by_tenant: Record<string, number> };

const KEYS = {
  low: 'low-key-0000000000',
  high: 'high-key-000000000',
  top: 'top-key-0000000000',
  climber: 'climber-key-000000',
  batch: 'batch-key-00000000',
};
const API_KEYS = [
  { key: KEYS.low, name: 'low', priority: 0 },
  { key: KEYS.high, name: 'high', priority: 2 },
  { key: KEYS.top, name: 'top', priority: 4 },
  { key: KEYS.climber, name: 'climber', priority: 0, max_priority: 3 },
  { key: KEYS.batch, name: 'batch', priority: -1 },
];

/** oneAtATime: a target is saturated while the gateway has one request on it. */
function model(simUrl: string, flow: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    models: [
      {
        name: 'm',
        api_keys: API_KEYS,
        targets: [{ url: simUrl }],
        flow_control: { enabled: true, saturation: { max_inflight: 1, queue_depth: null, kv_cache: null }, ...flow },
        ...extra,
      },
    ],
  };
}

async function flowOf(gw: RunningGateway): Promise<FlowView> {
  const body = (await (await fetch(`${gw.adminUrl}/models`)).json()) as { data: Array<{ name: string; flow_control: FlowView | null }> };
  return body.data.find((m) => m.name === 'm')!.flow_control!;
}

async function metrics(gw: RunningGateway): Promise<ReturnType<typeof parsePrometheus>> {
  return parsePrometheus(await (await fetch(`${gw.statusUrl}/metrics`)).text());
}

/** send posts one chat completion with a key and a request id, answering status and error code. */
function send(gw: RunningGateway, key: string, id: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<{ status: number; code: string | null; retryAfter: string | null }> {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    body: chat('m'),
    headers: { 'content-type': 'application/json', 'x-model': 'm', apikey: key, 'x-request-id': id, ...headers },
    ...(signal ? { signal } : {}),
  }).then(async (r) => {
    const text = await r.text();
    return { status: r.status, code: r.status >= 400 ? (JSON.parse(text) as ErrorJson).error.code : null, retryAfter: r.headers.get('retry-after') };
  });
}

/** queueUntil waits until `n` requests wait in the gateway. */
function queueUntil(gw: RunningGateway, n: number): Promise<unknown> {
  return waitFor(`${n} waiting`, async () => (await flowOf(gw)).waiting === n);
}

/** order is the request ids of the chat completions the simulator received, in arrival order (health checks and metrics polls left out). */
/** BLOCK keeps the first request on the engine long enough for a test to queue others behind it. */
const BLOCK = { 'x-sim-ttft-ms': '1500' };

const order = (received: readonly { url: string; headers: Record<string, string | string[] | undefined> }[]): string[] =>
  received.filter((r) => r.url.endsWith('/chat/completions')).map((r) => String(r.headers['x-request-id']));

describe('flow control', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('while the target is saturated requests wait, and go strictly by priority, first come first served within one', async () => {
    const sim = await startSim(cleanup, { model: 'm', ttftMs: 10 });
    const gw = await startGateway(cleanup, model(sim.url));
    const blocker = send(gw, KEYS.low, 'r0', BLOCK);
    await waitFor('blocker running', () => sim.stats.running === 1);
    const low1 = send(gw, KEYS.low, 'r1');
    await queueUntil(gw, 1);
    const low2 = send(gw, KEYS.low, 'r2');
    await queueUntil(gw, 2);
    const high = send(gw, KEYS.high, 'r3');
    await queueUntil(gw, 3);
    const view = await flowOf(gw);
    assert.equal(view.saturated, true);
    assert.deepEqual(view.by_priority, { '0': 2, '2': 1 });
    assert.deepEqual(view.by_tenant, { low: 2, high: 1 });
    const depth = await metrics(gw);
    assert.equal(valueOf(depth, 'igw_queue_depth', { model: 'm', priority: '0' }), 2);
    assert.equal(valueOf(depth, 'igw_model_saturated', { model: 'm' }), 1);
    for (const r of await Promise.all([blocker, low1, low2, high])) assert.equal(r.status, 200);
    assert.deepEqual(order(sim.received), ['r0', 'r3', 'r1', 'r2']);
    const after = await metrics(gw);
    assert.equal(valueOf(after, 'igw_queue_depth', { model: 'm' }), 0);
    assert.equal(valueOf(after, 'igw_queue_wait_seconds_count', { model: 'm' }), 3);
  });

  it('X-Priority is clamped to the key\'s max_priority, ignored for keys without one, and must be an integer', async () => {
    const sim = await startSim(cleanup, { model: 'm', ttftMs: 10 });
    const gw = await startGateway(cleanup, model(sim.url));
    const blocker = send(gw, KEYS.low, 'r0', BLOCK);
    await waitFor('blocker running', () => sim.stats.running === 1);
    const high = send(gw, KEYS.high, 'high-2');
    await queueUntil(gw, 1);
    // The header asks 100: the climber gets its max (3), above high (2) and below top (4).
    const climber = send(gw, KEYS.climber, 'climber-3', { 'x-priority': '100' });
    await queueUntil(gw, 2);
    // low has no max_priority: its header is clamped to its own priority (0).
    const low = send(gw, KEYS.low, 'low-0', { 'x-priority': '9' });
    await queueUntil(gw, 3);
    const top = send(gw, KEYS.top, 'top-4');
    await queueUntil(gw, 4);
    assert.deepEqual((await flowOf(gw)).by_priority, { '4': 1, '3': 1, '2': 1, '0': 1 });
    const bad = await send(gw, KEYS.low, 'bad', { 'x-priority': 'urgent' });
    assert.equal(bad.status, 400);
    assert.equal(bad.code, 'invalid_request');
    for (const r of await Promise.all([blocker, high, climber, low, top])) assert.equal(r.status, 200);
    assert.deepEqual(order(sim.received), ['r0', 'top-4', 'climber-3', 'high-2', 'low-0']);
  });

  it('a negative priority is shed with 503 overloaded and Retry-After while saturated, and served when not', async () => {
    const sim = await startSim(cleanup, { model: 'm', ttftMs: 10 });
    const gw = await startGateway(cleanup, model(sim.url));
    assert.equal((await send(gw, KEYS.batch, 'idle')).status, 200);
    const blocker = send(gw, KEYS.low, 'r0', BLOCK);
    await waitFor('blocker running', () => sim.stats.running === 1);
    const t0 = performance.now();
    const shed = await send(gw, KEYS.batch, 'shed');
    const ms = performance.now() - t0;
    assert.equal(shed.status, 503);
    assert.equal(shed.code, 'overloaded');
    assert.ok(Number(shed.retryAfter) >= 1);
    assert.ok(ms < 100, `answered at once (${ms.toFixed(0)} ms)`);
    // Also while others wait in the gateway.
    const queued = send(gw, KEYS.low, 'queued');
    await queueUntil(gw, 1);
    const shedAgain = await send(gw, KEYS.batch, 'shed-again');
    assert.equal(shedAgain.code, 'overloaded');
    assert.equal((await blocker).status, 200);
    assert.equal((await queued).status, 200);
    assert.deepEqual(order(sim.received), ['idle', 'r0', 'queued']);
    assert.equal(valueOf(await metrics(gw), 'igw_shed_total', { model: 'm', reason: 'overloaded' }), 2);
    // A shed is the configured policy at work, counted and in the access log, not a gateway error line per request.
    assert.equal(gw.accessLog.json<{ error: string | null }>().filter((e) => e.error === 'overloaded').length, 2);
    assert.deepEqual(gw.log.json<{ msg: string; code?: string }>().filter((e) => e.code === 'overloaded'), []);
  });

  it('max_queue full answers 429 queue_full; max_wait answers 429 queue_timeout', async () => {
    const sim = await startSim(cleanup, { model: 'm', ttftMs: 800 });
    const gw = await startGateway(cleanup, model(sim.url, { max_queue: 1, max_wait: '200ms' }));
    const blocker = send(gw, KEYS.low, 'r0', BLOCK);
    await waitFor('blocker running', () => sim.stats.running === 1);
    const waiting = send(gw, KEYS.low, 'r1');
    await queueUntil(gw, 1);
    const full = await send(gw, KEYS.low, 'r2');
    assert.equal(full.status, 429);
    assert.equal(full.code, 'queue_full');
    const timedOut = await waiting;
    assert.equal(timedOut.status, 429);
    assert.equal(timedOut.code, 'queue_timeout');
    assert.ok(Number(timedOut.retryAfter) >= 1);
    assert.equal((await blocker).status, 200);
    assert.deepEqual(order(sim.received), ['r0']);
    const m = await metrics(gw);
    assert.equal(valueOf(m, 'igw_shed_total', { model: 'm', reason: 'queue_full' }), 1);
    assert.equal(valueOf(m, 'igw_shed_total', { model: 'm', reason: 'queue_timeout' }), 1);
  });

  it('a client that disconnects while queued leaves the queue at once and is never forwarded', async () => {
    const sim = await startSim(cleanup, { model: 'm', ttftMs: 300 });
    const gw = await startGateway(cleanup, model(sim.url));
    const blocker = send(gw, KEYS.low, 'r0', BLOCK);
    await waitFor('blocker running', () => sim.stats.running === 1);
    const abort = new AbortController();
    const gone = send(gw, KEYS.low, 'gone', {}, abort.signal).catch(() => 'aborted');
    await queueUntil(gw, 1);
    abort.abort();
    assert.equal(await gone, 'aborted');
    await queueUntil(gw, 0);
    assert.equal((await blocker).status, 200);
    assert.equal((await send(gw, KEYS.low, 'next')).status, 200);
    assert.deepEqual(order(sim.received), ['r0', 'next']);
    assert.equal(valueOf(await metrics(gw), 'igw_shed_total', { model: 'm', reason: 'client_gone' }), 1);
  });

  it('with no healthy target a request is held, and released when a target comes back', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, model(sim.url, { max_wait: '10s' }));
    const drain = await fetch(`${gw.adminUrl}/models/m/targets/0/drain`, { method: 'POST' });
    assert.equal(drain.status, 200);
    const held = send(gw, KEYS.low, 'held');
    await queueUntil(gw, 1);
    assert.equal(sim.stats.requests, 0);
    assert.equal((await fetch(`${gw.adminUrl}/models/m/targets/0/undrain`, { method: 'POST' })).status, 200);
    assert.equal((await held).status, 200);
    assert.deepEqual(order(sim.received), ['held']);
  });

  it('a reload while requests wait keeps them in their place, under the new settings', async () => {
    const sim = await startSim(cleanup, { model: 'm', ttftMs: 10 });
    const gw = await startGateway(cleanup, model(sim.url));
    const blocker = send(gw, KEYS.low, 'r0', BLOCK);
    await waitFor('blocker running', () => sim.stats.running === 1);
    const low = send(gw, KEYS.low, 'low');
    await queueUntil(gw, 1);
    const high = send(gw, KEYS.high, 'high');
    await queueUntil(gw, 2);
    const next = model(sim.url, { max_queue: 2, max_wait: '20s' });
    const applied = await fetch(`${gw.adminUrl}/config`, { method: 'POST', body: JSON.stringify(next) });
    assert.ok(applied.ok, await applied.text());
    assert.equal((await flowOf(gw)).waiting, 2);
    // The new max_queue applies to the queue that was kept.
    const full = await send(gw, KEYS.low, 'full');
    assert.equal(full.code, 'queue_full');
    for (const r of await Promise.all([blocker, low, high])) assert.equal(r.status, 200);
    assert.deepEqual(order(sim.received), ['r0', 'high', 'low']);
  });

  it('saturation comes from the engine\'s metrics: its queue stays at queue_depth, the rest waits in the gateway', async () => {
    const sim = await startSim(cleanup, { model: 'm', ttftMs: 300, maxConcurrency: 1 });
    const gw = await startGateway(cleanup, {
      models: [{ name: 'm', targets: [{ url: sim.url }], load_metrics: { interval: '25ms' }, flow_control: { enabled: true, saturation: { queue_depth: 1, kv_cache: null } } }],
    });
    let maxWaiting = 0;
    const watch = setInterval(() => (maxWaiting = Math.max(maxWaiting, sim.stats.waiting)), 5);
    try {
      const all = Array.from({ length: 5 }, (_, i) => post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm' }).then(async (r) => (await r.arrayBuffer(), r.status)));
      await queueUntil(gw, 3);
      assert.equal((await flowOf(gw)).saturated, true);
      assert.deepEqual(await Promise.all(all), [200, 200, 200, 200, 200]);
    } finally {
      clearInterval(watch);
    }
    // The engine's queue is read every 25 ms: on a loaded machine one more request may slip in
    // between two samples. Without flow control all four would wait in the engine.
    assert.ok(maxWaiting >= 1 && maxWaiting <= 2, `the engine's queue peaked at ${maxWaiting}`);
  });

  it('within one priority, tenants share by weight while they all wait', async () => {
    const sim = await startSim(cleanup, { model: 'm', ttftMs: 5 });
    const keys = [
      { key: 'tenant-a-key-000000', name: 'a', weight: 3 },
      { key: 'tenant-b-key-000000', name: 'b', weight: 2 },
      { key: 'tenant-c-key-000000', name: 'c', weight: 1 },
    ];
    const gw = await startGateway(cleanup, {
      models: [
        {
          name: 'm',
          api_keys: [...keys, { key: KEYS.low, name: 'low' }],
          targets: [{ url: sim.url }],
          flow_control: { enabled: true, fairness: 'requests', saturation: { max_inflight: 1, queue_depth: null, kv_cache: null } },
        },
      ],
    });
    const blocker = send(gw, KEYS.low, 'r0', { 'x-sim-ttft-ms': '3000' });
    await waitFor('blocker running', () => sim.stats.running === 1);
    const all: Array<Promise<unknown>> = [];
    // Each tenant sends as much; c first, so arrival order alone would favour it.
    for (const k of [keys[2]!, keys[1]!, keys[0]!]) for (let i = 0; i < 30; i++) all.push(send(gw, k.key, `${k.name}${i}`));
    await queueUntil(gw, 90);
    await Promise.all([blocker, ...all]);
    // The first 60 dispatched after the blocker, while every tenant still had requests waiting.
    const first = order(sim.received).filter((id) => id !== 'r0').slice(0, 60);
    const share = (t: string) => first.filter((id) => id.startsWith(t)).length;
    assert.ok(Math.abs(share('a') - 30) <= 3, `a got ${share('a')} of 60 (weight 3 of 6)`);
    assert.ok(Math.abs(share('b') - 20) <= 2, `b got ${share('b')} of 60 (weight 2 of 6)`);
    assert.ok(Math.abs(share('c') - 10) <= 1, `c got ${share('c')} of 60 (weight 1 of 6)`);
  });

  it('upstream_priority sends the priority to the engine as vLLM\'s (negated) priority, and a priority-scheduling engine runs it first', async () => {
    const sim = await startSim(cleanup, { model: 'm', ttftMs: 10, maxConcurrency: 1, schedulingPolicy: 'priority' });
    // The gateway lets three requests onto the engine: the order among them is the engine's.
    const gw = await startGateway(cleanup, model(sim.url, { upstream_priority: true, saturation: { max_inflight: 3, queue_depth: null, kv_cache: null } }));
    const blocker = send(gw, KEYS.low, 'r0', BLOCK);
    await waitFor('blocker running', () => sim.stats.running === 1);
    const done: string[] = [];
    const low = send(gw, KEYS.low, 'low').then((r) => (done.push('low'), r));
    await waitFor('low waiting in the engine', () => sim.stats.waiting === 1);
    const high = send(gw, KEYS.high, 'high').then((r) => (done.push('high'), r));
    await waitFor('high waiting in the engine', () => sim.stats.waiting === 2);
    for (const r of await Promise.all([blocker, low, high])) assert.equal(r.status, 200);
    assert.deepEqual(done, ['high', 'low']);
    const bodyOf = (id: string) => JSON.parse(sim.received.find((r) => r.headers['x-request-id'] === id)!.body) as { priority?: number };
    assert.equal(bodyOf('high').priority, -2);
    // Priority 0 is vLLM's default: the body is left as it was.
    assert.equal(bodyOf('low').priority, undefined);
  });

  it('a model without flow_control forwards at once however busy its target is', async () => {
    const sim = await startSim(cleanup, { model: 'm', ttftMs: 200, maxConcurrency: 1 });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    const all = Array.from({ length: 3 }, () => post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm' }).then(async (r) => (await r.arrayBuffer(), r.status)));
    await waitFor('all at the engine', () => sim.stats.requests === 3);
    assert.deepEqual(await Promise.all(all), [200, 200, 200]);
    const body = (await (await fetch(`${gw.adminUrl}/models`)).json()) as { data: Array<{ flow_control: unknown }> };
    assert.equal(body.data[0]!.flow_control, null);
  });
  it('a reload that removes a model answers its waiting requests; one that turns flow control off sends them on; the queue\'s series go', async () => {
    // One simulator per model: a target's in-flight count is shared by the models that list it.
    const simM = await startSim(cleanup, { model: 'm', ttftMs: 10 });
    const simN = await startSim(cleanup, { model: 'n', ttftMs: 10 });
    const other = { name: 'other', targets: [{ url: simM.url }] };
    const withFlow = (name: string, url: string) => ({ name, targets: [{ url }], flow_control: { enabled: true, saturation: { max_inflight: 1, queue_depth: null, kv_cache: null } } });
    const gw = await startGateway(cleanup, { models: [withFlow('m', simM.url), withFlow('n', simN.url), other] });
    const apply = async (models: unknown[]) => {
      const r = await fetch(`${gw.adminUrl}/config`, { method: 'POST', body: JSON.stringify({ models }) });
      assert.ok(r.ok, await r.text());
    };
    const sendTo = (m: string, id: string, headers: Record<string, string> = {}) =>
      post(`${gw.url}/v1/chat/completions`, chat(m), { 'x-model': m, 'x-request-id': id, ...headers }).then(async (r) => ({ status: r.status, body: await r.text() }));
    const blockerM = sendTo('m', 'block-m', BLOCK);
    const blockerN = sendTo('n', 'block-n', BLOCK);
    await waitFor('blockers running', () => simM.stats.running === 1 && simN.stats.running === 1);
    const done: string[] = [];
    const waitsM = sendTo('m', 'wait-m').then((r) => (done.push('wait-m'), r));
    const waitsN = sendTo('n', 'wait-n').then((r) => (done.push('wait-n'), r));
    await waitFor('both queued', async () => valueOf(await metrics(gw), 'igw_queue_depth', { priority: '0' }) === 2);
    // m leaves the configuration; n stays, without flow control.
    await apply([{ name: 'n', targets: [{ url: simN.url }] }, other]);
    const removed = await waitsM;
    assert.equal(removed.status, 404);
    assert.equal((JSON.parse(removed.body) as ErrorJson).error.code, 'model_not_found');
    const released = await waitsN;
    assert.equal(released.status, 200);
    // wait-n went on at once, while the blockers still ran.
    assert.deepEqual(done, ['wait-m', 'wait-n']);
    assert.equal(simN.stats.running, 1);
    for (const r of await Promise.all([blockerM, blockerN])) assert.equal(r.status, 200);
    assert.deepEqual(order(simM.received), ['block-m']);
    assert.deepEqual(order(simN.received), ['block-n', 'wait-n']);
    const after = await metrics(gw);
    const series = after.filter((x) => (x.name === 'igw_queue_depth' || x.name === 'igw_model_saturated') && (x.labels.model === 'm' || x.labels.model === 'n'));
    assert.deepEqual(series, [], 'the closed queues left no series behind');
    const body = (await (await fetch(`${gw.adminUrl}/models`)).json()) as { data: Array<{ name: string; flow_control: unknown }> };
    assert.equal(body.data.find((x) => x.name === 'n')!.flow_control, null);
  });

  it('a retry goes only to a target that is not saturated', async () => {
    const sim = await startSim(cleanup, { model: 'm', ttftMs: 10 });
    const dead = await deadUrl();
    const gw = await startGateway(cleanup, {
      models: [
        {
          name: 'm',
          api_keys: API_KEYS,
          // The dead target comes first: with both idle it is picked first.
          targets: [{ url: dead }, { url: sim.url }],
          retries: 1,
          health_check: { active: false, passive: { failures: 100 } },
          flow_control: { enabled: true, saturation: { max_inflight: 1, queue_depth: null, kv_cache: null } },
        },
      ],
    });
    // r0 fails to connect to the dead target and is retried on the simulator, which has room.
    const blocker = send(gw, KEYS.low, 'r0', BLOCK);
    await waitFor('blocker running', () => sim.stats.running === 1);
    // r1 goes to the dead target (it has room); its retry would find the simulator saturated.
    const r1 = await send(gw, KEYS.low, 'r1');
    assert.equal(r1.status, 502);
    assert.equal(r1.code, 'upstream_connect_failed');
    assert.equal((await blocker).status, 200);
    assert.deepEqual(order(sim.received), ['r0']);
  });

  it('igw_model_saturated and the admin view follow the engine\'s samples, not only decisions', async () => {
    const sim = await startSim(cleanup, { model: 'm', maxConcurrency: 1 });
    const gw = await startGateway(cleanup, {
      models: [{ name: 'm', targets: [{ url: sim.url }], load_metrics: { interval: '25ms' }, flow_control: { enabled: true, saturation: { queue_depth: 1, kv_cache: null } } }],
    });
    const saturated = async () => valueOf(await metrics(gw), 'igw_model_saturated', { model: 'm' });
    await waitFor('the gauge is there at 0', async () => (await metrics(gw)).some((x) => x.name === 'igw_model_saturated' && x.labels.model === 'm' && x.value === 0));
    // Another client fills the engine directly: the gateway decides nothing, its samples see it.
    const direct = [0, 1].map((i) => post(`${sim.url}/v1/chat/completions`, chat('m'), { 'x-sim-ttft-ms': '1500', 'x-request-id': `direct-${i}` }).then(async (r) => (await r.arrayBuffer(), r.status)));
    await waitFor('saturated from the samples', async () => (await saturated()) === 1);
    assert.equal((await flowOf(gw)).saturated, true);
    assert.deepEqual(await Promise.all(direct), [200, 200]);
    await waitFor('not saturated once the engine is idle', async () => (await saturated()) === 0);
    assert.equal((await flowOf(gw)).saturated, false);
  });

  it('headroom: the last free place goes to a tenant under its fair share, not to the heavy one that waits', async () => {
    const sims = [await startSim(cleanup, { model: 'm', ttftMs: 10 }), await startSim(cleanup, { model: 'm', ttftMs: 10 })];
    const gw = await startGateway(cleanup, {
      models: [
        {
          name: 'm',
          api_keys: API_KEYS,
          targets: sims.map((x) => ({ url: x.url })),
          flow_control: { enabled: true, fairness: 'requests', headroom: 1, saturation: { max_inflight: 2, queue_depth: null, kv_cache: null } },
        },
      ],
    });
    const running = () => sims[0]!.stats.running + sims[1]!.stats.running;
    // The light tenant (climber) has one request on; the heavy one (low), of the same priority, sends five.
    const all = [send(gw, KEYS.climber, 'light-0', BLOCK)];
    await waitFor('light running', () => running() === 1);
    for (let i = 0; i < 5; i++) all.push(send(gw, KEYS.low, `heavy-${i}`, BLOCK));
    // 4 places, 1 kept: heavy takes 2 (its fair half), the 3 others wait with a place free.
    await queueUntil(gw, 3);
    assert.equal(running(), 3);
    assert.deepEqual((await flowOf(gw)).by_tenant, { low: 3 });
    all.push(send(gw, KEYS.climber, 'light-1', BLOCK));
    await waitFor('the light request took the free place', () => running() === 4);
    assert.deepEqual((await flowOf(gw)).by_tenant, { low: 3 });
    for (const r of await Promise.all(all)) assert.equal(r.status, 200);
  });
});
