import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadOf, ModelQueue, SATURATED, type FlowControl, type FlowObserver, type FlowTenant, type Ticket } from '../../src/flow/index.js';
import { LeastLoadBalancer, TargetState, toTarget, type Target } from '../../src/upstream/index.js';
import { compileSnapshot, ConfigError, loadConfigFile } from '../../src/config/index.js';
import { writeConfig } from '../helpers/harness.js';

const observer: FlowObserver = { depth: () => {}, waited: () => {}, shed: () => {}, saturated: () => {}, forget: () => {} };
const tenant = (name: string, weight = 1): FlowTenant => ({ name, priority: 0, maxPriority: 0, weight });

function flowOf(fairness: FlowControl['fairness'], extra: Partial<FlowControl> = {}): FlowControl {
  return {
    id: 'm',
    queueDepth: null,
    kvCache: null,
    maxInflight: 1,
    headroom: 0,
    maxQueue: 1000,
    maxWaitMs: 60_000,
    fairness,
    isUpstreamPriority: false,
    staleMs: 2000,
    pollMs: 250,
    tenants: new Map(),
    anonymous: tenant(''),
    ...extra,
  };
}

function setup(fairness: FlowControl['fairness']): { q: ModelQueue; state: TargetState } {
  const state = new TargetState('http://127.0.0.1:1');
  const target = toTarget(state.url, 1, state);
  return { q: new ModelQueue('m', flowOf(fairness), { name: 'm', upstream: { targets: [target] }, fallback: [] }, observer), state };
}

/** dispatchOneByOne frees the target for one request at a time, ends it with `used` tokens, and returns the tenants in dispatch order. */
function dispatchOneByOne(q: ModelQueue, state: TargetState, tickets: Array<{ name: string; ticket: Ticket }>, used: (name: string) => number, n: number): string[] {
  const seen = new Set<Ticket>();
  const order: string[] = [];
  for (let i = 0; i < n; i++) {
    state.inflight = 0;
    q.release();
    state.inflight = 1;
    const done = tickets.filter((t) => t.ticket.isDone && !seen.has(t.ticket));
    assert.equal(done.length, 1, 'one request released per free slot');
    seen.add(done[0]!.ticket);
    order.push(done[0]!.name);
    done[0]!.ticket.end(used(done[0]!.name), 0);
  }
  return order;
}

describe('flow queue fairness', () => {
  it('tokens fairness settles the charge with the real usage: an over-estimated tenant is not penalised', () => {
    const { q, state } = setup('tokens');
    state.inflight = 1;
    const tickets: Array<{ name: string; ticket: Ticket }> = [];
    // a asks for 1000 tokens but uses 10; b asks for 10 and uses 10: after settling they are equal.
    for (let i = 0; i < 20; i++) {
      tickets.push({ name: 'a', ticket: q.admit(tenant('a'), 0, 1000, Date.now()).ticket });
      tickets.push({ name: 'b', ticket: q.admit(tenant('b'), 0, 10, Date.now()).ticket });
    }
    const order = dispatchOneByOne(q, state, tickets, () => 10, 20);
    const a = order.filter((n) => n === 'a').length;
    assert.ok(a >= 9 && a <= 11, `a got ${a} of 20: ${order.join('')}`);
  });

  it('tokens fairness: a tenant using ten times the tokens gets a tenth of the requests through', () => {
    const { q, state } = setup('tokens');
    state.inflight = 1;
    const tickets: Array<{ name: string; ticket: Ticket }> = [];
    for (let i = 0; i < 40; i++) {
      tickets.push({ name: 'big', ticket: q.admit(tenant('big'), 0, 100, Date.now()).ticket });
      tickets.push({ name: 'small', ticket: q.admit(tenant('small'), 0, 10, Date.now()).ticket });
    }
    const order = dispatchOneByOne(q, state, tickets, (n) => (n === 'big' ? 100 : 10), 33);
    const big = order.filter((n) => n === 'big').length;
    assert.ok(big >= 2 && big <= 4, `big got ${big} of 33: ${order.join(',')}`);
  });

  it('a tenant that starts waiting late gets no credit for the time it was idle', () => {
    const { q, state } = setup('requests');
    state.inflight = 1;
    const tickets: Array<{ name: string; ticket: Ticket }> = [];
    for (let i = 0; i < 30; i++) tickets.push({ name: 'a', ticket: q.admit(tenant('a'), 0, 1, Date.now()).ticket });
    dispatchOneByOne(q, state, tickets, () => 1, 20);
    const pending = tickets.filter((t) => !t.ticket.isDone);
    for (let i = 0; i < 10; i++) pending.push({ name: 'b', ticket: q.admit(tenant('b'), 0, 1, Date.now()).ticket });
    const order = dispatchOneByOne(q, state, pending, () => 1, 10);
    const b = order.filter((n) => n === 'b').length;
    assert.ok(b >= 4 && b <= 6, `the newcomer shares from now on, it does not take all: b got ${b} of 10`);
  });
});

