/**
 * TargetState is the live state of one target URL: in-flight count, health and load. It is kept
 * in a registry by URL, so it survives config reloads and is shared by every model that uses the
 * same server. Health is two independent verdicts:
 * - active: periodic probes; unhealthy after `unhealthy_threshold` failures, healthy after
 *   `healthy_threshold` successes;
 * - passive (outlier ejection): `failures` consecutive failed requests eject the target for
 *   `ejection`, doubling per consecutive ejection up to `max_ejection`; when it ends, exactly one
 *   half-open trial request decides between healthy again and a longer ejection.
 * A target is picked only when both say yes, and while it is not drained: a drain (admin API)
 * keeps new requests off a target without touching its health, and requests already on it finish.
 * When probes had marked the target down and then see
 * it healthy again (a restarted replica), that also ends a passive ejection early.
 *
 * The registry forgets: a record is held by every live model upstream that lists its target
 * (ModelUpstream.attach), and once nothing holds it and its last request has ended, it is dropped,
 * so targets that leave the configuration or DNS do not pile up.
 */
import type { PrefixIndex } from './prefix-index.js';
import type { HealthPolicy, PassivePolicy } from './health-policy.js';

/** ServedAdapter is a LoRA adapter a target's `GET /v1/models` lists: its id and the base model it applies to. */
export interface ServedAdapter {
  readonly id: string;
  readonly parent: string;
}

/** LoadSample is what a target's vLLM /metrics said at one time. */
export interface LoadSample {
  /** waiting is vllm:num_requests_waiting. */
  waiting: number;
  /** running is vllm:num_requests_running. */
  running: number;
  /** kvCacheUsage is vllm:kv_cache_usage_perc (or the older vllm:gpu_cache_usage_perc), 0..1. */
  kvCacheUsage: number;
  /** prefixCacheQueries is vllm:prefix_cache_queries_total (tokens looked up, summed over engines); -1 or absent when not exported. */
  prefixCacheQueries?: number;
  /** prefixCacheHits is vllm:prefix_cache_hits_total (tokens found cached); -1 or absent when not exported. */
  prefixCacheHits?: number;
  /** prefixCacheHitRate is hits/queries over the last completed window (vllm-metrics.ts), 0..1; null without counters, a completed window or queries in it. */
  prefixCacheHitRate?: number | null;
  /** prefixWindowQueries / prefixWindowHits / prefixWindowAtMs are the counters when the current window opened (-1: none open). */
  prefixWindowQueries?: number;
  prefixWindowHits?: number;
  prefixWindowAtMs?: number;
  /** requestsDone is vllm:request_success_total (requests finished, summed over its labels); -1 or absent when not exported. */
  requestsDone?: number;
  /** atMs is when it was read (clock milliseconds). */
  atMs: number;
  /** inflight is this gateway's in-flight count on the target when the sample was read (set by the poller). */
  inflight?: number;
  /** loras are the LoRA adapters the server has (vllm:lora_requests_info), or null when it reports none. */
  loras?: LoraSample | null;
}

/** LoraSample is vllm:lora_requests_info: the adapters of running or waiting requests, and how many fit at once. */
export interface LoraSample {
  /** adapters are running_lora_adapters and waiting_lora_adapters together; the gateway adds the ones it sends there until the next sample. */
  readonly adapters: Set<string>;
  /** maxLora is max_lora, the adapter slots. */
  readonly maxLora: number;
}

/** Outcome is how one request attempt ended, as passive health sees it. */
export type Outcome = 'success' | 'failure' | 'neutral';

