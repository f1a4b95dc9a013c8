export { createStatusHandler, type StatusSource } from './status-server.js';
