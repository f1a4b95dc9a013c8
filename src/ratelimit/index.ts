export type { CounterStore, TakeRequest, TakeResult } from './counter-store.js';
export { LocalStore } from './local-store.js';
// RedisStore (src/ratelimit/redis-store.ts) is imported on demand: it loads ioredis.
export { Semaphore, SemaphoreRegistry } from './semaphore.js';
export { compileLimitScope, toModelLimits, DEFAULT_MAX_TOKENS, type LimitScope, type ModelLimits, type Rule, type WindowName } from './limit-rules.js';
export type { LimitTake, Plan } from './plan.js';
