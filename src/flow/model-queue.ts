/**
 * ModelQueue holds one model's requests while every target is saturated, and releases them best
 * first as targets free up:
 * - strict priority: a higher level always goes before a lower one;
 * - within a level, weighted fair sharing between tenants by virtual counters: each tenant's
 *   counter grows by what it was served (requests, or prompt + completion tokens, settled from the
 *   usage when the request ends) divided by its weight; the waiting tenant with the smallest
 *   counter goes next. A tenant that starts waiting is brought up to the level's clock, so idle
 *   time earns no credit;
 * - first come, first served within a tenant;
 * - the target of a dispatched request is chosen by the model's balancer among the targets with
 *   room (FlowPick); flow control decides only whether a request goes or waits;
 * - with `headroom`, the last free places under max_inflight go only to tenants using less than
 *   their fair share of the model's places, so a light tenant finds room at once while a heavy one
 *   keeps the rest busy.
 * A queue lives per model id across reloads, so waiting requests keep their place.
 */
import { GatewayError } from '../errors/index.js';
import type { Target, TargetState } from '../upstream/index.js';
import { freePlaces, NOT_ELIGIBLE, placesOf, pickTarget, SATURATED, type FlowControl, type FlowTenant, type PickResult } from './flow-control.js';

/** FlowModel is what a queue needs of its model: its live targets, and its fallbacks' (a Model fits it). */
export interface FlowModel {
  readonly name: string;
  readonly upstream: { readonly targets: readonly Target[] };
  readonly fallback: readonly { readonly upstream: { readonly targets: readonly Target[] } }[];
}

/**
 * FlowPick asks the model's configured balancer for a target for one request, leaving out the
 * targets in `full` (saturated, or already tried): the balancer's own scoring (request size, KV
 * pressure, replica speed for least-load) chooses among the targets with room. `request` is what
 * admit was given with the pick. undefined: the balancer found none (the least-loaded target with
 * room is taken then).
 */
export type FlowPick = (model: FlowModel, request: unknown, full: ReadonlySet<Target>, nowMs: number) => Target | undefined;

/** hasHealthyFallback tells whether one of a model's fallbacks has a target to take a request. */
function hasHealthyFallback(model: FlowModel): boolean {
  for (const f of model.fallback) for (const t of f.upstream.targets) if (t.state.isHealthy && !t.state.isDrained) return true;
  return false;
}

/** FlowObserver is told what the queue does (metrics). */
export interface FlowObserver {
  depth(model: string, priority: number, count: number): void;
  waited(model: string, seconds: number): void;
  shed(model: string, reason: 'overloaded' | 'queue_full' | 'queue_timeout' | 'client_gone'): void;
  saturated(model: string, isSaturated: boolean): void;
  /** forget drops a model's series (its queue closed): its priority levels are given. */
  forget(model: string, priorities: readonly number[]): void;
}

/** TenantUse is what one tenant has of a model, over all priority levels: requests on the targets and waiting. */
export class TenantUse {
  weight: number;
  inflight = 0;
  waiting = 0;

  constructor(weight: number) {
    this.weight = weight;
  }
}

/** TenantQueue is one tenant's waiting requests on one priority level, and its virtual counter. */
export class TenantQueue {
  readonly name: string;
  /** use holds the tenant's weight and its counts over all levels. */
  readonly use: TenantUse;
  /** vt is the tenant's virtual service: what it was served, divided by its weight. */
  vt = 0;
  readonly waiting: Ticket[] = [];
  head = 0;

  constructor(name: string, use: TenantUse) {
    this.name = name;
    this.use = use;
  }

  get size(): number {
    return this.waiting.length - this.head;
  }

  shift(): Ticket | undefined {
    while (this.head < this.waiting.length) {
      const t = this.waiting[this.head++]!;
      if (this.head > 64 && this.head * 2 > this.waiting.length) {
        this.waiting.splice(0, this.head);
        this.head = 0;
      }
      if (!t.isDone) return t;
    }
    return undefined;
  }
}

/** Level is one priority level. */
export class Level {
  readonly priority: number;
  readonly tenants = new Map<string, TenantQueue>();
  /** clock is the virtual counter of the tenant served last: a tenant that starts waiting starts there. */
  clock = 0;
  count = 0;

  constructor(priority: number) {
    this.priority = priority;
  }
}

/**
 * Ticket is one request's place in the scheduler: waiting, then (once dispatched) what its
 * tenant was charged, settled with the real usage when the request ends.
 */
