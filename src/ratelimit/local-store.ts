/**
 * LocalStore: the `local` policy, counters in this process (nothing to install). Atomic by
 * construction: Node runs one take at a time. Each counter keeps only its current window (a new
 * window replaces the old one), so a take builds no strings and does one Map lookup per rule.
 * A settlement for a window that has already ended is dropped: that window no longer limits anyone.
 */
import type { CounterStore, TakeRequest, TakeResult } from './counter-store.js';

interface Window {
  id: number;
  count: number;
  expiresAtMs: number;
}

/** LocalStore keeps counters in a Map. */
export class LocalStore implements CounterStore {
  readonly #windows = new Map<string, Window>();
  readonly #now: () => number;
  readonly #sweeper: NodeJS.Timeout;
  /** #found is scratch space for the windows a take looked up (reused, never shared across takes). */
  #found: Array<Window | undefined> = [];

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
    const found = this.#found;
    let failed = -1;
    for (let i = 0; i < n; i++) {
      const win = req.windowMs[i]!;
      const id = Math.floor(now / win);
      windowIds[i] = id;
      resetMs[i] = (id + 1) * win - now;
      const w = this.#windows.get(req.keys[i]!);
      const current = w !== undefined && w.id === id ? w : undefined;
      found[i] = current;
      counts[i] = current === undefined ? 0 : current.count;
      if (failed === -1 && counts[i]! + req.adds[i]! > req.limits[i]!) failed = i;
    }
    if (failed !== -1) return { isAllowed: false, failed, counts, windowIds, resetMs };
    for (let i = 0; i < n; i++) {
      const w = found[i];
      if (w !== undefined) counts[i] = w.count += req.adds[i]!;
      else {
        counts[i] = req.adds[i]!;
        this.#windows.set(req.keys[i]!, { id: windowIds[i]!, count: req.adds[i]!, expiresAtMs: (windowIds[i]! + 1) * req.windowMs[i]! });
      }
      found[i] = undefined;
    }
    return { isAllowed: true, failed: -1, counts, windowIds, resetMs };
  }

  settle(keys: readonly string[], windowIds: readonly number[], _windowMs: readonly number[], deltas: readonly number[]): void {
    for (let i = 0; i < keys.length; i++) {
      const w = this.#windows.get(keys[i]!);
      if (w !== undefined && w.id === windowIds[i]) w.count = Math.max(0, w.count + deltas[i]!);
    }
  }

  #sweep(): void {
    const now = this.#now();
    for (const [k, w] of this.#windows) if (w.expiresAtMs <= now) this.#windows.delete(k);
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#windows.clear();
  }
}
