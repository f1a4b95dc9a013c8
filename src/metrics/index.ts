export { GatewayMetrics, MODEL_LIST, UNMATCHED, type MetricsTotals } from './gateway-metrics.js';
export { FlowMetrics } from './flow-metrics.js';
