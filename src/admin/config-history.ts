/**
 * ConfigHistory remembers the configuration loads of this process, newest first: when, from
 * where (start, SIGHUP, --watch, POST /config, the UI, a rollback), what happened and, for a
 * failure, every error. The loaded form of the last few applied configurations is kept too, so
 * `POST /config/rollback/{hash}` can swap one back without reading any file again (the files may
 * have changed since). Memory: one loaded configuration each (about 1.5 KB a model).
 */
import type { ConfigIssue, ConfigSource, LoadedConfig, SwapResult } from '../config/index.js';

export type { ConfigSource } from '../config/index.js';

/** CONFIG_SOURCES lists every ConfigSource. */
export const CONFIG_SOURCES: readonly ConfigSource[] = Object.freeze(['file', 'SIGHUP', 'watch', 'POST', 'UI', 'rollback']);

/** ConfigHistoryEntry is one load as `GET /config/history` shows it. */
export interface ConfigHistoryEntry {
  readonly time: string;
  readonly source: ConfigSource;
  readonly result: SwapResult | 'failed';
  /** hash is the configuration's hash after the load (the running one when it failed or changed nothing). */
  readonly hash: string;
  readonly errors: readonly ConfigIssue[];
  /** can_rollback tells whether this configuration is among the ones a rollback can restore. */
  readonly can_rollback: boolean;
}

/** ConfigHistoryOptions bound what is kept. */
export interface ConfigHistoryOptions {
  /** maxEntries is how many loads are listed (default 50). */
  maxEntries?: number;
  /** maxConfigs is how many applied configurations a rollback can restore (default 10). */
  maxConfigs?: number;
  /** clock returns the time in milliseconds (tests). */
  clock?: () => number;
}

interface Entry {
  timeMs: number;
  source: ConfigSource;
  result: SwapResult | 'failed';
  hash: string;
  errors: readonly ConfigIssue[];
}

/** ConfigHistory records configuration loads and keeps the last applied configurations. */
export class ConfigHistory {
  readonly #maxEntries: number;
  readonly #maxConfigs: number;
  readonly #clock: () => number;
  /** #entries are oldest first. */
  readonly #entries: Entry[] = [];
  /** #configs are the last applied configurations by hash, oldest first (Map keeps insertion order). */
  readonly #configs = new Map<string, LoadedConfig>();

  constructor(opts: ConfigHistoryOptions = {}) {
    this.#maxEntries = opts.maxEntries ?? 50;
    this.#maxConfigs = opts.maxConfigs ?? 10;
    this.#clock = opts.clock ?? Date.now;
  }

  /** record adds one load; an applied one (loaded given) becomes restorable, dropping the oldest beyond maxConfigs. */
  record(source: ConfigSource, result: SwapResult | 'failed', hash: string, errors: readonly ConfigIssue[], loaded: LoadedConfig | null): void {
    this.#entries.push({ timeMs: this.#clock(), source, result, hash, errors });
    if (this.#entries.length > this.#maxEntries) this.#entries.shift();
    if (result === 'applied' && loaded !== null) {
      // Re-applying a known configuration makes it the newest again.
      this.#configs.delete(hash);
      this.#configs.set(hash, loaded);
      if (this.#configs.size > this.#maxConfigs) this.#configs.delete(this.#configs.keys().next().value!);
    }
  }

  /** entries lists the loads, newest first. */
  entries(): ConfigHistoryEntry[] {
    const out: ConfigHistoryEntry[] = [];
    for (let i = this.#entries.length - 1; i >= 0; i--) {
      const e = this.#entries[i]!;
      out.push({ time: new Date(e.timeMs).toISOString(), source: e.source, result: e.result, hash: e.hash, errors: e.errors, can_rollback: e.result === 'applied' && this.#configs.has(e.hash) });
    }
    return out;
  }

  /** loadedOf returns an applied configuration a rollback can restore, or undefined. */
  loadedOf(hash: string): LoadedConfig | undefined {
    return this.#configs.get(hash);
  }
}
