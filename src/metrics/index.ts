export { GatewayMetrics, UNMATCHED } from './gateway-metrics.js';
