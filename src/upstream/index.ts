export {
  BALANCER_KINDS,
  ConsistentHashBalancer,
  LeastLoadBalancer,
  LeastRequestBalancer,
  RoundRobinBalancer,
  createBalancer,
  isEligible,
  toPromptPrefixKey,
  type Balancer,
  type BalancerKind,
  type BalancerOptions,
  type Candidate,
  type ConsistentHashOptions,
  type LeastLoadOptions,
  type LeastRequestOptions,
  type LoadSample,
  type PickInput,
  type TargetState,
} from './balancer/index.js';
export { parseVllmMetrics } from './vllm-metrics.js';
export { PoolRegistry, type PoolOptions } from './pool-registry.js';
export type { UpstreamController, UpstreamDispatcher, UpstreamHandler, UpstreamHeaders, UpstreamRequest } from './dispatch.js';
export { ResponseParser, TRANSPORT_CODES } from './h1/index.js';
export { type HealthPolicy, type PassivePolicy } from './health-policy.js';
export { ModelUpstream, toUpstreamTarget, type UpstreamTarget } from './model-upstream.js';
export { TargetRecord, TargetRegistry, type Outcome, type TargetLookup } from './target-record.js';
export { Generation, type GenerationEvents, type GenerationModel, type GenerationSnapshot } from './generation.js';
export type { DnsTarget } from './dns-target.js';
