export { createStatusServer, type StatusSource } from './status-server.js';
