/**
 * compileSnapshot turns a checked configuration into the immutable Snapshot requests run on:
 * maps from path prefix and model name, key-hash ownership, parsed targets and timeouts in ms.
 * Everything a request would otherwise derive is derived here, once. Compiling is pure: it reads
 * the live target records and semaphores it attaches to, and changes none of them; what a
 * snapshot changes in them happens when it is installed (commit.ts).
 */
import { createHash } from 'node:crypto';
import { toKeyHash } from '../auth/index.js';
import { compileLimitScope, Semaphore, toModelLimits, type LimitScope, type SemaphoreLookup, type SemaphoreSource } from '../ratelimit/index.js';
import { LearnedAdapters, LearnedServedModel, ModelUpstream, TargetState, toTarget, type HealthPolicy, type TargetLookup } from '../upstream/index.js';
import { SplitChoice, type Sticky } from '../routing/index.js';
import type { LoadedConfig, ModelSpec } from './load.js';
import type { FallbackRefConfig } from './schema.js';
import type { DnsTarget, HashOn, LoadMetrics, Model, PathRoute, Snapshot } from './snapshot.js';
import { flowQueueId, type FlowControl, type FlowTenant } from '../flow/index.js';
import { DEFAULTS } from './defaults.js';
import { toBytes, toMs } from './units.js';


/** CompileOptions are the long-lived parts a compiled snapshot attaches to (read, never changed). */
export interface CompileOptions {
  /** registry holds target state across snapshots; without it (validate, tests) every target gets a new record. */
  registry?: TargetLookup;
  /** semaphores hold concurrency-limit state across snapshots; without it every scope gets a new semaphore. */
  semaphores?: SemaphoreLookup;
  /**
   * rowOf gives a model's metrics row (GatewayMetrics.rowOf), stable per (name, path) across
   * reloads; `served` names the model that served a request for another (a split's model, a
   * fallback). Without it (validate, tests) rows are numbered in order.
   */
  rowOf?: (name: string, path: string, served?: string) => number;
  now?: Date;
}

/**
 * Interner hands out one shared frozen object per distinct value within one compile. With
 * thousands of models most of them share their timeouts, health policy and targets; sharing keeps
 * the per-model state a request touches small (fewer cache misses, less for the GC to trace).
 */
class Interner {
  readonly #values = new Map<string, unknown>();

  /** get returns the shared value for key (a serialization of what the value is made from), making it once. */
  get<T>(kind: string, key: string, make: () => T): T {
    const k = `${kind}\u0000${key}`;
    const found = this.#values.get(k);
    if (found !== undefined) return found as T;
    const value = make();
    this.#values.set(k, value);
    return value;
  }
}

const EMPTY_NAMES: ReadonlyMap<string, string> = new Map();
const EMPTY_LIST: readonly never[] = Object.freeze([]);

function toHealth(spec: ModelSpec, interner: Interner): HealthPolicy {
  return interner.get('health', JSON.stringify(spec.health_check ?? null), () => makeHealth(spec));
}

function makeHealth(spec: ModelSpec): HealthPolicy {
  const H = DEFAULTS.health;
  const h = spec.health_check ?? {};
  const p = h.passive ?? {};
  return Object.freeze({
    path: h.path ?? H.path,
    isActive: h.active ?? H.isActive,
    intervalMs: toMs(h.interval, H.intervalMs),
    timeoutMs: toMs(h.timeout, H.timeoutMs),
    healthyThreshold: h.healthy_threshold ?? H.healthyThreshold,
    unhealthyThreshold: h.unhealthy_threshold ?? H.unhealthyThreshold,
    passive: Object.freeze({
      isEnabled: p.enabled ?? H.isPassive,
      failures: p.failures ?? H.failures,
      ejectionMs: toMs(p.ejection, H.ejectionMs),
      maxEjectionMs: toMs(p.max_ejection, H.maxEjectionMs),
      statusCodes: new Set(p.status_codes ?? H.statusCodes),
    }),
  });
}

