/**
 * The compiled `flow_control` of a model, and the saturation rule: when may a target take one
 * more request. Pure: reads a target's live state, changes nothing.
 */
import type { Target, TargetState } from '../upstream/index.js';

/** Fairness is what a tenant's fair share is measured in. */
export type Fairness = 'tokens' | 'requests';

/** FlowTenant is one API key as the scheduler sees it: a tenant with a priority and a weight. */
export interface FlowTenant {
  /** name is the key's name, its fingerprint, or "" for keyless requests. */
  readonly name: string;
  readonly priority: number;
  /** maxPriority is the highest priority X-Priority may ask for. */
  readonly maxPriority: number;
  readonly weight: number;
}

/** FlowControl is a model's compiled flow control. */
export interface FlowControl {
  /** id names the model's queue across reloads ("path name"). */
  readonly id: string;
  readonly queueDepth: number | null;
  readonly kvCache: number | null;
  readonly maxInflight: number | null;
  readonly maxQueue: number;
  readonly maxWaitMs: number;
  readonly fairness: Fairness;
  /** isUpstreamPriority sends the priority to the engine as vLLM's body `priority` (negated: vLLM runs lower values first). */
  readonly isUpstreamPriority: boolean;
  /** staleMs: a load sample older than this says nothing. */
  readonly staleMs: number;
  /** tenants are the model's keys by key hash. */
  readonly tenants: ReadonlyMap<string, FlowTenant>;
  /** anonymous is the tenant of requests without a key. */
  readonly anonymous: FlowTenant;
}

/** NOT_ELIGIBLE: the target is unhealthy or drained. SATURATED: it is healthy but full. */
export const NOT_ELIGIBLE = -2;
export const SATURATED = -1;

/**
 * loadOf scores a target for one more request: NOT_ELIGIBLE, SATURATED, or its load (lower is
 * better). `extra` counts requests released to it that have not started yet. Between two metrics
 * samples the engine's queue is estimated from what this gateway did since: a request sent since
 * counts as waiting (so a burst cannot overfill a target before the next sample), a request
 * finished since lets a waiting one in (so a finishing request frees room at once).
 */
export function loadOf(state: TargetState, flow: FlowControl, nowMs: number, extra: number): number {
  if (!state.isHealthy || state.isDrained) return NOT_ELIGIBLE;
  const inflight = state.inflight + extra;
  if (flow.maxInflight !== null && inflight >= flow.maxInflight) return SATURATED;
  const s = state.load;
  if (s === null || nowMs - s.atMs > flow.staleMs) return inflight;
  const since = s.inflight === undefined ? Math.max(0, inflight - (s.running + s.waiting)) : inflight - s.inflight;
  const waiting = Math.max(0, s.waiting + since);
  if (flow.queueDepth !== null && waiting >= flow.queueDepth) return SATURATED;
  if (flow.kvCache !== null && s.kvCacheUsage >= flow.kvCache) return SATURATED;
  return s.running + waiting;
}

/** PickResult is the least-loaded unsaturated target, or why there is none. */
export type PickResult = Target | typeof SATURATED | typeof NOT_ELIGIBLE;

/** pickTarget returns the least-loaded unsaturated target; SATURATED when some are healthy but all full; NOT_ELIGIBLE when none is healthy. */
export function pickTarget(targets: readonly Target[], flow: FlowControl, nowMs: number, extra: ReadonlyMap<TargetState, number> | null): PickResult {
  let best: Target | null = null;
  let bestLoad = Infinity;
  let isAnyHealthy = false;
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i]!;
    const load = loadOf(t.state, flow, nowMs, extra?.get(t.state) ?? 0);
    if (load === NOT_ELIGIBLE) continue;
    isAnyHealthy = true;
    if (load !== SATURATED && load < bestLoad) {
      best = t;
      bestLoad = load;
    }
  }
  if (best !== null) return best;
  return isAnyHealthy ? SATURATED : NOT_ELIGIBLE;
}
