/**
 * ModelUpstream is a model's current target list and balancer. The list is the configured URL
 * targets plus whatever DNS discovery last found; when discovery changes it, a new balancer is
 * built over the new list (balancers precompute per list) while TargetRecords, kept by URL,
 * carry health and in-flight counts across the change. A target that disappears gets no new
 * requests; requests already on it finish, since they hold their own reference.
 *
 * While its snapshot is the installed one, an upstream is attached: it holds the records of the
 * targets it lists in the registry, so the registry can drop the records nothing lists any more.
 * Across a reload, the new upstream of the same model takes over the old one's DNS-found holds
 * until its own first lookup, so health state of discovered targets survives the reload.
 */
import type { Balancer, PickInput } from './balancer/index.js';
import { createBalancer, isEligible, type BalancerKind, type BalancerOptions } from './balancer/index.js';
import { TargetRecord, type TargetRegistry } from './target-record.js';

/** UpstreamTarget is one target of a model, ready for forwarding and balancing. */
export interface UpstreamTarget {
  readonly url: string;
  /** origin is scheme://host:port, the key of the connection pool. */
  readonly origin: string;
  /** basePath is the target URL's own path without a trailing "/", prepended to forwarded paths. */
  readonly basePath: string;
  readonly weight: number;
  readonly state: TargetRecord;
}

/** toUpstreamTarget builds a target from its URL (checked by the schema) and its live record. */
export function toUpstreamTarget(url: string, weight: number, state: TargetRecord): UpstreamTarget {
  const u = new URL(url);
  return Object.freeze({ url, origin: u.origin, basePath: u.pathname.replace(/\/+$/, ''), weight, state });
}

const NO_TARGETS: readonly UpstreamTarget[] = Object.freeze([]);

/** ModelUpstream holds a model's targets and picks among them. */
export class ModelUpstream {
  readonly #kind: BalancerKind;
  readonly #options: BalancerOptions;
  /** #registry holds this upstream's records while it is attached; null before and after. */
  #registry: TargetRegistry | null = null;
  /** #held are the discovered lists whose records this upstream holds (by DNS entry). */
  #held = new Map<number, readonly UpstreamTarget[]>();
  /** #inherited are the previous upstream's held lists, released at each entry's first lookup. */
  #inherited: Map<number, readonly UpstreamTarget[]> | null = null;
  readonly #static: readonly UpstreamTarget[];
  /** discovered target lists, one per DNS entry (by its index); made on the first discovery. */
  #discovered: Map<number, readonly UpstreamTarget[]> | null = null;
  #targets: readonly UpstreamTarget[];
  /** #balancer is made for lists of two or more targets; one target needs none (see only). */
  #balancer: Balancer | null;
  /** only is the target of a one-target model (the common case), picked without a balancer call. */
  #only: UpstreamTarget | null;

  constructor(kind: BalancerKind, options: BalancerOptions, staticTargets: readonly UpstreamTarget[]) {
    this.#kind = kind;
    this.#options = options;
    this.#static = staticTargets;
    this.#targets = staticTargets;
    this.#balancer = staticTargets.length > 1 ? createBalancer(kind, staticTargets, options) : null;
    this.#only = staticTargets.length === 1 ? staticTargets[0]! : null;
  }

  /** only is the target when the model has exactly one (the common case), else null: select needs no balancer input for it. */
  get only(): UpstreamTarget | null {
    return this.#only;
  }

  /** targets is the current list (configured plus discovered). */
  get targets(): readonly UpstreamTarget[] {
    return this.#targets;
  }

  /** pick returns a healthy target not in input.excluded, or undefined. */
  pick(input: PickInput): UpstreamTarget | undefined {
    // Balancers return one of the candidates they were built over: our own UpstreamTargets.
    const balancer = this.#balancer;
    if (balancer === null) {
      const only = this.#only;
      return only !== null && isEligible(only, input.excluded) ? only : undefined;
    }
    return balancer.pick(input) as UpstreamTarget | undefined;
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
    const discovered = (this.#discovered ??= new Map<number, readonly UpstreamTarget[]>());
    const before = discovered.get(entry) ?? NO_TARGETS;
    const changed = before.length !== urls.length || !before.every((t, i) => t.url === urls[i]);
    if (changed) {
      const found = urls.map((u) => toUpstreamTarget(u, weight, registry?.find(u) ?? before.find((t) => t.url === u)?.state ?? new TargetRecord(u)));
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
    const all: UpstreamTarget[] = [...this.#static];
    const seen = new Set(all.map((t) => t.url));
    for (const list of discovered.values()) for (const t of list) if (!seen.has(t.url)) (seen.add(t.url), all.push(t));
    this.#targets = all;
    this.#balancer = all.length > 1 ? createBalancer(this.#kind, all, this.#options) : null;
    this.#only = all.length === 1 ? all[0]! : null;
    return true;
  }
}
