/**
 * The configuration file's schema: the single source of the TypeScript types, the validator and
 * the JSON Schema published in `schema/gateway.schema.json` (regenerate with `npm run schema`).
 * Objects are strict: an unknown key is an error, because a misspelt field silently ignored is a
 * route or a limit silently lost.
 */
import { z } from 'zod';
import { CONFIG_DEFAULTS as C } from './defaults.js';

// Messages say what is expected in the user's words (examples, not patterns); the loader adds the value given.
const DURATION_HINT = 'expected a duration such as "500ms", "10s", "5m" or "1h" (a plain number means milliseconds)';
const duration = z
  .union([z.number().int().nonnegative(), z.string().regex(/^\d+(\.\d+)?(ms|s|m|h)$/, DURATION_HINT)], DURATION_HINT)
  .describe('A duration: milliseconds as a number, or a string such as "250ms", "5s", "2m", "1h".');

const SIZE_HINT = 'expected a size such as "512KiB", "32MiB" or "1GB" (a plain number means bytes)';
const byteSize = z
  .union([z.number().int().positive(), z.string().regex(/^\d+(\.\d+)?\s*(B|KB|KiB|MB|MiB|GB|GiB)$/, SIZE_HINT)], SIZE_HINT)
  .describe('A size: bytes as a number, or a string such as "512KiB", "32MiB".');

const listenAddress = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected "host:port", e.g. "0.0.0.0:8000" or "[::]:8000"')
  .describe('A listen address "host:port"; IPv6 hosts in brackets.');

const URL_HINT = 'expected "http(s)://host:port[/path]"';
/** URL_CHARS are the characters RFC 3986 allows in a URL: a space, a control or a non-ASCII character is a typo, not something to percent-encode silently. */
const URL_CHARS = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+$/;

/** urlTargetConfig is one upstream server given by URL. */
export const urlTargetConfig = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: URL_HINT }).refine((u) => URL_CHARS.test(u), URL_HINT).describe('url is the upstream base URL, e.g. http://10.0.0.5:8000; a path in it is prepended to forwarded paths.'),
  weight: z.number().int().min(1).max(1000).optional().describe(`weight is the share of requests this target gets relative to the others (default ${C.url_target.weight}).`),
});

/** dnsTargetConfig discovers targets from DNS: every A/AAAA record of the name becomes a target. */
export const dnsTargetConfig = z.strictObject({
  dns: z
    .string()
    .regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'expected "host:port", e.g. "scout-headless.default.svc:8000"')
    .describe('dns is "host:port" to resolve (e.g. a Kubernetes headless Service); re-resolved on the record TTL.'),
  scheme: z.enum(['http', 'https']).optional().describe(`scheme of the discovered targets (default "${C.dns_target.scheme}").`),
  weight: z.number().int().min(1).max(1000).optional().describe(`weight of each discovered target (default ${C.dns_target.weight}).`),
  min_ttl: duration.optional().describe(`min_ttl is the shortest re-resolve interval, whatever the record TTL says (default ${C.dns_target.min_ttl}).`),
  max_ttl: duration.optional().describe(`max_ttl is the longest re-resolve interval (default ${C.dns_target.max_ttl}).`),
});

/** targetConfig is one upstream server (url) or a DNS name that yields several. */
export const targetConfig = z.union([urlTargetConfig, dnsTargetConfig], 'expected a target {url: "http(s)://host:port[/path]"} or {dns: "host:port"}');

/** timeoutsConfig are the per-model upstream timeouts. */
export const timeoutsConfig = z.strictObject({
  connect: duration.optional().describe(`connect is how long to wait for a TCP/TLS connection to a target (default ${C.model.timeouts.connect}).`),
  first_byte: duration.optional().describe(`first_byte is how long to wait for the upstream response headers (default ${C.model.timeouts.first_byte}: long prompts are slow).`),
  idle: duration.optional().describe(`idle is the longest silence allowed between two chunks of an upstream response (default ${C.model.timeouts.idle}).`),
});

