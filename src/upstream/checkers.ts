/**
 * Background work of one config generation: active health probes, DNS discovery and vLLM
 * /metrics polling for least-load. All of it is tied to an AbortSignal and stops when the
 * generation is retired by a reload; the state it writes (TargetStates) is kept by URL and
 * carries over to the next generation. A probe or poll also stops once its target's record is
 * dropped (the target left the configuration or DNS).
 */
import { lookup, Resolver } from 'node:dns/promises';
import { isIPv6 } from 'node:net';
import type { DnsTarget } from './dns-target.js';
import type { HealthPolicy } from './health-policy.js';
import type { ModelUpstream } from './model-upstream.js';
import type { Target } from './target.js';
import type { PoolRegistry } from './pool-registry.js';
import type { UpstreamController, UpstreamRequest } from './dispatch.js';
import { parseModelList, sameAdapters } from './served-models.js';
import { parseVllmMetrics } from './vllm-metrics.js';

/** sleep waits ms or until the signal aborts (then resolves false). */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    t.unref();
    const onAbort = (): void => {
      clearTimeout(t);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** MAX_PROBE_BYTES bounds a probe's body (a vLLM /metrics page is a few hundred KiB). */
const MAX_PROBE_BYTES = 8 * 1024 * 1024;

/** Probe is how the loops below read a target: its pools, and whether plain-HTTP targets go through the built-in client. */
export interface Probe {
  readonly pools: PoolRegistry;
  /** isBuiltin: `proxy.fast_upstream`, so probes travel as the proxied requests to the same target do (PoolRegistry.forwarder). */
  readonly isBuiltin: boolean;
}

/**
 * fetchText GETs a path on a target; null on any failure, a non-2xx or an answer over
 * MAX_PROBE_BYTES. It goes through the same kind of dispatcher as the target's proxied requests
 * (a pool of its own, as dispatchers are kept per connect timeout): the built-in HTTP/1.1 client
 * for plain HTTP (undici's parser is WebAssembly compiled on first use, and a first probe paying
 * that mid-traffic stalled every stream of the process for tens of milliseconds), undici for
 * HTTPS or with `fast_upstream: false`.
 */
function fetchText(probe: Probe, target: Target, path: string, timeoutMs: number, signal: AbortSignal, authorization: string | null = null): Promise<string | null> {
  const dispatcher = probe.pools.forwarder(target.origin, timeoutMs, probe.isBuiltin);
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(null);
    let status = 0;
    let size = 0;
    const parts: Buffer[] = [];
    let controller: UpstreamController | null = null;
    let isDone = false;
    const finish = (text: string | null): void => {
      if (isDone) return;
      isDone = true;
      signal.removeEventListener('abort', onAbort);
      resolve(text);
    };
    const onAbort = (): void => {
      controller?.abort(new Error('probe stopped'));
      finish(null);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const request: UpstreamRequest = { path: target.basePath + path, method: 'GET', headers: authorization === null ? [] : ['authorization', authorization], body: null, headersTimeout: timeoutMs, bodyTimeout: timeoutMs };
    dispatcher.dispatch(request, {
      onRequestStart: (c) => {
        controller = c;
      },
      onResponseStart: (_c, statusCode) => {
        status = statusCode;
      },
      onResponseData: (c, chunk) => {
        size += chunk.length;
        if (size > MAX_PROBE_BYTES) return c.abort(new Error('probe answer too large'));
        parts.push(chunk);
      },
      onResponseEnd: () => finish(status >= 200 && status < 300 ? Buffer.concat(parts, size).toString('utf8') : null),
      onResponseError: () => finish(null),
    });
  });
}

/**
 * runHealthChecks probes one target until the signal aborts. An unhealthy target is probed twice
 * as often, so with the default healthy_threshold of 2 a restarted replica is back within one
 * interval.
 */
export async function runHealthChecks(probe: Probe, target: Target, policy: HealthPolicy, signal: AbortSignal): Promise<void> {
  while (!signal.aborted && target.state.isKept) {
    const interval = target.state.isActiveHealthy ? policy.intervalMs : Math.max(50, policy.intervalMs / 2);
    if (!(await sleep(interval, signal))) return;
    if (!target.state.isKept) return;
    const body = await fetchText(probe, target, policy.path, policy.timeoutMs, signal);
    if (signal.aborted) return;
    target.state.activeResult(body !== null, policy);
  }
}

