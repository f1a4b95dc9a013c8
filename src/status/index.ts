export { createStatusHandler, type StatusSource } from './status-server.js';
export { toStatusDocument, type StatusFacts } from './status-document.js';
