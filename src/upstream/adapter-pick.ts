/**
 * pickForAdapter chooses the target for a request naming a LoRA adapter. Loading an adapter costs
 * a replica time (and evicts another one), so a replica that has it is preferred: one whose last
 * vllm:lora_requests_info lists it, else one with a free adapter slot, else any; within a tier the
 * one with the fewest of this gateway's requests in flight per weight. The chosen replica's sample
 * counts the adapter from then on, so requests that follow before the next poll go there too.
 *
 * A popular adapter would pile up on the replicas that have it. A target is passed over, for any
 * target within the bound (even one that must load the adapter), when it has more than
 * ADAPTER_LOAD_FACTOR times its share of the in-flight requests (the bound of consistent hashing
 * with bounded loads: inflight + 1 > ceil(c * (total + 1) * weight / total weight)) and its last
 * sample shows requests waiting in the engine: a busy replica that still has room keeps its
 * adapters' requests, a queueing one shares them out, and the replica that takes one loads the
 * adapter there too. With learned adapters (`adapters: auto`) only the targets whose /v1/models
 * lists the adapter are candidates: the others would answer 404.
 */
import { isEligible, isOverBound, perWeightBound, type Target } from './balancer/index.js';
import type { LearnedAdapters } from './served-models.js';

/** ADAPTER_LOAD_FACTOR is c of the load bound; above consistent-hash's 1.25 because a spilled request costs an adapter load. */
export const ADAPTER_LOAD_FACTOR = 2;

/** pickForAdapter returns an eligible target for the adapter, or undefined when none is eligible. */
export function pickForAdapter(targets: readonly Target[], adapter: string, excluded: ReadonlySet<Target> | null, learned: LearnedAdapters | null = null): Target | undefined {
  let totalInflight = 0;
  let totalWeight = 0;
  for (const t of targets) {
    if (!isEligible(t, excluded) || (learned !== null && !learned.isServedBy(t, adapter))) continue;
    totalInflight += t.state.inflight;
    totalWeight += t.weight;
  }
  if (totalWeight === 0) return undefined;
  const perWeight = perWeightBound(ADAPTER_LOAD_FACTOR, totalInflight, totalWeight);
  let best: Target | undefined;
  // Tiers: 0 has the adapter, 1 has a free slot, 2 neither; 3 to 5 the same over the load bound.
  let bestTier = 6;
  let bestLoad = Infinity;
  for (const t of targets) {
    if (!isEligible(t, excluded) || (learned !== null && !learned.isServedBy(t, adapter))) continue;
    const load = t.state.load;
    const loras = load?.loras ?? null;
    let tier = loras === null ? 2 : loras.adapters.has(adapter) ? 0 : loras.adapters.size < loras.maxLora ? 1 : 2;
    if (isOverBound(t, perWeight) && (load === null || load.waiting > 0)) tier += 3;
    const perTarget = t.state.inflight / t.weight;
    if (tier < bestTier || (tier === bestTier && perTarget < bestLoad)) (best = t), (bestTier = tier), (bestLoad = perTarget);
  }
  if (best !== undefined && bestTier % 3 !== 0) best.state.load?.loras?.adapters.add(adapter);
  return best;
}
