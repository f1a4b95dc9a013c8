/** Public surface of the vLLM-compatible simulator (used by tests, benchmarks and `inference-gateway simulate`). */
export { Simulator } from './simulator.js';
export type { SimulatorOptions, SimulatorStats, ReceivedRequest } from './simulator.js';
export { runSimulator } from './cli.js';
