/**
 * The admin listener (Kong's 8001, and 8442 over HTTPS). `GET /status`, `GET /models`, `GET /models/{name}`,
 * `GET /config` (keys never shown, only counted) and `POST /config`, which replaces the whole
 * configuration like Kong's DB-less `/config`: 201 with the new hash and the warnings (settings
 * that wait for a restart, weak keys, the config file that will replace it), 400 with every error
 * and nothing changed, 304 for `?check_hash=1` when unchanged, 429 while another load runs.
 * With a token set, every call needs `Authorization: Bearer <token>`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, RequestListener } from 'node:http';
import { ConfigError, describeSnapshot, type Snapshot, type SwapResult } from '../config/index.js';
import { sendJson } from '../http/index.js';

/** AdminHost is what the admin API reads and changes; the Gateway implements it. */
export interface AdminHost {
  current(): Snapshot;
  /** status is the same document as the status listener's /status. */
  status(): object;
  /** inflight returns the requests in flight per model name. */
  inflight(): Promise<Map<string, number>>;
  /** applyConfigText validates and swaps a whole configuration; throws ConfigError on any mistake. */
  applyConfigText(text: string, checkHash: boolean): { result: SwapResult; warnings: string[] };
  /** isLoading tells whether a configuration load is running. */
  isLoading(): boolean;
  setLoading(on: boolean): void;
}

/** AdminOptions are the admin listener's inputs. */
export interface AdminOptions {
  host: AdminHost;
  /** token, when set, is required as a bearer token. */
  token: string | undefined;
  /** maxConfigBytes bounds a POST /config body (default 16 MiB). */
  maxConfigBytes?: number;
}

/** ADMIN_INDEX is the answer to `GET /`: what this listener serves. */
const ADMIN_INDEX = Object.freeze({
  service: 'inference-gateway admin API',
  endpoints: [
    { method: 'GET', path: '/status', description: 'the same document as the status listener\'s /status' },
    { method: 'GET', path: '/models', description: 'every model with live target state, in-flight counts and limits' },
    { method: 'GET', path: '/models/{name}', description: 'the models of that name (one per path)' },
    { method: 'GET', path: '/config', description: 'the compiled configuration (keys never shown, only counted)' },
    { method: 'POST', path: '/config', description: 'replace the whole configuration (YAML or JSON body); ?check_hash=1 answers 304 when unchanged' },
  ],
});

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** readText reads a request body up to a limit; resolves null when it is larger. */
function readText(req: IncomingMessage, limit: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    req.on('end', () => resolve(size > limit ? null : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** createAdminHandler is the admin listener's request handler, token check included; the same handler serves admin.tls_listen. */
export function createAdminHandler(opts: AdminOptions): RequestListener {
  // Compared as fixed-length digests so neither the length nor a prefix of the token leaks through timing.
  const expected = opts.token === undefined ? null : digest(opts.token);
  const maxBytes = opts.maxConfigBytes ?? 16 * 1024 * 1024;
  const host = opts.host;

  const postConfig = async (req: IncomingMessage, checkHash: boolean): Promise<[number, unknown, Record<string, string>?]> => {
    if (host.isLoading()) return [429, { message: 'A configuration load is in progress' }, { 'retry-after': '1' }];
    host.setLoading(true);
    try {
      const text = await readText(req, maxBytes);
      if (text === null) return [413, { message: `Configuration larger than ${maxBytes} bytes` }];
      const { result, warnings } = host.applyConfigText(text, checkHash);
      if (result === 'unchanged' && checkHash) return [304, null];
      return [201, { configuration_hash: host.current().hash, result, warnings }];
    } catch (err) {
      if (err instanceof ConfigError) return [400, { message: err.message.split('\n')[0], errors: err.issues }];
      throw err;
    } finally {
      host.setLoading(false);
    }
  };

  const handle = async (req: IncomingMessage): Promise<[number, unknown, Record<string, string>?]> => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
    if (path === '/config' && req.method === 'POST') return postConfig(req, query.get('check_hash') === '1');
    if (req.method !== 'GET') return [405, { message: 'Method not allowed' }];
    if (path === '/status') return [200, host.status()];
    const snapshot = host.current();
    const view = describeSnapshot(snapshot);
    if (path === '/config') return [200, view];
    if (path === '/models' || path.startsWith('/models/')) {
      const inflight = await host.inflight();
      const models = snapshot.models.map((m, i) => ({
        ...view.models[i]!,
        inflight: inflight.get(m.name) ?? 0,
        targets: m.upstream.targets.map((t) => ({
          url: t.url,
          weight: t.weight,
          healthy: t.state.isHealthy,
          active_healthy: t.state.isActiveHealthy,
          ejected_until: t.state.ejectedUntilMs > 0 ? new Date(t.state.ejectedUntilMs).toISOString() : null,
          inflight: t.state.inflight,
          load: t.state.load,
        })),
        limits: m.limits === null ? null : [...m.limits.scopes, ...m.limits.keyScopes.values()].map((sc) => ({
          scope: sc.label,
          rules: sc.rules.map((r) => r.description),
          concurrency: sc.semaphore === null ? null : { max: sc.semaphore.max, running: sc.semaphore.running, queue: sc.semaphore.queueMax, waiting: sc.semaphore.waiting },
        })),
      }));
      if (path === '/models') return [200, { data: models }];
      let name: string;
      try {
        name = decodeURIComponent(path.slice('/models/'.length));
      } catch {
        return [400, { message: 'Bad model name encoding' }];
      }
      const found = models.filter((m) => m.name === name);
      return found.length > 0 ? [200, { data: found }] : [404, { message: 'Not found' }];
    }
    if (path === '/') return [200, ADMIN_INDEX];
    return [404, { message: 'Not found: GET / lists the endpoints' }];
  };

  return (req, res) => {
    if (expected !== null) {
      const auth = req.headers.authorization ?? '';
      const given = auth.toLowerCase().startsWith('bearer ') ? auth.slice(7).trim() : '';
      if (!timingSafeEqual(digest(given), expected)) {
        return sendJson(res, 401, { message: 'Unauthorized' }, { 'www-authenticate': 'Bearer realm="inference-gateway-admin"' });
      }
    }
    handle(req).then(
      ([status, body, headers]) => {
        if (status === 304) {
          res.writeHead(304, headers);
          res.end();
        } else sendJson(res, status, body, headers);
      },
      () => sendJson(res, 500, { message: 'Internal error' }),
    );
  };
}
