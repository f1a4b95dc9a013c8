/**
 * ModelUpstream is a model's current target list and balancer. The list is the configured URL
 * targets plus whatever DNS discovery last found; when discovery changes it, a new balancer is
 * built over the new list (balancers precompute per list) while TargetRecords, kept by URL,
 * carry health and in-flight counts across the change. A target that disappears gets no new
 * requests; requests already on it finish, since they hold their own reference.
 */
import type { Balancer, PickInput } from './balancer/index.js';
import { createBalancer, isEligible, type BalancerKind, type BalancerOptions } from './balancer/index.js';
import type { TargetRecord, TargetRegistry } from './target-record.js';

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

/** toUpstreamTarget builds a target from its URL (checked by the schema). */
export function toUpstreamTarget(url: string, weight: number, registry: TargetRegistry): UpstreamTarget {
  const u = new URL(url);
  return Object.freeze({ url, origin: u.origin, basePath: u.pathname.replace(/\/+$/, ''), weight, state: registry.get(url) });
}

/** ModelUpstream holds a model's targets and picks among them. */
export class ModelUpstream {
  readonly #kind: BalancerKind;
  readonly #options: BalancerOptions;
  readonly #registry: TargetRegistry;
  readonly #static: readonly UpstreamTarget[];
  /** discovered target lists, one per DNS entry (by its index); made on the first discovery. */
  #discovered: Map<number, readonly UpstreamTarget[]> | null = null;
  #targets: readonly UpstreamTarget[];
  /** #balancer is made for lists of two or more targets; one target needs none (see only). */
  #balancer: Balancer | null;
  /** only is the target of a one-target model (the common case), picked without a balancer call. */
  #only: UpstreamTarget | null;

  constructor(kind: BalancerKind, options: BalancerOptions, staticTargets: readonly UpstreamTarget[], registry: TargetRegistry) {
    this.#kind = kind;
    this.#options = options;
    this.#registry = registry;
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

  /** setDiscovered replaces the targets found by one DNS entry; returns true when the list changed. */
  setDiscovered(entry: number, urls: readonly string[], weight: number): boolean {
    const discovered = (this.#discovered ??= new Map<number, readonly UpstreamTarget[]>());
    const before = discovered.get(entry) ?? [];
    if (before.length === urls.length && before.every((t, i) => t.url === urls[i])) return false;
    discovered.set(entry, urls.map((u) => toUpstreamTarget(u, weight, this.#registry)));
    const all: UpstreamTarget[] = [...this.#static];
    const seen = new Set(all.map((t) => t.url));
    for (const list of discovered.values()) for (const t of list) if (!seen.has(t.url)) (seen.add(t.url), all.push(t));
    this.#targets = all;
    this.#balancer = all.length > 1 ? createBalancer(this.#kind, all, this.#options) : null;
    this.#only = all.length === 1 ? all[0]! : null;
    return true;
  }
}
