export { GatewayMetrics, MODEL_LIST, UNMATCHED } from './gateway-metrics.js';
