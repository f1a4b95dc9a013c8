/**
 * `served_model: auto`: a model's upstream id is learned from its targets' `GET /v1/models`
 * instead of configured. Each target's ids are kept on its TargetState (by URL, so they survive
 * reloads); the model's id is the one most of its targets serve. A target that does not serve it
 * (a replica redeployed with another model) is marked as a mismatch, which keeps it out of
 * rotation until it serves the model of its siblings again.
 */
import type { Target } from './target.js';

/** MAX_IDS bounds how many ids of one target are kept (an engine lists its base model, then adapters). */
const MAX_IDS = 64;
/** MAX_ID_LENGTH bounds one id: longer ones are not model ids a client could send. */
const MAX_ID_LENGTH = 512;

/**
 * parseModelIds reads the base-model ids of an OpenAI `GET /v1/models` answer: entries with a
 * `parent` (vLLM's LoRA adapters) are not the engine's model. Null when the answer is not a list.
 */
export function parseModelIds(text: string): string[] | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  const data = parsed !== null && typeof parsed === 'object' ? (parsed as { data?: unknown }).data : undefined;
  if (!Array.isArray(data)) return null;
  const ids: string[] = [];
  for (const entry of data) {
    if (entry === null || typeof entry !== 'object') continue;
    const { id, parent } = entry as { id?: unknown; parent?: unknown };
    if (typeof id !== 'string' || id === '' || id.length > MAX_ID_LENGTH || (parent !== undefined && parent !== null)) continue;
    if (!ids.includes(id)) ids.push(id);
    if (ids.length === MAX_IDS) break;
  }
  return ids;
}

/** MismatchChange is a target whose verdict changed: it serves another model (served), or serves the model again (isMismatched false). */
export interface MismatchChange {
  readonly target: Target;
  readonly isMismatched: boolean;
  readonly served: readonly string[];
  readonly expected: string;
}

/** LearnedServedModel is the served id of one model with `served_model: auto`. */
export class LearnedServedModel {
  /** id is the id most of the model's targets serve; null until one of them has answered. */
  id: string | null = null;

  constructor(targets: readonly Target[]) {
    this.learn(targets);
  }

  /** learn sets id from what the targets last reported (the earliest-listed target breaks a tie); none reporting keeps the last id. */
  learn(targets: readonly Target[]): void {
    const counts = new Map<string, number>();
    for (const t of targets) for (const id of t.state.servedIds ?? []) counts.set(id, (counts.get(id) ?? 0) + 1);
    let best: string | null = null;
    let most = 0;
    for (const [id, n] of counts) if (n > most) (best = id), (most = n);
    if (best !== null) this.id = best;
  }

  /** judge learns the id and marks each target that reported ids as serving it or not; returns the targets whose verdict changed. */
  judge(targets: readonly Target[]): MismatchChange[] {
    this.learn(targets);
    const expected = this.id;
    const changes: MismatchChange[] = [];
    if (expected === null) return changes;
    for (const t of targets) {
      const served = t.state.servedIds;
      if (served === null) continue;
      const isMismatched = !served.includes(expected);
      if (t.state.isModelMismatch !== isMismatched) {
        t.state.setModelMismatch(isMismatched);
        changes.push({ target: t, isMismatched, served, expected });
      }
    }
    return changes;
  }
}
