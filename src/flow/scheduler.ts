/**
 * FlowScheduler keeps one wait queue per flow-controlled model for the whole process (the queues
 * outlive reloads) and decides a request's priority from its key and the X-Priority header.
 */
import { GatewayError } from '../errors/index.js';
import type { Target } from '../upstream/index.js';
import type { FlowControl, FlowTenant } from './flow-control.js';
import { ModelQueue, type FlowModel, type FlowObserver, type Ticket } from './model-queue.js';

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

/** FlowScheduler owns the process's model queues. */
export class FlowScheduler {
  readonly #queues = new Map<string, ModelQueue>();
  readonly #observer: FlowObserver;

  constructor(observer: FlowObserver) {
    this.#observer = observer;
  }

  /**
   * schedule returns the request's ticket and either a target now, nothing (let select pick a
   * fallback), or a wait for a target. `charge` is the request's estimated cost in tokens (tokens
   * fairness; settled from usage when it ends).
   */
  schedule(flow: FlowControl, model: FlowModel, keyHash: string | null, priorityHeader: string | string[] | undefined, charge: number): { ticket: Ticket; target: Target | null; wait: Promise<Target> | null } {
    const tenant = keyHash === null ? flow.anonymous : (flow.tenants.get(keyHash) ?? flow.anonymous);
    const priority = priorityOf(tenant, priorityHeader);
    let q = this.#queues.get(flow.id);
    if (q === undefined) this.#queues.set(flow.id, (q = new ModelQueue(flow.id, flow, model, this.#observer)));
    else q.update(flow, model);
    return q.admit(tenant, priority, charge, Date.now());
  }

  /** view is a model's queue for the admin API (an empty one when nothing ever waited). */
  view(flow: FlowControl): ReturnType<ModelQueue['view']> {
    return this.#queues.get(flow.id)?.view() ?? { saturated: false, waiting: 0, by_priority: {}, by_tenant: {} };
  }
}
