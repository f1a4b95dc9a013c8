/**
 * ConfigReloader runs reloads: SIGHUP and --watch re-read the configuration file, POST /config
 * brings a whole text. One load at a time; each one is read, checked as a start would check it,
 * then swapped (compile, compare hashes, commit). A failed load changes nothing. Static settings
 * (listeners, TLS, admin token, logging, limits store) change only with a restart, and a reload
 * that changes one says so instead of silently ignoring it.
 */
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, type ConfigIssue } from './config-error.js';
import { loadConfigFile, loadConfigText, type LoadedConfig } from './load.js';
import type { GatewayConfig } from './schema.js';
import { checkStart, restartNeededFor } from './start-checks.js';
import type { ConfigStore, SwapResult } from './store.js';
import { configInputs, InputWatcher, readConfigInputs, type WatchInputs } from './watch.js';

/** ConfigSource is where a configuration load came from. */
export type ConfigSource = 'file' | 'SIGHUP' | 'watch' | 'POST' | 'UI' | 'rollback';

/** ConfigLoad is one load's outcome, as the reloader reports it (loaded: null when it failed). */
export interface ConfigLoad {
  source: ConfigSource;
  result: SwapResult | 'failed';
  /** hash is the running configuration's hash after the load. */
  hash: string;
  errors: readonly ConfigIssue[];
  loaded: LoadedConfig | null;
}

/** GatewaySettings are a config's sections other than its models. */
export type GatewaySettings = Omit<GatewayConfig, 'models' | 'blueprints' | 'defaults'>;

/** settingsOf keeps what the gateway reads after compiling: not the model list (10,000 models are ~15 MB). */
export function settingsOf(loaded: LoadedConfig): GatewaySettings {
  const { models: _models, blueprints: _blueprints, defaults: _defaults, ...settings } = loaded.config;
  return settings;
}

/** ReloaderOptions are what a reloader reloads, into which store, and whom it tells. */
export interface ReloaderOptions {
  /** configPath is the file as given (named in messages); configFile is its absolute path. */
  configPath: string;
  configFile: string;
  env?: NodeJS.ProcessEnv | undefined;
  cwd?: string | undefined;
  store: ConfigStore;
  log: Logger;
  /** loaded is the configuration the gateway started with. */
  loaded: LoadedConfig;
  /** onResult counts each load's outcome. */
  onResult: (result: SwapResult | 'failed') => void;
  /** onLoad is told every load's outcome (the configuration history). */
  onLoad?: (load: ConfigLoad) => void;
  /** beforeReload runs at the start of each file reload (the TLS certificates are re-read then too). */
  beforeReload?: () => void;
  /** afterApply runs after each applied swap. */
  afterApply?: (() => void) | undefined;
}

/** ConfigReloader serializes the gateway's configuration loads. */
export class ConfigReloader {
  readonly #opts: ReloaderOptions;
  #settings: GatewaySettings;
  /** #inputs are the files the current configuration file content is made of. */
  #inputs: WatchInputs;
  #watcher: InputWatcher | null = null;
  #isLoading = false;
  #isClosed = false;

  constructor(opts: ReloaderOptions) {
    this.#opts = opts;
    this.#settings = settingsOf(opts.loaded);
    this.#inputs = configInputs(opts.configFile, opts.loaded.config);
  }

  /** settings are the running configuration's sections other than models. */
  get settings(): GatewaySettings {
    return this.#settings;
  }

  /** isLoading tells whether a load is running (POST /config sets it while it reads its body). */
  get isLoading(): boolean {
    return this.#isLoading;
  }

  set isLoading(on: boolean) {
    this.#isLoading = on;
  }

  /** isWatching tells whether the configuration files are watched. */
  get isWatching(): boolean {
    return this.#watcher !== null;
  }