/** passiveHealthConfig ejects targets that fail real requests. */
export const passiveHealthConfig = z.strictObject({
  failures: z.number().int().min(1).max(100).optional().describe(`failures is how many consecutive failed requests eject a target (default ${C.model.health_check.passive.failures}; 0 turns passive checks off via enabled).`),
  ejection: duration.optional().describe(`ejection is how long the first ejection lasts (default ${C.model.health_check.passive.ejection}); each consecutive ejection doubles it.`),
  max_ejection: duration.optional().describe(`max_ejection caps the doubling (default ${C.model.health_check.passive.max_ejection}). After an ejection, one half-open trial request decides.`),
  status_codes: z.array(z.number().int().min(500).max(599)).optional().describe(`status_codes are upstream statuses counted as failures (default [${C.model.health_check.passive.status_codes.join(', ')}]).`),
  enabled: z.boolean().optional().describe(`enabled turns passive checks on or off (default ${C.model.health_check.passive.enabled}).`),
});

/** healthCheckConfig describes how targets are checked. */
export const healthCheckConfig = z.strictObject({
  path: z.string().startsWith('/').optional().describe(`path is the target's health endpoint (default: the blueprint's readiness probe path, else ${C.model.health_check.path}).`),
  active: z.boolean().optional().describe(`active turns active checks on or off (default ${C.model.health_check.active}).`),
  interval: duration.optional().describe(`interval between active checks of a target (default ${C.model.health_check.interval}).`),
  timeout: duration.optional().describe(`timeout of one active check (default ${C.model.health_check.timeout}).`),
  healthy_threshold: z.number().int().min(1).max(100).optional().describe(`healthy_threshold is how many successful checks mark a target healthy (default ${C.model.health_check.healthy_threshold}).`),
  unhealthy_threshold: z.number().int().min(1).max(100).optional().describe(`unhealthy_threshold is how many failed checks mark a target unhealthy (default ${C.model.health_check.unhealthy_threshold}).`),
  passive: passiveHealthConfig.optional(),
});

/** fallbackRefConfig names a model to fall back to: "name" (unique across paths) or {name, path}. */
export const fallbackRefConfig = z.union([z.string().min(1), z.strictObject({ name: z.string().min(1), path: z.string().optional() })], 'expected a model name or {name, path}');

const windowCounts = z
  .strictObject({
    per_second: z.number().int().positive().optional(),
    per_minute: z.number().int().positive().optional(),
    per_hour: z.number().int().positive().optional(),
    per_day: z.number().int().positive().optional(),
  })
  .refine((w) => Object.values(w).some((v) => v !== undefined), { message: 'give at least one of per_second, per_minute, per_hour, per_day' });

/** limitsConfig are request, token and concurrency limits of one scope (gateway, model or key). */
export const limitsConfig = z.strictObject({
  requests: windowCounts.optional().describe('requests caps requests per window (windows are fixed and aligned to the clock).'),
  tokens: z
    .strictObject({
      per_minute: z.number().int().positive().optional(),
      per_hour: z.number().int().positive().optional(),
      per_day: z.number().int().positive().optional(),
    })
    .refine((w) => Object.values(w).some((v) => v !== undefined), { message: 'give at least one of per_minute, per_hour, per_day' })
    .optional()
    .describe('tokens caps prompt + completion tokens per window: a request reserves an estimate and settles with the real usage.'),
  concurrency: z
    .strictObject({
      max: z.number().int().positive().describe('max is how many requests may run at once.'),
      queue: z.number().int().min(0).optional().describe(`queue is how many more may wait for a slot (default ${C.limits.concurrency.queue}).`),
      queue_timeout_ms: z.number().int().positive().optional().describe(`queue_timeout_ms is the longest wait in the queue (default ${C.limits.concurrency.queue_timeout_ms}).`),
    })
    .optional()
    .describe('concurrency caps requests in flight, with a bounded FIFO wait queue in front (counted per gateway process).'),
  default_max_tokens: z.number().int().positive().optional().describe(`default_max_tokens is the completion reservation when a request sets no max_tokens (default ${C.limits.default_max_tokens}).`),
});

