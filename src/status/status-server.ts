/**
 * The status listener (Kong's 8100, and 8101 over HTTPS): `GET /status` (shaped like Kong's status API so existing
 * checks need little change), `GET /status/ready` (200 once a configuration serves, 503 while
 * starting or draining) and `GET /metrics` (Prometheus text). It stays up while the proxy drains,
 * so a rollout can watch readiness turn 503.
 */
import type { RequestListener } from 'node:http';
import { sendJson } from '../http/index.js';

/** StatusSource is what the status listener reports on. */
export interface StatusSource {
  status(): object;
  /** notReadyReason is null when serving, else why not (e.g. "draining"). */
  notReadyReason(): string | null;
  metrics(): Promise<string>;
  metricsContentType: string;
}

/** STATUS_INDEX is the answer to `GET /`: what this listener serves. */
const STATUS_INDEX = Object.freeze({
  service: 'inference-gateway status',
  endpoints: [
    { method: 'GET', path: '/status', description: 'requests in flight and in total, connections, configuration hash, readiness' },
    { method: 'GET', path: '/status/ready', description: '200 while serving, 503 while starting or draining' },
    { method: 'GET', path: '/metrics', description: 'Prometheus metrics' },
  ],
});

/** createStatusHandler is the status listener's request handler; the same handler serves status.tls_listen. */
export function createStatusHandler(src: StatusSource): RequestListener {
  return (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { message: 'Method not allowed' });
    if (path === '/status') return sendJson(res, 200, src.status());
    if (path === '/status/ready') {
      const reason = src.notReadyReason();
      return reason === null ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'not_ready', reason });
    }
    if (path === '/metrics') {
      src.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': src.metricsContentType, 'content-length': Buffer.byteLength(text) });
          res.end(text);
        },
        () => sendJson(res, 500, { message: 'metrics unavailable' }),
      );
      return;
    }
    if (path === '/') return sendJson(res, 200, STATUS_INDEX);
    sendJson(res, 404, { message: 'Not found: GET / lists the endpoints' });
  };
}
