/**
 * Listeners are the gateway's sockets: the plain proxy listener (the fast HTTP/1.1 front with
 * node:http behind it, or node:http alone), the HTTPS proxy listener (HTTP/2 and HTTP/1.1 by
 * ALPN), and the status and admin listeners with their optional HTTPS twins. They count requests
 * and connections for the status document, reload certificates when their files change, and
 * drain on close: no new connections, idle keep-alive sockets closed, busy ones given the grace
 * period.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import type { Http2SecureServer, ServerHttp2Session } from 'node:http2';
import type { Server as HttpsServer } from 'node:https';
import type { Server as NetServer, Socket } from 'node:net';
import { resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Server as TlsServer } from 'node:tls';
import type { Logger } from 'pino';
import { DEFAULTS, InputWatcher, parseListen, toBytes, toMs, type GatewaySettings } from '../config/index.js';
import { close, closeAfterResponses, createHttpsServer, createTlsServer, generateDevCertificate, listen, reloadTls, type GatewayRequest, type GatewayResponse, type ListenAddress, type TlsFiles } from '../http/index.js';
import { FastServer } from '../http/fast/index.js';

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

/** ProxyHandlers are a proxy listener's request and WebSocket-upgrade entry points (a pipeline). */
export interface ProxyHandlers {
  onRequest: (req: GatewayRequest, res: GatewayResponse) => void;
  onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

/** ListenersOptions are the static settings and the handlers the listeners serve. */
export interface ListenersOptions {
  settings: Pick<GatewaySettings, 'proxy' | 'admin' | 'status'>;
  /** baseDir is the configuration file's folder: relative TLS file names are resolved from it. */
  baseDir: string;
  log: Logger;
  /** proxy builds the handlers of a proxy listener (isTls: the HTTPS one). */
  proxy: (isTls: boolean) => ProxyHandlers;
  status: RequestListener;
  admin: RequestListener;
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

/** Listeners builds every listener of the gateway at once and opens them in order. */
export class Listeners {
  readonly #log: Logger;
  readonly #sockets = new Set<Socket>();
  readonly #sessions = new Set<ServerHttp2Session>();
  /** #proxy is the plain listener: the fast HTTP/1.1 front (or node:http itself when proxy.fast_http1 is false). */
  readonly #proxy: NetServer;
  /** #http is the node:http server of the plain listener (the fast front's fallback). */
  readonly #http: Server;
  readonly #status: Server;
  readonly #admin: Server;
  #tls: Http2SecureServer | null = null;
  #adminTls: HttpsServer | null = null;
  #statusTls: HttpsServer | null = null;
  /** #tlsListeners are every HTTPS listener (proxy, admin, status) with the files its certificate is read from. */
  readonly #tlsListeners: Array<{ name: 'proxy' | 'admin' | 'status'; server: TlsServer; files: TlsFiles }> = [];
  #tlsWatcher: InputWatcher | null = null;
  readonly #addresses: { proxy: ListenAddress; status: ListenAddress; admin: ListenAddress; tls: ListenAddress | null; adminTls: ListenAddress | null; statusTls: ListenAddress | null };
  #requestsTotal = 0;
  #connectionsAccepted = 0;