/** runLoadPolling reads a target's vLLM /metrics every interval into its load sample. */
export async function runLoadPolling(probe: Probe, target: Target, path: string, intervalMs: number, signal: AbortSignal): Promise<void> {
  while (!signal.aborted && target.state.isKept) {
    const text = await fetchText(probe, target, path, Math.max(intervalMs * 4, 1000), signal);
    if (signal.aborted) return;
    if (text !== null) {
      const sample = parseVllmMetrics(text, Date.now(), target.state.load);
      if (sample !== null) {
        // Flow control tells requests sent or finished since the sample by this count.
        sample.inflight = target.state.inflight;
        target.state.load = sample;
      }
    }
    if (!(await sleep(intervalMs, signal))) return;
  }
}

/**
 * runModelDiscovery reads a target's GET /v1/models every interval (the first read right away)
 * into its servedIds and servedAdapters, and calls onChange when they changed. A failed read keeps the last ids:
 * whether the target is up is the health checks' business.
 */
export async function runModelDiscovery(probe: Probe, target: Target, intervalMs: number, timeoutMs: number, authorization: string | null, signal: AbortSignal, onChange: () => void): Promise<void> {
  while (!signal.aborted && target.state.isKept) {
    const text = await fetchText(probe, target, '/v1/models', timeoutMs, signal, authorization);
    if (signal.aborted) return;
    const listing = text === null ? null : parseModelList(text);
    const before = target.state.servedIds;
    if (listing !== null) {
      const ids = listing.ids;
      const isSameIds = before !== null && before.length === ids.length && before.every((id, i) => id === ids[i]);
      if (!isSameIds || !sameAdapters(target.state.servedAdapters, listing.adapters)) {
        target.state.servedIds = Object.freeze(ids);
        target.state.servedAdapters = Object.freeze(listing.adapters);
        onChange();
      }
    }
    if (!(await sleep(intervalMs, signal))) return;
  }
}

/** LOOKUP_TTL_S is the re-resolve interval for names found through the system resolver, which reports no TTL. */
const LOOKUP_TTL_S = 5;

/**
 * resolveAll returns every A and AAAA address of a name and the smallest TTL seen (seconds).
 * The DNS query API skips resolv.conf search domains (nodejs/node#17850), so a short name such
 * as "scout-headless" inside a Kubernetes pod finds nothing there; when it does and no DNS
 * servers were configured, getaddrinfo (which applies the search list) answers instead.
 */
async function resolveAll(resolver: Resolver, host: string, hasCustomServers: boolean): Promise<{ addresses: string[]; ttl: number } | null> {
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(host, { ttl: true }), resolver.resolve6(host, { ttl: true })]);
  const records = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
  if (records.length > 0) return { addresses: records.map((r) => r.address).sort(), ttl: records.reduce((m, r) => Math.min(m, r.ttl), Infinity) };
  if (!hasCustomServers && !host.endsWith('.')) {
    try {
      const found = await lookup(host, { all: true });
      return { addresses: [...new Set(found.map((a) => a.address))].sort(), ttl: LOOKUP_TTL_S };
    } catch {
      // Fall through to the resolver's own verdict.
    }
  }
  const code = v4.status === 'rejected' ? (v4.reason as NodeJS.ErrnoException).code : 'ENODATA';
  // NXDOMAIN / no data: the name exists with no targets now (e.g. scaled to zero).
  if (code === 'ENOTFOUND' || code === 'ENODATA') return { addresses: [], ttl: 0 };
  return null;
}

/**
 * runDnsDiscovery keeps a model's discovered targets in step with a DNS name, re-resolving on
 * the record TTL bounded by min/max. A failed lookup keeps the last known targets.
 */
export async function runDnsDiscovery(upstream: ModelUpstream, entryIndex: number, dns: DnsTarget, servers: readonly string[], signal: AbortSignal, onChange: (urls: readonly string[]) => void): Promise<void> {
  const resolver = new Resolver({ timeout: 2000, tries: 2 });
  if (servers.length > 0) resolver.setServers([...servers]);
  signal.addEventListener('abort', () => resolver.cancel(), { once: true });
  while (!signal.aborted) {
    let waitMs = dns.minTtlMs;
    const found = await resolveAll(resolver, dns.host, servers.length > 0);
    if (signal.aborted) return;
    if (found !== null) {
      const urls = found.addresses.map((a) => `${dns.scheme}://${isIPv6(a) ? `[${a}]` : a}:${dns.port}`);
      if (upstream.setDiscovered(entryIndex, urls, dns.weight)) onChange(urls);
      waitMs = Number.isFinite(found.ttl) ? Math.min(Math.max(found.ttl * 1000, dns.minTtlMs), dns.maxTtlMs) : dns.maxTtlMs;
    }
    if (!(await sleep(waitMs, signal))) return;
  }
}
