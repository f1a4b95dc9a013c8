/**
 * The admin listener (Kong's 8001, and 8442 over HTTPS). `GET /status`, `GET /models`, `GET /models/{name}`,
 * `GET /config` (keys never shown, only counted) and `POST /config`, which replaces the whole
 * configuration like Kong's DB-less `/config`: 201 with the new hash and the warnings (settings
 * that wait for a restart, weak keys, the config file that will replace it), 400 with every error
 * and nothing changed, 304 for `?check_hash=1` when unchanged, 429 while another load runs.
 * `GET /config/history` lists the loads, `POST /config/rollback/{hash}` restores one of the last
 * applied configurations, `POST /config/validate` says what `POST /config` would say about a body
 * without applying it, and `POST /models/{name}/targets/{target}/drain` (and `undrain`) keeps
 * new requests off a target while its in-flight ones finish.
 * With a token set, every call needs `Authorization: Bearer <token>`. Every write (any method
 * but GET and HEAD) is logged as one audit line: client address, method, path, action, status;
 * never a header, so never the token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { ConfigError, describeSnapshot, type DryRun, type Snapshot, type SwapResult } from '../config/index.js';
import { sendJson } from '../http/index.js';
import type { LoadSample, TargetState } from '../upstream/index.js';
import type { ConfigHistoryEntry, ConfigSource } from './config-history.js';
import { createUiHandler } from './ui-files.js';

/** AdminHost is what the admin API reads and changes; the Gateway implements it. */
export interface AdminHost {
  current(): Snapshot;
  /** status is the same document as the status listener's /status. */
  status(): object;
  /** flow is a model's flow-control queue (saturated, waiting per priority and tenant), or null without flow control. */
  flow?(model: Snapshot['models'][number]): object | null;
  /** inflight returns the requests in flight per model name. */
  inflight(): Promise<Map<string, number>>;
  /** applyConfigText validates and swaps a whole configuration; throws ConfigError on any mistake. */
  applyConfigText(text: string, checkHash: boolean, source: ConfigSource): { result: SwapResult; warnings: string[] };
  /** validateConfigText runs the load and start checks of applyConfigText and changes nothing; throws ConfigError on any mistake. */
  validateConfigText(text: string): DryRun;
  /** history lists the configuration loads, newest first. */
  history(): ConfigHistoryEntry[];
  /** runningDocument is the running configuration as loaded, as YAML with keys and tokens as fingerprints; null when not known. */
  runningDocument(): string | null;
  /** rollback swaps back an applied configuration by its hash; null when it is not among the kept ones. */
  rollback(hash: string): { result: SwapResult; warnings: string[] } | null;
  /** targetChanged is told when the admin API drained or undrained a target (metrics). */
  targetChanged(record: TargetState): void;
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
  /** audit receives one line per admin write, after it was answered. */
  audit?: (line: AuditLine) => void;
  /** events serves `GET /events` (Server-Sent Events for the dashboard); without it the path is 404. */
  events?: { handle(req: IncomingMessage, res: ServerResponse): void };
}

/** AuditLine is what the audit log says about one admin write. */
export interface AuditLine {
  client: string;
  method: string;
  path: string;
  /** action names the write: config_apply, config_validate, config_rollback, target_drain, target_undrain, or unknown. */
  action: string;
  status: number;
}

/** actionOf names the admin write a method and path make. */
function actionOf(method: string, path: string): string {
  if (method !== 'POST') return 'unknown';
  if (path === '/config') return 'config_apply';
  if (path === '/config/validate') return 'config_validate';
  if (path.startsWith('/config/rollback/')) return 'config_rollback';
  if (path.startsWith('/models/') && path.endsWith('/drain')) return 'target_drain';
  if (path.startsWith('/models/') && path.endsWith('/undrain')) return 'target_undrain';
  return 'unknown';
}