/** TargetState holds one target's shared live state. */
export class TargetState {
  readonly url: string;
  /** inflight counts this gateway's requests on the target that have not finished. */
  inflight = 0;
  /** isHealthy is false while health checks or passive ejection keep the target out. */
  isHealthy = true;
  /** load is the latest metrics sample, or null when none was read (or metrics are off). */
  load: LoadSample | null = null;
  /** isDrained is set by the admin API's drain and cleared by undrain; kept by URL, so it survives reloads. */
  isDrained = false;
  /** prefixIndex is what the prefix-aware balancer believes the target's prefix cache holds (made by its first such balancer); kept by URL, like the cache it mirrors. */
  prefixIndex: PrefixIndex | null = null;
  /** servedIds are the model ids the target's GET /v1/models last listed (read only for `served_model: auto` and `adapters: auto`); null: not read. */
  servedIds: readonly string[] | null = null;
  /** servedAdapters are the LoRA adapters (entries with a `parent`) the same read listed (read only for `served_model: auto` and `adapters: auto`); null: not read. */
  servedAdapters: readonly ServedAdapter[] | null = null;
  #isModelMismatch = false;
  #isActiveHealthy = true;
  #activeOk = 0;
  #activeFail = 0;
  #failures = 0;
  #ejections = 0;
  #ejectedUntilMs = 0;
  #isHalfOpen = false;
  #isTrialRunning = false;
  #timer: NodeJS.Timeout | null = null;
  /** holds counts the live model upstreams listing this target (TargetRegistry.hold). */
  holds = 0;
  /** registry is where the record is kept while held, or null (a record nothing committed). */
  registry: TargetRegistry | null = null;
  /** onChange is told when isHealthy flips (metrics, logs). */
  onChange: ((record: TargetState) => void) | null = null;

  constructor(url: string) {
    this.url = url;
  }

  /** isKept tells whether the registry still keeps this record (false once the target is dropped). */
  get isKept(): boolean {
    return this.registry !== null;
  }

  /** ejectedUntilMs is when the current passive ejection ends (0: not ejected). */
  get ejectedUntilMs(): number {
    return this.#ejectedUntilMs;
  }

  /** begin counts an attempt starting; a half-open target lets exactly this one trial through. */
  begin(): void {
    this.inflight++;
    if (this.#isHalfOpen && !this.#isTrialRunning) {
      this.#isTrialRunning = true;
      this.#update();
    }
  }

  /** end counts an attempt finishing with its passive-health outcome. */
  end(outcome: Outcome, policy: PassivePolicy, nowMs: number): void {
    this.inflight--;
    this.#settle(outcome, policy, nowMs);
    // A target that left the configuration is dropped once its last request ends.
    if (this.inflight === 0 && this.holds === 0 && this.registry !== null) this.registry.forget(this);
  }

  #settle(outcome: Outcome, policy: PassivePolicy, nowMs: number): void {
    if (!policy.isEnabled || outcome === 'neutral') {
      if (this.#isTrialRunning && outcome === 'neutral') this.#isTrialRunning = false;
      this.#update();
      return;
    }
    if (outcome === 'success') {
      this.#failures = 0;
      if (this.#isHalfOpen) {
        this.#isHalfOpen = false;
        this.#isTrialRunning = false;
        this.#ejections = 0;
      }
    } else {
      this.#failures++;
      if (this.#isHalfOpen || (this.#failures >= policy.failures && this.#ejectedUntilMs === 0)) this.#eject(policy, nowMs);
    }
    this.#update();
  }

  /** activeResult records one probe. */
  activeResult(isOk: boolean, policy: HealthPolicy): void {
    if (isOk) {
      this.#activeFail = 0;
      this.#activeOk++;
      if (this.#activeOk >= policy.healthyThreshold && !this.#isActiveHealthy) {
        this.#isActiveHealthy = true;
        // Probes saw the target down and back up (a restart): its ejection is stale. A target
        // whose probes never failed keeps its ejection, since probes did not see what requests did.
        this.#clearEjection();
      }
    } else {
      this.#activeOk = 0;
      this.#activeFail++;
      if (this.#activeFail >= policy.unhealthyThreshold) this.#isActiveHealthy = false;
    }
    this.#update();
  }

  /** isActiveHealthy is the active checks' verdict (true until they say otherwise). */
  get isActiveHealthy(): boolean {
    return this.#isActiveHealthy;
  }

  /** isModelMismatch is true while the target serves another model than its siblings (`served_model: auto`). */
  get isModelMismatch(): boolean {
    return this.#isModelMismatch;
  }

  /** setModelMismatch takes the target out of rotation (or puts it back) for serving another model. */
  setModelMismatch(isMismatched: boolean): void {
    this.#isModelMismatch = isMismatched;
    this.#update();
  }

  #eject(policy: PassivePolicy, nowMs: number): void {
    const ms = Math.min(policy.ejectionMs * 2 ** this.#ejections, policy.maxEjectionMs);
    this.#ejections++;
    this.#failures = 0;
    this.#isHalfOpen = false;
    this.#isTrialRunning = false;
    this.#ejectedUntilMs = nowMs + ms;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#ejectedUntilMs = 0;
      this.#isHalfOpen = true;
      this.#update();
    }, ms);
    this.#timer.unref();
  }

