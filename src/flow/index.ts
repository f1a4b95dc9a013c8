export { flowQueueId, loadOf, pickTarget, NOT_ELIGIBLE, SATURATED, type Fairness, type FlowControl, type FlowTenant } from './flow-control.js';
export { ModelQueue, Ticket, type FlowModel, type FlowObserver, type FlowPick } from './model-queue.js';
export { FlowScheduler, priorityOf } from './scheduler.js';
