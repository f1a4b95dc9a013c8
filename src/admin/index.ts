export { createAdminHandler, type AdminHost, type AdminOptions } from './admin-server.js';