function toHashOn(spec: ModelSpec): HashOn | null {
  // Blocks past the index's size could never all be held: hashing stops there.
  if (spec.balancer === 'prefix-aware') return { kind: 'prompt_blocks', blockChars: spec.prefix_block_chars ?? DEFAULTS.prefixBlockChars, maxBlocks: spec.prefix_cache_blocks ?? DEFAULTS.prefixCacheBlocks };
  if (spec.balancer !== 'consistent-hash') return null;
  const on = spec.hash_on ?? DEFAULTS.hashOn;
  if (on === 'api_key') return { kind: 'api_key' };
  if (on === 'prompt_prefix') return { kind: 'prompt_prefix', chars: spec.hash_prompt_chars ?? DEFAULTS.hashPromptChars };
  return { kind: 'header', header: on.slice('header:'.length).toLowerCase() };
}

function toLoadMetrics(spec: ModelSpec): LoadMetrics | null {
  // Adapter routing reads the loaded adapters from the same page, and flow control decides on the targets' load too.
  if (spec.balancer !== 'least-load' && spec.adapters === undefined && spec.flow_control?.enabled !== true) return null;
  const m = spec.load_metrics ?? {};
  return Object.freeze({
    path: m.path ?? DEFAULTS.loadMetricsPath,
    intervalMs: toMs(m.interval, DEFAULTS.loadMetricsIntervalMs),
    staleMs: toMs(m.stale_after, DEFAULTS.loadMetricsStaleMs),
  });
}

/** toFlowControl compiles flow_control (null when it is off) with each key as a tenant. */
function toFlowControl(spec: ModelSpec, keys: ReadonlyArray<{ name?: string | undefined; priority?: number | undefined; max_priority?: number | undefined; weight?: number | undefined }>, keyHashes: readonly string[], loadMetrics: LoadMetrics | null): FlowControl | null {
  const f = spec.flow_control;
  if (f?.enabled !== true) return null;
  const F = DEFAULTS.flow;
  const tenants = new Map<string, FlowTenant>();
  keys.forEach((k, i) => {
    const priority = k.priority ?? F.priority;
    tenants.set(keyHashes[i]!, Object.freeze({ name: keyLabel(k.name, keyHashes[i]!), priority, maxPriority: Math.max(priority, k.max_priority ?? priority), weight: k.weight ?? F.weight }));
  });
  const s = f.saturation ?? {};
  return Object.freeze({
    id: flowQueueId(spec.path, spec.name),
    queueDepth: s.queue_depth === undefined ? F.queueDepth : s.queue_depth,
    kvCache: s.kv_cache === undefined ? F.kvCache : s.kv_cache,
    maxInflight: s.max_inflight ?? null,
    headroom: f.headroom ?? F.headroom,
    maxQueue: f.max_queue ?? F.maxQueue,
    maxWaitMs: toMs(f.max_wait, F.maxWaitMs),
    fairness: f.fairness ?? F.fairness,
    isUpstreamPriority: f.upstream_priority ?? F.isUpstreamPriority,
    staleMs: loadMetrics?.staleMs ?? DEFAULTS.loadMetricsStaleMs,
    pollMs: loadMetrics?.intervalMs ?? DEFAULTS.loadMetricsIntervalMs,
    tenants,
    anonymous: Object.freeze({ name: '', priority: F.priority, maxPriority: F.priority, weight: F.weight }),
  });
}

type MutableModel = { -readonly [K in keyof Model]: Model[K] };

/** keyLabel is how a key is named in logs, metrics and limit messages: its name, else its fingerprint. */
function keyLabel(name: string | undefined, hash: string): string {
  return name ?? `key#${hash.slice(0, 8)}`;
}

