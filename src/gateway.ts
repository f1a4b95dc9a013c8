/**
 * Gateway wires the parts together and owns their start and stop order: load and compile the
 * config, then open the proxy, status and admin listeners. Reloads (SIGHUP, --watch, POST /config)
 * are serialized and swap one snapshot; pools, metrics and the access log outlive snapshots.
 * Stop: readiness turns 503 at once, the proxy stops accepting, in-flight requests get
 * `shutdown_grace_s`, then everything closes.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Http2SecureServer, ServerHttp2Session } from 'node:http2';
import type { Server as HttpsServer } from 'node:https';
import type { Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Server as TlsServer } from 'node:tls';
import { dirname, resolve } from 'node:path';
import { AdminEvents, ConfigHistory, createAdminHandler, type AdminHost, type ConfigSource } from './admin/index.js';
import {
  ConfigError,
  ConfigStore,
  InputWatcher,
  checkStart,
  compileSnapshot,
  configInputs,
  dryRunConfig,
  loadConfigFile,
  loadConfigText,
  parseListen,
  readConfigInputs,
  LISTENER_DEFAULTS,
  restartNeededFor,
  DEFAULTS,
  toBytes,
  toMs,
  type LoadedConfig,
  type Model,
  type Snapshot,
  type SwapResult,
  type ConfigIssue,
  type GatewayConfig,
  type WatchInputs,
} from './config/index.js';
import { close, closeAfterResponses, createHttpsServer, createTlsServer, generateDevCertificate, listen, reloadTls, type GatewayRequest, type GatewayResponse, type TlsFiles } from './http/index.js';
import { FastServer } from './http/fast/index.js';
import type { GatewayError } from './errors/index.js';
import type { RequestContext } from './pipeline/index.js';
import { AccessLog, createLogger, HealthLog, type Logger } from './log/index.js';
import { GatewayMetrics } from './metrics/index.js';
import { LocalStore, SemaphoreRegistry, type CounterStore } from './ratelimit/index.js';
import { createPipeline } from './pipeline/index.js';
import { createStatusHandler } from './status/index.js';
import { Generation, PoolRegistry, TargetRegistry, type TargetRecord } from './upstream/index.js';
import type { DestinationStream } from 'pino';

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

/** GatewayPorts are the ports the listeners got (useful when configured with port 0); a TLS port is 0 when not configured. */
export interface GatewayPorts {
  proxy: number;
  status: number;
  admin: number;
  tls: number;
  /** adminTls is admin.tls_listen's port. */
  adminTls: number;
  /** statusTls is status.tls_listen's port. */
  statusTls: number;
}

const INTERNAL_ERROR_BODY = '{"error":{"message":"Internal gateway error.","type":"server_error","param":null,"code":"internal_error"}}';

/** toClientErrorResponse is the raw answer to a request Node's HTTP parser refused, OpenAI-shaped like every gateway error. */
function toClientErrorResponse(code: string | undefined): string {
  const [status, reason, message] =
    code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'The request headers are larger than this gateway accepts.']
      : code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT'
        ? [408, 'Request Timeout', 'The request headers did not arrive in time.']
        : [400, 'Bad Request', 'The request is not valid HTTP.'];
  const type = 'invalid_request_error';
  const errCode = status === 431 ? 'headers_too_large' : status === 408 ? 'request_timeout' : 'bad_request';
  const body = JSON.stringify({ error: { message, type, param: null, code: errCode }, message });
  return `HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-gateway-error: ${errCode}\r\n\r\n${body}`;
}

const DEFAULT_GRACE_S = 30;

