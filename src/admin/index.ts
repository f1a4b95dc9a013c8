export { createAdminHandler, type AdminHost, type AdminOptions, type AuditLine } from './admin-server.js';
export { CONFIG_SOURCES, ConfigHistory, type ConfigHistoryEntry, type ConfigHistoryOptions, type ConfigSource } from './config-history.js';