  /** reload re-reads the config file; on any error it throws ConfigError and the old config keeps serving. */
  reload(source: ConfigSource = 'SIGHUP'): SwapResult {
    const o = this.#opts;
    if (this.#isLoading) throw new ConfigError([{ file: o.configPath, field: '', message: 'another configuration load is in progress' }]);
    this.#isLoading = true;
    o.beforeReload?.();
    // What to watch follows the file: a reload may import other recipe files or folders.
    const load = (): LoadedConfig => {
      try {
        const loaded = loadConfigFile(o.configPath, { env: o.env, cwd: o.cwd });
        this.#inputs = configInputs(o.configFile, loaded.config);
        return loaded;
      } catch (err) {
        this.#inputs = readConfigInputs(o.configFile);
        throw err;
      }
    };
    try {
      return this.#apply(load, false, source).result;
    } finally {
      this.#isLoading = false;
      this.#watcher?.follow(this.#inputs);
    }
  }

  /**
   * tryReload is reload for SIGHUP and --watch: the outcome is logged, a failure as one line with
   * every issue, and the old config keeps serving.
   */
  tryReload(source: ConfigSource = 'SIGHUP'): void {
    try {
      this.reload(source);
    } catch (err) {
      this.#opts.log.error({ issues: err instanceof ConfigError ? err.issues : String(err) }, 'config reload failed; the previous configuration keeps serving');
    }
  }

  /** watch reloads when the content of the config file, or of a recipe file or folder it imports, changes (watch.ts). */
  watch(): void {
    if (this.#watcher !== null || this.#isClosed) return;
    this.#watcher = new InputWatcher({
      inputs: this.#inputs,
      onChange: () => {
        // A POST /config load is running: the watcher checks again after its debounce.
        if (this.#isLoading) return false;
        this.tryReload('watch');
        return true;
      },
    });
  }

  /** applyText validates and swaps a whole configuration text (POST /config); throws ConfigError on any mistake. */
  applyText(text: string, isCheckHash: boolean, source: ConfigSource = 'POST'): { result: SwapResult; warnings: string[] } {
    const o = this.#opts;
    const applied = this.#apply(() => loadConfigText(text, { file: 'POST /config', baseDir: dirname(o.configFile), env: o.env, cwd: o.cwd }), isCheckHash, source);
    // The file stays the source of truth: say when it takes over again.
    const when = `the next SIGHUP${this.#watcher !== null ? ', change of its files' : ''} or restart`;
    applied.warnings.push(`the configuration file ${o.configPath} replaces this configuration at ${when}`);
    return applied;
  }

  /** applyLoaded swaps in a configuration loaded before (a rollback), checked again as a start would. */
  applyLoaded(loaded: LoadedConfig, source: ConfigSource): { result: SwapResult; warnings: string[] } {
    return this.#apply(() => loaded, false, source);
  }

  /** close stops watching; later loads are still served. */
  close(): void {
    this.#isClosed = true;
    this.#watcher?.close();
    this.#watcher = null;
  }

  /** #apply runs one load, its start checks and the swap, counting the result; it returns the result and the warnings to tell the caller. */
  #apply(load: () => LoadedConfig, isCheckHash: boolean, source: ConfigSource): { result: SwapResult; warnings: string[] } {
    const o = this.#opts;
    let loaded: LoadedConfig;
    let issues: ConfigIssue[];
    let result: SwapResult;
    try {
      loaded = load();
      // What the next start would refuse is refused now, not at the next restart.
      issues = checkStart(loaded, dirname(o.configFile));
      result = o.store.swap(loaded);
    } catch (err) {
      o.onResult('failed');
      const errors = err instanceof ConfigError ? err.issues : [{ file: '', field: '', message: String(err) }];
      o.onLoad?.({ source, result: 'failed', hash: o.store.current.hash, errors, loaded: null });
      throw err;
    }
    o.onResult(result);
    o.onLoad?.({ source, result, hash: o.store.current.hash, errors: [], loaded });
    const next = settingsOf(loaded);
    const warnings = restartNeededFor(this.#settings, next).map((field) => `${field} changed: takes effect after a restart`);
    for (const w of warnings) o.log.warn(w);
    if (result === 'applied') {
      this.#settings = next;
      logIssues(o.log, issues);
      o.afterApply?.();
    }
    if (!isCheckHash || result === 'applied') o.log.info({ result, hash: o.store.current.hash }, 'config reload');
    return { result, warnings: [...warnings, ...issues.map((i) => `${i.file}: ${i.field}: ${i.message}`)] };
  }
}

/** logIssues logs each config warning once, with its file and field (keys appear only as fingerprints). */
export function logIssues(log: Logger, issues: readonly ConfigIssue[]): void {
  for (const w of issues) log.warn({ file: w.file, field: w.field }, w.message);
}
