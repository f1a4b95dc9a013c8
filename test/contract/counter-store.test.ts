import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { LocalStore, type CounterStore, type TakeRequest } from '../../src/ratelimit/index.js';
import { RedisStore } from '../../src/ratelimit/redis-store.js';
import { RedisServer } from '../helpers/redis.js';

/** The same suite runs against every counter store (STYLE 2.7: one contract, every implementation). */
const implementations: Array<{ name: string; create: () => Promise<{ store: CounterStore; done: () => Promise<void> }> }> = [
  { name: 'local', create: async () => ({ store: new LocalStore(), done: async () => {} }) },
  {
    name: 'redis',
    create: async () => {
      const server = await RedisServer.launch();
      const store = new RedisStore(server.url, { timeoutMs: 500, prefix: `t${Date.now()}:` });
      await store.waitReady(2000);
      return { store, done: () => server.kill() };
    },
  },
];

const req = (key: string, limit: number, add = 1, extra?: { key: string; limit: number }): TakeRequest => ({
  keys: extra ? [key, extra.key] : [key],
  windowMs: extra ? [3_600_000, 3_600_000] : [3_600_000],
  adds: extra ? [add, add] : [add],
  limits: extra ? [limit, extra.limit] : [limit],
});

for (const impl of implementations) {
  describe(`counter store contract: ${impl.name}`, () => {
    let store: CounterStore;
    let done: () => Promise<void>;
    before(async () => ({ store, done } = await impl.create()));
    after(async () => {
      await store.close();
      await done();
    });

    it('lets exactly the limit through a concurrent burst (zero overshoot)', async () => {
      const results = await Promise.all(Array.from({ length: 200 }, () => store.take(req('burst', 50))));
      assert.equal(results.filter((r) => r.isAllowed).length, 50);
      const last = results.filter((r) => r.isAllowed).map((r) => r.counts[0]).sort((a, b) => a! - b!);
      assert.deepEqual(last, Array.from({ length: 50 }, (_, i) => i + 1));
    });

    it('is all or nothing across a request\'s counters', async () => {
      const first = await store.take(req('a1', 10, 1, { key: 'b1', limit: 1 }));
      assert.equal(first.isAllowed, true);
      const second = await store.take(req('a1', 10, 1, { key: 'b1', limit: 1 }));
      assert.equal(second.isAllowed, false);
      assert.equal(second.failed, 1);
      // The counter that fit was not taken either.
      const third = await store.take(req('a1', 10));
      assert.equal(third.counts[0], 2);
    });

    it('admits a reservation only if used + reservation fits, and settles with the real amount', async () => {
      const r1 = await store.take(req('tok', 100, 60));
      assert.equal(r1.isAllowed, true);
      assert.equal((await store.take(req('tok', 100, 60))).isAllowed, false);
      store.settle(['tok'], r1.windowIds, [3_600_000], [-50]);
      await new Promise((r) => setTimeout(r, 60));
      const r2 = await store.take(req('tok', 100, 60));
      assert.equal(r2.isAllowed, true);
      assert.equal(r2.counts[0], 70);
    });

    it('counts a burst over different counters per counter, in arrival order', async () => {
      // Requests alternate between two own counters and share a third: the answer must be what
      // taking them one by one gives, whatever the store batches together.
      const limits: Record<string, number> = { mx: 10, my: 20, mz: 25 };
      const reqs: TakeRequest[] = Array.from({ length: 60 }, (_, i) => {
        const own = i % 3 === 0 ? 'mx' : 'my';
        return { keys: [own, 'mz'], windowMs: [3_600_000, 3_600_000], adds: [1, 1], limits: [limits[own]!, limits.mz!] };
      });
      const used: Record<string, number> = { mx: 0, my: 0, mz: 0 };
      const expected = reqs.map((r) => {
        const fits = r.keys.every((k, i) => used[k]! + r.adds[i]! <= r.limits[i]!);
        if (fits) r.keys.forEach((k, i) => (used[k]! += r.adds[i]!));
        return fits;
      });
      const results = await Promise.all(reqs.map((r) => store.take(r)));
      assert.deepEqual(results.map((r) => r.isAllowed), expected);
      assert.equal(results.filter((r) => r.isAllowed).length, 25);
      const after = await store.take({ keys: ['mx', 'my', 'mz'], windowMs: [3_600_000, 3_600_000, 3_600_000], adds: [0, 0, 0], limits: [100, 100, 100] });
      assert.deepEqual(after.counts, [used.mx, used.my, used.mz]);
    });

    it('reports window ids and the time left in the window', async () => {
      const r = await store.take({ keys: ['w'], windowMs: [60_000], adds: [1], limits: [5] });
      assert.equal(r.windowIds[0], Math.floor(Date.now() / 60_000));
      assert.ok(r.resetMs[0]! > 0 && r.resetMs[0]! <= 60_000);
    });
  });
}

describe('redis store counters expire', () => {
  it('gives every counter it creates an expiry of its window plus 5 s', async () => {
    const server = await RedisServer.launch();
    const store = new RedisStore(server.url, { timeoutMs: 500, prefix: 'exp:' });
    try {
      await store.waitReady(2000);
      await Promise.all([1, 2, 3].map(() => store.take({ keys: ['a', 'b'], windowMs: [60_000, 1_000], adds: [1, 5], limits: [10, 100] })));
      const r = await store.take({ keys: ['a', 'b'], windowMs: [60_000, 1_000], adds: [1, 5], limits: [10, 100] });
      assert.equal(r.isAllowed, true);
      const ttl = (key: string, id: number): number => Number(spawnSync('redis-cli', ['-p', String(server.port), 'pttl', `exp:${key}:${id}`], { encoding: 'utf8' }).stdout.trim());
      const ta = ttl('a', r.windowIds[0]!);
      const tb = ttl('b', r.windowIds[1]!);
      assert.ok(ta > 60_000 && ta <= 65_000, `a: pttl ${ta}`);
      assert.ok(tb > 0 && tb <= 6_000, `b: pttl ${tb}`);
    } finally {
      await store.close();
      await server.kill();
    }
  });
});