/** apiKeyObjectConfig is a key with a name (shown instead of the key) and limits of its own. */
export const apiKeyObjectConfig = z.strictObject({
  key: z.string().min(1).describe('key is the API key, or "sha256:<64 hex>".'),
  name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, ".", "_" or "-", at most 64').optional().describe('name is shown in logs and metrics instead of the key fingerprint.'),
  limits: z.lazy(() => limitsConfig).optional(),
  priority: z.number().int().min(-1000).max(1000).optional().describe(`priority of this key's requests under flow control: higher goes first, negative is shed while the model is saturated (default ${C.api_key.priority}).`),
  max_priority: z.number().int().min(-1000).max(1000).optional().describe('max_priority is the highest priority the X-Priority header may ask for (default: the key\'s priority, so the header cannot raise it).'),
  weight: z.number().int().min(1).max(1000).optional().describe(`weight is this key's fair share against other keys of the same priority under flow control (default ${C.api_key.weight}).`),
});

/** The fields a model, the `defaults` block and a `blueprints` entry share. */
const modelFieldShape = {
  path: z.string().optional().describe('path is the URL prefix the model is served under ("url_path" in blueprints); no trailing "/", no ".." or "//". Default: none (root).'),
  api_keys: z
    .array(z.union([z.string().min(1), apiKeyObjectConfig], 'expected a key (a string) or {key, name, limits}'))
    .optional()
    .describe('api_keys are the keys that may call this model (header "apikey" or "Authorization: Bearer"); a "sha256:<64 hex>" entry holds a key by its hash. Empty or absent: no key needed.'),
  served_model: z
    .string()
    .min(1)
    .optional()
    .describe(
      'served_model is the upstream\'s own model id (vLLM --served-model-name); body routing also matches it. "auto" learns it from the targets\' GET /v1/models (the id most of them serve); a target serving another model is taken out of rotation.',
    ),
  upstream_api_key: z.string().min(1).regex(/^[\x21-\x7e]+$/, 'must be visible ASCII without spaces: it is sent in a header').optional().describe('upstream_api_key is sent to the targets as "Authorization: Bearer <key>" (for engines started with --api-key).'),
  key_in_query: z.boolean().optional().describe(`key_in_query also accepts the key from an "apikey" query parameter, as Kong allowed (default ${C.model.key_in_query}).`),
  targets: z.array(targetConfig).optional().describe('targets are the upstream servers of the model: {url, weight} entries and/or {dns: "host:port"} discovery entries.'),
  timeouts: timeoutsConfig.optional(),
  health_check: healthCheckConfig.optional(),
  balancer: z.enum(['round-robin', 'least-request', 'consistent-hash', 'least-load', 'prefix-aware']).optional().describe(`balancer picks a target per request (default "${C.model.balancer}").`),
  hash_on: z
    .union([z.enum(['api_key', 'prompt_prefix']), z.string().regex(/^header:[A-Za-z0-9-]+$/, 'expected "api_key", "prompt_prefix" or "header:<Name>"')], 'expected "api_key", "prompt_prefix" or "header:<Name>"')
    .optional()
    .describe(`hash_on is the consistent-hash key: "header:<Name>", "api_key" or "prompt_prefix" (default "${C.model.hash_on}").`),
  hash_prompt_chars: z.number().int().min(1).max(100_000).optional().describe(`hash_prompt_chars is how many characters of the system prompt and first messages form the prompt_prefix key (default ${C.model.hash_prompt_chars}).`),
  hash_load_factor: z.number().min(1).max(10).optional().describe(`hash_load_factor bounds a target at this multiple of the average in-flight load before its keys spill over (default ${C.model.hash_load_factor}); prefix-aware uses the same bound.`),
  prefix_block_chars: z.number().int().min(1).max(4096).optional().describe(`prefix_block_chars is the size in characters of the prompt blocks the prefix-aware balancer hashes, about the engine's KV block (vLLM: 16 tokens, ~64 characters) (default ${C.model.prefix_block_chars}).`),
  prefix_cache_blocks: z.number().int().min(1).max(1_000_000).optional().describe(`prefix_cache_blocks is how many blocks the prefix-aware balancer remembers per target (LRU), about the engine's KV cache size in blocks (default ${C.model.prefix_cache_blocks}).`),
  load_metrics: z
    .strictObject({
      path: z.string().startsWith('/').optional().describe(`path of the targets' Prometheus metrics (default ${C.model.load_metrics.path}).`),
      interval: duration.optional().describe(`interval between polls (default ${C.model.load_metrics.interval}).`),
      stale_after: duration.optional().describe(`stale_after: older samples are ignored and least-request is used (default ${C.model.load_metrics.stale_after}).`),
    })
    .optional()
    .describe('load_metrics configures the /metrics polling of the least-load balancer.'),
  retries: z.number().int().min(0).max(10).optional().describe(`retries is how many other targets a request that failed to connect, or was reset before any response byte, is retried on (default ${C.model.retries}).`),
  retry_timeout: duration.optional().describe(`retry_timeout bounds the time from arrival within which a retry may start (default ${C.model.retry_timeout}).`),
  fallback: z.array(fallbackRefConfig).optional().describe('fallback models take the requests when every target of this model is down (in order; not chained).'),
  limits: limitsConfig.optional().describe('limits of this model (all its keys together).'),
  track_stream_usage: z
    .boolean()
    .optional()
    .describe(
      `track_stream_usage asks the engine for token usage on every streamed chat or text completion (stream_options.include_usage) and removes that extra event when the client did not ask for it, so streams count in igw_tokens_total and the access log (default ${C.model.track_stream_usage}). false forwards stream requests unchanged; models with token limits always ask.`,
    ),
  flow_control: z
    .strictObject({
      enabled: z.boolean().optional().describe(`enabled holds requests in the gateway while every target is saturated, and polls the targets' /metrics (default ${C.model.flow_control.enabled}).`),
      saturation: z
        .strictObject({
          queue_depth: z.number().int().min(1).nullable().optional().describe(`queue_depth: a target is saturated when vllm:num_requests_waiting reaches it (default ${C.model.flow_control.saturation.queue_depth}; null: not used).`),
          kv_cache: z.number().gt(0).max(1).nullable().optional().describe(`kv_cache: a target is saturated when vllm:kv_cache_usage_perc reaches it (default ${C.model.flow_control.saturation.kv_cache}; null: not used).`),
          max_inflight: z.number().int().min(1).nullable().optional().describe('max_inflight: a target is saturated when this gateway has this many requests on it (for engines without metrics; default null: not used).'),
        })
        .optional()
        .describe('saturation says when a target is saturated: when any of the given conditions holds.'),
      headroom: z
        .number()
        .int()
        .min(0)
        .max(100_000)
        .optional()
        .describe(
          `headroom keeps this many places under saturation.max_inflight, summed over the model's targets, for tenants (API keys) using less than their fair share of those places: a heavy tenant keeps the rest busy and a light one finds room at once (default ${C.model.flow_control.headroom}; needs max_inflight).`,
        ),
      max_queue: z.number().int().min(0).optional().describe(`max_queue is how many requests may wait in the gateway for this model; beyond it 429 queue_full (default ${C.model.flow_control.max_queue}).`),
      max_wait: duration.optional().describe(`max_wait is the longest a request waits before 429 queue_timeout (default ${C.model.flow_control.max_wait}).`),
      upstream_priority: z
        .boolean()
        .optional()
        .describe(`upstream_priority also sends the request's priority to the engine as vLLM's body field "priority" (negated: vLLM runs lower values first); the engines must run with --scheduling-policy priority (default ${C.model.flow_control.upstream_priority}).`),
      fairness: z.enum(['tokens', 'requests']).optional().describe(`fairness is what a tenant's fair share is measured in: prompt + completion tokens, or requests (default "${C.model.flow_control.fairness}").`),
    })
    .optional()
    .describe('flow_control queues requests while every target of the model is saturated, releasing them by priority and fair share (see docs/flow-control.md).'),
  protocols: z
    .strictObject({
      anthropic: z
        .enum(['translate', 'passthrough', 'off'])
        .optional()
        .describe(
          `anthropic is how POST <path>/v1/messages (the Anthropic Messages API) is served: "${C.model.protocols.anthropic}" (default) turns it into /v1/chat/completions and the answer back; "passthrough" forwards it as is, for engines that serve it; "off" answers 404.`,
        ),
    })
    .optional()
    .describe('protocols sets how APIs other than the OpenAI one are served for this model (see docs/anthropic.md).'),
};