function compileModel(spec: ModelSpec, recordOf: (url: string) => TargetState, semaphores: SemaphoreSource, gatewayScope: LimitScope | null, interner: Interner, rowOf: (name: string, path: string) => number): MutableModel {
  const keys = (spec.api_keys ?? []).map((k) => (typeof k === 'string' ? { key: k, name: undefined, limits: undefined } : k));
  const keyHashes = keys.map((k) => toKeyHash(k.key)!);
  const keyScopes = new Map<string, LimitScope>();
  keys.forEach((k, i) => {
    const hash = keyHashes[i]!;
    const label = keyLabel(k.name, hash);
    const scope = compileLimitScope(k.limits, `key:${k.name ?? hash.slice(0, 16)}`, `key ${label}`, `key:${label}`, semaphores, DEFAULTS.limits);
    if (scope !== null) keyScopes.set(hash, scope);
  });
  const modelScope = compileLimitScope(spec.limits, `model:${spec.path ?? ''}:${spec.name}`, `model ${spec.name}`, 'model', semaphores, DEFAULTS.limits);
  const urlTargets: Array<{ url: string; weight: number }> = [];
  const dnsTargets: DnsTarget[] = [];
  for (const t of spec.targets ?? []) {
    if ('url' in t) urlTargets.push({ url: t.url, weight: t.weight ?? DEFAULTS.weight });
    else {
      const i = t.dns.lastIndexOf(':');
      dnsTargets.push(
        Object.freeze({
          host: t.dns.slice(0, i),
          port: Number(t.dns.slice(i + 1)),
          scheme: t.scheme ?? DEFAULTS.dnsScheme,
          weight: t.weight ?? DEFAULTS.dnsWeight,
          minTtlMs: toMs(t.min_ttl, DEFAULTS.dnsMinTtlMs),
          maxTtlMs: toMs(t.max_ttl, DEFAULTS.dnsMaxTtlMs),
        }),
      );
    }
  }
  const targets = interner.get('targets', JSON.stringify(urlTargets), () =>
    Object.freeze(urlTargets.map((t) => interner.get('target', `${t.weight} ${t.url}`, () => toTarget(t.url, t.weight, recordOf(t.url))))),
  );
  const hashOn = toHashOn(spec);
  const loadMetrics = toLoadMetrics(spec);
  const balancerKind = spec.balancer ?? DEFAULTS.balancer;
  const path = spec.path ?? '';
  const upstream = new ModelUpstream(
    balancerKind,
    interner.get('balancer options', `${spec.hash_load_factor ?? ''} ${loadMetrics?.staleMs ?? ''} ${spec.prefix_cache_blocks ?? ''}`, () =>
      Object.freeze({
        loadFactor: spec.hash_load_factor ?? DEFAULTS.hashLoadFactor,
        staleMs: loadMetrics?.staleMs ?? DEFAULTS.loadMetricsStaleMs,
        cacheBlocks: spec.prefix_cache_blocks ?? DEFAULTS.prefixCacheBlocks,
      }),
    ),
    targets,
  );
  const limits = toModelLimits([gatewayScope, modelScope], keyScopes, DEFAULTS.limits.defaultMaxTokens);
  const flow = toFlowControl(spec, keys, keyHashes, loadMetrics);
  // What every request reads comes first: the object's first cache lines (10,000 models are cold).
  const learned = spec.served_model === SERVED_MODEL_AUTO ? new LearnedServedModel(targets) : null;
  const learnedAdapters = spec.adapters === ADAPTERS_AUTO ? new LearnedAdapters(targets, learned === null ? (spec.served_model ?? null) : learned.id) : null;
  const model: MutableModel = {
    name: spec.name,
    statsRow: rowOf(spec.name, path),
    soleKeyHash: keyHashes.length === 1 ? keyHashes[0]! : null,
    keyHashes: keyHashes.length > 0 ? new Set(keyHashes) : null,
    keyInQuery: spec.key_in_query ?? DEFAULTS.isKeyInQuery,
    keyNames: keys.some((k) => k.name !== undefined) ? new Map(keys.flatMap((k, i) => (k.name === undefined ? [] : [[keyHashes[i]!, k.name] as const]))) : EMPTY_NAMES,
    limits,
    // Token limits settle reservations with the real usage: they need it whatever the setting.
    shouldTrackStreamUsage: (spec.track_stream_usage ?? DEFAULTS.shouldTrackStreamUsage) || limits?.hasTokenRules === true,
    upstream,
    upstreamAuthorization: spec.upstream_api_key ? `Bearer ${spec.upstream_api_key}` : null,
    timeouts: interner.get('timeouts', JSON.stringify(spec.timeouts ?? null), () =>
      Object.freeze({
        connectMs: toMs(spec.timeouts?.connect, DEFAULTS.connectMs),
        firstByteMs: toMs(spec.timeouts?.first_byte, DEFAULTS.firstByteMs),
        idleMs: toMs(spec.timeouts?.idle, DEFAULTS.idleMs),
      }),
    ),
    retries: spec.retries ?? DEFAULTS.retries,
    retryTimeoutMs: toMs(spec.retry_timeout, DEFAULTS.retryTimeoutMs),
    health: toHealth(spec, interner),
    servedModel: learned === null ? (spec.served_model ?? null) : null,
    learnedServed: learned,
    adapters: spec.adapters === undefined || spec.adapters === ADAPTERS_AUTO ? null : new Set(spec.adapters),
    learnedAdapters,
    fallback: [],
    split: null,
    mirror: null,
    servedRows: null,
    anthropicMode: spec.protocols?.anthropic ?? DEFAULTS.anthropicMode,
    flow,
    hashOn,
    path,
    targets,
    dnsTargets: dnsTargets.length === 0 ? EMPTY_LIST : Object.freeze(dnsTargets),
    healthPath: spec.health_check?.path ?? null,
    balancerKind,
    loadMetrics,
    source: `${spec.source.file} (${spec.source.field})`,
  };
  // Every reader of servedModel (body rewrite, split, fallback, mirror, listing) gets the learned id.
  if (learned !== null) Object.defineProperty(model, 'servedModel', { get: () => learned.id, enumerable: true });
  // Routing, the model list and the admin API read the adapters the targets listed last.
  if (learnedAdapters !== null) Object.defineProperty(model, 'adapters', { get: () => learnedAdapters.ids, enumerable: true });
  return model;
}

