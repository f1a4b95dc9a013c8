/**
 * RedisStore: the `redis` policy, counters shared by every gateway replica. The takes of one
 * event-loop turn go out as one Lua script call (one round trip, atomic in Redis): it reads the
 * clock from Redis itself (so replicas with skewed clocks agree on windows) and, request by
 * request in arrival order, checks every counter and adds to all only when all fit. Token
 * settlements gather for 20 ms and go out as one pipeline. Commands are never queued while Redis is unreachable (enableOfflineQueue: false), so
 * a check fails within `timeout_ms`; the caller then counts locally (fault_tolerant) or refuses.
 * ioredis reconnects by itself. Keys are built inside the script, so this targets a single Redis
 * (or a primary with replicas), not Redis Cluster.
 */
import { Redis } from 'ioredis';
import type { CounterStore, TakeRequest, TakeResult } from './counter-store.js';

// One call checks and takes for a whole batch of requests, in arrival order, each one all or
// nothing: request j is admitted only if every one of its counters fits after requests 1..j-1.
// KEYS: the batch's distinct counter names (requests of one route share them). ARGV[1]: one JSON
// array of integers: request count, then per request its rule count and (key index, window ms,
// add, limit) per rule. One packed argument instead of hundreds keeps the client's per-argument
// work (ioredis converts and measures each one) out of the hot path, and Redis's C JSON decoder
// reads it ~4x faster than splitting a string in Lua. Each
// counter is read once and written once per batch (the running totals live in Lua tables), so
// Redis does O(distinct counters) commands, not O(requests x rules). Returns Redis's clock (ms),
// then per request the failing rule (1-based, 0 when allowed) and per rule its count; window ids
// and resets follow from the clock, so they are computed here rather than sent back.
const TAKE_BATCH_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {now}
local v = cjson.decode(ARGV[1])
-- Per distinct counter (by KEYS index): its name in this window, running count, what the batch
-- added and the expiry to set (0: it existed, whoever created it set one).
local name, count, added, ttl = {}, {}, {}, {}
local a = 2
for r = 1, v[1] do
  local n = v[a]
  local first = a + 1
  local failed = 0
  for i = 1, n do
    local j = first + (i - 1) * 4
    local k = v[j]
    if name[k] == nil then
      local win = v[j + 1]
      name[k] = KEYS[k] .. ':' .. math.floor(now / win)
      local got = redis.call('GET', name[k])
      count[k] = tonumber(got or '0'); added[k] = 0; ttl[k] = got and 0 or win + 5000
    end
    if failed == 0 and count[k] + v[j + 2] > v[j + 3] then failed = i end
  end
  if failed == 0 then
    for i = 1, n do
      local j = first + (i - 1) * 4
      local k = v[j]
      count[k] = count[k] + v[j + 2]
      added[k] = added[k] + v[j + 2]
    end
  end
  out[#out + 1] = failed
  for i = 1, n do out[#out + 1] = count[v[first + (i - 1) * 4]] end
  a = first + n * 4
end
for k = 1, #KEYS do
  if added[k] ~= nil and added[k] ~= 0 then
    redis.call('INCRBY', name[k], added[k])
    if ttl[k] > 0 then redis.call('PEXPIRE', name[k], ttl[k]) end
  end
end
return out
`;

/** Pending is one take waiting for the next batch call. */
interface Pending {
  req: TakeRequest;
  resolve: (r: TakeResult) => void;
  reject: (err: unknown) => void;
}

/** SETTLE_FLUSH_MS is how long settlements gather before one pipelined write (they are fire-and-forget). */
const SETTLE_FLUSH_MS = 20;

/** RedisStore keeps counters in Redis. */
export class RedisStore implements CounterStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  #pending: Pending[] = [];
  #settlements = new Map<string, [delta: number, windowMs: number]>();
  #settleTimer: NodeJS.Timeout | null = null;
  /** keyIndex maps a counter name to its KEYS position while one batch is built (reused, cleared after). */
  readonly #keyIndex = new Map<string, number>();

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
    this.#redis.defineCommand('igwTakeBatch', { lua: TAKE_BATCH_SCRIPT });
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

  /**
   * take queues the check and sends every take of this event-loop turn in one script call: under
   * load that is one Redis round trip for many requests instead of one each, with the same
   * all-or-nothing, zero-overshoot semantics.
   */
  take(req: TakeRequest): Promise<TakeResult> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ req, resolve, reject });
      if (this.#pending.length === 1) setImmediate(this.#flushTakes);
    });
  }

  readonly #flushTakes = (): void => {
    const batch = this.#pending;
    this.#pending = [];
    // Distinct names first (KEYS), then each rule refers to its name by 1-based index.
    const index = this.#keyIndex;
    const keys: string[] = [];
    let packed = `[${batch.length}`;
    for (const p of batch) {
      const r = p.req;
      packed += `,${r.keys.length}`;
      for (let i = 0; i < r.keys.length; i++) {
        const k = r.keys[i]!;
        let at = index.get(k);
        if (at === undefined) {
          keys.push(this.#prefix + k);
          at = keys.length;
          index.set(k, at);
        }
        packed += `,${at},${r.windowMs[i]!},${r.adds[i]!},${r.limits[i]!}`;
      }
    }
    index.clear();
    packed += ']';
    (this.#redis as unknown as { igwTakeBatch(n: number, ...a: string[]): Promise<number[]> }).igwTakeBatch(keys.length, ...keys, packed).then(
      (out) => {
        const now = out[0]!;
        let o = 1;
        for (const p of batch) {
          const r = p.req;
          const n = r.keys.length;
          const failed = out[o++]! - 1;
          const counts = new Array<number>(n);
          const windowIds = new Array<number>(n);
          const resetMs = new Array<number>(n);
          for (let i = 0; i < n; i++) {
            counts[i] = out[o++]!;
            const win = r.windowMs[i]!;
            const id = Math.floor(now / win);
            windowIds[i] = id;
            resetMs[i] = (id + 1) * win - now;
          }
          p.resolve({ isAllowed: failed === -1, failed, counts, windowIds, resetMs });
        }
      },
      (err: unknown) => {
        for (const p of batch) p.reject(err);
      },
    );
  };

  /** settle adds deltas; they gather for SETTLE_FLUSH_MS and go out as one pipeline (fire-and-forget). */
  settle(keys: readonly string[], windowIds: readonly number[], windowMs: readonly number[], deltas: readonly number[]): void {
    for (let i = 0; i < keys.length; i++) {
      if (deltas[i] === 0) continue;
      const name = `${this.#prefix}${keys[i]}:${windowIds[i]}`;
      const prev = this.#settlements.get(name);
      if (prev === undefined) this.#settlements.set(name, [deltas[i]!, windowMs[i]!]);
      else prev[0] += deltas[i]!;
    }
    if (this.#settleTimer === null && this.#settlements.size > 0) this.#settleTimer = setTimeout(this.#flushSettlements, SETTLE_FLUSH_MS);
  }

  readonly #flushSettlements = (): void => {
    this.#settleTimer = null;
    const batch = this.#settlements;
    this.#settlements = new Map();
    if (!this.isReady) return;
    const pipe = this.#redis.pipeline();
    for (const [name, [delta, windowMs]] of batch) {
      if (delta === 0) continue;
      pipe.incrby(name, delta);
      pipe.pexpire(name, windowMs + 5000);
    }
    pipe.exec().catch(() => {});
  };

  async close(): Promise<void> {
    if (this.#settleTimer !== null) {
      clearTimeout(this.#settleTimer);
      this.#flushSettlements();
    }
    // quit sends what is queued (the last settlements) before closing; a dead link just closes.
    await Promise.race([this.#redis.quit().catch(() => {}), new Promise((r) => setTimeout(r, 500).unref())]);
    this.#redis.disconnect();
  }
}
