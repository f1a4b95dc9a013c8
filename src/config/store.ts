import type { TargetRegistry } from '../upstream/index.js';
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
  readonly #registry: TargetRegistry;
  /** onSwap is told about every applied swap (the gateway starts and retires background work). */
  onSwap: ((next: Snapshot, previous: Snapshot) => void) | null = null;

  constructor(initial: Snapshot, registry: TargetRegistry) {
    this.#current = initial;
    this.#registry = registry;
  }

  /** current is the snapshot new requests use. */
  get current(): Snapshot {
    return this.#current;
  }

  /** swap compiles and installs a loaded config, unless it compiles to the same hash (then nothing changes). */
  swap(loaded: LoadedConfig): SwapResult {
    const next = compileSnapshot(loaded, { registry: this.#registry });
    if (next.hash === this.#current.hash) return 'unchanged';
    const previous = this.#current;
    this.#current = next;
    this.onSwap?.(next, previous);
    return 'applied';
  }
}
