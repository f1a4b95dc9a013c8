/**
 * Generation runs the background work of one compiled snapshot (health checks, DNS discovery,
 * load polling, the `GET /v1/models` reads of `served_model: auto` and `adapters: auto`) and stops it when a reload retires the snapshot. Health checks and load polls
 * are per target URL: a URL shared by several models is probed once. A target dropped from the
 * registry (it left DNS) stops being probed, and is probed anew if it comes back.
 */
import { setMaxListeners } from 'node:events';
import type { DnsTarget } from './dns-target.js';
import type { HealthPolicy } from './health-policy.js';
import type { ModelUpstream } from './model-upstream.js';
import { runDnsDiscovery, runHealthChecks, runLoadPolling, runModelDiscovery, type Probe } from './checkers.js';
import type { AdapterChange, LearnedAdapters, LearnedServedModel, MismatchChange } from './served-models.js';
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
  /** learnedServed is set for `served_model: auto`: the targets' /v1/models are read for it. */
  readonly learnedServed: LearnedServedModel | null;
  /** learnedAdapters is set for `adapters: auto`: the targets' /v1/models are read for it too. */
  readonly learnedAdapters: LearnedAdapters | null;
  /** servedModel is the upstream's model id (configured or learned), the parent of its adapters; null: not known. */
  readonly servedModel: string | null;
  readonly upstreamAuthorization: string | null;
}

/** GenerationSnapshot is what a generation needs of a compiled snapshot (a config Snapshot fits it). */
export interface GenerationSnapshot {
  readonly models: readonly GenerationModel[];
  readonly settings: { readonly dnsServers: readonly string[]; readonly isFastUpstream: boolean };
}

/** GenerationEvents tell the gateway what background work found (for logs). */
export interface GenerationEvents {
  onDiscovered?: (model: string, dns: string, urls: readonly string[]) => void;
  /** onModelMismatch is told when a target starts (or stops) serving another model than its siblings. */
  onModelMismatch?: (model: string, change: MismatchChange) => void;
  /** onAdaptersChanged is told when the targets of an `adapters: auto` model start or stop listing adapters. */
  onAdaptersChanged?: (model: string, change: AdapterChange) => void;
}

/** Generation owns one snapshot's background tasks. */
export class Generation {
  readonly #abort = new AbortController();
  /** #probed and #polled are the record each URL's running probe or poll loop watches. */
  readonly #probed = new Map<string, TargetState>();
  readonly #polled = new Map<string, TargetState>();
  /** #listed are the records whose /v1/models a loop reads (targets of `served_model: auto` and `adapters: auto` models). */
  readonly #listed = new Map<string, TargetState>();
  readonly #events: GenerationEvents;
  readonly #snapshot: GenerationSnapshot;
  readonly #probe: Probe;

  constructor(snapshot: GenerationSnapshot, pools: PoolRegistry, events: GenerationEvents = {}) {
    this.#snapshot = snapshot;
    this.#probe = { pools, isBuiltin: snapshot.settings.isFastUpstream };
    this.#events = events;
    const signal = this.#abort.signal;
    // Every probe, poll and DNS loop of the generation listens on this one signal.
    setMaxListeners(0, signal);
    // A target that is no longer under a `served_model: auto` model is not judged by its model id.
    const learning = new Set(snapshot.models.flatMap((m) => (m.learnedServed === null ? [] : m.upstream.targets.map((t) => t.state))));
    for (const model of snapshot.models) for (const t of model.upstream.targets) if (!learning.has(t.state) && t.state.isModelMismatch) t.state.setModelMismatch(false);
    for (const model of snapshot.models) {
      for (const t of model.targets) this.#watchTarget(model, t);
      this.#relearn(model);
      model.dnsTargets.forEach((dns, i) => {
        void runDnsDiscovery(model.upstream, i, dns, snapshot.settings.dnsServers, signal, (urls) => {
          events.onDiscovered?.(model.name, `${dns.host}:${dns.port}`, urls);
          for (const t of model.upstream.targets) this.#watchTarget(model, t);
          this.#relearn(model);
        });
      });
    }
  }

  /**
   * #relearn re-learns what a model takes from its targets' /v1/models: a `served_model: auto`
   * model's id (reporting the targets whose verdict changed), then an `adapters: auto` model's
   * adapters, whose parent is that id.
   */
  #relearn(model: GenerationModel): void {
    if (model.learnedServed !== null) for (const change of model.learnedServed.judge(model.upstream.targets)) this.#events.onModelMismatch?.(model.name, change);
    if (model.learnedAdapters !== null) {
      const change = model.learnedAdapters.learn(model.upstream.targets, model.servedModel);
      if (change.added.length > 0 || change.removed.length > 0) this.#events.onAdaptersChanged?.(model.name, change);
    }
  }

  #watchTarget(model: GenerationModel, t: Target): void {
    this.#watchHealth(model.health, model.loadMetrics, t);
    if ((model.learnedServed === null && model.learnedAdapters === null) || this.#listed.get(t.url) === t.state) return;
    this.#listed.set(t.url, t.state);
    const onChange = (): void => {
      for (const m of this.#snapshot.models) if ((m.learnedServed !== null || m.learnedAdapters !== null) && m.upstream.targets.some((x) => x.state === t.state)) this.#relearn(m);
    };
    void runModelDiscovery(this.#probe, t, model.health.intervalMs, model.health.timeoutMs, model.upstreamAuthorization, this.#abort.signal, onChange).then(() => forgetLoop(this.#listed, t));
  }

  #watchHealth(health: HealthPolicy, load: GenerationModel['loadMetrics'], t: Target): void {
    const signal = this.#abort.signal;
    if (health.isActive && this.#probed.get(t.url) !== t.state) {
      this.#probed.set(t.url, t.state);
      void runHealthChecks(this.#probe, t, health, signal).then(() => forgetLoop(this.#probed, t));
    }
    if (load !== null && this.#polled.get(t.url) !== t.state) {
      this.#polled.set(t.url, t.state);
      void runLoadPolling(this.#probe, t, load.path, load.intervalMs, signal).then(() => forgetLoop(this.#polled, t));
    }
  }

  /** snapshot is the snapshot this generation serves. */
  get snapshot(): GenerationSnapshot {
    return this.#snapshot;
  }

  /** watching is how many target URLs this generation probes or polls. */
  get watching(): number {
    return new Set([...this.#probed.keys(), ...this.#polled.keys(), ...this.#listed.keys()]).size;
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