/** splitEntryConfig is one side of a split: a model of the same path and its share of the requests. */
export const splitEntryConfig = z.strictObject({
  model: z.string().min(1).describe('model is the name of another model on the same path that serves this share.'),
  weight: z.number().positive().max(1_000_000).describe('weight is this side\'s share relative to the other entries (e.g. 90 and 10).'),
});

/** modelConfig is one routed model. */
export const modelConfig = z.strictObject({
  name: z.string().min(1).describe('name is the model\'s name: the X-Model header value ("model_name" in blueprints).'),
  ...modelFieldShape,
  split: z
    .array(splitEntryConfig)
    .min(1)
    .optional()
    .describe(
      'split serves the model by other models of its path instead of targets: each request goes to one entry, by weight; one entry makes an alias. The body\'s "model" becomes the chosen model\'s served_model (else its name); auth and limits are this model\'s.',
    ),
  adapters: z
    .union([z.literal('auto'), z.array(z.string().min(1).max(512)).min(1)], 'expected "auto" or a list of adapter names')
    .optional()
    .describe(
      'adapters are the LoRA adapters the targets serve as extra model ids (vLLM --lora-modules): a request whose body "model" names one goes to a target that has it loaded (vllm:lora_requests_info), else one with a free adapter slot, else the one with the fewest requests in flight; a target with the adapter is passed over while it has more than twice its share of the requests in flight and its engine queues. The targets\' /metrics are polled for it. "auto" learns them from the targets\' GET /v1/models (entries whose "parent" is the model\'s served_model), each adapter going only to the targets that list it.',
    ),
  sticky: z
    .union([z.enum(['none', 'api_key']), z.string().regex(/^header:[A-Za-z0-9-]+$/, 'expected "none", "api_key" or "header:<Name>"')], 'expected "none", "api_key" or "header:<Name>"')
    .optional()
    .describe(`sticky makes a split choose the same entry for the same API key ("api_key") or header value ("header:<Name>"); requests without one are chosen at random (default "${C.model.sticky}").`),
  mirror: z
    .strictObject({
      model: z.string().min(1).describe('model is another model of the same path, with targets, whose engine gets the copies (its served_model, else its name, in the body).'),
      fraction: z.number().gt(0).max(1).describe('fraction of the requests copied, above 0 and at most 1 (e.g. 0.05).'),
      timeout: duration.optional().describe(`timeout is how long a copy may go on after the client's answer has ended before it is cancelled (default ${C.model.mirror.timeout}).`),
    })
    .optional()
    .describe("mirror sends a shadow copy of a share of the requests to another model; the copy's answer is discarded, and it never delays or changes the client's."),
});

