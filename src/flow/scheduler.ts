/**
 * FlowScheduler keeps one wait queue per flow-controlled model for the whole process (the queues
 * outlive reloads) and decides a request's priority from its key and the X-Priority header.
 */
import { GatewayError } from '../errors/index.js';
import type { Target } from '../upstream/index.js';
import { flowQueueId, type FlowControl, type FlowTenant } from './flow-control.js';
import { ModelQueue, type FlowModel, type FlowObserver, type FlowPick, type Ticket } from './model-queue.js';

/** PRIORITY_HEADER_RE is what X-Priority may hold: an integer. */
const PRIORITY_HEADER_RE = /^[+-]?\d{1,4}$/;
const MIN_PRIORITY = -1000;

/**
 * priorityOf is a request's priority: its tenant's, or the X-Priority header clamped to the
 * tenant's max_priority (the header may always lower it).
 */
export function priorityOf(tenant: FlowTenant, header: string | string[] | undefined): number {
  if (header === undefined) return tenant.priority;
  if (typeof header !== 'string' || !PRIORITY_HEADER_RE.test(header)) {
    throw new GatewayError('invalid_request', { message: 'X-Priority must be an integer, e.g. "X-Priority: 5".' });
  }
  return Math.max(MIN_PRIORITY, Math.min(Number(header), tenant.maxPriority));
}

/** RetainedModel is what retain needs of a configured model. */
export interface RetainedModel extends FlowModel {
  readonly flow: FlowControl | null;
  readonly path?: string;
}

/** MIN_OBSERVE_MS bounds how often the queues look at their targets' samples. */
const MIN_OBSERVE_MS = 20;

/** FlowScheduler owns the process's model queues. */
export class FlowScheduler {
  readonly #queues = new Map<string, ModelQueue>();
  readonly #observer: FlowObserver;
  /** #live are the ids of the flow-controlled models of the running configuration (null: not told yet). */
  #live: Set<string> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #timerMs = 0;

  constructor(observer: FlowObserver) {
    this.#observer = observer;
  }

  /**
   * schedule returns the request's ticket and either a target now, nothing (let select pick a
   * fallback), or a wait for a target (null: go on to select). `charge` is the request's estimated
   * cost in tokens (tokens fairness; settled from usage when it ends). A request of a model the
   * running configuration no longer holds with flow control (admitted just before a reload) gets
   * no ticket and goes on to select. `pick` chooses the request's target among those with room
   * (the model's balancer), given `request`.
   */
  schedule(flow: FlowControl, model: FlowModel, keyHash: string | null, priorityHeader: string | string[] | undefined, charge: number, request: unknown = null, pick: FlowPick | null = null): { ticket: Ticket; target: Target | null; wait: Promise<Target | null> | null } | null {
    const tenant = keyHash === null ? flow.anonymous : (flow.tenants.get(keyHash) ?? flow.anonymous);
    const priority = priorityOf(tenant, priorityHeader);
    let q = this.#queues.get(flow.id);
    if (q === undefined) {
      if (this.#live !== null && !this.#live.has(flow.id)) return null;
      this.#queues.set(flow.id, (q = new ModelQueue(flow.id, flow, model, this.#observer)));
    }
    return q.admit(tenant, priority, charge, Date.now(), request, pick);
  }

  /**
   * retain follows a new configuration: the queues of its flow-controlled models take their new
   * settings and targets (waiting requests keep their place), a queue for each new one starts
   * (its metrics at 0), and the queues of models that left or lost flow control are closed: their
   * waiting requests are answered (model removed) or go on at once (flow control off).
   */
  retain(models: readonly RetainedModel[]): void {
    const live = new Set<string>();
    const present = new Set<string>();
    let observeMs = Infinity;
    for (const m of models) {
      const flow = m.flow;
      if (flow === null) {
        present.add(flowQueueId(m.path, m.name));
        continue;
      }
      live.add(flow.id);
      present.add(flow.id);
      observeMs = Math.min(observeMs, flow.pollMs);
      const q = this.#queues.get(flow.id);
      if (q === undefined) {
        const fresh = new ModelQueue(flow.id, flow, m, this.#observer);
        this.#queues.set(flow.id, fresh);
        fresh.observe();
      } else q.update(flow, m);
    }
    for (const [id, q] of this.#queues) {
      if (live.has(id)) continue;
      this.#queues.delete(id);
      q.close(!present.has(id));
    }
    this.#live = live;
    this.#startObserving(live.size === 0 ? 0 : Math.max(MIN_OBSERVE_MS, observeMs));
  }

  /** #startObserving looks at every queue's targets each `ms` (0: stops), so saturation follows the samples while nothing is asked. */
  #startObserving(ms: number): void {
    if (ms === this.#timerMs) return;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#timerMs = ms;
    if (ms === 0) return;
    this.#timer = setInterval(() => {
      for (const q of this.#queues.values()) q.observe();
    }, ms);
    this.#timer.unref();
  }

  /** close stops looking at the targets (the gateway stops). */
  close(): void {
    this.#startObserving(0);
  }

  /** view is a model's queue for the admin API (an empty one when nothing ever waited). */
  view(flow: FlowControl): ReturnType<ModelQueue['view']> {
    return this.#queues.get(flow.id)?.view() ?? { saturated: false, waiting: 0, by_priority: {}, by_tenant: {} };
  }
}
