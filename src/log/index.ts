export { createLogger, type Logger } from './logger.js';
export { AccessLog, type AccessEntry, type AccessLogFormat } from './access-log.js';
