import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LocalStore, RedisStore, type CounterStore, type TakeRequest } from '../../src/ratelimit/index.js';
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

    it('reports window ids and the time left in the window', async () => {
      const r = await store.take({ keys: ['w'], windowMs: [60_000], adds: [1], limits: [5] });
      assert.equal(r.windowIds[0], Math.floor(Date.now() / 60_000));
      assert.ok(r.resetMs[0]! > 0 && r.resetMs[0]! <= 60_000);
    });
  });
}
