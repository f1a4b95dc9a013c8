import { compileSnapshot } from './compile.js';
import type { LoadedConfig } from './load.js';
import type { Snapshot } from './snapshot.js';

/** SwapResult tells what a swap did. */
export type SwapResult = 'applied' | 'unchanged';

/**
 * ConfigStore holds the snapshot new requests are served with. A swap is one assignment:
 * requests already running keep the snapshot they started with.
 */
export class ConfigStore {
  #current: Snapshot;

  constructor(initial: Snapshot) {
    this.#current = initial;
  }

  /** current is the snapshot new requests use. */
  get current(): Snapshot {
    return this.#current;
  }

  /** swap compiles and installs a loaded config, unless it compiles to the same hash (then nothing changes). */
  swap(loaded: LoadedConfig): SwapResult {
    const next = compileSnapshot(loaded);
    if (next.hash === this.#current.hash) return 'unchanged';
    this.#current = next;
    return 'applied';
  }
}
