/**
 * Generation runs the background work of one compiled snapshot (health checks, DNS discovery,
 * load polling) and stops it when a reload retires the snapshot. Health checks and load polls
 * are per target URL: a URL shared by several models is probed once.
 */
import { setMaxListeners } from 'node:events';
import type { Snapshot } from '../config/snapshot.js';
import { runDnsDiscovery, runHealthChecks, runLoadPolling } from './checkers.js';
import type { UpstreamTarget } from './model-upstream.js';
import type { PoolRegistry } from './pool-registry.js';

/** GenerationEvents tell the gateway what background work found (for logs). */
export interface GenerationEvents {
  onDiscovered?: (model: string, dns: string, urls: readonly string[]) => void;
}

/** Generation owns one snapshot's background tasks. */
export class Generation {
  readonly #abort = new AbortController();
  readonly #probed = new Set<string>();
  readonly #polled = new Set<string>();
  readonly #snapshot: Snapshot;
  readonly #pools: PoolRegistry;

  constructor(snapshot: Snapshot, pools: PoolRegistry, events: GenerationEvents = {}) {
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

  #watchTarget(health: Snapshot['models'][number]['health'], load: Snapshot['models'][number]['loadMetrics'], t: UpstreamTarget): void {
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
  get snapshot(): Snapshot {
    return this.#snapshot;
  }

  /** retire stops every task of this generation. */
  retire(): void {
    this.#abort.abort();
  }
}
