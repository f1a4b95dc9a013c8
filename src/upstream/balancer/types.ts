/**
 * The balancer contract. A model's targets are Candidates; each carries its live TargetState,
 * which outlives config snapshots (kept per target URL). A balancer picks one candidate that is
 * healthy and not excluded (retries exclude targets already tried), or undefined.
 */

/** LoadSample is what a target's vLLM /metrics said at one time. */
export interface LoadSample {
  /** waiting is vllm:num_requests_waiting. */
  waiting: number;
  /** running is vllm:num_requests_running. */
  running: number;
  /** kvCacheUsage is vllm:kv_cache_usage_perc (or the older vllm:gpu_cache_usage_perc), 0..1. */
  kvCacheUsage: number;
  /** atMs is when it was read (clock milliseconds). */
  atMs: number;
}

/** TargetState is the live, mutable state of one target. */
export interface TargetState {
  /** inflight counts this gateway's requests on the target that have not finished. */
  inflight: number;
  /** isHealthy is false while health checks or passive ejection keep the target out. */
  isHealthy: boolean;
  /** load is the latest metrics sample, or null when none was read (or metrics are off). */
  load: LoadSample | null;
  /** isDrained is true while an operator keeps new requests off the target (in-flight ones finish); absent means false. */
  isDrained?: boolean;
}

/** Candidate is one target as a balancer sees it. */
export interface Candidate {
  readonly url: string;
  readonly weight: number;
  readonly state: TargetState;
}

/** PickInput is what one pick may depend on besides the candidates. */
export interface PickInput {
  /** excluded are candidates that must not be picked (already tried by this request), or null. */
  excluded: ReadonlySet<Candidate> | null;
  /** hashKey is the consistent-hash key of the request (header value, key hash or prompt prefix), or null. */
  hashKey: string | null;
  /** nowMs is the current clock time in milliseconds (for load sample staleness). */
  nowMs: number;
}

/** Balancer picks a target for one request. Implementations are created per candidate list. */
export interface Balancer {
  pick(input: PickInput): Candidate | undefined;
}

/** isEligible tells whether a candidate may be picked at all: healthy, not drained, not excluded. */
export function isEligible(c: Candidate, excluded: ReadonlySet<Candidate> | null): boolean {
  return c.state.isHealthy && c.state.isDrained !== true && (excluded === null || !excluded.has(c));
}

/** pickOnly answers for a pool of at most one candidate (a model with one server, the common case): it, when eligible. */
export function pickOnly(candidates: readonly Candidate[], excluded: ReadonlySet<Candidate> | null): Candidate | undefined {
  const only = candidates[0];
  return only !== undefined && isEligible(only, excluded) ? only : undefined;
}