/** modelDefaultsConfig holds the fields every model starts from. */
export const modelDefaultsConfig = z.strictObject({ ...modelFieldShape });

/** blueprintEntryConfig imports OCI AI Blueprints recipes; its model fields apply to every imported model. */
export const blueprintEntryConfig = z
  .strictObject({
    file: z.string().min(1).optional().describe('file is one recipe JSON file (relative paths are resolved from the config file).'),
    dir: z.string().min(1).optional().describe('dir is a folder whose *.json recipe files are all imported.'),
    target_template: z
      .string()
      .regex(/^(https?:\/\/|dns:)/, 'expected "http(s)://..." or "dns:host:port", with {deployment_name} and {port} placeholders')
      .refine((t) => URL_CHARS.test(t.replaceAll('{deployment_name}', 'd').replaceAll('{port}', '1')), 'expected "http(s)://..." or "dns:host:port", with {deployment_name} and {port} placeholders')
      .optional()
      .describe(
        'target_template builds each imported model\'s target from its recipe instead of http://{deployment_name}:{port}, e.g. "dns:{deployment_name}-headless:{port}" for per-pod balancing through a headless Service.',
      ),
    ...modelFieldShape,
  })
  .refine((e) => (e.file === undefined) !== (e.dir === undefined), { message: 'a blueprints entry needs exactly one of "file" or "dir"' });

