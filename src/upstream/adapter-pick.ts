/**
 * pickForAdapter chooses the target for a request naming a LoRA adapter. Loading an adapter costs
 * a replica time (and evicts another one), so a replica that has it is preferred: one whose last
 * vllm:lora_requests_info lists it, else one with a free adapter slot, else any; within a tier the
 * one with the fewest of this gateway's requests in flight per weight. The chosen replica's sample
 * counts the adapter from then on, so requests that follow before the next poll go there too.
 * With learned adapters (`adapters: auto`) only the targets whose /v1/models lists the adapter are
 * candidates: the others would answer 404.
 */
import { isEligible, type Target } from './balancer/index.js';
import type { LearnedAdapters } from './served-models.js';

/** pickForAdapter returns an eligible target for the adapter, or undefined when none is eligible. */
export function pickForAdapter(targets: readonly Target[], adapter: string, excluded: ReadonlySet<Target> | null, learned: LearnedAdapters | null = null): Target | undefined {
  let best: Target | undefined;
  let bestTier = 3;
  let bestLoad = Infinity;
  for (const t of targets) {
    if (!isEligible(t, excluded) || (learned !== null && !learned.isServedBy(t, adapter))) continue;
    const loras = t.state.load?.loras ?? null;
    const tier = loras === null ? 2 : loras.adapters.has(adapter) ? 0 : loras.adapters.size < loras.maxLora ? 1 : 2;
    const load = t.state.inflight / t.weight;
    if (tier < bestTier || (tier === bestTier && load < bestLoad)) (best = t), (bestTier = tier), (bestLoad = load);
  }
  if (best !== undefined && bestTier !== 0) best.state.load?.loras?.adapters.add(adapter);
  return best;
}
