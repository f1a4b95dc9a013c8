/**
 * Gateway wires the parts together and owns their start and stop order: load and compile the
 * config, then open the proxy, status and admin listeners. Reloads (SIGHUP, --watch, POST /config)
 * are serialized and swap one snapshot; pools, metrics and the access log outlive snapshots.
 * Stop: readiness turns 503 at once, the proxy stops accepting, in-flight requests get
 * `shutdown_grace_s`, then everything closes.
 */
import { dirname, resolve } from 'node:path';
import type { DestinationStream } from 'pino';
import { AdminEvents, ConfigHistory, createAdminHandler, type AdminHost } from './admin/index.js';
import { checkStart, ConfigReloader, ConfigStore, DEFAULTS, loadConfigFile, logIssues, dryRunConfig, renderConfig, type Model, type Snapshot, type SwapResult } from './config/index.js';
import type { GatewayError } from './errors/index.js';
import { AccessLog, createLogger, HealthLog, type Logger } from './log/index.js';
import { FlowScheduler } from './flow/index.js';
import { GatewayMetrics } from './metrics/index.js';
import { createPipeline, type RequestContext } from './pipeline/index.js';
import { openCounterStore, SemaphoreRegistry, type CounterStore } from './ratelimit/index.js';
import { Listeners, type GatewayPorts } from './server/index.js';
import { createStatusHandler, toStatusDocument } from './status/index.js';
import { Generation, PoolRegistry, TargetRegistry, type TargetState } from './upstream/index.js';

export type { GatewayPorts } from './server/index.js';

/** GatewayOptions are how a Gateway is built. */
export interface GatewayOptions {
  configPath: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** logger receives gateway logs (default: pino on stderr at log.level). */
  logger?: Logger;
  /** accessLogDest receives access log lines (default: stdout). */
  accessLogDest?: DestinationStream;
  /** shutdownGraceMs overrides the config's shutdown_grace_s (tests). */
  shutdownGraceMs?: number;
  /**
   * afterCompile runs after the config is compiled: in start() before listening, and after each
   * applied reload. The `start` command runs a full GC there (cli/full-gc.ts).
   */
  afterCompile?: () => void;
}

/** Gateway is one running gateway process's listeners and state. */
export class Gateway {
  readonly #opts: GatewayOptions;
  readonly #log: Logger;
  readonly #pools = new PoolRegistry();
  readonly #registry = new TargetRegistry();
  readonly #semaphores = new SemaphoreRegistry();
  readonly #metrics = new GatewayMetrics();
  readonly #accessLog: AccessLog;
  readonly #healthLog: HealthLog;
  readonly #store: ConfigStore;
  readonly #reloader: ConfigReloader;
  readonly #counters = { inflight: 0 };
  readonly #flow = new FlowScheduler(this.#metrics.flow);
  readonly #startedAt = Date.now();
  /** #history lists the configuration loads (the reloader reports each one). */
  readonly #history = new ConfigHistory();
  /** #events feeds the dashboard (GET /events): samples the counters once a second from start() to stop(). */
  #events: AdminEvents | null = null;
  #limitStore: CounterStore | null = null;
  #generation: Generation | null = null;
  #listeners: Listeners | null = null;
  #ports: GatewayPorts = { proxy: 0, status: 0, admin: 0, tls: 0, adminTls: 0, statusTls: 0 };
  #isListening = false;
  #isDraining = false;