/** Gateway is one running gateway process's listeners and state. */
export class Gateway {
  readonly #opts: GatewayOptions;
  readonly #log: Logger;
  readonly #pools = new PoolRegistry();
  readonly #registry = new TargetRegistry();
  readonly #semaphores = new SemaphoreRegistry();
  /** #history lists the configuration loads; recorded in #apply, where every reload is applied. */
  readonly #history = new ConfigHistory();
  /** #events feeds the dashboard (GET /events): samples the counters once a second from start() to stop(). */
  #events: AdminEvents | null = null;
  #limitStore: CounterStore | null = null;
  #generation: Generation | null = null;
  readonly #metrics = new GatewayMetrics();
  readonly #accessLog: AccessLog;
  readonly #healthLog: HealthLog;
  readonly #sockets = new Set<Socket>();
  readonly #startedAt = Date.now();
  /** #settings are the loaded config's gateway-level sections (models are compiled, not kept twice). */
  #settings: GatewaySettings;
  #store: ConfigStore;
  /** #proxy is the plain listener: the fast HTTP/1.1 front (or node:http itself when proxy.fast_http1 is false). */
  #proxy: NetServer | null = null;
  /** #http is the node:http server of the plain listener (the fast front's fallback). */
  #http: Server | null = null;
  #status: Server | null = null;
  #admin: Server | null = null;
  /** #configFile is the config file's absolute path; #inputs are the files its current content is made of. */
  readonly #configFile: string;
  #inputs: WatchInputs;
  #watcher: InputWatcher | null = null;
  #ports: GatewayPorts = { proxy: 0, status: 0, admin: 0, tls: 0, adminTls: 0, statusTls: 0 };
  #tls: Http2SecureServer | null = null;
  #adminTls: HttpsServer | null = null;
  #statusTls: HttpsServer | null = null;
  /** #tlsListeners are every HTTPS listener (proxy, admin, status) with the files its certificate is read from. */
  readonly #tlsListeners: Array<{ name: 'proxy' | 'admin' | 'status'; server: TlsServer; files: TlsFiles }> = [];
  #tlsWatcher: InputWatcher | null = null;
  readonly #sessions = new Set<ServerHttp2Session>();
  #isListening = false;
  #isDraining = false;
  #isLoading = false;
  #requestsTotal = 0;
  readonly #counters = { inflight: 0 };
  #connectionsAccepted = 0;

  /** Gateway loads and compiles the config at once: a bad file throws ConfigError before anything listens. */
  constructor(opts: GatewayOptions) {
    this.#opts = opts;
    this.#configFile = resolve(opts.cwd ?? process.cwd(), opts.configPath);
    const loaded = loadConfigFile(opts.configPath, { env: opts.env, cwd: opts.cwd });
    const warnings = checkStart(loaded, dirname(this.#configFile));
    this.#inputs = configInputs(this.#configFile, loaded.config);
    this.#settings = settingsOf(loaded);
    const logCfg = this.#settings.log;
    this.#log = opts.logger ?? createLogger(process.env.IGW_LOG_LEVEL ?? logCfg?.level ?? 'info');
    this.#healthLog = new HealthLog(this.#log);
    this.#accessLog = new AccessLog({ enabled: logCfg?.access_log ?? true, format: logCfg?.format ?? 'json', ...(opts.accessLogDest ? { dest: opts.accessLogDest } : {}) });
    const compileOptions = { registry: this.#registry, semaphores: this.#semaphores, rowOf: this.#metrics.rowOf };
    this.#store = new ConfigStore(compileSnapshot(loaded, compileOptions), compileOptions);
    this.#history.record('file', 'applied', this.#store.current.hash, [], loaded);
    for (const note of loaded.notes) this.#log.info(note);
    this.#logWarnings(warnings);
    this.#store.onSwap = (next) => this.#startGeneration(next);
    this.#registry.onChange = (record) => this.#onHealthChange(record);
  }

  /** #startGeneration starts a snapshot's health checks and discovery, and retires the previous ones. */
  #startGeneration(snapshot: Snapshot): void {
    this.#generation?.retire();
    this.#generation = new Generation(snapshot, this.#pools, {
      onDiscovered: (model, dns, urls) => {
        this.#log.info({ model, dns, targets: urls }, 'dns targets changed');
        this.#healthLog.checkModels(snapshot.models.filter((m) => m.name === model));
      },
    });
    for (const m of snapshot.models) for (const t of m.upstream.targets) this.#metrics.targetUp.labels(m.name, t.url).set(isUp(t.state) ? 1 : 0);
    // A model whose DNS targets are still being looked up is judged once they are found.
    this.#healthLog.retain(snapshot.models);
    this.#healthLog.checkModels(snapshot.models.filter((m) => m.upstream.targets.length > 0 || m.dnsTargets.length === 0));
  }

