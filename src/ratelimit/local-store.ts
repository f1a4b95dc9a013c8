/**
 * LocalStore: the `local` policy, counters in this process (nothing to install). Atomic by
 * construction: Node runs one take at a time. Expired windows are swept every 10 s.
 */
import type { CounterStore, TakeRequest, TakeResult } from './counter-store.js';

interface Counter {
  count: number;
  expiresAtMs: number;
}

/** LocalStore keeps counters in a Map. */
export class LocalStore implements CounterStore {
  readonly #counters = new Map<string, Counter>();
  readonly #now: () => number;
  readonly #sweeper: NodeJS.Timeout;

  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now;
    this.#sweeper = setInterval(() => this.#sweep(), 10_000).unref();
  }

  take(req: TakeRequest): TakeResult {
    const now = this.#now();
    const n = req.keys.length;
    const counts = new Array<number>(n);
    const windowIds = new Array<number>(n);
    const resetMs = new Array<number>(n);
    let failed = -1;
    for (let i = 0; i < n; i++) {
      const win = req.windowMs[i]!;
      const id = Math.floor(now / win);
      windowIds[i] = id;
      resetMs[i] = (id + 1) * win - now;
      const c = this.#counters.get(`${req.keys[i]}:${id}`);
      counts[i] = c === undefined ? 0 : c.count;
      if (failed === -1 && counts[i]! + req.adds[i]! > req.limits[i]!) failed = i;
    }
    if (failed !== -1) return { isAllowed: false, failed, counts, windowIds, resetMs };
    for (let i = 0; i < n; i++) counts[i] = this.#add(`${req.keys[i]}:${windowIds[i]}`, req.adds[i]!, (windowIds[i]! + 1) * req.windowMs[i]!);
    return { isAllowed: true, failed: -1, counts, windowIds, resetMs };
  }

  settle(keys: readonly string[], windowIds: readonly number[], windowMs: readonly number[], deltas: readonly number[]): void {
    for (let i = 0; i < keys.length; i++) {
      if (deltas[i] === 0) continue;
      this.#add(`${keys[i]}:${windowIds[i]}`, deltas[i]!, (windowIds[i]! + 1) * windowMs[i]!);
    }
  }

  #add(key: string, delta: number, expiresAtMs: number): number {
    const c = this.#counters.get(key);
    if (c === undefined) {
      const count = Math.max(0, delta);
      this.#counters.set(key, { count, expiresAtMs });
      return count;
    }
    c.count = Math.max(0, c.count + delta);
    return c.count;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [k, c] of this.#counters) if (c.expiresAtMs <= now) this.#counters.delete(k);
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#counters.clear();
  }
}
