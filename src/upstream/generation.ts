/**
 * Generation runs the background work of one compiled snapshot (health checks, DNS discovery,
 * load polling) and stops it when a reload retires the snapshot. Health checks and load polls
 * are per target URL: a URL shared by several models is probed once.
 */
import { setMaxListeners } from 'node:events';
import type { DnsTarget } from './dns-target.js';
import type { HealthPolicy } from './health-policy.js';
import type { ModelUpstream } from './model-upstream.js';
import { runDnsDiscovery, runHealthChecks, runLoadPolling } from './checkers.js';
import type { UpstreamTarget } from './model-upstream.js';
import type { PoolRegistry } from './pool-registry.js';

/** GenerationModel is what a generation needs of a compiled model. */
export interface GenerationModel {
  readonly name: string;
  readonly targets: readonly UpstreamTarget[];
  readonly dnsTargets: readonly DnsTarget[];
  readonly health: HealthPolicy;
  readonly loadMetrics: { readonly path: string; readonly intervalMs: number } | null;
  readonly upstream: ModelUpstream;
}

/** GenerationSnapshot is what a generation needs of a compiled snapshot (a config Snapshot fits it). */
export interface GenerationSnapshot {
  readonly models: readonly GenerationModel[];
  readonly settings: { readonly dnsServers: readonly string[] };
}

/** GenerationEvents tell the gateway what background work found (for logs). */
export interface GenerationEvents {
  onDiscovered?: (model: string, dns: string, urls: readonly string[]) => void;
}

/** Generation owns one snapshot's background tasks. */
export class Generation {
  readonly #abort = new AbortController();
  readonly #probed = new Set<string>();
  readonly #polled = new Set<string>();
  readonly #snapshot: GenerationSnapshot;
  readonly #pools: PoolRegistry;

  constructor(snapshot: GenerationSnapshot, pools: PoolRegistry, events: GenerationEvents = {}) {
    this.#snapshot = snapshot;
    this.#pools = pools;
    const signal = this.#abort.signal;
    // Every probe, poll and DNS loop of the generation listens on this one signal.
    setMaxListeners(0, signal);
    for (const model of snapshot.models) {
      for (const t of model.targets) this.#watchTarget(model.health, model.loadMetrics, t);
      model.dnsTargets.forEach((dns, i) => {
        void runDnsDiscovery(model.upstream, i, dns, snapshot.settings.dnsServers, signal, (urls) => {
          events.onDiscovered?.(model.name, `${dns.host}:${dns.port}`, urls);
          for (const t of model.upstream.targets) this.#watchTarget(model.health, model.loadMetrics, t);
        });
      });
    }
  }

  #watchTarget(health: HealthPolicy, load: GenerationModel['loadMetrics'], t: UpstreamTarget): void {
    const signal = this.#abort.signal;
    if (health.isActive && !this.#probed.has(t.url)) {
      this.#probed.add(t.url);
      void runHealthChecks(this.#pools, t, health, signal);
    }
    if (load !== null && !this.#polled.has(t.url)) {
      this.#polled.add(t.url);
      void runLoadPolling(this.#pools, t, load.path, load.intervalMs, signal);
    }
  }

  /** snapshot is the snapshot this generation serves. */
  get snapshot(): GenerationSnapshot {
    return this.#snapshot;
  }

  /** retire stops every task of this generation. */
  retire(): void {
    this.#abort.abort();
  }
}