/** ADMIN_INDEX is the answer to `GET /`: what this listener serves. */
const ADMIN_INDEX = Object.freeze({
  service: 'inference-gateway admin API',
  endpoints: [
    { method: 'GET', path: '/status', description: 'the same document as the status listener\'s /status' },
    { method: 'GET', path: '/models', description: 'every model with live target state, in-flight counts and limits' },
    { method: 'GET', path: '/models/{name}', description: 'the models of that name (one per path)' },
    { method: 'GET', path: '/config', description: 'the compiled configuration (keys never shown, only counted)' },
    { method: 'GET', path: '/config/document', description: 'the running configuration as loaded (YAML; keys and tokens as fingerprints) and its hash' },
    { method: 'POST', path: '/config', description: 'replace the whole configuration (YAML or JSON body); ?check_hash=1 answers 304 when unchanged' },
    { method: 'GET', path: '/ui/', description: 'the dashboard (a browser asking for GET / is redirected there)' },
    { method: 'GET', path: '/events', description: 'Server-Sent Events: the last 15 minutes of 1 s samples on connect, then a sample, the fleet and new requests every second' },
    { method: 'POST', path: '/config/validate', description: 'check a whole configuration as POST /config would, without applying it: its errors with file:line:column, or its warnings and both configurations as text to diff' },
    { method: 'GET', path: '/config/history', description: 'the configuration loads, newest first: time, source, result, hash, errors' },
    { method: 'POST', path: '/config/rollback/{hash}', description: 'swap back one of the last 10 applied configurations' },
    { method: 'POST', path: '/models/{name}/targets/{target}/drain', description: 'no new requests to that target (its index in the model, or its URL-encoded URL); in-flight ones finish' },
    { method: 'POST', path: '/models/{name}/targets/{target}/undrain', description: 'end a drain' },
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

  /** load runs one configuration load under the admin API's lock (one at a time, 429 while another runs). */
  const load = async (run: () => Promise<[number, unknown, Record<string, string>?]>): Promise<[number, unknown, Record<string, string>?]> => {
    if (host.isLoading()) return [429, { message: 'A configuration load is in progress' }, { 'retry-after': '1' }];
    host.setLoading(true);
    try {
      return await run();
    } catch (err) {
      if (err instanceof ConfigError) return [400, { message: err.message.split('\n')[0], errors: err.issues }];
      throw err;
    } finally {
      host.setLoading(false);
    }
  };

  const postConfig = (req: IncomingMessage, checkHash: boolean): Promise<[number, unknown, Record<string, string>?]> =>
    load(async () => {
      const text = await readText(req, maxBytes);
      if (text === null) return [413, { message: `Configuration larger than ${maxBytes} bytes` }];
      // The dashboard marks its own applies, so the history can tell them from scripts.
      const source: ConfigSource = String(req.headers['x-config-source'] ?? '').toLowerCase() === 'ui' ? 'UI' : 'POST';
      const { result, warnings } = host.applyConfigText(text, checkHash, source);
      if (result === 'unchanged' && checkHash) return [304, null];
      return [201, { configuration_hash: host.current().hash, result, warnings }];
    });

  /** validate is POST /config's checks without the swap: no lock (it changes nothing), no history entry. */
  const validate = async (req: IncomingMessage): Promise<[number, unknown, Record<string, string>?]> => {
    const text = await readText(req, maxBytes);
    if (text === null) return [413, { message: `Configuration larger than ${maxBytes} bytes` }];
    try {
      const { warnings, config, running } = host.validateConfigText(text);
      return [200, { valid: true, warnings, config, running }];
    } catch (err) {
      if (err instanceof ConfigError) return [400, { valid: false, message: err.message.split('\n')[0], errors: err.issues }];
      throw err;
    }
  };

  const rollback = (hash: string): Promise<[number, unknown, Record<string, string>?]> =>
    load(async () => {
      const applied = host.rollback(hash);
      if (applied === null) return [404, { message: 'No such configuration among the last applied ones: GET /config/history lists them' }];
      return [201, { configuration_hash: host.current().hash, result: applied.result, warnings: applied.warnings }];
    });

  /** drain sets or clears the drain of one target of the models of a name; path is /models/{name}/targets/{target}/(un)drain. */
  const drain = (path: string, isDrained: boolean): [number, unknown] => {
    const rest = path.slice('/models/'.length, path.lastIndexOf('/'));
    const at = rest.lastIndexOf('/targets/');
    if (at === -1) return [404, { message: 'Not found: POST /models/{name}/targets/{target}/drain' }];
    let name: string;
    let target: string;
    try {
      name = decodeURIComponent(rest.slice(0, at));
      target = decodeURIComponent(rest.slice(at + '/targets/'.length));
    } catch {
      return [400, { message: 'Bad model name or target encoding' }];
    }
    const models = host.current().models.filter((m) => m.name === name);
    if (models.length === 0) return [404, { message: 'No such model' }];
    // A target is its index in the model's target list, or its URL.
    const index = /^\d+$/.test(target) ? Number(target) : -1;
    const records = new Set<TargetState>();
    for (const m of models) {
      const t = index >= 0 ? m.upstream.targets[index] : m.upstream.targets.find((x) => x.url === target);
      if (t !== undefined) records.add(t.state);
    }
    if (records.size === 0) return [404, { message: 'No such target in this model: use its index or its URL-encoded URL' }];
    const out = [];
    for (const r of records) {
      if (r.isDrained !== isDrained) {
        r.isDrained = isDrained;
        host.targetChanged(r);
      }
      out.push({ url: r.url, drained: r.isDrained, inflight: r.inflight });
    }
    return [200, { model: name, targets: out }];
  };

  const handle = async (req: IncomingMessage): Promise<[number, unknown, Record<string, string>?]> => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
    if (req.method === 'POST') {
      if (path === '/config') return postConfig(req, query.get('check_hash') === '1');
      if (path === '/config/validate') return validate(req);
      if (path.startsWith('/config/rollback/')) return rollback(path.slice('/config/rollback/'.length));
      if (path.startsWith('/models/') && path.endsWith('/drain')) return drain(path, true);
      if (path.startsWith('/models/') && path.endsWith('/undrain')) return drain(path, false);
    }
    if (req.method !== 'GET') return [405, { message: 'Method not allowed' }];
    if (path === '/status') return [200, host.status()];
    if (path === '/config/history') return [200, { data: host.history() }];
    if (path === '/config/document') return [200, { hash: host.current().hash, document: host.runningDocument() }];
    const snapshot = host.current();
    const view = describeSnapshot(snapshot);
    if (path === '/config') return [200, view];
    if (path === '/models' || path.startsWith('/models/')) {
      const inflight = await host.inflight();
      const models = snapshot.models.map((m, i) => ({
        ...view.models[i]!,
        inflight: inflight.get(m.name) ?? 0,
        flow_control: host.flow?.(m) ?? null,
        targets: m.upstream.targets.map((t) => ({
          url: t.url,
          weight: t.weight,
          healthy: t.state.isHealthy,
          active_healthy: t.state.isActiveHealthy,
          served_models: t.state.servedIds,
          served_adapters: t.state.servedAdapters?.map((x) => x.id) ?? null,
          model_mismatch: t.state.isModelMismatch,
          drained: t.state.isDrained,
          ejected_until: t.state.ejectedUntilMs > 0 ? new Date(t.state.ejectedUntilMs).toISOString() : null,
          inflight: t.state.inflight,
          load: loadView(t.state.load),
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

  const audit = opts.audit;
  const ui = createUiHandler();
  return (req, res) => {
    const method = req.method ?? 'GET';
    // The dashboard's files hold no data: served before the token check, so the page can ask for it.
    if (ui(req, res)) return;
    if (audit !== undefined && method !== 'GET' && method !== 'HEAD') {
      // Logged once answered, refused attempts included; the query string is left out (it is not part of an action).
      res.once('close', () => {
        const url = req.url ?? '/';
        const q = url.indexOf('?');
        const path = q === -1 ? url : url.slice(0, q);
        audit({ client: req.socket.remoteAddress ?? 'unknown', method, path, action: actionOf(method, path), status: res.statusCode });
      });
    }
    if (expected !== null) {
      const auth = req.headers.authorization ?? '';
      const given = auth.toLowerCase().startsWith('bearer ') ? auth.slice(7).trim() : '';
      if (!timingSafeEqual(digest(given), expected)) {
        return sendJson(res, 401, { message: 'Unauthorized' }, { 'www-authenticate': 'Bearer realm="inference-gateway-admin"' });
      }
    }
    const events = opts.events;
    if (events !== undefined && method === 'GET' && (req.url === '/events' || req.url?.startsWith('/events?'))) return events.handle(req, res);
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

/** loadView shows a target's load sample, its adapters (a Set) as a list. */
function loadView(load: LoadSample | null): object | null {
  if (load === null) return null;
  const loras = load.loras ?? null;
  return { ...load, loras: loras === null ? undefined : { adapters: [...loras.adapters], max_lora: loras.maxLora } };
}
