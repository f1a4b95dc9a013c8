import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toKeyHash } from '../../src/auth/index.js';
import { compileSnapshot, loadConfigFile } from '../../src/config/index.js';
import { LimitTake, toRateLimitHeaders, type CounterStore, type Plan, type TakeRequest, type TakeResult } from '../../src/ratelimit/index.js';
import { writeConfig } from '../helpers/harness.js';

const LIMITED_KEY = 'limit-plan-key-limited-0123';
const PLAIN_KEY = 'limit-plan-key-plain-456789';

function compile(): ReturnType<typeof compileSnapshot> {
  const path = writeConfig({
    limits: { requests: { per_second: 100 } },
    models: [
      {
        name: 'm',
        limits: { requests: { per_minute: 50 }, tokens: { per_minute: 1000 } },
        api_keys: [{ key: LIMITED_KEY, name: 'team-a', limits: { requests: { per_hour: 20 } } }, PLAIN_KEY],
        targets: [{ url: 'http://127.0.0.1:9' }],
      },
      { name: 'open', targets: [{ url: 'http://127.0.0.1:9' }] },
    ],
  });
  return compileSnapshot(loadConfigFile(path, { env: {} }));
}

/** RecordingStore is a CounterStore that answers takes from a table and records settlements. */
class RecordingStore implements CounterStore {
  readonly settled: Array<{ keys: readonly string[]; windowIds: readonly number[]; windowMs: readonly number[]; deltas: readonly number[] }> = [];
  take(req: TakeRequest): TakeResult {
    return { isAllowed: true, failed: -1, counts: req.adds.slice(), windowIds: req.keys.map((_, i) => 7 + i), resetMs: req.keys.map(() => 30_000) };
  }
  settle(keys: readonly string[], windowIds: readonly number[], windowMs: readonly number[], deltas: readonly number[]): void {
    this.settled.push({ keys, windowIds, windowMs, deltas });
  }
  async close(): Promise<void> {}
}

describe('limit plans', () => {
  it('are compiled with the snapshot for each (model, key) pair: gateway, model, then key rules', () => {
    const snapshot = compile();
    const limits = snapshot.models[0]!.limits!;
    const counters = (p: Plan): string[] => [...p.keys];
    assert.deepEqual(counters(limits.plan), ['gw:requests:second', 'model::m:requests:minute', 'model::m:tokens:minute']);
    const keyed = limits.keyPlans.get(toKeyHash(LIMITED_KEY)!)!;
    assert.deepEqual(counters(keyed), [...counters(limits.plan), 'key:team-a:requests:hour']);
    // A key without limits of its own follows the model's plan.
    assert.equal(limits.keyPlans.get(toKeyHash(PLAIN_KEY)!), undefined);
    assert.deepEqual([...keyed.tokenKeys], ['model::m:tokens:minute']);
    assert.deepEqual(
      keyed.windows.map((w) => w.limitName),
      ['x-ratelimit-limit-Second', 'x-ratelimit-limit-Minute', 'x-ratelimit-limit-Hour'],
    );
    assert.deepEqual([...snapshot.models[1]!.limits!.plan.keys], ['gw:requests:second']);
  });

  it('give RateLimit-* for the tightest request rule and X-RateLimit-* per window', () => {
    const plan = compile().models[0]!.limits!.plan;
    const res: TakeResult = { isAllowed: true, failed: -1, counts: [10, 45, 300], windowIds: [1, 2, 3], resetMs: [500, 20_000, 20_000] };
    assert.deepEqual(toRateLimitHeaders(plan, res, -1), [
      'ratelimit-limit', '50', 'ratelimit-remaining', '5', 'ratelimit-reset', '20',
      'x-ratelimit-limit-Second', '100', 'x-ratelimit-remaining-Second', '90',
      'x-ratelimit-limit-Minute', '50', 'x-ratelimit-remaining-Minute', '5',
    ]);
    assert.deepEqual(toRateLimitHeaders(plan, { ...res, isAllowed: false, failed: 0 }, 0).slice(0, 6), ['ratelimit-limit', '100', 'ratelimit-remaining', '0', 'ratelimit-reset', '1']);
  });
});

describe('LimitTake', () => {
  const plan = compile().models[0]!.limits!.plan;

  it('settles the token rules in the windows it took from, by what was used minus what was reserved', () => {
    const store = new RecordingStore();
    const res = store.take({ keys: plan.keys, windowMs: plan.windowMs, adds: [1, 1, 40], limits: plan.limits });
    new LimitTake(store, plan, res.windowIds, 40).settle(25);
    assert.deepEqual(store.settled, [{ keys: ['model::m:tokens:minute'], windowIds: [9], windowMs: [60_000], deltas: [-15] }]);
  });

  it('refunds the whole reservation for no usage, and settles nothing when usage matches or nothing was reserved', () => {
    const store = new RecordingStore();
    new LimitTake(store, plan, [1, 2, 3], 40).settle(0);
    new LimitTake(store, plan, [1, 2, 3], 40).settle(40);
    new LimitTake(store, plan, [1, 2, 3], 0).settle(12);
    assert.deepEqual(store.settled.map((s) => s.deltas), [[-40]]);
  });
});
