/** Public surface of the vLLM-compatible simulator (used by tests, benchmarks and `inference-gateway simulate`). */
export { Simulator, promptBlocks } from './simulator.js';
export type { SimulatorOptions, SimulatorStats, PrefixCacheOptions, ReceivedRequest } from './simulator.js';
export { runSimulator } from './cli.js';
export type { SimulatorCliOptions } from './cli.js';
