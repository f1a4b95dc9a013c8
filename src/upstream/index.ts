export {
  BALANCER_KINDS,
  ConsistentHashBalancer,
  LeastLoadBalancer,
  LeastRequestBalancer,
  PrefixAwareBalancer,
  PrefixIndex,
  RoundRobinBalancer,
  createBalancer,
  hash32,
  isEligible,
  toPromptBlocks,
  toPromptPrefixKey,
  type Balancer,
  type BalancerKind,
  type BalancerOptions,
  type ConsistentHashOptions,
  type LeastLoadOptions,
  type LeastRequestOptions,
  type PickInput,
  type PrefixAwareOptions,
  type PromptBlocks,
} from './balancer/index.js';
export { parseVllmMetrics } from './vllm-metrics.js';
export { pickForAdapter } from './adapter-pick.js';
export { LearnedAdapters, LearnedServedModel, parseModelList, type AdapterChange, type MismatchChange, type ModelListing, type ServedAdapter } from './served-models.js';
export { PoolRegistry, type PoolOptions } from './pool-registry.js';
export type { UpstreamController, UpstreamDispatcher, UpstreamHandler, UpstreamHeaders, UpstreamRequest } from './dispatch.js';
export { ResponseParser, TRANSPORT_CODES } from './h1/index.js';
export { type HealthPolicy, type PassivePolicy } from './health-policy.js';
export { ModelUpstream, type HashKeyOf } from './model-upstream.js';
export { toTarget, type Target } from './target.js';
export { TargetState, TargetRegistry, type LoadSample, type Outcome, type TargetLookup } from './target-state.js';
export { Generation, type GenerationEvents, type GenerationModel, type GenerationSnapshot } from './generation.js';
export type { DnsTarget } from './dns-target.js';
