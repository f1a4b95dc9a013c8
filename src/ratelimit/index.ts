export type { CounterStore, TakeRequest, TakeResult } from './counter-store.js';
export { LocalStore } from './local-store.js';
export { openCounterStore, type CounterStoreOptions } from './open-counter-store.js';
// RedisStore (src/ratelimit/redis-store.ts) is imported on demand: it loads ioredis.
export { Semaphore, SemaphoreRegistry, type SemaphoreLimits, type SemaphoreLookup } from './semaphore.js';
export { compileLimitScope, type LimitDefaults, type LimitScope, type LimitsSpec, type SemaphoreSource, type Rule, type WindowCounts, type WindowName } from './limit-rules.js';
export { toModelLimits, type ModelLimits } from './model-limits.js';
export { compilePlan, LimitTake, readPlan, toRateLimitHeaders, type Plan, type PlanUsage } from './plan.js';
