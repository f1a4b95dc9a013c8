export { createAdminServer, type AdminHost, type AdminOptions } from './admin-server.js';
