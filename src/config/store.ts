import { compileSnapshot, type CompileOptions } from './compile.js';
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
  readonly #options: CompileOptions;
  /** onSwap is told about every applied swap (the gateway starts and retires background work). */
  onSwap: ((next: Snapshot, previous: Snapshot) => void) | null = null;

  /** ConfigStore starts from a compiled snapshot; later swaps compile with the same long-lived options (target and limit state). */
  constructor(initial: Snapshot, options: CompileOptions) {
    this.#current = initial;
    this.#options = options;
  }

  /** current is the snapshot new requests use. */
  get current(): Snapshot {
    return this.#current;
  }

  /** swap compiles and installs a loaded config, unless it compiles to the same hash (then nothing changes). */
  swap(loaded: LoadedConfig): SwapResult {
    const next = compileSnapshot(loaded, this.#options);
    if (next.hash === this.#current.hash) return 'unchanged';
    const previous = this.#current;
    this.#current = next;
    this.onSwap?.(next, previous);
    return 'applied';
  }
}
