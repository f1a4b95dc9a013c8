export { GatewayMetrics, ModelMetrics, UNMATCHED } from './gateway-metrics.js';
