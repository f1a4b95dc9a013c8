/**
 * `served_model: auto`: a model's upstream id is learned from its targets' `GET /v1/models`
 * instead of configured. Each target's ids are kept on its TargetState (by URL, so they survive
 * reloads); the model's id is the one most of its targets serve. A target that does not serve it
 * (a replica redeployed with another model) is marked as a mismatch, which keeps it out of
 * rotation until it serves the model of its siblings again.
 */
import type { Target } from './target.js';
import type { ServedAdapter } from './target-state.js';

export type { ServedAdapter };

/** MAX_IDS bounds how many ids of one target are kept (an engine lists its base model, then adapters). */
const MAX_IDS = 64;
/** MAX_ID_LENGTH bounds one id: longer ones are not model ids a client could send. */
const MAX_ID_LENGTH = 512;

/** MAX_ADAPTERS bounds how many adapters of one target are kept (vLLM lists every registered one). */
const MAX_ADAPTERS = 1024;

/** ModelListing is what a target's `GET /v1/models` says it serves: base-model ids, and adapters with their parent. */
export interface ModelListing {
  readonly ids: string[];
  readonly adapters: ServedAdapter[];
}

/**
 * parseModelList reads an OpenAI `GET /v1/models` answer: entries without a `parent` are the
 * engine's models, entries with one (vLLM's LoRA adapters) are adapters of that model. Null when
 * the answer is not a list.
 */
export function parseModelList(text: string): ModelListing | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  const data = parsed !== null && typeof parsed === 'object' ? (parsed as { data?: unknown }).data : undefined;
  if (!Array.isArray(data)) return null;
  const ids: string[] = [];
  const adapters: ServedAdapter[] = [];
  const seen = new Set<string>();
  for (const entry of data) {
    if (entry === null || typeof entry !== 'object') continue;
    const { id, parent } = entry as { id?: unknown; parent?: unknown };
    if (typeof id !== 'string' || id === '' || id.length > MAX_ID_LENGTH || seen.has(id)) continue;
    if (parent === undefined || parent === null) {
      if (ids.length === MAX_IDS) continue;
      ids.push(id);
    } else {
      if (typeof parent !== 'string' || parent === '' || parent.length > MAX_ID_LENGTH || adapters.length === MAX_ADAPTERS) continue;
      adapters.push({ id, parent });
    }
    seen.add(id);
  }
  return { ids, adapters };
}

/** sameAdapters tells whether two adapter lists are equal, in order. */
export function sameAdapters(a: readonly ServedAdapter[] | null, b: readonly ServedAdapter[]): boolean {
  return a !== null && a.length === b.length && a.every((x, i) => x.id === b[i]!.id && x.parent === b[i]!.parent);
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

/** EMPTY is the adapter set of a model none of whose targets has listed one. */
const EMPTY: ReadonlySet<string> = new Set();

/** AdapterChange is what one learning pass changed in a model's adapters. */
export interface AdapterChange {
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

/**
 * LearnedAdapters are the LoRA adapters of a model with `adapters: auto`: the entries of its
 * targets' `GET /v1/models` whose `parent` is the model's upstream id (its served_model, configured
 * or learned; without one, a base model the same target lists). A target that serves another
 * model (`served_model: auto`) is not asked. Each adapter is routed only to the targets that list it.
 */
export class LearnedAdapters {
  /** ids are the adapters some target lists (the model's `adapters`). */
  ids: ReadonlySet<string> = EMPTY;
  /** bases are the base-model ids the asked targets list, which a body sent with X-Model may name. */
  bases: ReadonlySet<string> = EMPTY;
  /** #byTarget are the adapters each target lists. */
  #byTarget = new Map<object, ReadonlySet<string>>();

  constructor(targets: readonly Target[], base: string | null) {
    this.learn(targets, base);
  }

  /** isServedBy tells whether the target lists the adapter. */
  isServedBy(target: Target, adapter: string): boolean {
    return this.#byTarget.get(target.state)?.has(adapter) === true;
  }

  /** learn sets the adapters from what the targets last listed; returns what changed. */
  learn(targets: readonly Target[], base: string | null): AdapterChange {
    const ids = new Set<string>();
    const bases = new Set<string>();
    const byTarget = new Map<object, ReadonlySet<string>>();
    for (const t of targets) {
      const listed = t.state.servedAdapters;
      const own = t.state.servedIds;
      if (listed === null || t.state.isModelMismatch) continue;
      for (const id of own ?? []) bases.add(id);
      const mine = new Set<string>();
      for (const a of listed) if (base === null ? own?.includes(a.parent) === true : a.parent === base) mine.add(a.id);
      byTarget.set(t.state, mine);
      for (const id of mine) ids.add(id);
    }
    const added = [...ids].filter((id) => !this.ids.has(id));
    const removed = [...this.ids].filter((id) => !ids.has(id));
    this.ids = ids.size === 0 ? EMPTY : ids;
    this.bases = bases.size === 0 ? EMPTY : bases;
    this.#byTarget = byTarget;
    return { added, removed };
  }
}
