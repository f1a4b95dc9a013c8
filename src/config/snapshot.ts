/**
 * The compiled, immutable view of a configuration that serves requests. A request reads the
 * current snapshot once and uses only it, so a reload mid-request cannot mix two configs.
 */
import type { FlowControl } from '../flow/index.js';
import type { ModelLimits } from '../ratelimit/index.js';
import type { SplitChoice } from '../routing/index.js';
import type { BalancerKind, DnsTarget, HealthPolicy, LearnedAdapters, LearnedServedModel, ModelUpstream, Target } from '../upstream/index.js';

export type { DnsTarget, Target };

/** HashOn is what the consistent-hash balancer hashes, or (prompt_blocks) how the prefix-aware balancer cuts the prompt. */
export type HashOn =
  | { readonly kind: 'header'; readonly header: string }
  | { readonly kind: 'api_key' }
  | { readonly kind: 'prompt_prefix'; readonly chars: number }
  | { readonly kind: 'prompt_blocks'; readonly blockChars: number; readonly maxBlocks: number };

/** LoadMetrics is the compiled least-load polling setup. */
export interface LoadMetrics {
  readonly path: string;
  readonly intervalMs: number;
  readonly staleMs: number;
}

/** Timeouts are a model's upstream timeouts in milliseconds. */
export interface Timeouts {
  readonly connectMs: number;
  readonly firstByteMs: number;
  readonly idleMs: number;
}

/** AnthropicMode is `protocols.anthropic`: translate to chat completions, forward as is, or refuse. */
export type AnthropicMode = 'translate' | 'passthrough' | 'off';

/** Model is one compiled, routable model. */
export interface Model {
  readonly name: string;
  /** statsRow is where the model's per-request metrics live (GatewayMetrics.rowOf). */
  readonly statsRow: number;
  /** soleKeyHash is the model's key hash when it has exactly one key (checked before the set). */
  readonly soleKeyHash: string | null;
  /** path is the URL prefix ("" for the root). */
  readonly path: string;
  /** servedModel is the upstream's model id: configured, learned (`served_model: auto`; null until a target answered), or null. */
  readonly servedModel: string | null;
  /** learnedServed learns servedModel from the targets' /v1/models for `served_model: auto`; null otherwise. */
  readonly learnedServed: LearnedServedModel | null;
  /** adapters are the model's LoRA adapter ids (`adapters`; with `adapters: auto` the ones its targets list now); null when it has none configured. */
  readonly adapters: ReadonlySet<string> | null;
  /** learnedAdapters learns the adapters from the targets' /v1/models for `adapters: auto`; null otherwise. */
  readonly learnedAdapters: LearnedAdapters | null;
  /** keyHashes are the SHA-256 hex of the model's keys; null when the model needs no key. */
  readonly keyHashes: ReadonlySet<string> | null;
  readonly keyInQuery: boolean;
  /** keyNames are the configured names of keys (by key hash), shown instead of fingerprints. */
  readonly keyNames: ReadonlyMap<string, string>;
  /** limits are the rate, token and concurrency limits of the model's requests; null when none apply. */
  readonly limits: ModelLimits | null;
  /** shouldTrackStreamUsage asks the engine for usage on streams whose client did not (track_stream_usage, or token limits). */
  readonly shouldTrackStreamUsage: boolean;
  /** upstreamAuthorization is the ready-made "Bearer <key>" header for targets, or null. */
  readonly upstreamAuthorization: string | null;
  /** targets are the configured URL targets (DNS ones are in upstream.targets). */
  readonly targets: readonly Target[];
  readonly dnsTargets: readonly DnsTarget[];
  readonly timeouts: Timeouts;
  /** healthPath is the health check path as configured or imported (null: default). */
  readonly healthPath: string | null;
  readonly health: HealthPolicy;
  readonly balancerKind: BalancerKind;
  /** hashOn is the consistent-hash key source, the prefix-aware block setup, or null for other balancers. */
  readonly hashOn: HashOn | null;
  /** loadMetrics is set for least-load models. */
  readonly loadMetrics: LoadMetrics | null;
  readonly retries: number;
  readonly retryTimeoutMs: number;
  /** fallback are the models that serve when every target of this one is down (resolved after compile). */
  readonly fallback: readonly Model[];
  /** source names where the model was defined ("file (field)"), for operators. */
  readonly source: string;
  /** anthropicMode is how the Anthropic Messages API (`/v1/messages`) is served for this model. */
  readonly anthropicMode: AnthropicMode;
  /** flow is the model's flow control (queueing while its targets are saturated), or null when off. */
  readonly flow: FlowControl | null;
  /** upstream is the live target list and balancer. */
  readonly upstream: ModelUpstream;
  /** split is set when other models of the path serve this one (a weighted split, or an alias); it then has no targets. */
  readonly split: SplitChoice<Model> | null;
  /** mirror sends shadow copies of a share of the requests to another model; null when off. */
  readonly mirror: Mirror | null;
  /** servedRows are the metrics rows of this model served by another (a split's models, fallbacks), by that model; null when none. */
  readonly servedRows: ReadonlyMap<Model, number> | null;
}

/** Mirror is a compiled `mirror`: where copies go, how many, and how long one may outlive the client's answer. */
export interface Mirror {
  readonly model: Model;
  readonly fraction: number;
  readonly timeoutMs: number;
}

/** PathRoute is every model served under one path prefix. */
export interface PathRoute {
  readonly path: string;
  readonly byName: ReadonlyMap<string, Model>;
  readonly byServedModel: ReadonlyMap<string, Model>;
  /** learning are the models with `served_model: auto`, whose ids body routing matches after the configured ones. */
  readonly learning: readonly Model[];
  /** byAdapter finds the model a LoRA adapter id belongs to (the first model listing it). */
  readonly byAdapter: ReadonlyMap<string, Model>;
  /** learningAdapters are the models with `adapters: auto`, whose adapters body routing matches after the configured ones. */
  readonly learningAdapters: readonly Model[];
  readonly models: readonly Model[];
}

/** Settings are the request-handling settings of the proxy listener. */
export interface Settings {
  readonly maxBodyBytes: number;
  /** maxUrlLength bounds path + query (414 beyond). */
  readonly maxUrlLength: number;
  /** dnsServers are the resolvers of DNS targets (empty: the system's). */
  readonly dnsServers: readonly string[];
  /** isFastUpstream sends plain-HTTP targets' requests through the built-in HTTP/1.1 client. */
  readonly isFastUpstream: boolean;
}

/** Snapshot is a compiled configuration. */
export interface Snapshot {
  /** hash is the SHA-256 of the compiled content; equal hashes mean equal routing. */
  readonly hash: string;
  readonly loadedAt: Date;
  readonly settings: Settings;
  readonly routes: ReadonlyMap<string, PathRoute>;
  /** maxDepth is the most "/" segments of any configured path: longer request prefixes need no lookup. */
  readonly maxDepth: number;
  /** keyOwners maps a key hash to the one model it belongs to. */
  readonly keyOwners: ReadonlyMap<string, Model>;
  readonly models: readonly Model[];
}
