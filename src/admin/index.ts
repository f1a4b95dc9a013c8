export { createAdminHandler, type AdminHost, type AdminOptions, type AuditLine } from './admin-server.js';
export { CONFIG_SOURCES, ConfigHistory, type ConfigHistoryEntry, type ConfigHistoryOptions, type ConfigSource } from './config-history.js';
export { AdminEvents, quantileMs, type AdminEventsOptions, type EventSample, type FleetModel, type FleetTarget, type KeyHeadroom, type KeyStat, type RequestEntry } from './admin-events.js';