  /** Gateway loads and compiles the config at once: a bad file throws ConfigError before anything listens. */
  constructor(opts: GatewayOptions) {
    this.#opts = opts;
    const configFile = resolve(opts.cwd ?? process.cwd(), opts.configPath);
    const loaded = loadConfigFile(opts.configPath, { env: opts.env, cwd: opts.cwd });
    const warnings = checkStart(loaded, dirname(configFile));
    const logCfg = loaded.config.log;
    this.#log = opts.logger ?? createLogger(process.env.IGW_LOG_LEVEL ?? logCfg?.level ?? DEFAULTS.logLevel);
    this.#healthLog = new HealthLog(this.#log);
    this.#accessLog = new AccessLog({ enabled: logCfg?.access_log ?? DEFAULTS.isAccessLog, format: logCfg?.format ?? DEFAULTS.logFormat, ...(opts.accessLogDest ? { dest: opts.accessLogDest } : {}) });
    this.#metrics.readAccessLogDrops(() => this.#accessLog.dropped);
    this.#registry.onChange = (record) => this.#onHealthChange(record);
    // Pools of an origin no target uses any more close; requests still on them finish first.
    this.#registry.onOriginUnused = (origin) => void this.#pools.forget(origin);
    this.#store = new ConfigStore(loaded, { registries: { targets: this.#registry, semaphores: this.#semaphores }, rowOf: this.#metrics.rowOf });
    this.#history.record('file', 'applied', this.#store.current.hash, [], loaded);
    for (const note of loaded.notes) this.#log.info(note);
    logIssues(this.#log, warnings);
    this.#store.onSwap = (next) => this.#startGeneration(next);
    this.#reloader = new ConfigReloader({
      configPath: opts.configPath,
      configFile,
      env: opts.env,
      cwd: opts.cwd,
      store: this.#store,
      log: this.#log,
      loaded,
      onResult: (result) => this.#metrics.configReloads.labels(result).inc(),
      onLoad: (l) => this.#history.record(l.source, l.result, l.hash, l.errors, l.loaded),
      beforeReload: () => this.#listeners?.reloadTls(),
      afterApply: opts.afterCompile,
    });
  }

  /** #startGeneration starts a snapshot's health checks and discovery, and retires the previous ones. */
  #startGeneration(snapshot: Snapshot): void {
    this.#generation?.retire();
    // Flow-control queues follow the models: new settings and targets, closed for models that left.
    this.#flow.retain(snapshot.models);
    this.#generation = new Generation(snapshot, this.#pools, {
      onDiscovered: (model, dns, urls) => {
        this.#log.info({ model, dns, targets: urls }, 'dns targets changed');
        this.#healthLog.checkModels(snapshot.models.filter((m) => m.name === model));
      },
      onModelMismatch: (model, c) => {
        if (c.isMismatched) this.#log.warn({ model, target: c.target.url, served: c.served, expected: c.expected }, 'target serves another model');
        else this.#log.info({ model, target: c.target.url, served: c.served }, 'target serves the model again');
      },
      onAdaptersChanged: (model, c) => this.#log.info({ model, added: c.added.slice(0, 20), removed: c.removed.slice(0, 20) }, 'adapters changed'),
    });
    for (const m of snapshot.models) for (const t of m.upstream.targets) this.#metrics.targetUp.labels(m.name, t.url).set(isUp(t.state) ? 1 : 0);
    // A model whose DNS targets are still being looked up is judged once they are found.
    this.#healthLog.retain(snapshot.models);
    this.#healthLog.checkModels(snapshot.models.filter((m) => m.split === null && (m.upstream.targets.length > 0 || m.dnsTargets.length === 0)));
  }

  #onHealthChange(record: TargetState): void {
    const users: Model[] = [];
    for (const m of this.#store.current.models) {
      if (!m.upstream.targets.some((t) => t.state === record)) continue;
      users.push(m);
      this.#metrics.targetUp.labels(m.name, record.url).set(isUp(record) ? 1 : 0);
    }
    this.#healthLog.targetChanged(record, users);
  }

  /** #onDrainChange updates igw_target_up of a target the admin API drained or undrained. */
  #onDrainChange(record: TargetState): void {
    for (const m of this.#store.current.models) {
      if (m.upstream.targets.some((t) => t.state === record)) this.#metrics.targetUp.labels(m.name, record.url).set(isUp(record) ? 1 : 0);
    }
  }

  /** snapshot is the configuration new requests are served with. */
  get snapshot(): Snapshot {
    return this.#store.current;
  }

  /** ports are the bound ports, after start(). */
  get ports(): GatewayPorts {
    return this.#ports;
  }

  /** start opens the listeners (the constructor already refused what cannot start: see checkStart). */
  async start(): Promise<GatewayPorts> {
    const cfg = this.#reloader.settings;
    const ls = cfg.limits_store ?? {};
    const isFaultTolerant = ls.fault_tolerant ?? DEFAULTS.isLimitsStoreFaultTolerant;
    const limitStore = await openCounterStore(
      { redisUrl: ls.policy === 'redis' ? ls.redis_url! : null, timeoutMs: ls.timeout_ms ?? DEFAULTS.limitsStoreTimeoutMs, isFaultTolerant },
      this.#log,
    );
    this.#limitStore = limitStore;
    const pipelineDeps = {
      current: () => this.#store.current,
      pools: this.#pools,
      metrics: this.#metrics,
      accessLog: this.#accessLog,
      counters: this.#counters,
      limits: { store: limitStore, isFaultTolerant, log: this.#log },
      flow: this.#flow,
      onError: (err: GatewayError, ctx: RequestContext) => {
        // A model without a healthy target is logged once when it goes down (HealthLog), not per refused request.
        // A shed request (503 overloaded) is flow control doing what it was configured to do, at the rate
        // sheddable requests arrive while the model is saturated: igw_shed_total and the access log count it.
        if (err.code === 'no_healthy_upstream' || err.code === 'overloaded') return;
        this.#log.error({ request_id: ctx.requestId, code: err.code, model: ctx.model?.name, target: ctx.target?.url, cause: String(err.cause ?? '') }, 'gateway error');
      },
    };
    this.#events = new AdminEvents({ metrics: this.#metrics, accessLog: this.#accessLog, current: () => this.#store.current, limits: limitStore, flowWaiting: (m) => (m.flow === null ? 0 : this.#flow.view(m.flow).waiting) });
    const listeners = new Listeners({
      settings: cfg,
      baseDir: dirname(resolve(this.#opts.cwd ?? process.cwd(), this.#opts.configPath)),
      log: this.#log,
      proxy: (isTls) => createPipeline({ ...pipelineDeps, isTls }),
      status: createStatusHandler({
        status: () => this.#statusDocument(),
        notReadyReason: () => (this.#isDraining ? 'draining' : this.#isListening ? null : 'starting'),
        metrics: () => this.#metrics.registry.metrics(),
        metricsContentType: this.#metrics.registry.contentType,
      }),
      admin: createAdminHandler({ host: this.#adminHost(), token: cfg.admin?.token, audit: (line) => this.#log.info({ audit: line }, 'admin write'), events: this.#events }),
    });
    this.#listeners = listeners;

    // Before the first request: the compile's garbage goes now, not mid-traffic.
    this.#opts.afterCompile?.();
    this.#ports = await listeners.listen();
    this.#startGeneration(this.#store.current);
    this.#events.start();
    this.#isListening = true;
    this.#log.info({ ports: this.#ports, models: this.#store.current.models.length, hash: this.#store.current.hash }, 'gateway listening');
    return this.#ports;
  }

  /** reload re-reads the config file; on any error it throws ConfigError and the old config keeps serving. */
  reload(): SwapResult {
    return this.#reloader.reload();
  }

  /** tryReload is reload for SIGHUP and --watch: the outcome is logged and the old config keeps serving on failure. */
  tryReload(): void {
    this.#reloader.tryReload();
  }

  /** watch reloads when the content of the config file, or of a recipe file or folder it imports, changes (src/config/watch.ts). */
  watch(): void {
    if (!this.#isDraining) this.#reloader.watch();
  }

  #adminHost(): AdminHost {
    const reloader = this.#reloader;
    const baseDir = dirname(resolve(this.#opts.cwd ?? process.cwd(), this.#opts.configPath));
    return {
      current: () => this.#store.current,
      status: () => this.#statusDocument(),
      flow: (model) => (model.flow === null ? null : this.#flow.view(model.flow)),
      inflight: async () => {
        const out = new Map<string, number>();
        for (const v of (await this.#metrics.inflight.get()).values) out.set(String(v.labels.model), (out.get(String(v.labels.model)) ?? 0) + v.value);
        return out;
      },
      applyConfigText: (text, checkHash, source) => reloader.applyText(text, checkHash, source),
      history: () => this.#history.entries(),
      runningDocument: () => {
        const loaded = this.#history.loadedOf(this.#store.current.hash);
        return loaded === undefined ? null : renderConfig(loaded.config);
      },
      rollback: (hash) => {
        const loaded = this.#history.loadedOf(hash);
        return loaded === undefined ? null : reloader.applyLoaded(loaded, 'rollback');
      },
      targetChanged: (record) => this.#onDrainChange(record),
      validateConfigText: (text) => dryRunConfig(text, { file: 'POST /config', baseDir, env: this.#opts.env, cwd: this.#opts.cwd }, this.#history.loadedOf(this.#store.current.hash)),
      isLoading: () => reloader.isLoading,
      setLoading: (on) => {
        reloader.isLoading = on;
      },
    };
  }

  #statusDocument(): object {
    const snap = this.#store.current;
    const l = this.#listeners;
    return toStatusDocument({
      requestsTotal: l?.requestsTotal ?? 0,
      connectionsActive: l?.connectionsActive ?? 0,
      connectionsAccepted: l?.connectionsAccepted ?? 0,
      requestsInflight: this.#counters.inflight,
      startedAtMs: this.#startedAt,
      isReady: !this.#isDraining && this.#isListening,
      configurationHash: snap.hash,
      configurationLoadedAt: snap.loadedAt,
    });
  }

  /** stop drains: readiness 503 at once, no new connections, in-flight requests get the grace period, then all closes. */
  async stop(): Promise<void> {
    if (this.#isDraining) return;
    this.#isDraining = true;
    this.#reloader.close();
    this.#generation?.retire();
    this.#flow.close();
    this.#events?.stop();
    const grace = this.#reloader.settings.shutdown_grace_s;
    const graceMs = this.#opts.shutdownGraceMs ?? (grace === undefined ? DEFAULTS.shutdownGraceMs : grace * 1000);
    await this.#listeners?.close(Date.now() + graceMs);
    await this.#pools.destroy();
    this.#registry.dispose();
    await this.#limitStore?.close();
    await this.#accessLog.close();
  }
}

/** isUp is igw_target_up's value: healthy and not drained. */
function isUp(t: { readonly isHealthy: boolean; readonly isDrained?: boolean }): boolean {
  return t.isHealthy && t.isDrained !== true;
}
