export { RoundRobin, type Weighted } from './balancer/round-robin.js';
export { PoolRegistry, type PoolOptions } from './pool-registry.js';
