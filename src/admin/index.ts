export { createAdminHandler, type AdminHost, type AdminOptions, type AuditLine } from './admin-server.js';
export { CONFIG_SOURCES, ConfigHistory, type ConfigHistoryEntry, type ConfigHistoryOptions, type ConfigSource } from './config-history.js';
export { AdminEvents, quantileMs, type AdminEventsOptions, type RequestEntry } from './admin-events.js';
export type { EventSample, FleetModel, FleetTarget, KeyHeadroom, KeyStat } from './event-types.js';
