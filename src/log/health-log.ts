/**
 * The health lines of the gateway's log. A target that changes state gets one line naming the
 * model it serves: `warn` when it goes down, `info` when it is back. A model whose last healthy
 * target went down gets one `warn` line, and one `info` line when a target is back: requests
 * refused meanwhile (503 no_healthy_upstream) are in the access log, not one error line each.
 * Models are known by their metrics row, which stays the same for a (name, path) across reloads,
 * so a reload does not log a model that was already down again.
 */
import type { Logger } from 'pino';

/** HealthModel is what the health lines need of a compiled model (a config Model fits it). */
export interface HealthModel {
  readonly name: string;
  readonly path: string;
  readonly statsRow: number;
  readonly fallback: readonly { readonly name: string; readonly path: string }[];
  readonly upstream: { readonly targets: readonly { readonly state: { readonly isHealthy: boolean } }[] };
}

/** HealthTarget is what the health lines need of a target's live state. */
export interface HealthTarget {
  readonly url: string;
  readonly isHealthy: boolean;
  readonly ejectedUntilMs: number;
}

/** MAX_MODEL_LINES caps the model lines of one event (thousands of models may share one server). */
const MAX_MODEL_LINES = 20;

/** HealthLog writes target and model health lines. */
export class HealthLog {
  readonly #log: Logger;
  /** #down holds the metrics rows of the models that have no healthy target. */
  readonly #down = new Set<number>();

  constructor(log: Logger) {
    this.#log = log;
  }

  /** targetChanged logs a target's new state; users are the models it serves, in config order. */
  targetChanged(target: HealthTarget, users: readonly HealthModel[]): void {
    const fields = {
      model: users[0]?.name ?? null,
      ...(users.length > 1 ? { shared_by: users.length } : {}),
      target: target.url,
      ...(target.ejectedUntilMs > 0 ? { ejected_until: new Date(target.ejectedUntilMs).toISOString() } : {}),
    };
    if (target.isHealthy) this.#log.info(fields, 'target healthy');
    else this.#log.warn(fields, 'target unhealthy');
    this.checkModels(users);
  }

  /** checkModels logs each model whose having a healthy target changed since it was last checked. */
  checkModels(models: Iterable<HealthModel>): void {
    let lines = 0;
    let moreDown = 0;
    let moreUp = 0;
    for (const m of models) {
      const isDown = !m.upstream.targets.some((t) => t.state.isHealthy);
      if (isDown === this.#down.has(m.statsRow)) continue;
      if (isDown) this.#down.add(m.statsRow);
      else this.#down.delete(m.statsRow);
      if (lines === MAX_MODEL_LINES) {
        if (isDown) moreDown++;
        else moreUp++;
        continue;
      }
      lines++;
      const fields = { model: m.name, path: m.path || '/' };
      if (!isDown) this.#log.info(fields, 'model has a healthy target again');
      else if (m.fallback.length === 0) this.#log.warn(fields, 'model has no healthy target');
      else this.#log.warn({ ...fields, fallback: m.fallback.map((f) => `${f.path || '/'} ${f.name}`) }, 'model has no healthy target');
    }
    if (moreDown + moreUp > 0) this.#log.warn({ down: moreDown, up: moreUp }, 'more models changed state: GET /models on the admin listener shows each');
  }

  /** retain forgets models that are no longer configured. */
  retain(models: readonly HealthModel[]): void {
    if (this.#down.size === 0) return;
    const rows = new Set(models.map((m) => m.statsRow));
    for (const row of this.#down) if (!rows.has(row)) this.#down.delete(row);
  }
}