/** SERVED_MODEL_AUTO is the `served_model` value that learns the id from the targets. */
const SERVED_MODEL_AUTO = 'auto';
/** ADAPTERS_AUTO is the `adapters` value that learns them from the targets. */
const ADAPTERS_AUTO = 'auto';

/** toSticky compiles `sticky`. */
function toSticky(sticky: string): Sticky {
  if (sticky === 'api_key') return { kind: 'api_key' };
  if (sticky.startsWith('header:')) return { kind: 'header', header: sticky.slice('header:'.length).toLowerCase() };
  return { kind: 'none' };
}

/** servedBy lists every model that may serve a request for m: the models its split reaches (through aliases of splits), and their fallbacks. */
function servedBy(m: Model): Model[] {
  if (m.split === null) return [m, ...m.fallback];
  return m.split.entries.flatMap(servedBy);
}

/** resolveFallback finds the model a fallback reference names (load-time rules guarantee one exists). */
export function resolveFallback(ref: FallbackRefConfig, models: readonly { name: string; path?: string | undefined }[]): number {
  const name = typeof ref === 'string' ? ref : ref.name;
  const path = typeof ref === 'string' ? undefined : ref.path === '/' ? '' : ref.path;
  return models.findIndex((m) => m.name === name && (path === undefined || (m.path ?? '') === path));
}

