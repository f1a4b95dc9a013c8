/**
 * TargetRecord is the live state of one target URL: in-flight count, health and load. It is kept
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
 */
import type { LoadSample, TargetState } from './balancer/types.js';
import type { HealthPolicy, PassivePolicy } from './health-policy.js';

/** Outcome is how one request attempt ended, as passive health sees it. */
export type Outcome = 'success' | 'failure' | 'neutral';

/** TargetRecord holds one target's shared live state. */
export class TargetRecord implements TargetState {
  readonly url: string;
  inflight = 0;
  isHealthy = true;
  load: LoadSample | null = null;
  /** isDrained is set by the admin API's drain and cleared by undrain; kept by URL, so it survives reloads. */
  isDrained = false;
  #isActiveHealthy = true;
  #activeOk = 0;
  #activeFail = 0;
  #failures = 0;
  #ejections = 0;
  #ejectedUntilMs = 0;
  #isHalfOpen = false;
  #isTrialRunning = false;
  #timer: NodeJS.Timeout | null = null;
  /** onChange is told when isHealthy flips (metrics, logs). */
  onChange: ((record: TargetRecord) => void) | null = null;

  constructor(url: string) {
    this.url = url;
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
    const next = this.#isActiveHealthy && this.#ejectedUntilMs === 0 && !(this.#isHalfOpen && this.#isTrialRunning);
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

/** TargetRegistry keeps one TargetRecord per target URL for the life of the process. */
export class TargetRegistry {
  readonly #records = new Map<string, TargetRecord>();
  onChange: ((record: TargetRecord) => void) | null = null;

  /** get returns the record of a URL, creating it on first use. */
  get(url: string): TargetRecord {
    let r = this.#records.get(url);
    if (r === undefined) {
      r = new TargetRecord(url);
      r.onChange = (rec) => this.onChange?.(rec);
      this.#records.set(url, r);
    }
    return r;
  }

  /** dispose stops every record's timers. */
  dispose(): void {
    for (const r of this.#records.values()) r.dispose();
  }
}
