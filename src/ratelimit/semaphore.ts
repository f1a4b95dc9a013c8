/**
 * Semaphore: a concurrency limit with a bounded FIFO wait queue in front, so a burst waits briefly
 * instead of reaching the GPU server or failing at once. A full queue refuses at once; a waiter
 * that is not served within the timeout is refused; a waiter whose client left is dropped.
 */

/** Waiter is one queued request. */
interface Waiter {
  resolve: () => void;
  reject: (reason: 'queue_timeout') => void;
  timer: NodeJS.Timeout;
  isDone: boolean;
}

/** Semaphore counts running requests of one scope in this process. */
export class Semaphore {
  max: number;
  queueMax: number;
  queueTimeoutMs: number;
  #running = 0;
  readonly #queue: Waiter[] = [];
  #head = 0;

  constructor(max: number, queueMax: number, queueTimeoutMs: number) {
    this.max = max;
    this.queueMax = queueMax;
    this.queueTimeoutMs = queueTimeoutMs;
  }

  /** running is how many hold a slot. */
  get running(): number {
    return this.#running;
  }

  /** waiting is how many are queued. */
  get waiting(): number {
    return this.#queue.length - this.#head;
  }

  /**
   * acquire takes a slot: returns null when one was free, 'queue_full' when the request must be
   * refused at once, or a waiter promise (rejects with 'queue_timeout') plus a cancel function.
   */
  acquire(): null | 'queue_full' | { wait: Promise<void>; cancel: () => void } {
    if (this.#running < this.max && this.waiting === 0) {
      this.#running++;
      return null;
    }
    if (this.waiting >= this.queueMax) return 'queue_full';
    let waiter!: Waiter;
    const wait = new Promise<void>((resolve, reject) => {
      waiter = { resolve, reject, timer: undefined as unknown as NodeJS.Timeout, isDone: false };
    });
    waiter.timer = setTimeout(() => {
      if (waiter.isDone) return;
      waiter.isDone = true;
      waiter.reject('queue_timeout');
    }, this.queueTimeoutMs);
    this.#queue.push(waiter);
    return {
      wait,
      cancel: () => {
        if (waiter.isDone) return;
        waiter.isDone = true;
        clearTimeout(waiter.timer);
      },
    };
  }

  /** release frees a slot and hands it to the first live waiter, in arrival order. */
  release(): void {
    this.#running--;
    this.#drain();
  }

  #drain(): void {
    while (this.#running < this.max && this.#head < this.#queue.length) {
      const w = this.#queue[this.#head++]!;
      if (w.isDone) continue;
      w.isDone = true;
      clearTimeout(w.timer);
      this.#running++;
      w.resolve();
    }
    // Compact now and then so the array does not grow without bound.
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
  }

  /** resize applies new limits from a reload, keeping who runs and who waits. */
  resize(max: number, queueMax: number, queueTimeoutMs: number): void {
    this.max = max;
    this.queueMax = queueMax;
    this.queueTimeoutMs = queueTimeoutMs;
    this.#drain();
  }
}

/** SemaphoreLimits are a semaphore's configured sizes. */
export interface SemaphoreLimits {
  readonly max: number;
  readonly queueMax: number;
  readonly queueTimeoutMs: number;
}

/** SemaphoreLookup finds the live semaphore of a scope: compiling reads it, never changes it. */
export interface SemaphoreLookup {
  find(scope: string): Semaphore | undefined;
}

/**
 * SemaphoreRegistry keeps one Semaphore per scope across reloads, so counts survive them. Compile
 * only looks semaphores up (a new scope gets a new, unregistered one); commit registers what the
 * installed snapshot uses, resizes it to that snapshot's limits, and forgets idle semaphores of
 * scopes that left the configuration.
 */
export class SemaphoreRegistry implements SemaphoreLookup {
  readonly #byScope = new Map<string, Semaphore>();

  /** find returns the scope's registered semaphore, if any. */
  find(scope: string): Semaphore | undefined {
    return this.#byScope.get(scope);
  }

  /** size is how many semaphores are registered. */
  get size(): number {
    return this.#byScope.size;
  }

  /** commit makes the registry hold exactly the semaphores in use (plus busy ones that left), at their configured limits. */
  commit(inUse: Iterable<{ readonly id: string; readonly semaphore: Semaphore; readonly limits: SemaphoreLimits }>): void {
    const ids = new Set<string>();
    for (const { id, semaphore: s, limits: l } of inUse) {
      ids.add(id);
      this.#byScope.set(id, s);
      if (s.max !== l.max || s.queueMax !== l.queueMax || s.queueTimeoutMs !== l.queueTimeoutMs) s.resize(l.max, l.queueMax, l.queueTimeoutMs);
    }
    // A semaphore still holding or queueing requests stays, so a scope that comes back keeps its count.
    for (const [id, s] of this.#byScope) if (!ids.has(id) && s.running === 0 && s.waiting === 0) this.#byScope.delete(id);
  }
}