/** compileSnapshot compiles a loaded configuration. */
export function compileSnapshot(loaded: LoadedConfig, opts: CompileOptions = {}): Snapshot {
  // One record per URL in this snapshot: the live one, else a new one the registry takes at commit.
  const records = new Map<string, TargetState>();
  const recordOf = (url: string): TargetState => {
    let r = records.get(url);
    if (r === undefined) records.set(url, (r = opts.registry?.find(url) ?? new TargetState(url)));
    return r;
  };
  // One semaphore per scope id (a defaults key is shared by many models), as for records.
  const made = new Map<string, Semaphore>();
  const semaphores: SemaphoreSource = (id, l) => {
    let s = made.get(id);
    if (s === undefined) made.set(id, (s = opts.semaphores?.find(id) ?? new Semaphore(l.max, l.queueMax, l.queueTimeoutMs)));
    return s;
  };
  const gatewayScope = compileLimitScope(loaded.config.limits, 'gw', 'the gateway', 'gateway', semaphores, DEFAULTS.limits);
  const interner = new Interner();
  let rows = 0;
  const rowOf = opts.rowOf ?? (() => rows++);
  const mutable = loaded.models.map((m) => compileModel(m, recordOf, semaphores, gatewayScope, interner, rowOf));
  loaded.models.forEach((spec, i) => {
    // Fallbacks are not chained: a fallback's own fallbacks are never consulted.
    const refs = spec.fallback ?? [];
    mutable[i]!.fallback = refs.length === 0 ? EMPTY_LIST : Object.freeze(refs.map((ref) => mutable[resolveFallback(ref, loaded.models)]!) as Model[]);
  });
  loaded.models.forEach((spec, i) => {
    if (spec.split === undefined) return;
    const path = spec.path ?? '';
    // Load-time rules guarantee each entry names exactly one model of the same path, without cycles.
    const entries = spec.split.map((e) => mutable.find((m) => m.name === e.model && m.path === path)! as Model);
    mutable[i]!.split = new SplitChoice(entries, spec.split.map((e) => e.weight), toSticky(spec.sticky ?? DEFAULTS.sticky));
  });
  loaded.models.forEach((spec, i) => {
    if (spec.mirror === undefined) return;
    const path = spec.path ?? '';
    const model = mutable.find((m) => m.name === spec.mirror!.model && m.path === path)! as Model;
    mutable[i]!.mirror = Object.freeze({ model, fraction: spec.mirror.fraction, timeoutMs: toMs(spec.mirror.timeout, DEFAULTS.mirrorTimeoutMs) });
  });
  mutable.forEach((m) => {
    const served = new Map<Model, number>();
    for (const s of servedBy(m)) if (s !== m && !served.has(s)) served.set(s, rowOf(m.name, m.path, s.name));
    if (served.size > 0) m.servedRows = served;
  });
  const models: Model[] = mutable.map((m) => Object.freeze(m));
  const grouped = new Map<string, Model[]>();
  for (const m of models) {
    const list = grouped.get(m.path);
    if (list) list.push(m);
    else grouped.set(m.path, [m]);
  }
  const routes = new Map<string, PathRoute>();
  let maxDepth = 0;
  for (const [path, list] of grouped) {
    const byName = new Map<string, Model>();
    const byServedModel = new Map<string, Model>();
    const learning = Object.freeze(list.filter((m) => m.learnedServed !== null));
    const byAdapter = new Map<string, Model>();
    for (const m of list) if (m.learnedAdapters === null) for (const a of m.adapters ?? []) if (!byAdapter.has(a)) byAdapter.set(a, m);
    const learningAdapters = Object.freeze(list.filter((m) => m.learnedAdapters !== null));
    for (const m of list) {
      byName.set(m.name, m);
      // The first model declaring a served id wins body routing by that id; names always win over ids.
      if (m.servedModel !== null && !byServedModel.has(m.servedModel)) byServedModel.set(m.servedModel, m);
    }
    routes.set(path, Object.freeze({ path, byName, byServedModel, learning, byAdapter, learningAdapters, models: Object.freeze(list) }));
    maxDepth = Math.max(maxDepth, path === '' ? 0 : path.split('/').length - 1);
  }
  const keyOwners = new Map<string, Model>();
  for (const m of models) for (const h of m.keyHashes ?? []) keyOwners.set(h, m);

  const settings = Object.freeze({
    maxBodyBytes: toBytes(loaded.config.proxy?.max_body_size, DEFAULTS.maxBodyBytes),
    maxUrlLength: loaded.config.proxy?.max_url_length ?? DEFAULTS.maxUrlLength,
    dnsServers: Object.freeze(loaded.config.dns?.servers ?? []),
    isFastUpstream: loaded.config.proxy?.fast_upstream ?? DEFAULTS.isFastUpstream,
  });
  return Object.freeze({
    hash: hashOf(settings, models),
    loadedAt: opts.now ?? new Date(),
    settings,
    routes,
    maxDepth,
    keyOwners,
    models: Object.freeze(models),
  });
}

function scopeView(s: LimitScope): object {
  return { id: s.id, rules: s.rules, concurrency: s.concurrency ? [s.concurrency.max, s.concurrency.queueMax, s.concurrency.queueTimeoutMs] : null, defaultMaxTokens: s.defaultMaxTokens };
}

/** hashOf fingerprints what routing depends on (keys only by hash), so an unchanged reload can be skipped. */
function hashOf(settings: object, models: readonly Model[]): string {
  const canonical = JSON.stringify({
    settings,
    models: models.map((m) => ({
      ...m,
      statsRow: undefined,
      soleKeyHash: undefined,
      keyHashes: m.keyHashes ? [...m.keyHashes].sort() : null,
      keyNames: [...m.keyNames].sort(),
      limits: m.limits === null ? null : { scopes: m.limits.scopes.map(scopeView), keys: [...m.limits.keyScopes].sort().map(([h, sc]) => [h, scopeView(sc)]) },
      targets: m.targets.map((t) => [t.url, t.weight]),
      health: { ...m.health, passive: { ...m.health.passive, statusCodes: [...m.health.passive.statusCodes] } },
      fallback: m.fallback.map((f) => [f.path, f.name]),
      split: m.split === null ? null : { models: m.split.entries.map((e) => e.name), weights: m.split.weights, sticky: m.split.sticky },
      mirror: m.mirror === null ? null : { model: m.mirror.model.name, fraction: m.mirror.fraction, timeoutMs: m.mirror.timeoutMs },
      servedModel: m.learnedServed === null ? m.servedModel : SERVED_MODEL_AUTO,
      learnedServed: undefined,
      adapters: m.learnedAdapters !== null ? ADAPTERS_AUTO : m.adapters === null ? null : [...m.adapters],
      learnedAdapters: undefined,
      servedRows: undefined,
      flow: m.flow === null ? null : { ...m.flow, tenants: [...m.flow.tenants].sort() },
      upstream: undefined,
      source: undefined,
    })),
  });
  return createHash('sha256').update(canonical).digest('hex');
}

