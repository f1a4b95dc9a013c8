export { ConfigError, formatIssues, type ConfigIssue } from './config-error.js';
export { loadConfigFile, loadConfigText, type LoadedConfig, type ModelSpec, type Source } from './load.js';
export { compileSnapshot, describeSnapshot, DEFAULTS } from './compile.js';
export type { AnthropicMode, Model, PathRoute, Settings, Snapshot, Target, Timeouts } from './snapshot.js';
export { gatewayConfig, type GatewayConfig } from './schema.js';
export { ConfigStore, type SwapResult } from './store.js';
export { parseListen, toBytes, toMs } from './units.js';
export { checkStart, LISTENER_DEFAULTS, restartNeededFor } from './start-checks.js';
export { configInputs, InputWatcher, readConfigInputs, type WatchInputs } from './watch.js';
