import { Pool } from 'undici';

/** PoolOptions are what distinguishes two pools to the same origin. */
export interface PoolOptions {
  connectTimeoutMs: number;
}

/**
 * PoolRegistry holds one keep-alive undici Pool per upstream origin. Pools are state that outlives
 * a config snapshot: keyed by origin (and connect timeout), they are reused across reloads.
 */
export class PoolRegistry {
  readonly #pools = new Map<string, Pool>();

  /** get returns the pool for an origin, creating it on first use. */
  get(origin: string, opts: PoolOptions): Pool {
    const key = `${origin}|${opts.connectTimeoutMs}`;
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      pool = new Pool(origin, {
        connect: { timeout: opts.connectTimeoutMs },
        // Timeouts are set per request (dispatch options); these only bound idle sockets.
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 600_000,
        pipelining: 1,
      });
      this.#pools.set(key, pool);
    }
    return pool;
  }

  /** close closes every pool, letting in-flight requests finish. */
  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.allSettled(pools.map((p) => p.close()));
  }

  /** destroy tears every pool down at once, aborting in-flight requests. */
  async destroy(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.allSettled(pools.map((p) => p.destroy()));
  }
}
