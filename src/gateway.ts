/**
 * Gateway wires the parts together and owns their start and stop order: load and compile the
 * config, then open the proxy, status and admin listeners; on stop, close listeners first, let
 * in-flight requests finish (bounded), then close the upstream pools.
 */
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { createAdminServer, isLoopbackHost } from './admin/index.js';
import { ConfigStore, compileSnapshot, loadConfigFile, parseListen, type LoadedConfig, type Snapshot, type SwapResult } from './config/index.js';
import { close, listen } from './http/index.js';
import { createLogger, type Logger } from './log/index.js';
import { createPipeline } from './pipeline/index.js';
import { createStatusServer } from './status/index.js';
import { PoolRegistry } from './upstream/index.js';

/** GatewayOptions are how a Gateway is built: from a config file, or an already loaded config (tests). */
export interface GatewayOptions {
  configPath: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logger?: Logger;
  /** drainTimeoutMs bounds how long stop() waits for in-flight requests (default 30 s). */
  drainTimeoutMs?: number;
}

/** GatewayPorts are the ports the listeners got (useful when configured with port 0). */
export interface GatewayPorts {
  proxy: number;
  status: number;
  admin: number;
}

/** Gateway is one running gateway process's listeners and state. */
export class Gateway {
  readonly #opts: GatewayOptions;
  readonly #log: Logger;
  readonly #pools = new PoolRegistry();
  readonly #sockets = new Set<Socket>();
  #loaded: LoadedConfig;
  #store: ConfigStore;
  #proxy: Server | null = null;
  #status: Server | null = null;
  #admin: Server | null = null;
  #ports: GatewayPorts = { proxy: 0, status: 0, admin: 0 };
  #isDraining = false;
  #requestsTotal = 0;
  #connectionsAccepted = 0;
  readonly #startedAt = Date.now();

  /** Gateway loads and compiles the config at once: a bad file throws ConfigError before anything listens. */
  constructor(opts: GatewayOptions) {
    this.#opts = opts;
    this.#log = opts.logger ?? createLogger();
    this.#loaded = loadConfigFile(opts.configPath, { env: opts.env, cwd: opts.cwd });
    this.#store = new ConfigStore(compileSnapshot(this.#loaded));
    for (const note of this.#loaded.notes) this.#log.info(note);
  }

  /** snapshot is the configuration new requests are served with. */
  get snapshot(): Snapshot {
    return this.#store.current;
  }

  /** ports are the bound ports, after start(). */
  get ports(): GatewayPorts {
    return this.#ports;
  }

  /** start opens the listeners; it refuses an admin listener beyond loopback without a token. */
  async start(): Promise<GatewayPorts> {
    const cfg = this.#loaded.config;
    const proxyAddr = parseListen(cfg.proxy?.listen ?? '0.0.0.0:8000');
    const statusAddr = parseListen(cfg.status?.listen ?? '0.0.0.0:8100');
    const adminAddr = parseListen(cfg.admin?.listen ?? '127.0.0.1:8001');
    const adminToken = cfg.admin?.token;
    if (!isLoopbackHost(adminAddr.host) && adminToken === undefined) {
      throw new Error(`admin.listen ${adminAddr.host}:${adminAddr.port} is not a loopback address and admin.token is not set: refusing to expose the admin API without a token`);
    }
    if (cfg.proxy?.tls_listen !== undefined) this.#log.warn('proxy.tls_listen is set but TLS is not served yet (issue #6); only proxy.listen is open');

    const handle = createPipeline({
      current: () => this.#store.current,
      pools: this.#pools,
      isTls: false,
      onError: (err, ctx) =>
        this.#log.error({ request_id: ctx.requestId, code: err.code, model: ctx.model?.name, target: ctx.target?.url, cause: String(err.cause ?? '') }, 'gateway error'),
    });
    const proxy = createServer({ noDelay: true, keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 10_000 }, (req, res) => {
      this.#requestsTotal++;
      try {
        handle(req, res);
      } catch (err) {
        // The pipeline answers its own errors; this is the last guard so no request can take the process down.
        this.#log.error({ err }, 'unhandled error in request handler');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"message":"Internal gateway error.","type":"server_error","param":null,"code":"internal_error"}}');
        else res.destroy();
      }
    });
    proxy.on('connection', (socket: Socket) => {
      this.#connectionsAccepted++;
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    // A malformed request never reaches the pipeline; Node answers 400 and the socket closes.
    proxy.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (socket.writable && err.code !== 'ECONNRESET') socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      else socket.destroy();
    });
    this.#proxy = proxy;
    this.#status = createStatusServer({
      startedAt: this.#startedAt,
      counters: () => ({ requestsTotal: this.#requestsTotal, connectionsActive: this.#sockets.size, connectionsAccepted: this.#connectionsAccepted }),
      configHash: () => this.#store.current.hash,
      configLoadedAt: () => this.#store.current.loadedAt,
      notReadyReason: () => (this.#isDraining ? 'draining' : this.#proxy?.listening ? null : 'starting'),
    });
    this.#admin = createAdminServer({ current: () => this.#store.current, token: adminToken });

    this.#ports = {
      proxy: await listen(proxy, proxyAddr),
      status: await listen(this.#status, statusAddr),
      admin: await listen(this.#admin, adminAddr),
    };
    this.#log.info({ ports: this.#ports, models: this.#store.current.models.length, hash: this.#store.current.hash }, 'gateway listening');
    return this.#ports;
  }

  /** reload re-reads the config file; on any error it throws ConfigError and the old config keeps serving. */
  reload(): SwapResult {
    const loaded = loadConfigFile(this.#opts.configPath, { env: this.#opts.env, cwd: this.#opts.cwd });
    const result = this.#store.swap(loaded);
    const staticOf = (c: LoadedConfig): string => JSON.stringify([c.config.proxy?.listen, c.config.admin, c.config.status]);
    // Listeners and the admin token are static: they change only with a restart, and we say so.
    if (staticOf(loaded) !== staticOf(this.#loaded)) this.#log.warn('listen addresses or admin token changed: they take effect after a restart');
    if (result === 'applied') this.#loaded = loaded;
    this.#log.info({ result, hash: this.#store.current.hash }, 'config reload');
    return result;
  }

  /** stop closes the listeners, waits for in-flight requests (bounded), then closes upstream pools. */
  async stop(): Promise<void> {
    if (this.#isDraining) return;
    this.#isDraining = true;
    const drainMs = this.#opts.drainTimeoutMs ?? 30_000;
    const proxyClosed = this.#proxy ? close(this.#proxy) : Promise.resolve();
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, drainMs).unref());
    await Promise.race([proxyClosed, deadline]);
    for (const s of this.#sockets) s.destroy();
    this.#proxy?.closeAllConnections();
    await Promise.all([this.#status ? close(this.#status) : undefined, this.#admin ? close(this.#admin) : undefined]);
    this.#status?.closeAllConnections();
    this.#admin?.closeAllConnections();
    await this.#pools.destroy();
  }
}
