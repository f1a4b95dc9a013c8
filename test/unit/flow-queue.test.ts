import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ModelQueue, type FlowControl, type FlowObserver, type FlowTenant, type Ticket } from '../../src/flow/index.js';
import { TargetState, toTarget } from '../../src/upstream/index.js';

const observer: FlowObserver = { depth: () => {}, waited: () => {}, shed: () => {}, saturated: () => {} };
const tenant = (name: string, weight = 1): FlowTenant => ({ name, priority: 0, maxPriority: 0, weight });

function setup(fairness: FlowControl['fairness']): { q: ModelQueue; state: TargetState } {
  const state = new TargetState('http://127.0.0.1:1');
  const target = toTarget(state.url, 1, state);
  const flow: FlowControl = {
    id: 'm',
    queueDepth: null,
    kvCache: null,
    maxInflight: 1,
    maxQueue: 1000,
    maxWaitMs: 60_000,
    fairness,
    isUpstreamPriority: false,
    staleMs: 2000,
    tenants: new Map(),
    anonymous: tenant(''),
  };
  return { q: new ModelQueue('m', flow, { name: 'm', upstream: { targets: [target] }, fallback: [] }, observer), state };
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