describe('flow queue headroom', () => {
  /** Two targets of 4 places each, 1 kept as headroom; `begin` puts a dispatched request on its target as the proxy does. */
  function setupHeadroom(): { q: ModelQueue; states: TargetState[]; admit: (name: string) => { ticket: Ticket; isAtOnce: boolean } } {
    const states = [new TargetState('http://127.0.0.1:1'), new TargetState('http://127.0.0.1:2')];
    const targets = states.map((s) => toTarget(s.url, 1, s));
    const q = new ModelQueue('m', flowOf('requests', { maxInflight: 4, headroom: 1 }), { name: 'm', upstream: { targets }, fallback: [] }, observer);
    const admit = (name: string): { ticket: Ticket; isAtOnce: boolean } => {
      const r = q.admit(tenant(name), 0, 1, Date.now());
      if (r.target !== null) r.target.state.inflight++;
      else void r.wait!.then((t) => t!.state.inflight++);
      return { ticket: r.ticket, isAtOnce: r.target !== null };
    };
    return { q, states, admit };
  }

  it('a tenant alone uses every place; next to another, the last free place is kept for the one under its fair share', async () => {
    const { q, states, admit } = setupHeadroom();
    const heavy = Array.from({ length: 8 }, () => admit('heavy'));
    assert.ok(heavy.every((r) => r.isAtOnce), 'alone, a tenant is under its fair share of all 8 places');
    assert.equal(states[0]!.inflight + states[1]!.inflight, 8);
    // Two places free up: the heavy tenant (8 of 8, alone) takes one, the last stays free for others.
    states[0]!.inflight--;
    heavy[0]!.ticket.end(1, 1);
    states[1]!.inflight--;
    heavy[1]!.ticket.end(1, 1);
    const light = admit('light');
    assert.ok(light.isAtOnce, 'the light tenant finds a place at once');
    const more = admit('heavy');
    assert.ok(!more.isAtOnce, 'the heavy tenant waits: 1 place left is the headroom, and it is over its share');
    const more2 = admit('heavy');
    await Promise.resolve();
    assert.equal(q.size, 2);
    // A place frees: only the headroom is left, the heavy tenant (6 of a fair 4) still waits.
    states[0]!.inflight--;
    heavy[2]!.ticket.end(1, 1);
    await Promise.resolve();
    assert.equal(q.size, 1, 'two places free: one goes to the heavy tenant, one stays');
    assert.ok(more.ticket.isDone && !more2.ticket.isDone);
    // Requests wait, so the light one queues too, and goes at once: under its share, the headroom is its.
    const light2 = admit('light');
    assert.ok(light2.ticket.isDone && !more2.ticket.isDone, 'the light tenant takes the headroom, ahead of the waiting heavy one');
  });

  it('strict priority holds with headroom: a waiting higher level blocks lower ones even under their share', () => {
    const { q, states, admit } = setupHeadroom();
    assert.ok(admit('light').isAtOnce);
    for (let i = 0; i < 6; i++) assert.ok(admit('heavy').isAtOnce);
    const high = q.admit({ name: 'heavy', priority: 5, maxPriority: 5, weight: 1 }, 5, 1, Date.now());
    assert.equal(high.target, null, 'heavy at priority 5 is over its share and waits');
    const light = admit('light');
    assert.ok(!light.isAtOnce, 'the light tenant at priority 0 waits behind the waiting priority-5 request');
    assert.equal(states[0]!.inflight + states[1]!.inflight, 7);
  });
});

