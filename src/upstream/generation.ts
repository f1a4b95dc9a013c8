/**
 * Generation runs the background work of one compiled snapshot (health checks, DNS discovery,
 * load polling) and stops it when a reload retires the snapshot. Health checks and load polls
 * are per target URL: a URL shared by several models is probed once. A target dropped from the
 * registry (it left DNS) stops being probed, and is probed anew if it comes back.
 */
import { setMaxListeners } from 'node:events';
import type { DnsTarget } from './dns-target.js';
import type { HealthPolicy } from './health-policy.js';
import type { ModelUpstream } from './model-upstream.js';
import { runDnsDiscovery, runHealthChecks, runLoadPolling } from './checkers.js';
import type { Target } from './target.js';
import type { PoolRegistry } from './pool-registry.js';
import type { TargetState } from './target-state.js';

/** GenerationModel is what a generation needs of a compiled model. */
export interface GenerationModel {
  readonly name: string;
  readonly targets: readonly Target[];
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
  /** #probed and #polled are the record each URL's running probe or poll loop watches. */
  readonly #probed = new Map<string, TargetState>();
  readonly #polled = new Map<string, TargetState>();
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

  #watchTarget(health: HealthPolicy, load: GenerationModel['loadMetrics'], t: Target): void {
    const signal = this.#abort.signal;
    if (health.isActive && this.#probed.get(t.url) !== t.state) {
      this.#probed.set(t.url, t.state);
      void runHealthChecks(this.#pools, t, health, signal).then(() => forgetLoop(this.#probed, t));
    }
    if (load !== null && this.#polled.get(t.url) !== t.state) {
      this.#polled.set(t.url, t.state);
      void runLoadPolling(this.#pools, t, load.path, load.intervalMs, signal).then(() => forgetLoop(this.#polled, t));
    }
  }

  /** snapshot is the snapshot this generation serves. */
  get snapshot(): GenerationSnapshot {
    return this.#snapshot;
  }

  /** watching is how many target URLs this generation probes or polls. */
  get watching(): number {
    return new Set([...this.#probed.keys(), ...this.#polled.keys()]).size;
  }

  /** retire stops every task of this generation. */
  retire(): void {
    this.#abort.abort();
  }
}

/** forgetLoop clears a finished loop's entry, unless a newer record of the same URL took it over. */
function forgetLoop(loops: Map<string, TargetState>, t: Target): void {
  if (loops.get(t.url) === t.state) loops.delete(t.url);
}