  #clearEjection(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#ejectedUntilMs = 0;
    this.#isHalfOpen = false;
    this.#isTrialRunning = false;
    this.#failures = 0;
  }

  #update(): void {
    const next = this.#isActiveHealthy && !this.#isModelMismatch && this.#ejectedUntilMs === 0 && !(this.#isHalfOpen && this.#isTrialRunning);
    if (next !== this.isHealthy) {
      this.isHealthy = next;
      this.onChange?.(this);
    }
  }

  /** dispose stops the ejection timer. */
  dispose(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

/** TargetLookup finds the live record of a target URL: compiling reads records, never creates them. */
export interface TargetLookup {
  find(url: string): TargetState | undefined;
}

/**
 * TargetRegistry keeps one TargetState per target URL while a live model upstream lists it, and
 * as long as requests run on it after that. It also counts records per origin, so the connection
 * pools of an origin no target uses any more can be closed (onOriginUnused).
 */
export class TargetRegistry implements TargetLookup {
  readonly #records = new Map<string, TargetState>();
  readonly #origins = new Map<string, number>();
  onChange: ((record: TargetState) => void) | null = null;
  /** onOriginUnused is told when the last record of an origin (scheme://host:port) is dropped. */
  onOriginUnused: ((origin: string) => void) | null = null;

  /** find returns the registered record of a URL, if any. */
  find(url: string): TargetState | undefined {
    return this.#records.get(url);
  }

  /** get returns the record of a URL, making (not yet registering) one when none is registered: hold registers it. */
  get(url: string): TargetState {
    return this.#records.get(url) ?? new TargetState(url);
  }

  /** size is how many records are kept. */
  get size(): number {
    return this.#records.size;
  }

  /** hold counts one more live user of a record, registering it on first use. */
  hold(record: TargetState): void {
    record.holds++;
    if (record.registry === this) return;
    // A URL has one record: a second one for it (made while the first was being dropped) stays unregistered.
    if (this.#records.has(record.url)) return;
    record.registry = this;
    record.onChange = (rec) => this.onChange?.(rec);
    this.#records.set(record.url, record);
    const origin = new URL(record.url).origin;
    this.#origins.set(origin, (this.#origins.get(origin) ?? 0) + 1);
  }

  /** release counts one live user fewer; an unheld record without requests is dropped. */
  release(record: TargetState): void {
    if (--record.holds === 0 && record.inflight === 0) this.forget(record);
  }

  /** forget drops a record nothing holds any more (TargetState.end calls it when its last request ends). */
  forget(record: TargetState): void {
    if (record.holds > 0 || record.registry !== this || this.#records.get(record.url) !== record) return;
    this.#records.delete(record.url);
    record.registry = null;
    record.onChange = null;
    record.dispose();
    const origin = new URL(record.url).origin;
    const left = (this.#origins.get(origin) ?? 1) - 1;
    if (left > 0) this.#origins.set(origin, left);
    else {
      this.#origins.delete(origin);
      this.onOriginUnused?.(origin);
    }
  }

  /** dispose stops every record's timers. */
  dispose(): void {
    for (const r of this.#records.values()) r.dispose();
  }
}
