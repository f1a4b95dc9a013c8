/**
 * The balancers, one per file, all implementing the Balancer contract of types.ts, and the
 * factory that builds one by kind for a model's candidate list.
 */
import { ConsistentHashBalancer } from './consistent-hash.js';
import type { ConsistentHashOptions } from './consistent-hash.js';
import { LeastLoadBalancer } from './least-load.js';
import type { LeastLoadOptions } from './least-load.js';
import { LeastRequestBalancer } from './least-request.js';
import { PrefixAwareBalancer } from './prefix-aware.js';
import type { PrefixAwareOptions } from './prefix-aware.js';
import { RoundRobinBalancer } from './round-robin.js';
import type { Balancer, Target } from './types.js';

export { isEligible, isOverBound, perWeightBound } from './types.js';
export { hash32 } from './hash32.js';
export type { Balancer, PickInput, PromptBlocks, Target } from './types.js';
export type { LoadSample, TargetState } from '../target-state.js';
export { RoundRobinBalancer } from './round-robin.js';
export { LeastRequestBalancer } from './least-request.js';
export type { LeastRequestOptions } from './least-request.js';
export { ConsistentHashBalancer, toPromptPrefixKey } from './consistent-hash.js';
export type { ConsistentHashOptions } from './consistent-hash.js';
export { LeastLoadBalancer } from './least-load.js';
export type { LeastLoadOptions } from './least-load.js';
export { PrefixAwareBalancer, toPromptBlocks } from './prefix-aware.js';
export { PrefixIndex } from '../prefix-index.js';
export type { PrefixAwareOptions } from './prefix-aware.js';

/** BalancerKind names a balancing algorithm, as the config's `balancer` field does. */
export type BalancerKind = 'round-robin' | 'least-request' | 'consistent-hash' | 'least-load' | 'prefix-aware';

/** BalancerOptions are every balancer's options in one bag; each kind reads the ones it knows. */
export type BalancerOptions = ConsistentHashOptions & LeastLoadOptions & PrefixAwareOptions;

/** BALANCER_KINDS lists every BalancerKind, in the order the docs present them. */
export const BALANCER_KINDS: readonly BalancerKind[] = Object.freeze(['round-robin', 'least-request', 'consistent-hash', 'least-load', 'prefix-aware']);

/** createBalancer builds the balancer of the given kind over candidates; it throws RangeError on invalid options. */
export function createBalancer(kind: BalancerKind, candidates: readonly Target[], opts: BalancerOptions = {}): Balancer {
  switch (kind) {
    case 'round-robin':
      return new RoundRobinBalancer(candidates);
    case 'least-request':
      return new LeastRequestBalancer(candidates, opts);
    case 'consistent-hash':
      return new ConsistentHashBalancer(candidates, opts);
    case 'least-load':
      return new LeastLoadBalancer(candidates, opts);
    case 'prefix-aware':
      return new PrefixAwareBalancer(candidates, opts);
    default: {
      const unknown: never = kind;
      throw new RangeError(`unknown balancer kind: ${String(unknown)}`);
    }
  }
}
