export type { CounterStore, TakeRequest, TakeResult } from './counter-store.js';
export { LocalStore } from './local-store.js';
export { openCounterStore, type CounterStoreOptions } from './open-counter-store.js';
// RedisStore (src/ratelimit/redis-store.ts) is imported on demand: it loads ioredis.
export { Semaphore, SemaphoreRegistry, type SemaphoreLimits, type SemaphoreLookup } from './semaphore.js';
export { compileLimitScope, toModelLimits, type LimitDefaults, type LimitScope, type SemaphoreSource, type ModelLimits, type Rule, type WindowName } from './limit-rules.js';
export type { LimitTake, Plan } from './plan.js';
