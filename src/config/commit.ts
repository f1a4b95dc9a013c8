/**
 * Installing a snapshot into the long-lived registries, once the swap is decided (compiling
 * changes none of them, so a refused or unchanged reload leaves them as they were). The new
 * snapshot's model upstreams take hold of their target records before the old ones let go, so a
 * target in both keeps its health and in-flight count; records, and the connection pools of
 * origins, that nothing lists any more are dropped once their last request ends. Semaphores take
 * the new limits and keep their counts.
 */
import type { Semaphore, SemaphoreLimits, SemaphoreRegistry } from '../ratelimit/index.js';
import type { TargetRegistry } from '../upstream/index.js';
import type { Snapshot } from './snapshot.js';

/** Registries are the state that outlives snapshots, keyed by a stable identity (target URL, limit scope). */
export interface Registries {
  readonly targets: TargetRegistry;
  readonly semaphores: SemaphoreRegistry;
}

/** commitSnapshot makes `next` the snapshot the registries serve, in place of `previous` (null at start). */
export function commitSnapshot(next: Snapshot, previous: Snapshot | null, registries: Registries): void {
  for (const m of next.models) {
    // The same model's previous upstream hands over what DNS found, until the new one has looked it up.
    const before = previous?.routes.get(m.path)?.byName.get(m.name) ?? null;
    m.upstream.attach(registries.targets, before === null ? null : before.upstream);
  }
  if (previous !== null) for (const m of previous.models) m.upstream.detach();
  registries.semaphores.commit(concurrencyScopes(next));
}

/** concurrencyScopes are the limit scopes of a snapshot that have a semaphore. */
function* concurrencyScopes(s: Snapshot): Generator<{ id: string; semaphore: Semaphore; limits: SemaphoreLimits }> {
  const seen = new Set<unknown>();
  for (const m of s.models) {
    const limits = m.limits;
    if (limits === null) continue;
    for (const scopes of [limits.scopes, limits.keyScopes.values()]) {
      for (const sc of scopes) {
        if (sc.semaphore === null || sc.concurrency === null || seen.has(sc)) continue;
        seen.add(sc);
        yield { id: sc.id, semaphore: sc.semaphore, limits: sc.concurrency };
      }
    }
  }
}