  #onHealthChange(record: TargetRecord): void {
    const users: Model[] = [];
    for (const m of this.#store.current.models) {
      if (!m.upstream.targets.some((t) => t.state === record)) continue;
      users.push(m);
      this.#metrics.targetUp.labels(m.name, record.url).set(isUp(record) ? 1 : 0);
    }
    this.#healthLog.targetChanged(record, users);
  }

  /** #onDrainChange updates igw_target_up of a target the admin API drained or undrained. */
  #onDrainChange(record: TargetRecord): void {
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
    const cfg = this.#settings;
    const proxyAddr = parseListen(cfg.proxy?.listen ?? LISTENER_DEFAULTS.proxy);
    const statusAddr = parseListen(cfg.status?.listen ?? LISTENER_DEFAULTS.status);
    const adminAddr = parseListen(cfg.admin?.listen ?? LISTENER_DEFAULTS.admin);
    const adminToken = cfg.admin?.token;
    const adminTlsAddr = cfg.admin?.tls_listen === undefined ? null : parseListen(cfg.admin.tls_listen);
    const statusTlsAddr = cfg.status?.tls_listen === undefined ? null : parseListen(cfg.status.tls_listen);

    const ls = cfg.limits_store ?? {};
    let limitStore: CounterStore;
    if (ls.policy === 'redis') {
      // Loaded only when used: ioredis is ~20 MiB of a gateway's idle memory.
      const { RedisStore } = await import('./ratelimit/redis-store.js');
      let lastRedisLogMs = 0;
      const redisStore = new RedisStore(ls.redis_url!, {
        timeoutMs: ls.timeout_ms ?? 500,
        onError: (err) => {
          // ioredis reports every failed reconnect; one line per 10 s is enough.
          if (Date.now() - lastRedisLogMs < 10_000) return;
          lastRedisLogMs = Date.now();
          this.#log.warn({ err: err.message }, 'redis connection problem');
        },
      });
      limitStore = redisStore;
      // Counting the first requests locally because the connection was still being made would
      // let a restart briefly exceed shared limits: wait for Redis, but not forever.
      if (!(await redisStore.waitReady(2000))) {
        const isTolerant = ls.fault_tolerant ?? true;
        this.#log.warn({ fault_tolerant: isTolerant }, `redis not reachable at start; limited requests are ${isTolerant ? 'counted locally' : 'refused with 503'} until it is`);
      }
    } else limitStore = new LocalStore();
    this.#limitStore = limitStore;
    const pipelineDeps = {
      current: () => this.#store.current,
      pools: this.#pools,
      metrics: this.#metrics,
      accessLog: this.#accessLog,
      counters: this.#counters,
      limits: { store: limitStore, isFaultTolerant: ls.fault_tolerant ?? true, log: this.#log },
      onError: (err: GatewayError, ctx: RequestContext) => {
        // A model without a healthy target is logged once when it goes down (HealthLog), not per refused request.
        if (err.code === 'no_healthy_upstream') return;
        this.#log.error({ request_id: ctx.requestId, code: err.code, model: ctx.model?.name, target: ctx.target?.url, cause: String(err.cause ?? '') }, 'gateway error');
      },
    };
    const guardUpgrade = (handle: (req: IncomingMessage, socket: Duplex, head: Buffer) => void) => (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
      this.#requestsTotal++;
      try {
        handle(req, socket, head);
      } catch (err) {
        this.#log.error({ err }, 'unhandled error in upgrade handler');
        socket.destroy();
      }
    };
    const guard = (handle: (req: GatewayRequest, res: GatewayResponse) => void) => (req: GatewayRequest, res: GatewayResponse): void => {
      this.#requestsTotal++;
      try {
        handle(req, res);
      } catch (err) {
        // The pipeline answers its own errors; this is the last guard so no request can take the process down.
        this.#log.error({ err }, 'unhandled error in request handler');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' }).end(INTERNAL_ERROR_BODY);
        else res.destroy();
      }
    };
    const p = cfg.proxy ?? {};
    const limits = {
      maxHeaderBytes: toBytes(p.max_header_size, DEFAULTS.maxHeaderBytes),
      headerTimeoutMs: toMs(p.header_timeout, DEFAULTS.headerTimeoutMs),
      keepaliveTimeoutMs: toMs(p.keepalive_timeout, DEFAULTS.keepaliveTimeoutMs),
      maxConnections: p.max_connections ?? DEFAULTS.maxConnections,
      http2MaxConcurrentStreams: p.http2_max_concurrent_streams ?? DEFAULTS.http2MaxConcurrentStreams,
    };
    const plain = createPipeline({ ...pipelineDeps, isTls: false });
    const proxy = createServer(
      {
        noDelay: true,
        keepAliveTimeout: limits.keepaliveTimeoutMs,
        // No overall request timeout: a stream may run for many minutes. Only headers are timed,
        // and Node checks that deadline every second instead of its default 30 s.
        requestTimeout: 0,
        headersTimeout: limits.headerTimeoutMs,
        connectionsCheckingInterval: 1000,
        maxHeaderSize: limits.maxHeaderBytes,
        requireHostHeader: true,
      },
      guard(plain.onRequest),
    );
    // WebSocket passthrough (HTTP/1.1 Upgrade); without this listener Node would serve upgrades as plain requests.
    proxy.on('upgrade', guardUpgrade(plain.onUpgrade));
    proxy.maxConnections = limits.maxConnections;
    // A malformed request never reaches the pipeline: answer with the status Node's parser implies, then close.
    // Behind a response still in progress on the connection, nothing is written: it closes after that response.
    proxy.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (!socket.writable || err.code === 'ECONNRESET') return void socket.destroy();
      if (!closeAfterResponses(socket)) socket.end(toClientErrorResponse(err.code));
    });
    this.#http = proxy;
    if (p.fast_http1 ?? true) {
      const front = new FastServer({
        maxHeadBytes: limits.maxHeaderBytes,
        headerTimeoutMs: limits.headerTimeoutMs,
        keepAliveTimeoutMs: limits.keepaliveTimeoutMs,
        fallback: proxy,
        onRequest: guard(plain.onRequest),
        timeoutAnswer: toClientErrorResponse('ERR_HTTP_REQUEST_TIMEOUT'),
        tooManyFieldsAnswer: toClientErrorResponse('HPE_HEADER_OVERFLOW'),
      });
      front.maxConnections = limits.maxConnections;
      // The fallback never listens itself; 'listening' starts its connection tracking and its
      // header-timeout checks for the connections it is handed.
      proxy.emit('listening');
      this.#trackConnections(front);
      this.#proxy = front;
    } else {
      this.#trackConnections(proxy);
      this.#proxy = proxy;
    }
    // A listener's own tls files, else proxy.tls, else one development certificate for all of them.
    const base = dirname(resolve(this.#opts.cwd ?? process.cwd(), this.#opts.configPath));
    let devFiles: TlsFiles | null = null;
    const tlsFilesOf = (listener: 'proxy' | 'admin' | 'status', own: TlsFiles | undefined): TlsFiles => {
      const set = own ?? p.tls;
      if (set !== undefined) return { cert: resolve(base, set.cert), key: resolve(base, set.key) };
      if (devFiles === null) {
        devFiles = generateDevCertificate();
        const unset = listener === 'proxy' ? 'proxy.tls is' : `${listener}.tls and proxy.tls are`;
        this.#log.warn({ cert: devFiles.cert }, `${unset} not set: serving HTTPS with a SELF-SIGNED DEVELOPMENT CERTIFICATE. Clients will not trust it; never use this in production.`);
      }
      return devFiles;
    };
    const tlsAddr = p.tls_listen === undefined ? null : parseListen(p.tls_listen);
    if (tlsAddr !== null) {
      const files = tlsFilesOf('proxy', p.tls);
      const secure = createPipeline({ ...pipelineDeps, isTls: true });
      const tls = createTlsServer({ files, maxHeaderBytes: limits.maxHeaderBytes, idleTimeoutMs: limits.keepaliveTimeoutMs, maxConcurrentStreams: limits.http2MaxConcurrentStreams }, guard(secure.onRequest));
      // HTTP/1.1 clients of the TLS listener (ALPN http/1.1) upgrade like plain ones; HTTP/2 has no Upgrade.
      tls.on('upgrade', guardUpgrade(secure.onUpgrade));
      tls.maxConnections = limits.maxConnections;
      this.#trackConnections(tls);
      tls.on('session', (session: ServerHttp2Session) => {
        this.#sessions.add(session);
        session.once('close', () => this.#sessions.delete(session));
      });
      this.#tls = tls;
      this.#tlsListeners.push({ name: 'proxy', server: tls, files });
    }
    const statusHandler = createStatusHandler({
      status: () => this.#statusDocument(),
      notReadyReason: () => (this.#isDraining ? 'draining' : this.#isListening ? null : 'starting'),
      metrics: () => this.#metrics.registry.metrics(),
      metricsContentType: this.#metrics.registry.contentType,
    });
    this.#events = new AdminEvents({ metrics: this.#metrics, accessLog: this.#accessLog, current: () => this.#store.current, limits: limitStore });
    const adminHandler = createAdminHandler({ host: this.#adminHost(), token: adminToken, audit: (line) => this.#log.info({ audit: line }, 'admin write'), events: this.#events });
    this.#status = createServer(statusHandler);
    this.#admin = createServer(adminHandler);
    // The same handlers over HTTPS (HTTP/1.1), as the Kong setup's 8101 and 8442.
    if (statusTlsAddr !== null) {
      const files = tlsFilesOf('status', cfg.status?.tls);
      this.#statusTls = createHttpsServer(files, statusHandler);
      this.#tlsListeners.push({ name: 'status', server: this.#statusTls, files });
    }
    if (adminTlsAddr !== null) {
      const files = tlsFilesOf('admin', cfg.admin?.tls);
      this.#adminTls = createHttpsServer(files, adminHandler);
      this.#tlsListeners.push({ name: 'admin', server: this.#adminTls, files });
    }
    this.#watchTlsFiles();

    // Before the first request: the compile's garbage goes now, not mid-traffic.
    this.#opts.afterCompile?.();
    // Status first, so readiness can answer "starting" while the proxy binds.
    const status = await listen(this.#status, statusAddr);
    const statusTls = this.#statusTls !== null && statusTlsAddr !== null ? await listen(this.#statusTls, statusTlsAddr) : 0;
    const admin = await listen(this.#admin, adminAddr);
    const adminTls = this.#adminTls !== null && adminTlsAddr !== null ? await listen(this.#adminTls, adminTlsAddr) : 0;
    const proxyPort = await listen(this.#proxy, proxyAddr);
    const tlsPort = this.#tls !== null && tlsAddr !== null ? await listen(this.#tls, tlsAddr) : 0;
    this.#ports = { proxy: proxyPort, status, admin, tls: tlsPort, adminTls, statusTls };
    this.#startGeneration(this.#store.current);
    this.#events.start();
    this.#isListening = true;
    this.#log.info({ ports: this.#ports, models: this.#store.current.models.length, hash: this.#store.current.hash }, 'gateway listening');
    return this.#ports;
  }

  #trackConnections(server: { on(event: 'connection', fn: (s: Socket) => void): unknown }): void {
    server.on('connection', (socket: Socket) => {
      this.#connectionsAccepted++;
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  /** #reloadTls swaps in every TLS listener's certificate files' current content; a bad file keeps that listener's old certificate. */
  #reloadTls(): void {
    for (const { name, server, files } of this.#tlsListeners) {
      try {
        reloadTls(server, files);
        this.#log.info({ listener: name, cert: files.cert }, 'tls certificate reloaded');
      } catch (err) {
        this.#log.error({ listener: name, err: String(err) }, 'tls certificate reload failed; the previous certificate stays');
      }
    }
  }

  #watchTlsFiles(): void {
    if (this.#tlsListeners.length === 0) return;
    // Only the certificate and key files, by content: a renewal reloads once, other writes in their folders never.
    const files = [...new Set(this.#tlsListeners.flatMap((l) => [l.files.cert, l.files.key]))];
    this.#tlsWatcher = new InputWatcher({ inputs: { files, dirs: [] }, onChange: () => this.#reloadTls() });
  }

  /** reload re-reads the config file; on any error it throws ConfigError and the old config keeps serving. */
  reload(source: ConfigSource = 'SIGHUP'): SwapResult {
    if (this.#isLoading) throw new ConfigError([{ file: this.#opts.configPath, field: '', message: 'another configuration load is in progress' }]);
    this.#isLoading = true;
    this.#reloadTls();
    // What to watch follows the file: a reload may import other recipe files or folders.
    const load = (): LoadedConfig => {
      try {
        const loaded = loadConfigFile(this.#opts.configPath, { env: this.#opts.env, cwd: this.#opts.cwd });
        this.#inputs = configInputs(this.#configFile, loaded.config);
        return loaded;
      } catch (err) {
        this.#inputs = readConfigInputs(this.#configFile);
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
      this.#log.error({ issues: err instanceof ConfigError ? err.issues : String(err) }, 'config reload failed; the previous configuration keeps serving');
    }
  }

  /** watch reloads when the content of the config file, or of a recipe file or folder it imports, changes (src/config/watch.ts). */
  watch(): void {
    if (this.#watcher !== null || this.#isDraining) return;
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

  /** #apply runs one load, its start checks and the swap, counting the result; it returns the result and the warnings to tell the caller. */
  #apply(load: () => LoadedConfig, isCheckHash: boolean, source: ConfigSource): { result: SwapResult; warnings: string[] } {
    let loaded: LoadedConfig;
    let issues: ConfigIssue[];
    let result: SwapResult;
    try {
      loaded = load();
      // What the next start would refuse is refused now, not at the next restart.
      issues = checkStart(loaded, dirname(this.#configFile));
      result = this.#store.swap(loaded);
    } catch (err) {
      this.#metrics.configReloads.labels('failed').inc();
      const errors = err instanceof ConfigError ? err.issues : [{ file: '', field: '', message: String(err) }];
      this.#history.record(source, 'failed', this.#store.current.hash, errors, null);
      throw err;
    }
    this.#metrics.configReloads.labels(result).inc();
    this.#history.record(source, result, this.#store.current.hash, [], loaded);
    // Listeners, TLS settings, the admin token, logging and the limits store are static: they
    // change only with a restart, and we say which instead of silently ignoring them.
    const next = settingsOf(loaded);
    const warnings = restartNeededFor(this.#settings, next).map((field) => `${field} changed: takes effect after a restart`);
    for (const w of warnings) this.#log.warn(w);
    if (result === 'applied') {
      this.#settings = next;
      this.#logWarnings(issues);
      this.#opts.afterCompile?.();
    }
    if (!isCheckHash || result === 'applied') this.#log.info({ result, hash: this.#store.current.hash }, 'config reload');
    return { result, warnings: [...warnings, ...issues.map((i) => `${i.file}: ${i.field}: ${i.message}`)] };
  }

  /** #logWarnings logs each config warning once, with its file and field (keys appear only as fingerprints). */
  #logWarnings(warnings: readonly ConfigIssue[]): void {
    for (const w of warnings) this.#log.warn({ file: w.file, field: w.field }, w.message);
  }

  #adminHost(): AdminHost {
    const configPath = this.#configFile;
    return {
      current: () => this.#store.current,
      status: () => this.#statusDocument(),
      inflight: async () => {
        const out = new Map<string, number>();
        for (const v of (await this.#metrics.inflight.get()).values) out.set(String(v.labels.model), (out.get(String(v.labels.model)) ?? 0) + v.value);
        return out;
      },
      history: () => this.#history.entries(),
      rollback: (hash) => {
        const loaded = this.#history.loadedOf(hash);
        return loaded === undefined ? null : this.#apply(() => loaded, false, 'rollback');
      },
      targetChanged: (record) => this.#onDrainChange(record),
      applyConfigText: (text, checkHash, source) => {
        const applied = this.#apply(() => loadConfigText(text, { file: 'POST /config', baseDir: dirname(configPath), env: this.#opts.env, cwd: this.#opts.cwd }), checkHash, source);
        // The file stays the source of truth: say when it takes over again.
        const when = `the next SIGHUP${this.#watcher !== null ? ', change of its files' : ''} or restart`;
        applied.warnings.push(`the configuration file ${this.#opts.configPath} replaces this configuration at ${when}`);
        return applied;
      },
      validateConfigText: (text) => dryRunConfig(text, { file: 'POST /config', baseDir: dirname(configPath), env: this.#opts.env, cwd: this.#opts.cwd }, this.#history.loadedOf(this.#store.current.hash)),
      isLoading: () => this.#isLoading,
      setLoading: (on) => {
        this.#isLoading = on;
      },
    };
  }

  #statusDocument(): object {
    const mem = process.memoryUsage();
    const snap = this.#store.current;
    return {
      server: {
        total_requests: this.#requestsTotal,
        connections_active: this.#sockets.size,
        connections_accepted: this.#connectionsAccepted,
        connections_handled: this.#connectionsAccepted,
        requests_inflight: this.#counters.inflight,
      },
      memory: { rss_bytes: mem.rss, heap_used_bytes: mem.heapUsed, heap_total_bytes: mem.heapTotal },
      uptime_seconds: Math.round((Date.now() - this.#startedAt) / 1000),
      ready: !this.#isDraining && this.#isListening,
      configuration_hash: snap.hash,
      configuration_loaded_at: snap.loadedAt.toISOString(),
    };
  }

  /** stop drains: readiness 503 at once, no new connections, in-flight requests get the grace period, then all closes. */
  async stop(): Promise<void> {
    if (this.#isDraining) return;
    this.#isDraining = true;
    this.#watcher?.close();
    this.#watcher = null;
    this.#generation?.retire();
    this.#events?.stop();
    const graceMs = this.#opts.shutdownGraceMs ?? (this.#settings.shutdown_grace_s ?? DEFAULT_GRACE_S) * 1000;
    const deadline = Date.now() + graceMs;
    this.#tlsWatcher?.close();
    // HTTP/2: GOAWAY to every session; their open streams may finish within the grace period.
    for (const session of this.#sessions) session.close();
    const tlsClosed = this.#tls === null ? Promise.resolve() : new Promise<void>((r) => this.#tls!.close(() => r()));
    const proxy = this.#proxy as (NetServer & { closeIdleConnections(): void }) | null;
    if (proxy !== null) {
      const closed = close(proxy);
      // Keep-alive sockets between requests are closed as they go idle; busy ones finish first.
      while (this.#sockets.size > 0 && Date.now() < deadline) {
        proxy.closeIdleConnections();
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const s of this.#sockets) s.destroy();
      await closed;
      // The fast front's fallback never listened: this only stops its timers.
      if (this.#http !== proxy) this.#http?.close(() => {});
    }
    for (const session of this.#sessions) session.destroy();
    await tlsClosed;
    for (const server of [this.#status, this.#admin, this.#statusTls, this.#adminTls]) {
      if (server === null) continue;
      const closed = close(server);
      server.closeAllConnections();
      await closed;
    }
    await this.#pools.destroy();
    this.#registry.dispose();
    await this.#limitStore?.close();
    this.#accessLog.close();
  }
}

/** isUp is igw_target_up's value: healthy and not drained. */
function isUp(t: { readonly isHealthy: boolean; readonly isDrained?: boolean }): boolean {
  return t.isHealthy && t.isDrained !== true;
}

/** GatewaySettings are a config's sections other than its models. */
type GatewaySettings = Omit<GatewayConfig, 'models' | 'blueprints' | 'defaults'>;

/** settingsOf keeps what the gateway reads after compiling: not the model list (10,000 models are ~15 MB). */
function settingsOf(loaded: LoadedConfig): GatewaySettings {
  const { models: _models, blueprints: _blueprints, defaults: _defaults, ...settings } = loaded.config;
  return settings;
}
