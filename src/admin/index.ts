export { createAdminHandler, isLoopbackHost, type AdminHost, type AdminOptions } from './admin-server.js';
