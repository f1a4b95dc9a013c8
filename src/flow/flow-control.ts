/**
 * The compiled `flow_control` of a model, and the saturation rule: when may a target take one
 * more request. Pure: reads a target's live state, changes nothing.
 */
import type { LoadSample, Target, TargetState } from '../upstream/index.js';

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

/** flowQueueId names a model's queue across reloads: its path and its name (FlowControl.id). */
export function flowQueueId(path: string | null | undefined, name: string): string {
  return `${path ?? ''} ${name}`;
}

/** FlowControl is a model's compiled flow control. */
export interface FlowControl {
  /** id names the model's queue across reloads ("path name"). */
  readonly id: string;
  readonly queueDepth: number | null;
  readonly kvCache: number | null;
  readonly maxInflight: number | null;
  /**
   * headroom is how many places under max_inflight, summed over the model's targets, only tenants
   * using less than their fair share may take (0: none kept).
   */
  readonly headroom: number;
  readonly maxQueue: number;
  readonly maxWaitMs: number;
  readonly fairness: Fairness;
  /** isUpstreamPriority sends the priority to the engine as vLLM's body `priority` (negated: vLLM runs lower values first). */
  readonly isUpstreamPriority: boolean;
  /** staleMs: a load sample older than this says nothing. */
  readonly staleMs: number;
  /** pollMs is the load_metrics interval: saturation is looked at again at least this often. */
  readonly pollMs: number;
  /** tenants are the model's keys by key hash. */
  readonly tenants: ReadonlyMap<string, FlowTenant>;
  /** anonymous is the tenant of requests without a key. */
  readonly anonymous: FlowTenant;
}

/** NOT_ELIGIBLE: the target is unhealthy or drained. SATURATED: it is healthy but full. */
export const NOT_ELIGIBLE = -2;
export const SATURATED = -1;

/** Batch is what a target's samples taught about its batch: how many requests run at once when others wait. */
interface Batch {
  /** atMs is the sample it was last learned from. */
  atMs: number;
  /** size is the batch size (0: not known yet). */
  size: number;
}

/** batches are learned per target record; kept as long as the record. */
const batches = new WeakMap<TargetState, Batch>();

/**
 * batchOf is the target's batch size as its samples show it: `running` of the newest sample in
 * which requests waited (the batch was full), or the most that ran at once if none did since.
 * 0 while no sample told.
 */
function batchOf(state: TargetState, s: LoadSample): number {
  let b = batches.get(state);
  if (b === undefined) batches.set(state, (b = { atMs: -1, size: 0 }));
  if (b.atMs !== s.atMs) {
    b.atMs = s.atMs;
    if (s.waiting > 0) b.size = s.running;
    else if (s.running > b.size) b.size = s.running;
  }
  return b.size;
}

/**
 * loadOf scores a target for one more request: NOT_ELIGIBLE, SATURATED, or its load (lower is
 * better). `extra` counts requests released to it that have not started yet. Between two metrics
 * samples the engine's queue is estimated from the sample and what this gateway did since: its
 * requests on the target now, less those when the sample was read, were sent since (a negative
 * count: finished since). They fill the batch first (its size learned from the samples), then
 * wait; a finished one lets a waiting one in. So a burst cannot overfill a target before the next
 * sample, and a finishing request frees room at once. Without a known batch size every request
 * sent since counts as waiting.
 */
export function loadOf(state: TargetState, flow: FlowControl, nowMs: number, extra: number): number {
  if (!state.isHealthy || state.isDrained) return NOT_ELIGIBLE;
  const inflight = state.inflight + extra;
  if (flow.maxInflight !== null && inflight >= flow.maxInflight) return SATURATED;
  const s = state.load;
  if (s === null || nowMs - s.atMs > flow.staleMs) return inflight;
  const since = s.inflight === undefined ? Math.max(0, inflight - (s.running + s.waiting)) : inflight - s.inflight;
  const batch = batchOf(state, s);
  const total = s.running + s.waiting + since;
  const waiting = batch > 0 ? Math.max(0, total - batch) : Math.max(0, s.waiting + since);
  if (flow.queueDepth !== null && waiting >= flow.queueDepth) return SATURATED;
  if (flow.kvCache !== null && s.kvCacheUsage >= flow.kvCache) return SATURATED;
  return Math.max(0, total);
}

/** freePlaces is how many more requests the model's eligible targets take under max_inflight (Infinity without it). */
export function freePlaces(targets: readonly Target[], flow: FlowControl, extra: ReadonlyMap<TargetState, number> | null): number {
  const max = flow.maxInflight;
  if (max === null) return Infinity;
  let free = 0;
  for (let i = 0; i < targets.length; i++) {
    const st = targets[i]!.state;
    if (st.isHealthy && !st.isDrained) free += Math.max(0, max - st.inflight - (extra?.get(st) ?? 0));
  }
  return free;
}

/** placesOf is how many requests the model's eligible targets take in all under max_inflight (Infinity without it). */
export function placesOf(targets: readonly Target[], flow: FlowControl): number {
  const max = flow.maxInflight;
  if (max === null) return Infinity;
  let n = 0;
  for (let i = 0; i < targets.length; i++) if (targets[i]!.state.isHealthy && !targets[i]!.state.isDrained) n++;
  return n * max;
}

/** PickResult is the least-loaded unsaturated target, or why there is none. */
export type PickResult = Target | typeof SATURATED | typeof NOT_ELIGIBLE;

/**
 * pickTarget returns the least-loaded unsaturated target; SATURATED when some are healthy but all
 * full; NOT_ELIGIBLE when none is healthy. Targets in `skip` (a retry's tried ones) are left out.
 * With `full`, it is cleared and filled with the healthy targets that have no room (saturated or
 * in `skip`): passed as a balancer's `excluded`, the balancer then chooses among the targets with
 * room by its own scoring (the least-loaded one returned is the answer when no balancer chooses).
 */
export function pickTarget(
  targets: readonly Target[],
  flow: FlowControl,
  nowMs: number,
  extra: ReadonlyMap<TargetState, number> | null,
  skip: ReadonlySet<unknown> | null = null,
  full: Set<Target> | null = null,
): PickResult {
  let best: Target | null = null;
  let bestLoad = Infinity;
  let isAnyHealthy = false;
  if (full !== null) full.clear();
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i]!;
    if (skip !== null && skip.has(t)) {
      if (full !== null) full.add(t);
      continue;
    }
    const load = loadOf(t.state, flow, nowMs, extra?.get(t.state) ?? 0);
    if (load === NOT_ELIGIBLE) continue;
    isAnyHealthy = true;
    if (load === SATURATED) {
      if (full !== null) full.add(t);
    } else if (load < bestLoad) {
      best = t;
      bestLoad = load;
    }
  }
  if (best !== null) return best;
  return isAnyHealthy ? SATURATED : NOT_ELIGIBLE;
}
