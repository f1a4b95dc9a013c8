export { loadOf, pickTarget, NOT_ELIGIBLE, SATURATED, type Fairness, type FlowControl, type FlowTenant } from './flow-control.js';
export { ModelQueue, Ticket, type FlowObserver } from './model-queue.js';
export { FlowScheduler, priorityOf, type ScheduleInput } from './scheduler.js';
