import type { Logger } from 'pino';
import type { CounterStore } from './counter-store.js';
import { LocalStore } from './local-store.js';

/** CounterStoreOptions are the limits store settings (limits_store), defaults applied. */
export interface CounterStoreOptions {
  /** redisUrl shares counters across replicas through Redis; null counts in this process. */
  redisUrl: string | null;
  timeoutMs: number;
  isFaultTolerant: boolean;
}

/**
 * openCounterStore makes the store rate-limit counters live in. A Redis store waits (briefly) for
 * its connection: counting the first requests locally because the connection was still being made
 * would let a restart exceed shared limits.
 */
export async function openCounterStore(opts: CounterStoreOptions, log: Logger): Promise<CounterStore> {
  if (opts.redisUrl === null) return new LocalStore();
  // Loaded only when used: ioredis is ~20 MiB of a gateway's idle memory.
  const { RedisStore } = await import('./redis-store.js');
  let lastRedisLogMs = 0;
  const store = new RedisStore(opts.redisUrl, {
    timeoutMs: opts.timeoutMs,
    onError: (err) => {
      // ioredis reports every failed reconnect; one line per 10 s is enough.
      if (Date.now() - lastRedisLogMs < 10_000) return;
      lastRedisLogMs = Date.now();
      log.warn({ err: err.message }, 'redis connection problem');
    },
  });
  if (!(await store.waitReady(2000))) {
    log.warn({ fault_tolerant: opts.isFaultTolerant }, `redis not reachable at start; limited requests are ${opts.isFaultTolerant ? 'counted locally' : 'refused with 503'} until it is`);
  }
  return store;
}