  constructor(opts: ListenersOptions) {
    this.#log = opts.log;
    const cfg = opts.settings;
    const p = cfg.proxy ?? {};
    this.#addresses = {
      proxy: parseListen(p.listen ?? DEFAULTS.listen.proxy),
      status: parseListen(cfg.status?.listen ?? DEFAULTS.listen.status),
      admin: parseListen(cfg.admin?.listen ?? DEFAULTS.listen.admin),
      tls: p.tls_listen === undefined ? null : parseListen(p.tls_listen),
      adminTls: cfg.admin?.tls_listen === undefined ? null : parseListen(cfg.admin.tls_listen),
      statusTls: cfg.status?.tls_listen === undefined ? null : parseListen(cfg.status.tls_listen),
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
    const limits = {
      maxHeaderBytes: toBytes(p.max_header_size, DEFAULTS.maxHeaderBytes),
      headerTimeoutMs: toMs(p.header_timeout, DEFAULTS.headerTimeoutMs),
      keepaliveTimeoutMs: toMs(p.keepalive_timeout, DEFAULTS.keepaliveTimeoutMs),
      maxConnections: p.max_connections ?? DEFAULTS.maxConnections,
      http2MaxConcurrentStreams: p.http2_max_concurrent_streams ?? DEFAULTS.http2MaxConcurrentStreams,
    };
    const plain = opts.proxy(false);
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
    if (p.fast_http1 ?? DEFAULTS.isFastHttp1) {
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
    let devFiles: TlsFiles | null = null;
    const tlsFilesOf = (listener: 'proxy' | 'admin' | 'status', own: TlsFiles | undefined): TlsFiles => {
      const set = own ?? p.tls;
      if (set !== undefined) return { cert: resolve(opts.baseDir, set.cert), key: resolve(opts.baseDir, set.key) };
      if (devFiles === null) {
        devFiles = generateDevCertificate();
        const unset = listener === 'proxy' ? 'proxy.tls is' : `${listener}.tls and proxy.tls are`;
        this.#log.warn({ cert: devFiles.cert }, `${unset} not set: serving HTTPS with a SELF-SIGNED DEVELOPMENT CERTIFICATE. Clients will not trust it; never use this in production.`);
      }
      return devFiles;
    };
    if (this.#addresses.tls !== null) {
      const files = tlsFilesOf('proxy', p.tls);
      const secure = opts.proxy(true);
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
    this.#status = createServer(opts.status);
    this.#admin = createServer(opts.admin);
    // The same handlers over HTTPS (HTTP/1.1), as the Kong setup's 8101 and 8442.
    if (this.#addresses.statusTls !== null) {
      const files = tlsFilesOf('status', cfg.status?.tls);
      this.#statusTls = createHttpsServer(files, opts.status);
      this.#tlsListeners.push({ name: 'status', server: this.#statusTls, files });
    }
    if (this.#addresses.adminTls !== null) {
      const files = tlsFilesOf('admin', cfg.admin?.tls);
      this.#adminTls = createHttpsServer(files, opts.admin);
      this.#tlsListeners.push({ name: 'admin', server: this.#adminTls, files });
    }
    this.#watchTlsFiles();
  }

  /** requestsTotal counts the requests and upgrades the proxy listeners received. */
  get requestsTotal(): number {
    return this.#requestsTotal;
  }

  /** connectionsActive is how many proxy connections are open. */
  get connectionsActive(): number {
    return this.#sockets.size;
  }

  /** connectionsAccepted counts the proxy connections accepted. */
  get connectionsAccepted(): number {
    return this.#connectionsAccepted;
  }

  /** listen binds every listener: status first, so readiness can answer "starting" while the proxy binds. */
  async listen(): Promise<GatewayPorts> {
    const a = this.#addresses;
    const status = await listen(this.#status, a.status);
    const statusTls = this.#statusTls !== null && a.statusTls !== null ? await listen(this.#statusTls, a.statusTls) : 0;
    const admin = await listen(this.#admin, a.admin);
    const adminTls = this.#adminTls !== null && a.adminTls !== null ? await listen(this.#adminTls, a.adminTls) : 0;
    const proxyPort = await listen(this.#proxy, a.proxy);
    const tlsPort = this.#tls !== null && a.tls !== null ? await listen(this.#tls, a.tls) : 0;
    return { proxy: proxyPort, status, admin, tls: tlsPort, adminTls, statusTls };
  }

  #trackConnections(server: { on(event: 'connection', fn: (s: Socket) => void): unknown }): void {
    server.on('connection', (socket: Socket) => {
      this.#connectionsAccepted++;
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  /** reloadTls swaps in every TLS listener's certificate files' current content; a bad file keeps that listener's old certificate. */
  reloadTls(): void {
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
    this.#tlsWatcher = new InputWatcher({ inputs: { files, dirs: [] }, onChange: () => this.reloadTls() });
  }

  /** close drains: no new connections, in-flight requests get until deadlineMs (clock time), then every listener closes. */
  async close(deadlineMs: number): Promise<void> {
    this.#tlsWatcher?.close();
    // HTTP/2: GOAWAY to every session; their open streams may finish within the grace period.
    for (const session of this.#sessions) session.close();
    const tlsClosed = this.#tls === null ? Promise.resolve() : new Promise<void>((r) => this.#tls!.close(() => r()));
    const proxy = this.#proxy as NetServer & { closeIdleConnections(): void };
    const closed = close(proxy);
    // Keep-alive sockets between requests are closed as they go idle; busy ones finish first.
    while (this.#sockets.size > 0 && Date.now() < deadlineMs) {
      proxy.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const s of this.#sockets) s.destroy();
    await closed;
    // The fast front's fallback never listened: this only stops its timers.
    if (this.#http !== proxy) this.#http.close(() => {});
    for (const session of this.#sessions) session.destroy();
    await tlsClosed;
    for (const server of [this.#status, this.#admin, this.#statusTls, this.#adminTls]) {
      if (server === null) continue;
      const closed = close(server);
      server.closeAllConnections();
      await closed;
    }
  }
}
