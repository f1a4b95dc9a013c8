import { commitSnapshot, type Registries } from './commit.js';
import { compileSnapshot, type CompileOptions } from './compile.js';
import type { LoadedConfig } from './load.js';
import type { Snapshot } from './snapshot.js';

/** SwapResult tells what a swap did. */
export type SwapResult = 'applied' | 'unchanged';

/** StoreOptions are the registries snapshots are committed to, and how models get their metrics rows. */
export interface StoreOptions {
  registries: Registries;
  rowOf?: CompileOptions['rowOf'];
}

/**
 * ConfigStore holds the snapshot new requests are served with. A swap compiles (pure), compares
 * hashes, commits the new snapshot to the registries and installs it with one assignment:
 * requests already running keep the snapshot they started with.
 */
export class ConfigStore {
  #current: Snapshot;
  readonly #registries: Registries;
  readonly #compile: CompileOptions;
  /** onSwap is told about every applied swap (the gateway starts and retires background work). */
  onSwap: ((next: Snapshot, previous: Snapshot) => void) | null = null;

  /** ConfigStore compiles and commits the first snapshot; later swaps compile against the same registries. */
  constructor(loaded: LoadedConfig, options: StoreOptions) {
    this.#registries = options.registries;
    this.#compile = { registry: options.registries.targets, semaphores: options.registries.semaphores, ...(options.rowOf ? { rowOf: options.rowOf } : {}) };
    this.#current = compileSnapshot(loaded, this.#compile);
    commitSnapshot(this.#current, null, this.#registries);
  }

  /** current is the snapshot new requests use. */
  get current(): Snapshot {
    return this.#current;
  }

  /** swap compiles and installs a loaded config, unless it compiles to the same hash (then nothing changes). */
  swap(loaded: LoadedConfig): SwapResult {
    const next = compileSnapshot(loaded, this.#compile);
    if (next.hash === this.#current.hash) return 'unchanged';
    const previous = this.#current;
    commitSnapshot(next, previous, this.#registries);
    this.#current = next;
    this.onSwap?.(next, previous);
    return 'applied';
  }
}