export class Ticket {
  readonly queue: ModelQueue;
  readonly tenant: TenantQueue;
  readonly level: Level;
  readonly enqueuedAt: number;
  readonly deadline: number;
  /** charged is what the tenant's counter was charged at dispatch, in fairness units. */
  charged: number;
  isDone = false;
  isWaiting = false;
  /** isRunning: dispatched and not ended (counted in its tenant's in-flight). */
  isRunning = false;
  /** resolve dispatches a waiting request: to a target, or (null) to the select stage, when its model no longer holds requests. */
  resolve: ((target: Target | null) => void) | null = null;
  reject: ((err: GatewayError) => void) | null = null;
  /** request and pick choose the request's target when it is dispatched (pick null: the least-loaded target with room); request is dropped then. */
  request: unknown;
  readonly pick: FlowPick | null;

  constructor(queue: ModelQueue, tenant: TenantQueue, level: Level, nowMs: number, maxWaitMs: number, charge: number, request: unknown, pick: FlowPick | null) {
    this.queue = queue;
    this.request = request;
    this.pick = pick;
    this.tenant = tenant;
    this.level = level;
    this.enqueuedAt = nowMs;
    this.deadline = nowMs + maxWaitMs;
    this.charged = charge;
  }

  /** cancel takes a waiting request out of the queue (its client left); it is never forwarded. */
  cancel = (): void => {
    if (this.isDone) return;
    this.isDone = true;
    this.queue.left(this, 'client_gone');
  };

  /** end settles the tenant's charge with the real usage (tokens fairness) and lets the queue release the next ones. */
  end(promptTokens: number, completionTokens: number): void {
    const q = this.queue;
    if (this.isRunning) {
      this.isRunning = false;
      this.tenant.use.inflight--;
    }
    if (q.fairness === 'tokens' && promptTokens >= 0) {
      const used = promptTokens + Math.max(0, completionTokens);
      this.tenant.vt += (used - this.charged) / this.tenant.use.weight;
    }
    q.release();
  }
}

const TICK_MS = 20;
/** SHED_RETRY_AFTER_S is the Retry-After of a shed or timed-out request. */
const SHED_RETRY_AFTER_S = 1;

/** ModelQueue is one model's wait queue. */
export class ModelQueue {
  readonly id: string;
  readonly name: string;
  #flow: FlowControl;
  #model: FlowModel;
  readonly #observer: FlowObserver;
  /** levels, highest priority first. */
  readonly #levels: Level[] = [];
  /** #uses are the tenants' in-flight and waiting counts, by tenant name. */
  readonly #uses = new Map<string, TenantUse>();
  size = 0;
  #timer: NodeJS.Timeout | null = null;
  #isSaturated = false;
  #isClosed = false;
  /** #released counts, per target, requests released in the current pass that have not begun yet. */
  readonly #released = new Map<TargetState, number>();
  /** #full are the targets without room at the last #pick: what the balancer must leave out (reused, filled by each #pick). */
  readonly #full = new Set<Target>();

  constructor(id: string, flow: FlowControl, model: FlowModel, observer: FlowObserver) {
    this.id = id;
    this.name = model.name;
    this.#flow = flow;
    this.#model = model;
    this.#observer = observer;
    observer.saturated(this.name, false);
  }

  get fairness(): FlowControl['fairness'] {
    return this.#flow.fairness;
  }

  get isSaturated(): boolean {
    return this.#isSaturated;
  }

  /** update takes the newest configuration and targets (a reload keeps the queue). */
  update(flow: FlowControl, model: FlowModel): void {
    this.#flow = flow;
    this.#model = model;
  }

