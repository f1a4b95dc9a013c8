/**
 * A target's approximate prefix cache, as the prefix-aware balancer learns it from what it routed
 * there. It lives on the target's state, so it survives reloads like the engine's cache it mirrors.
 */

/** PromptBlocks are a prompt's chained block hashes, first block first. */
export type PromptBlocks = Uint32Array;

/**
 * PrefixIndex is one target's approximate prefix cache: a set of block hashes in LRU order (a Map
 * keeps insertion order; re-inserting moves a key to the end). Recording a prompt touches its blocks
 * from the last to the first, so the first blocks are the most recent and eviction takes the tails
 * of prompts first, as vLLM frees the tail blocks of a sequence first: what stays is a prefix.
 */
export class PrefixIndex {
  readonly #blocks = new Map<number, true>();
  #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#blocks.size;
  }

  get capacity(): number {
    return this.#capacity;
  }

  /** resize sets the capacity (another model's balancer over the same target may ask for a different one); the next record evicts down to it. */
  resize(capacity: number): void {
    this.#capacity = capacity;
  }

  /** has tells whether one block hash is held (without touching its recency). */
  has(block: number): boolean {
    return this.#blocks.has(block);
  }

  /** matched counts the leading blocks of a prompt the index holds. */
  matched(blocks: PromptBlocks): number {
    const held = this.#blocks;
    let n = 0;
    while (n < blocks.length && held.has(blocks[n]!)) n++;
    return n;
  }

  /** record adds a prompt's blocks (at most capacity of them), most recent first block, evicting the least recently used. */
  record(blocks: PromptBlocks): void {
    const held = this.#blocks;
    const cap = this.#capacity;
    for (let i = Math.min(blocks.length, cap) - 1; i >= 0; i--) {
      const b = blocks[i]!;
      held.delete(b);
      held.set(b, true);
    }
    if (held.size > cap) {
      let excess = held.size - cap;
      for (const b of held.keys()) {
        held.delete(b);
        if (--excess === 0) break;
      }
    }
  }
}
