import { Pool, type Dispatcher } from 'undici';
import type { UpstreamDispatcher, UpstreamHandler, UpstreamRequest } from './dispatch.js';
import { H1Pool } from './h1/index.js';

/** PoolOptions are what distinguishes two pools to the same origin. */
export interface PoolOptions {
  connectTimeoutMs: number;
}

/** undiciPool is a keep-alive undici pool, one request per connection at a time. */
function undiciPool(origin: string, opts: PoolOptions): Pool {
  return new Pool(origin, {
    connect: { timeout: opts.connectTimeoutMs },
    // Timeouts are set per request (dispatch options); these only bound idle sockets.
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
    pipelining: 1,
  });
}

/** UndiciForwarder puts an undici Pool behind the UpstreamDispatcher interface (HTTPS targets). */
class UndiciForwarder implements UpstreamDispatcher {
  readonly #pool: Pool;
  constructor(pool: Pool) {
    this.#pool = pool;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): void {
    this.#pool.dispatch(
      {
        path: request.path,
        method: request.method as Dispatcher.HttpMethod,
        headers: request.headers,
        body: request.body,
        headersTimeout: request.headersTimeout,
        bodyTimeout: request.bodyTimeout,
        // Inference requests are not idempotent: undici must never retry or pipeline them.
        idempotent: false,
      },
      handler as Dispatcher.DispatchHandler,
    );
  }

  close(): Promise<void> {
    return this.#pool.close();
  }

  destroy(): Promise<void> {
    return this.#pool.destroy();
  }
}

/**
 * PoolRegistry holds the keep-alive connection pools per upstream origin. Pools are state that
 * outlives a config snapshot: keyed by origin (and connect timeout), they are reused across
 * reloads. Requests to plain-HTTP targets go through the built-in HTTP/1.1 client (H1Pool) unless
 * `proxy.fast_upstream` is false, and so are health, load and model-list probes of those targets;
 * HTTPS targets use undici.
 */
export class PoolRegistry {
  readonly #pools = new Map<string, Pool>();
  /** #forwarders: builtin flag → origin → connect timeout → dispatcher (no key string built per request). */
  readonly #forwarders = [new Map<string, Map<number, UpstreamDispatcher>>(), new Map<string, Map<number, UpstreamDispatcher>>()] as const;

  /** #undiciPool returns the undici pool for an origin and connect timeout, creating it on first use. */
  #undiciPool(origin: string, opts: PoolOptions): Pool {
    const key = `${origin}|${opts.connectTimeoutMs}`;
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      pool = undiciPool(origin, opts);
      this.#pools.set(key, pool);
    }
    return pool;
  }

  /** forwarder returns the dispatcher that carries proxied requests to an origin. */
  forwarder(origin: string, connectTimeoutMs: number, isBuiltin: boolean): UpstreamDispatcher {
    const byOrigin = this.#forwarders[isBuiltin ? 1 : 0];
    let byTimeout = byOrigin.get(origin);
    if (byTimeout === undefined) {
      byTimeout = new Map();
      byOrigin.set(origin, byTimeout);
    }
    let f = byTimeout.get(connectTimeoutMs);
    if (f === undefined) {
      const opts: PoolOptions = { connectTimeoutMs };
      // One undici pool per origin and connect timeout.
      f = isBuiltin && origin.startsWith('http:') ? new H1Pool(origin, opts) : new UndiciForwarder(this.#undiciPool(origin, opts));
      byTimeout.set(connectTimeoutMs, f);
    }
    return f;
  }

  /** size is how many undici pools and built-in clients are kept. */
  get size(): number {
    let n = this.#pools.size;
    for (const f of this.#forwarders[1].values()) for (const d of f.values()) if (!(d instanceof UndiciForwarder)) n++;
    return n;
  }

  /** forget closes and drops every pool of an origin no target uses any more, letting requests on them finish. */
  async forget(origin: string): Promise<void> {
    const gone: Array<Pool | UpstreamDispatcher> = [];
    for (const [key, pool] of this.#pools) {
      if (key.slice(0, key.lastIndexOf('|')) !== origin) continue;
      gone.push(pool);
      this.#pools.delete(key);
    }
    for (const byOrigin of this.#forwarders) {
      for (const f of byOrigin.get(origin)?.values() ?? []) if (!(f instanceof UndiciForwarder)) gone.push(f);
      byOrigin.delete(origin);
    }
    await Promise.allSettled(gone.map((p) => p.close()));
  }

  /** #takeAll empties the registry and returns every pool it held. */
  #takeAll(): Array<Pool | UpstreamDispatcher> {
    const all: Array<Pool | UpstreamDispatcher> = [...this.#pools.values()];
    for (const byOrigin of this.#forwarders) {
      // An UndiciForwarder's pool is in #pools already.
      for (const byTimeout of byOrigin.values()) for (const f of byTimeout.values()) if (!(f instanceof UndiciForwarder)) all.push(f);
      byOrigin.clear();
    }
    this.#pools.clear();
    return all;
  }

  /** close closes every pool, letting in-flight requests finish. */
  async close(): Promise<void> {
    const all = this.#takeAll();
    await Promise.allSettled(all.map((p) => p.close()));
  }

  /** destroy tears every pool down at once, aborting in-flight requests. */
  async destroy(): Promise<void> {
    const all = this.#takeAll();
    await Promise.allSettled(all.map((p) => p.destroy()));
  }
}