describe('flow_control configuration', () => {
  it('headroom without saturation.max_inflight is refused with its file, field and reason', () => {
    const path = writeConfig({ models: [{ name: 'm', targets: [{ url: 'http://h:1' }], flow_control: { enabled: true, headroom: 1 } }] });
    assert.throws(
      () => loadConfigFile(path, { env: {} }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.equal(err.issues.length, 1);
        const issue = err.issues[0]!;
        assert.ok(issue.file.endsWith('gateway.yaml'));
        assert.equal(issue.field, 'models[0].flow_control.headroom');
        assert.match(issue.message, /max_inflight/);
        return true;
      },
    );
    const ok = writeConfig({ models: [{ name: 'm', targets: [{ url: 'http://h:1' }], flow_control: { enabled: true, headroom: 1, saturation: { max_inflight: 4 } } }] });
    assert.equal(compileSnapshot(loadConfigFile(ok, { env: {} })).models[0]!.flow!.headroom, 1);
  });
});

describe('saturation estimate between samples', () => {
  const flow = flowOf('requests', { maxInflight: null, queueDepth: 1 });
  const sample = (running: number, waiting: number, inflight: number, atMs: number) => ({ running, waiting, kvCacheUsage: 0, atMs, inflight });

  it('requests sent since the sample fill the batch its samples showed, then count as waiting', () => {
    const state = new TargetState('http://127.0.0.1:1');
    const now = Date.now();
    // No sample has shown the batch size yet: every request sent since counts as waiting.
    state.load = sample(5, 0, 5, now);
    state.inflight = 6;
    assert.equal(loadOf(state, flow, now, 0), SATURATED);
    // A sample with requests waiting shows the batch: 8 run at once.
    state.load = sample(8, 2, 10, now + 1);
    state.inflight = 10;
    assert.equal(loadOf(state, flow, now + 1, 0), SATURATED, 'two wait in the engine');
    state.inflight = 9;
    assert.equal(loadOf(state, flow, now + 1, 0), SATURATED, 'one finished since: one still waits');
    state.inflight = 8;
    assert.equal(loadOf(state, flow, now + 1, 0), 8, 'two finished since: none waits (queue_depth 1 lets one more wait)');
    // The next sample shows room: requests sent since fill it before any counts as waiting.
    state.load = sample(5, 0, 5, now + 2);
    state.inflight = 8;
    assert.equal(loadOf(state, flow, now + 2, 0), 8, 'three sent since fill the batch of 8');
    state.inflight = 9;
    assert.equal(loadOf(state, flow, now + 2, 0), SATURATED, 'the fourth waits');
  });
});

describe('flow queue dispatch by the model\'s balancer', () => {
  it('a request released from the queue goes where least-load sends it among the targets with room, not to the one with the fewest requests', async () => {
    const states = [new TargetState('http://127.0.0.1:1'), new TargetState('http://127.0.0.1:2')];
    const targets = states.map((s) => toTarget(s.url, 1, s));
    const balancer = new LeastLoadBalancer(targets, { random: () => 0 });
    const pick = (_m: unknown, request: unknown, full: ReadonlySet<Target>, nowMs: number): Target | undefined =>
      balancer.pick({ excluded: full, hashKey: null, nowMs, size: request as number });
    const sample = (running: number, kv: number) => ({ waiting: 0, running, kvCacheUsage: kv, atMs: Date.now() });
    // Small requests teach least-load the mean request size (100 bytes).
    states[0]!.load = sample(1, 0.6);
    states[1]!.load = sample(3, 0.05);
    for (let i = 0; i < 3; i++) balancer.pick({ excluded: null, hashKey: null, nowMs: Date.now(), size: 100 });
    await new Promise((r) => setTimeout(r, 2));
    // Fresh samples: 0 has one running request and a cache 60 % full, 1 three and an almost empty cache.
    states[0]!.load = sample(1, 0.6);
    states[1]!.load = sample(3, 0.05);
    const q = new ModelQueue('m', flowOf('requests'), { name: 'm', upstream: { targets }, fallback: [] }, observer);
    states[0]!.inflight = 1;
    states[1]!.inflight = 1;
    // Both targets are saturated (max_inflight 1): a large request (4x the mean) waits.
    const r = q.admit(tenant('a'), 0, 1, Date.now(), 400, pick);
    assert.equal(r.target, null);
    assert.equal(q.size, 1);
    // Both free up at once: least-load sees the large prompt's KV blocks would not fit beside 0's.
    states[0]!.inflight = 0;
    states[1]!.inflight = 0;
    q.release();
    assert.equal(await r.wait, targets[1]);
    // Without a pick the least-loaded target with room is taken (fewest running requests: 0).
    const q2 = new ModelQueue('m2', flowOf('requests'), { name: 'm2', upstream: { targets }, fallback: [] }, observer);
    assert.equal(q2.admit(tenant('a'), 0, 1, Date.now(), 400, null).target, targets[0]);
  });
});
