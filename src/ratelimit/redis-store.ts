/**
 * RedisStore: the `redis` policy, counters shared by every gateway replica. One take is one
 * Lua script call (one round trip, atomic in Redis): it reads the clock from Redis itself (so
 * replicas with skewed clocks agree on windows), checks every counter, and adds to all only when
 * all fit. Commands are never queued while Redis is unreachable (enableOfflineQueue: false), so
 * a check fails within `timeout_ms`; the caller then counts locally (fault_tolerant) or refuses.
 * ioredis reconnects by itself. Keys are built inside the script, so this targets a single Redis
 * (or a primary with replicas), not Redis Cluster.
 */
import { Redis } from 'ioredis';
import type { CounterStore, TakeRequest, TakeResult } from './counter-store.js';

const TAKE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS
local out = {1, 0}
local ids, resets, names, counts = {}, {}, {}, {}
for i = 1, n do
  local win = tonumber(ARGV[i * 3 - 2])
  local id = math.floor(now / win)
  ids[i] = id
  resets[i] = (id + 1) * win - now
  names[i] = KEYS[i] .. ':' .. id
  counts[i] = tonumber(redis.call('GET', names[i]) or '0')
  if out[1] == 1 and counts[i] + tonumber(ARGV[i * 3 - 1]) > tonumber(ARGV[i * 3]) then
    out[1] = 0
    out[2] = i
  end
end
if out[1] == 1 then
  for i = 1, n do
    counts[i] = redis.call('INCRBY', names[i], ARGV[i * 3 - 1])
    redis.call('PEXPIRE', names[i], tonumber(ARGV[i * 3 - 2]) + 5000)
  end
end
for i = 1, n do out[#out + 1] = counts[i] end
for i = 1, n do out[#out + 1] = ids[i] end
for i = 1, n do out[#out + 1] = resets[i] end
return out
`;

/** RedisStore keeps counters in Redis. */
export class RedisStore implements CounterStore {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(url: string, opts: { timeoutMs: number; prefix?: string; onError?: (err: Error) => void }) {
    this.#prefix = opts.prefix ?? 'igw:rl:';
    this.#redis = new Redis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: opts.timeoutMs,
      connectTimeout: Math.max(opts.timeoutMs, 1000),
      retryStrategy: (times) => Math.min(100 * times, 2000),
      lazyConnect: false,
    });
    // ioredis emits 'error' on every failed reconnect; the caller logs them (rate-limited).
    this.#redis.on('error', (err: Error) => opts.onError?.(err));
    this.#redis.defineCommand('igwTake', { lua: TAKE_SCRIPT });
  }

  /** isReady tells whether the connection is up. */
  get isReady(): boolean {
    return this.#redis.status === 'ready';
  }

  /** waitReady resolves true once connected, or false after timeoutMs (the store then keeps trying). */
  waitReady(timeoutMs: number): Promise<boolean> {
    if (this.isReady) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.#redis.off('ready', onReady);
        resolve(ok);
      };
      const onReady = (): void => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.#redis.once('ready', onReady);
    });
  }

  async take(req: TakeRequest): Promise<TakeResult> {
    const n = req.keys.length;
    const args: Array<string | number> = [n];
    for (let i = 0; i < n; i++) args.push(this.#prefix + req.keys[i]!);
    for (let i = 0; i < n; i++) args.push(req.windowMs[i]!, req.adds[i]!, req.limits[i]!);
    const out = (await (this.#redis as unknown as { igwTake(...a: Array<string | number>): Promise<number[]> }).igwTake(...args)) as number[];
    return {
      isAllowed: out[0] === 1,
      failed: out[0] === 1 ? -1 : out[1]! - 1,
      counts: out.slice(2, 2 + n),
      windowIds: out.slice(2 + n, 2 + 2 * n),
      resetMs: out.slice(2 + 2 * n, 2 + 3 * n),
    };
  }

  settle(keys: readonly string[], windowIds: readonly number[], windowMs: readonly number[], deltas: readonly number[]): void {
    if (!this.isReady) return;
    const pipe = this.#redis.pipeline();
    for (let i = 0; i < keys.length; i++) {
      if (deltas[i] === 0) continue;
      const name = `${this.#prefix}${keys[i]}:${windowIds[i]}`;
      pipe.incrby(name, deltas[i]!);
      pipe.pexpire(name, windowMs[i]! + 5000);
    }
    pipe.exec().catch(() => {});
  }

  async close(): Promise<void> {
    this.#redis.disconnect();
  }
}
