/**
 * The dashboard's files on the admin listener: `/ui/` (the page), `/ui/app.js`, `/ui/app.css`,
 * built into dist/ui by `npm run build`. They hold no data (the page asks the admin API, with the
 * token, for everything), so they are served without the token. Every answer carries a strict
 * Content-Security-Policy (no inline script, nothing from elsewhere), X-Frame-Options: DENY and
 * Referrer-Policy: no-referrer. `GET /` from a browser (Accept: text/html) is redirected to /ui/;
 * JSON clients keep the endpoint index there.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
/** UI_DIRS are where the built files are: next to the compiled admin folder (dist/ui), or dist/ui from the sources. */
const UI_DIRS = [join(HERE, '../ui'), join(HERE, '../../dist/ui')];

const SECURITY_HEADERS = Object.freeze({
  'content-security-policy': "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-cache',
});

const FILES: Record<string, { name: string; type: string }> = {
  '/ui/': { name: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/index.html': { name: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { name: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/app.css': { name: 'app.css', type: 'text/css; charset=utf-8' },
};

/** createUiHandler answers the dashboard's paths; it returns false for every other request. */
export function createUiHandler(dirs: readonly string[] = UI_DIRS): (req: IncomingMessage, res: ServerResponse) => boolean {
  const dir = dirs.find((d) => existsSync(join(d, 'index.html'))) ?? null;
  // Read once: the files are small and change only with a new build.
  const cache = new Map<string, Buffer>();
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const url = req.url ?? '/';
    const path = url.split('?', 1)[0]!;
    if (path === '/' && (req.headers.accept ?? '').includes('text/html')) {
      res.writeHead(302, { location: '/ui/', ...SECURITY_HEADERS }).end();
      return true;
    }
    if (path === '/ui') {
      res.writeHead(302, { location: '/ui/', ...SECURITY_HEADERS }).end();
      return true;
    }
    if (!path.startsWith('/ui/')) return false;
    const file = FILES[path];
    if (file === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS }).end('Not found\n');
      return true;
    }
    if (dir === null) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS }).end('The dashboard is not built: run `npm run build`.\n');
      return true;
    }
    let body = cache.get(file.name);
    if (body === undefined) {
      body = readFileSync(join(dir, file.name));
      cache.set(file.name, body);
    }
    res.writeHead(200, { 'content-type': file.type, 'content-length': body.length, ...SECURITY_HEADERS });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
