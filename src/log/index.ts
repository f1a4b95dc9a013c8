export { createLogger, type Logger } from './logger.js';
export { AccessLog, type AccessEntry, type AccessLogFormat } from './access-log.js';
export { HealthLog, type HealthModel, type HealthTarget } from './health-log.js';