/** listenerTls is the PEM files of an admin or status HTTPS listener. */
const listenerTls = z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional();

/** proxyConfig is the inference listener. */
export const proxyConfig = z.strictObject({
  listen: listenAddress.optional().describe(`listen is the HTTP proxy address (default "${C.proxy.listen}").`),
  tls_listen: listenAddress.optional().describe('tls_listen is the HTTPS proxy address (e.g. "0.0.0.0:8443"), serving HTTP/2 and HTTP/1.1 (ALPN).'),
  tls: z
    .strictObject({ cert: z.string().min(1), key: z.string().min(1) })
    .optional()
    .describe('tls holds PEM file paths (relative to the config file) for tls_listen; without it a self-signed development certificate is generated. Reloaded on SIGHUP and when the files change.'),
  max_body_size: byteSize.optional().describe(`max_body_size is the largest request body accepted; larger gets 413 (default "${C.proxy.max_body_size}").`),
  max_header_size: byteSize.optional().describe(`max_header_size bounds the request line and headers together; larger gets 431 (default "${C.proxy.max_header_size}").`),
  max_url_length: z.number().int().min(64).max(1_048_576).optional().describe(`max_url_length is the longest request target (path and query) accepted; longer gets 414 (default ${C.proxy.max_url_length}).`),
  header_timeout: duration.optional().describe(`header_timeout is how long a client may take to send a request's headers (slow-loris guard; default ${C.proxy.header_timeout}). It does not limit bodies or streams.`),
  keepalive_timeout: duration.optional().describe(`keepalive_timeout closes an idle client connection (default ${C.proxy.keepalive_timeout}).`),
  max_connections: z.number().int().min(1).optional().describe(`max_connections per listener; further connections are closed at once (default ${C.proxy.max_connections}).`),
  fast_http1: z.boolean().optional().describe(`fast_http1 serves plain HTTP/1.1 API calls with the gateway's own strict parser and writer (default ${C.proxy.fast_http1}); anything else on the connection goes to node:http. false: node:http serves everything.`),
  fast_upstream: z.boolean().optional().describe(`fast_upstream sends requests to plain-HTTP targets over the gateway's own HTTP/1.1 client (default ${C.proxy.fast_upstream}); HTTPS targets always use undici. false: undici for every target.`),
  http2_max_concurrent_streams: z.number().int().min(1).max(1_000_000).optional().describe(`http2_max_concurrent_streams bounds the streams one HTTP/2 connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS; default ${C.proxy.http2_max_concurrent_streams}, as nginx).`),
});

/** adminConfig is the admin listener. */
export const adminConfig = z.strictObject({
  listen: listenAddress.optional().describe(`listen is the admin API address (default "${C.admin.listen}").`),
  token: z.string().min(1).optional().describe('token is the bearer token the admin API requires.'),
  tls_listen: listenAddress.optional().describe('tls_listen is the admin API\'s HTTPS address (e.g. "0.0.0.0:8442"); off by default. Beyond loopback it needs token, as listen does.'),
  tls: listenerTls.describe('tls holds PEM file paths (relative to the config file) for tls_listen; default: proxy.tls, else a self-signed development certificate. Reloaded on SIGHUP and when the files change.'),
});

/** dnsConfig sets how DNS targets are resolved. */
export const dnsConfig = z.strictObject({
  servers: z.array(z.string().min(1)).optional().describe('servers are DNS servers ("ip" or "ip:port") used for dns targets instead of the system resolver.'),
});

