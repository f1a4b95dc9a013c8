export { createAdminServer, isLoopbackHost, type AdminOptions } from './admin-server.js';