/** describeSnapshot is a printable summary of a snapshot: keys never appear, only their count. */
export function describeSnapshot(s: Snapshot): { hash: string; models: ModelView[] } {
  return {
    hash: s.hash,
    models: s.models.map((m) => ({
      name: m.name,
      path: m.path || '/',
      served_model: m.servedModel ?? (m.learnedServed === null ? null : SERVED_MODEL_AUTO),
      keys: m.keyHashes?.size ?? 0,
      balancer: m.balancerKind,
      targets: m.upstream.targets.map((t) => t.url),
      dns: m.dnsTargets.map((d) => `${d.host}:${d.port}`),
      health_check_path: m.health.path,
      fallback: m.fallback.map((f) => `${f.path || '/'} ${f.name}`),
      ...(m.mirror === null ? {} : { mirror: { model: m.mirror.model.name, fraction: m.mirror.fraction, timeout_ms: m.mirror.timeoutMs } }),
      ...(m.split === null ? {} : { split: m.split.entries.map((e, i) => ({ model: e.name, weight: m.split!.weights[i]! })), sticky: stickyView(m.split.sticky) }),
      ...(m.adapters === null ? {} : { adapters: [...m.adapters] }),
      ...(m.learnedAdapters === null ? {} : { adapters_auto: true }),
      anthropic: m.anthropicMode,
      limits: m.limits === null ? null : [...m.limits.scopes, ...m.limits.keyScopes.values()].map(toLimitView),
      source: m.source,
    })),
  };
}

/** stickyView writes a compiled sticky setting as the configuration does. */
function stickyView(s: Sticky): string {
  return s.kind === 'header' ? `header:${s.header}` : s.kind;
}

/** toLimitView shows one limit scope: its rules in words and its concurrency cap (keys appear by name or fingerprint). */
function toLimitView(sc: LimitScope): LimitView {
  const sem = sc.concurrency;
  return {
    scope: sc.label,
    rules: sc.rules.map((r) => r.description),
    concurrency: sem === null ? null : { max: sem.max, queue: sem.queueMax, queue_timeout_ms: sem.queueTimeoutMs },
  };
}

/** LimitView is one limit scope as `validate --print` and the admin API show it. */
export interface LimitView {
  /** scope is "the gateway", "model <name>" or "key <name or fingerprint>". */
  scope: string;
  rules: string[];
  concurrency: { max: number; queue: number; queue_timeout_ms: number } | null;
}

/** ModelView is one model as the admin API and `validate --print` show it. */
export interface ModelView {
  name: string;
  path: string;
  served_model: string | null;
  keys: number;
  balancer: string;
  targets: string[];
  dns: string[];
  health_check_path: string;
  fallback: string[];
  /** split lists the models that serve a split (or alias) model, with their weights; absent for a model with targets. */
  split?: { model: string; weight: number }[];
  /** sticky is a split's `sticky` setting as written. */
  sticky?: string;
  /** mirror is where shadow copies go, and how many. */
  mirror?: { model: string; fraction: number; timeout_ms: number };
  /** adapters are the model's LoRA adapter ids (with `adapters: auto`, those its targets list now); absent when it lists none. */
  adapters?: string[];
  /** adapters_auto is true when the adapters are learned from the targets (`adapters: auto`). */
  adapters_auto?: boolean;
  /** anthropic is the model's protocols.anthropic mode. */
  anthropic: string;
  /** limits are the scopes that limit the model's requests (the gateway's, the model's, each key's); null when none. */
  limits: LimitView[] | null;
  source: string;
}