/** limitsStoreConfig is where rate-limit counters live. */
export const limitsStoreConfig = z.strictObject({
  policy: z.enum(['local', 'redis']).optional().describe(`policy "${C.limits_store.policy}" counts in this process (default); "redis" shares counters across gateway replicas.`),
  redis_url: z.string().regex(/^rediss?:\/\//, 'expected redis://host:port[/db]').refine((u) => URL_CHARS.test(u), 'expected redis://host:port[/db]').optional().describe('redis_url of the shared counter store (policy redis).'),
  fault_tolerant: z.boolean().optional().describe(`fault_tolerant lets traffic through (counted locally) while Redis is unreachable (default ${C.limits_store.fault_tolerant}); false answers 503.`),
  timeout_ms: z.number().int().positive().optional().describe(`timeout_ms bounds one Redis check (default ${C.limits_store.timeout_ms}).`),
});

/** statusConfig is the status listener. */
export const statusConfig = z.strictObject({
  listen: listenAddress.optional().describe(`listen is the status address serving /status and /status/ready (default "${C.status.listen}").`),
  tls_listen: listenAddress.optional().describe('tls_listen is the status listener\'s HTTPS address (e.g. "0.0.0.0:8101"), serving the same endpoints; off by default.'),
  tls: listenerTls.describe('tls holds PEM file paths (relative to the config file) for tls_listen; default: proxy.tls, else a self-signed development certificate. Reloaded on SIGHUP and when the files change.'),
});

/** logConfig sets the gateway log (stderr) and the access log (stdout). */
export const logConfig = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional().describe(`level is the gateway log level on stderr (default "${C.log.level}"; env IGW_LOG_LEVEL overrides).`),
  access_log: z.boolean().optional().describe(`access_log writes one line per request on stdout (default ${C.log.access_log}).`),
  format: z.enum(['json', 'text']).optional().describe(`format of access log lines: "${C.log.format}" (default) or "text".`),
});

/** gatewayConfig is the whole configuration file. */
export const gatewayConfig = z
  .strictObject({
    $schema: z.string().optional().describe('$schema lets editors find the JSON Schema; ignored by the gateway.'),
    proxy: proxyConfig.optional(),
    admin: adminConfig.optional(),
    status: statusConfig.optional(),
    log: logConfig.optional(),
    dns: dnsConfig.optional(),
    limits_store: limitsStoreConfig.optional(),
    limits: limitsConfig.optional().describe('limits are gateway-wide: one budget shared by all models.'),
    shutdown_grace_s: z.number().int().min(0).max(3600).optional().describe(`shutdown_grace_s is how long in-flight requests and streams get to finish after SIGTERM (default ${C.shutdown_grace_s}).`),
    defaults: modelDefaultsConfig.optional().describe('defaults are fields every model starts from; a model or blueprints entry overrides them.'),
    models: z.array(modelConfig).optional().describe('models are routed models declared directly.'),
    blueprints: z.array(blueprintEntryConfig).optional().describe('blueprints are OCI AI Blueprints recipe files or folders to import models from.'),
  })
  .describe('Inference Gateway configuration (YAML or JSON; ${VAR} is replaced from the environment).');

/** recipeGatewaySection is `recipe_inference_gateway` as the blueprint schema defines it: model_name required, nothing else than the three fields. */
export const recipeGatewaySection = z.strictObject({
  model_name: z.string().min(1),
  url_path: z.string().optional(),
  api_key: z.string().min(1).optional(),
});

/** GatewayConfig is a parsed configuration file. */
export type GatewayConfig = z.infer<typeof gatewayConfig>;
/** ModelDefaultsConfig is the model fields without a name. */
export type ModelDefaultsConfig = z.infer<typeof modelDefaultsConfig>;
/** LimitsConfig is one scope's limits as written. */
export type LimitsConfig = z.infer<typeof limitsConfig>;
/** ApiKeyConfig is one api_keys entry: a string or {key, name, limits}. */
export type ApiKeyConfig = string | z.infer<typeof apiKeyObjectConfig>;
/** FallbackRefConfig names a fallback model. */
export type FallbackRefConfig = z.infer<typeof fallbackRefConfig>;
/** ModelConfig is one `models` entry as written. */
export type ModelConfig = z.infer<typeof modelConfig>;
