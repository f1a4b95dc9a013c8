/**
 * The admin listener (Kong's 8001), read-only for now: `GET /models`, `GET /models/{name}` and
 * `GET /config` (keys never shown, only counted). Changing config over HTTP comes with issue #5;
 * today a reload is `SIGHUP`. With a token set, every call needs `Authorization: Bearer <token>`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { describeSnapshot, type Snapshot } from '../config/index.js';
import { sendJson } from '../http/index.js';

/** AdminOptions are the admin listener's inputs. */
export interface AdminOptions {
  current: () => Snapshot;
  /** token, when set, is required as a bearer token. */
  token: string | undefined;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** isLoopbackHost tells whether a listen host only accepts local connections. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** createAdminServer builds the admin listener. */
export function createAdminServer(opts: AdminOptions): Server {
  // Compared as fixed-length digests so neither the length nor a prefix of the token leaks through timing.
  const expected = opts.token === undefined ? null : digest(opts.token);
  return createServer((req, res) => {
    if (expected !== null) {
      const auth = req.headers.authorization ?? '';
      const given = auth.toLowerCase().startsWith('bearer ') ? auth.slice(7).trim() : '';
      if (!timingSafeEqual(digest(given), expected)) {
        return sendJson(res, 401, { message: 'Unauthorized' }, { 'www-authenticate': 'Bearer realm="inference-gateway-admin"' });
      }
    }
    if (req.method !== 'GET') return sendJson(res, 405, { message: 'Method not allowed' });
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const view = describeSnapshot(opts.current()) as { hash: string; models: Array<{ name: string }> };
    if (path === '/config') return sendJson(res, 200, view);
    if (path === '/models') return sendJson(res, 200, { data: view.models });
    if (path.startsWith('/models/')) {
      let name: string;
      try {
        name = decodeURIComponent(path.slice('/models/'.length));
      } catch {
        return sendJson(res, 400, { message: 'Bad model name encoding' });
      }
      const found = view.models.filter((m) => m.name === name);
      return found.length > 0 ? sendJson(res, 200, { data: found }) : sendJson(res, 404, { message: 'Not found' });
    }
    sendJson(res, 404, { message: 'Not found' });
  });
}