  #level(priority: number): Level {
    const levels = this.#levels;
    let i = 0;
    while (i < levels.length && levels[i]!.priority > priority) i++;
    if (i < levels.length && levels[i]!.priority === priority) return levels[i]!;
    const level = new Level(priority);
    levels.splice(i, 0, level);
    return level;
  }

  #tenant(level: Level, t: FlowTenant): TenantQueue {
    let use = this.#uses.get(t.name);
    if (use === undefined) this.#uses.set(t.name, (use = new TenantUse(t.weight)));
    use.weight = t.weight;
    let q = level.tenants.get(t.name);
    if (q === undefined) level.tenants.set(t.name, (q = new TenantQueue(t.name, use)));
    return q;
  }

  #pick(nowMs: number): PickResult {
    const r = pickTarget(this.#model.upstream.targets, this.#flow, nowMs, this.#released.size === 0 ? null : this.#released, null, this.#full);
    const isSaturated = r === SATURATED;
    if (isSaturated !== this.#isSaturated) {
      this.#isSaturated = isSaturated;
      this.#observer.saturated(this.name, isSaturated);
    }
    return r;
  }

  /**
   * #targetOf is the dispatched ticket's target: the one its balancer picks among the targets with
   * room (those not in #full, as the last #pick left it), else `least`, the least-loaded of them.
   */
  #targetOf(ticket: Ticket, least: Target, nowMs: number): Target {
    const pick = ticket.pick;
    const request = ticket.request;
    ticket.request = null;
    if (pick === null) return least;
    const t = pick(this.#model, request, this.#full, nowMs);
    return t !== undefined && !this.#full.has(t) ? t : least;
  }

  /**
   * #limit is the model's places under max_inflight when only `headroom` of them are free (then
   * only tenants under their fair share may go), else -1.
   */
  #limit(): number {
    const flow = this.#flow;
    if (flow.headroom === 0) return -1;
    const targets = this.#model.upstream.targets;
    return freePlaces(targets, flow, this.#released.size === 0 ? null : this.#released) <= flow.headroom ? placesOf(targets, flow) : -1;
  }

  /**
   * #isUnderShare tells whether a tenant uses less than its fair share of `capacity` places: its
   * weight's part of `active` (#activeWeights) with its own weight counted in.
   */
  #isUnderShare(use: TenantUse, capacity: number, active: number): boolean {
    return use.inflight < (capacity * use.weight) / (isActive(use) ? active : active + use.weight);
  }

  /** #activeWeights sums the weights of the tenants with requests on the targets or waiting. */
  #activeWeights(): number {
    let weights = 0;
    for (const u of this.#uses.values()) if (isActive(u)) weights += u.weight;
    return weights;
  }

  /**
   * admit decides for one request: a target now (a ticket charged), or a promise of one once it is
   * its turn. Throws overloaded (sheddable while saturated) or queue_full.
   * With no healthy target but a healthy fallback, the request goes on to select (target null).
   * `request` is given to `pick` when the request is dispatched, to choose its target.
   */
  admit(tenant: FlowTenant, priority: number, charge: number, nowMs: number, request: unknown = null, pick: FlowPick | null = null): { ticket: Ticket; target: Target | null; wait: Promise<Target | null> | null } {
    const flow = this.#flow;
    const level = this.#level(priority);
    const tq = this.#tenant(level, tenant);
    const ticket = new Ticket(this, tq, level, nowMs, flow.maxWaitMs, this.#flow.fairness === 'tokens' ? charge : 1, request, pick);
    if (this.size === 0) {
      const r = this.#pick(nowMs);
      if (r !== SATURATED && r !== NOT_ELIGIBLE) {
        const limit = this.#limit();
        if (limit < 0 || this.#isUnderShare(tq.use, limit, this.#activeWeights())) {
          this.#charge(ticket);
          return { ticket, target: this.#targetOf(ticket, r, nowMs), wait: null };
        }
      } else if (r === NOT_ELIGIBLE && hasHealthyFallback(this.#model)) {
        this.#charge(ticket);
        return { ticket, target: null, wait: null };
      }
    }
    if (priority < 0) {
      this.#observer.shed(this.name, 'overloaded');
      throw new GatewayError('overloaded', { retryAfterSec: SHED_RETRY_AFTER_S });
    }
    if (this.size >= flow.maxQueue) {
      this.#observer.shed(this.name, 'queue_full');
      throw new GatewayError('queue_full', { retryAfterSec: SHED_RETRY_AFTER_S });
    }
    const wait = new Promise<Target | null>((resolve, reject) => {
      ticket.resolve = resolve;
      ticket.reject = reject;
    });
    // A tenant that starts waiting starts at the level's clock: its idle time earns it no credit.
    if (tq.size === 0 && tq.vt < level.clock) tq.vt = level.clock;
    ticket.isWaiting = true;
    tq.waiting.push(ticket);
    tq.use.waiting++;
    level.count++;
    this.size++;
    this.#observer.depth(this.name, priority, level.count);
    this.#timer ??= setInterval(this.#tick, TICK_MS);
    this.#timer.unref();
    // Something may be free already (the queue was not empty): release in order.
    this.release();
    return { ticket, target: null, wait };
  }

  /** #charge counts a dispatched request to its tenant: its virtual counter and its in-flight. */
  #charge(ticket: Ticket): void {
    const tq = ticket.tenant;
    tq.vt += ticket.charged / tq.use.weight;
    ticket.isRunning = true;
    tq.use.inflight++;
  }

  /** left removes a waiting ticket (client gone or timed out). */
  left(ticket: Ticket, reason: 'client_gone' | 'queue_timeout'): void {
    if (!ticket.isWaiting) return;
    this.#dequeued(ticket);
    this.#observer.shed(this.name, reason);
    if (reason === 'queue_timeout') {
      this.#observer.waited(this.name, (Date.now() - ticket.enqueuedAt) / 1000);
      ticket.reject!(new GatewayError('queue_timeout', { retryAfterSec: SHED_RETRY_AFTER_S }));
    }
  }

  #dequeued(ticket: Ticket): void {
    ticket.isWaiting = false;
    ticket.tenant.use.waiting--;
    const level = ticket.level;
    level.count--;
    this.size--;
    this.#observer.depth(this.name, level.priority, level.count);
    if (this.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  /** release dispatches waiting requests, best first, while some target is unsaturated. */
  release(): void {
    if (this.size === 0) return;
    const now = Date.now();
    const released = this.#released;
    try {
      while (this.size > 0) {
        const r = this.#pick(now);
        if (r === SATURATED || r === NOT_ELIGIBLE) return;
        const ticket = this.#next(this.#limit());
        if (ticket === undefined) return;
        ticket.isDone = true;
        this.#dequeued(ticket);
        ticket.level.clock = ticket.tenant.vt;
        this.#charge(ticket);
        const target = this.#targetOf(ticket, r, now);
        released.set(target.state, (released.get(target.state) ?? 0) + 1);
        this.#observer.waited(this.name, (now - ticket.enqueuedAt) / 1000);
        ticket.resolve!(target);
      }
    } finally {
      // Released requests begin on their target before any timer or I/O callback runs again.
      released.clear();
    }
  }

  /**
   * #next takes the best waiting ticket: highest level, then the tenant with the least virtual
   * service. With `limit` (only headroom free, see #limit) only tenants under their fair share of
   * `limit` places may go, and still only from the highest waiting level: priority stays strict.
   */
  #next(limit: number): Ticket | undefined {
    // The active tenants' weights, summed once: nothing changes until a ticket is taken.
    const weights = limit < 0 ? 0 : this.#activeWeights();
    for (const level of this.#levels) {
      while (level.count > 0) {
        let best: TenantQueue | null = null;
        for (const tq of level.tenants.values()) {
          if (tq.size === 0 || (best !== null && tq.vt >= best.vt)) continue;
          if (limit < 0 || this.#isUnderShare(tq.use, limit, weights)) best = tq;
        }
        if (best === null) {
          if (limit >= 0) return undefined;
          break;
        }
        const t = best.shift();
        // A tenant whose tickets had all left is now empty: look again.
        if (t !== undefined) return t;
      }
    }
    return undefined;
  }

  #tick = (): void => {
    const now = Date.now();
    // Time-outs first: a request past its max_wait is answered, not forwarded late.
    for (const level of this.#levels) {
      if (level.count === 0) continue;
      for (const tq of level.tenants.values()) {
        for (let i = tq.head; i < tq.waiting.length; i++) {
          const t = tq.waiting[i]!;
          if (t.isDone || t.deadline > now) continue;
          t.isDone = true;
          this.left(t, 'queue_timeout');
        }
      }
    }
    this.release();
  };

  /**
   * observe looks at the targets again (a new load sample): the saturation gauge follows, and
   * waiting requests go if there is room.
   */
  observe(): void {
    if (this.#isClosed) return;
    if (this.size > 0) this.release();
    else this.#pick(Date.now());
  }

  /**
   * close ends the queue: its model left the configuration (`removed`: waiting requests are
   * answered 404 model_not_found), or no longer has flow control (they go on to the select stage
   * at once, as the model's requests now do). Its metrics series are removed.
   */
  close(isRemoved: boolean): void {
    this.#isClosed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    for (const level of this.#levels) {
      for (const tq of level.tenants.values()) {
        let t: Ticket | undefined;
        while ((t = tq.shift()) !== undefined) {
          t.isDone = true;
          this.#dequeued(t);
          if (isRemoved) t.reject!(new GatewayError('model_not_found', { message: 'The model was removed from the configuration while this request waited.' }));
          else {
            this.#charge(t);
            t.resolve!(null);
          }
        }
      }
    }
    this.#observer.forget(this.name, this.#levels.map((l) => l.priority));
  }

  /** view is the queue as the admin API shows it. */
  view(): { saturated: boolean; waiting: number; by_priority: Record<string, number>; by_tenant: Record<string, number> } {
    const byPriority: Record<string, number> = {};
    const byTenant: Record<string, number> = {};
    for (const level of this.#levels) {
      if (level.count > 0) byPriority[String(level.priority)] = level.count;
      for (const tq of level.tenants.values()) {
        let n = 0;
        for (let i = tq.head; i < tq.waiting.length; i++) if (!tq.waiting[i]!.isDone) n++;
        if (n > 0) byTenant[tq.name || '(no key)'] = (byTenant[tq.name || '(no key)'] ?? 0) + n;
      }
    }
    return { saturated: this.#isSaturated, waiting: this.size, by_priority: byPriority, by_tenant: byTenant };
  }
}

/** isActive tells whether a tenant has requests on the targets or waiting. */
function isActive(u: TenantUse): boolean {
  return u.inflight > 0 || u.waiting > 0;
}
