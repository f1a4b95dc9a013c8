/**
 * The status listener (Kong's 8100): `GET /status` (shaped like Kong's status API so existing
 * checks need little change) and `GET /status/ready` (200 once a configuration serves, 503 while
 * starting or draining). Prometheus metrics are not served yet (issue #5).
 */
import { createServer, type Server } from 'node:http';
import { sendJson } from '../http/index.js';

/** StatusSource is what the status listener reports on. */
export interface StatusSource {
  startedAt: number;
  counters(): { requestsTotal: number; connectionsActive: number; connectionsAccepted: number };
  configHash(): string;
  configLoadedAt(): Date;
  /** notReadyReason is null when serving, else why not (e.g. "draining"). */
  notReadyReason(): string | null;
}

/** createStatusServer builds the status listener. */
export function createStatusServer(src: StatusSource): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { message: 'Method not allowed' });
    if (path === '/status') {
      const c = src.counters();
      const mem = process.memoryUsage();
      return sendJson(res, 200, {
        server: {
          total_requests: c.requestsTotal,
          connections_active: c.connectionsActive,
          connections_accepted: c.connectionsAccepted,
          connections_handled: c.connectionsAccepted,
        },
        memory: { rss_bytes: mem.rss, heap_used_bytes: mem.heapUsed, heap_total_bytes: mem.heapTotal },
        uptime_seconds: Math.round((Date.now() - src.startedAt) / 1000),
        configuration_hash: src.configHash(),
        configuration_loaded_at: src.configLoadedAt().toISOString(),
      });
    }
    if (path === '/status/ready') {
      const reason = src.notReadyReason();
      return reason === null ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'not_ready', reason });
    }
    sendJson(res, 404, { message: 'Not found' });
  });
}
