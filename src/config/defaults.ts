/**
 * The default of every optional setting, in one place. The schema's field descriptions (and so the
 * published JSON Schema and the configuration reference) are written from CONFIG_DEFAULTS, and
 * DEFAULTS is the same values in the units the gateway computes with, derived once when this
 * module loads. Nothing else holds a default.
 *
 * Defaults are applied when compiling, not by the schema (zod `.default()`): a model's fields are
 * merged over the `defaults` block and blueprint entries field by field, so an omitted field must
 * stay omitted after parsing, or it would override what `defaults` says.
 */
import { toBytes, toMs } from './units.js';

/** CONFIG_DEFAULTS are the defaults as a configuration file would write them. */
export const CONFIG_DEFAULTS = deepFreeze({
  proxy: {
    listen: '0.0.0.0:8000',
    max_body_size: '32MiB',
    max_header_size: '16KiB',
    max_url_length: 8192,
    header_timeout: '10s',
    keepalive_timeout: '65s',
    max_connections: 16_384,
    fast_http1: true,
    fast_upstream: true,
    http2_max_concurrent_streams: 128,
  },
  admin: { listen: '127.0.0.1:8001' },
  status: { listen: '0.0.0.0:8100' },
  log: { level: 'info', access_log: true, format: 'json' },
  limits_store: { policy: 'local', fault_tolerant: true, timeout_ms: 500 },
  shutdown_grace_s: 30,
  limits: { concurrency: { queue: 0, queue_timeout_ms: 10_000 }, default_max_tokens: 1024 },
  url_target: { weight: 1 },
  dns_target: { scheme: 'http', weight: 1, min_ttl: '1s', max_ttl: '60s' },
  model: {
    key_in_query: false,
    balancer: 'round-robin',
    hash_on: 'prompt_prefix',
    hash_prompt_chars: 256,
    hash_load_factor: 1.25,
    prefix_block_chars: 64,
    prefix_cache_blocks: 16_384,
    retries: 2,
    retry_timeout: '30s',
    track_stream_usage: true,
    timeouts: { connect: '5s', first_byte: '600s', idle: '120s' },
    health_check: {
      path: '/health',
      active: true,
      interval: '5s',
      timeout: '2s',
      healthy_threshold: 2,
      unhealthy_threshold: 3,
      passive: { enabled: true, failures: 3, ejection: '10s', max_ejection: '5m', status_codes: [502, 503, 504] },
    },
    load_metrics: { path: '/metrics', interval: '250ms', stale_after: '2s' },
    protocols: { anthropic: 'translate' },
    sticky: 'none',
    mirror: { timeout: '10s' },
    flow_control: { enabled: false, saturation: { queue_depth: 5, kv_cache: 0.8 }, headroom: 0, max_queue: 1000, max_wait: '30s', fairness: 'tokens', upstream_priority: false },
  },
  api_key: { priority: 0, weight: 1 },
} as const);

const C = CONFIG_DEFAULTS;
const ms = (v: string): number => toMs(v, Number.NaN);

/** DEFAULTS are CONFIG_DEFAULTS in the gateway's units (`Ms`, `Bytes`), for compile and the listeners. */
export const DEFAULTS = deepFreeze({
  maxBodyBytes: toBytes(C.proxy.max_body_size, Number.NaN),
  maxUrlLength: C.proxy.max_url_length,
  maxHeaderBytes: toBytes(C.proxy.max_header_size, Number.NaN),
  headerTimeoutMs: ms(C.proxy.header_timeout),
  keepaliveTimeoutMs: ms(C.proxy.keepalive_timeout),
  maxConnections: C.proxy.max_connections,
  http2MaxConcurrentStreams: C.proxy.http2_max_concurrent_streams,
  isFastHttp1: C.proxy.fast_http1,
  isFastUpstream: C.proxy.fast_upstream,
  listen: { proxy: C.proxy.listen, status: C.status.listen, admin: C.admin.listen },
  logLevel: C.log.level,
  isAccessLog: C.log.access_log,
  logFormat: C.log.format,
  limitsStoreTimeoutMs: C.limits_store.timeout_ms,
  isLimitsStoreFaultTolerant: C.limits_store.fault_tolerant,
  shutdownGraceMs: C.shutdown_grace_s * 1000,
  limits: { queue: C.limits.concurrency.queue, queueTimeoutMs: C.limits.concurrency.queue_timeout_ms, defaultMaxTokens: C.limits.default_max_tokens },
  weight: C.url_target.weight,
  dnsScheme: C.dns_target.scheme,
  dnsWeight: C.dns_target.weight,
  dnsMinTtlMs: ms(C.dns_target.min_ttl),
  dnsMaxTtlMs: ms(C.dns_target.max_ttl),
  isKeyInQuery: C.model.key_in_query,
  balancer: C.model.balancer,
  hashOn: C.model.hash_on,
  hashPromptChars: C.model.hash_prompt_chars,
  hashLoadFactor: C.model.hash_load_factor,
  prefixBlockChars: C.model.prefix_block_chars,
  prefixCacheBlocks: C.model.prefix_cache_blocks,
  retries: C.model.retries,
  retryTimeoutMs: ms(C.model.retry_timeout),
  shouldTrackStreamUsage: C.model.track_stream_usage,
  connectMs: ms(C.model.timeouts.connect),
  firstByteMs: ms(C.model.timeouts.first_byte),
  idleMs: ms(C.model.timeouts.idle),
  loadMetricsPath: C.model.load_metrics.path,
  loadMetricsIntervalMs: ms(C.model.load_metrics.interval),
  loadMetricsStaleMs: ms(C.model.load_metrics.stale_after),
  anthropicMode: C.model.protocols.anthropic,
  sticky: C.model.sticky,
  mirrorTimeoutMs: ms(C.model.mirror.timeout),
  flow: {
    queueDepth: C.model.flow_control.saturation.queue_depth,
    kvCache: C.model.flow_control.saturation.kv_cache,
    headroom: C.model.flow_control.headroom,
    maxQueue: C.model.flow_control.max_queue,
    maxWaitMs: ms(C.model.flow_control.max_wait),
    fairness: C.model.flow_control.fairness,
    isUpstreamPriority: C.model.flow_control.upstream_priority,
    priority: C.api_key.priority,
    weight: C.api_key.weight,
  },
  health: {
    path: C.model.health_check.path,
    isActive: C.model.health_check.active,
    intervalMs: ms(C.model.health_check.interval),
    timeoutMs: ms(C.model.health_check.timeout),
    healthyThreshold: C.model.health_check.healthy_threshold,
    unhealthyThreshold: C.model.health_check.unhealthy_threshold,
    isPassive: C.model.health_check.passive.enabled,
    failures: C.model.health_check.passive.failures,
    ejectionMs: ms(C.model.health_check.passive.ejection),
    maxEjectionMs: ms(C.model.health_check.passive.max_ejection),
    statusCodes: C.model.health_check.passive.status_codes,
  },
});

/** deepFreeze freezes a plain object and everything in it. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
