/**
 * ModelUpstream is a model's current target list and balancer. The list is the configured URL
 * targets plus whatever DNS discovery last found; when discovery changes it, a new balancer is
 * built over the new list (balancers precompute per list) while TargetStates, kept by URL,
 * carry health and in-flight counts across the change. A target that disappears gets no new
 * requests; requests already on it finish, since they hold their own reference.
 *
 * While its snapshot is the installed one, an upstream is attached: it holds the records of the
 * targets it lists in the registry, so the registry can drop the records nothing lists any more.
 * Across a reload, the new upstream of the same model takes over the old one's DNS-found holds
 * until its own first lookup, so health state of discovered targets survives the reload.
 */
import { createBalancer, isEligible, type Balancer, type BalancerKind, type BalancerOptions, type PromptBlocks } from './balancer/index.js';
import { toTarget, type Target } from './target.js';
import { TargetState, type TargetRegistry } from './target-state.js';

/** HashKeyOf computes a request's balancing key for a model (R: the request, M: the model): the consistent-hash key, or the prompt's blocks for prefix-aware. */
export type HashKeyOf<R, M> = (request: R, model: M) => string | PromptBlocks | null;

const NO_TARGETS: readonly Target[] = Object.freeze([]);

/** ModelUpstream holds a model's targets and picks among them. */
export class ModelUpstream {
  readonly #kind: BalancerKind;
  readonly #options: BalancerOptions;
  /** #registry holds this upstream's records while it is attached; null before and after. */
  #registry: TargetRegistry | null = null;
  /** #held are the discovered lists whose records this upstream holds (by DNS entry). */
  #held = new Map<number, readonly Target[]>();
  /** #inherited are the previous upstream's held lists, released at each entry's first lookup. */
  #inherited: Map<number, readonly Target[]> | null = null;
  readonly #static: readonly Target[];
  /** discovered target lists, one per DNS entry (by its index); made on the first discovery. */
  #discovered: Map<number, readonly Target[]> | null = null;
  #targets: readonly Target[];
  /** #balancer is made for lists of two or more targets; one target needs none (see #only). */
  #balancer: Balancer | null;
  /** #only is the target of a one-target model (the common case), picked without a balancer or its input. */
  #only: Target | null;

  constructor(kind: BalancerKind, options: BalancerOptions, staticTargets: readonly Target[]) {
    this.#kind = kind;
    this.#options = options;
    this.#static = staticTargets;
    this.#targets = staticTargets;
    this.#balancer = staticTargets.length > 1 ? createBalancer(kind, staticTargets, options) : null;
    this.#only = staticTargets.length === 1 ? staticTargets[0]! : null;
  }

  /** targets is the current list (configured plus discovered). */
  get targets(): readonly Target[] {
    return this.#targets;
  }

  /**
   * pick returns a healthy target not in excluded, or undefined. The consistent-hash key is asked
   * of hashKeyOf only when a balancer is there to use it: a one-target model (the common case) is
   * answered without building the balancer's input or reading the request. size is the request
   * body's length in bytes (0: unknown), which least-load weighs.
   */
  pick<R, M>(excluded: ReadonlySet<Target> | null, nowMs: number, hashKeyOf: HashKeyOf<R, M>, request: R, model: M, size = 0): Target | undefined {
    const balancer = this.#balancer;
    if (balancer === null) {
      const only = this.#only;
      return only !== null && isEligible(only, excluded) ? only : undefined;
    }
    const key = hashKeyOf(request, model);
    return typeof key === 'string' || key === null ? balancer.pick({ excluded, hashKey: key, nowMs, blocks: null, size }) : balancer.pick({ excluded, hashKey: null, nowMs, blocks: key, size });
  }

  /**
   * attach makes this the live upstream of its model: it holds its targets' records in the registry
   * and takes over the DNS-found holds of the model's previous upstream (null: a new model).
   */
  attach(registry: TargetRegistry, previous: ModelUpstream | null): void {
    this.#registry = registry;
    for (const t of this.#static) registry.hold(t.state);
    if (previous !== null && previous.#held.size > 0) {
      this.#inherited = previous.#held;
      previous.#held = new Map();
    }
  }

  /** detach releases every hold of this upstream (its snapshot was replaced). */
  detach(): void {
    const registry = this.#registry;
    if (registry === null) return;
    this.#registry = null;
    for (const t of this.#static) registry.release(t.state);
    for (const list of this.#held.values()) for (const t of list) registry.release(t.state);
    this.#held.clear();
    if (this.#inherited !== null) for (const list of this.#inherited.values()) for (const t of list) registry.release(t.state);
    this.#inherited = null;
  }

  /** setDiscovered replaces the targets found by one DNS entry; returns true when the list changed. */
  setDiscovered(entry: number, urls: readonly string[], weight: number): boolean {
    const registry = this.#registry;
    const discovered = (this.#discovered ??= new Map<number, readonly Target[]>());
    const before = discovered.get(entry) ?? NO_TARGETS;
    const changed = before.length !== urls.length || !before.every((t, i) => t.url === urls[i]);
    if (changed) {
      const found = urls.map((u) => toTarget(u, weight, registry?.find(u) ?? before.find((t) => t.url === u)?.state ?? new TargetState(u)));
      discovered.set(entry, found);
      if (registry !== null) {
        // Hold the new list before releasing the old one: a target in both is never dropped.
        for (const t of found) registry.hold(t.state);
        const held = this.#held.get(entry);
        if (held !== undefined) for (const t of held) registry.release(t.state);
        this.#held.set(entry, found);
      }
    }
    const inherited = this.#inherited?.get(entry);
    if (inherited !== undefined && registry !== null) {
      for (const t of inherited) registry.release(t.state);
      this.#inherited!.delete(entry);
    }
    if (!changed) return false;
    const all: Target[] = [...this.#static];
    const seen = new Set(all.map((t) => t.url));
    for (const list of discovered.values()) for (const t of list) if (!seen.has(t.url)) (seen.add(t.url), all.push(t));
    this.#targets = all;
    this.#balancer = all.length > 1 ? createBalancer(this.#kind, all, this.#options) : null;
    this.#only = all.length === 1 ? all[0]! : null;
    return true;
  }
}
