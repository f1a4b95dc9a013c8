/**
 * nginx as a benchmark reference: Debian's binary started in the foreground with its own prefix
 * and config in a temp folder (`-p`/`-c`, no root paths, no service), one worker, no master.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** nginxBinary finds nginx (Debian puts it in /usr/sbin, which a user's PATH may lack), or null. */
export function nginxBinary(): string | null {
  for (const bin of ['nginx', '/usr/sbin/nginx']) {
    const r = spawnSync(bin, ['-v'], { stdio: 'ignore' });
    if (r.error === undefined && r.status === 0) return bin;
  }
  return null;
}

/** NginxRouteConfig is the gateway-equivalent setup: one model on a path prefix with one key. */
export interface NginxRouteConfig {
  dir: string;
  port: number;
  upstream: string;
  model: string;
  apiKey: string;
  /** prefix is the path prefix stripped before forwarding, e.g. `/ai/models`. */
  prefix: string;
  /** accessLog: write an access log line per request to /dev/null (buffered, like the gateway's). */
  accessLog: boolean;
}

/**
 * writeNginxConfig writes nginx.conf for the same routing as the gateway's benchmark config:
 * `X-Model` must name the model (map → 404 otherwise), `apikey` must be the key (map → 401),
 * the prefix is stripped by `location <prefix>/ { proxy_pass http://up/; }`, keep-alive to the
 * upstream, no buffering (SSE). `GET /__ready` answers 200 for readiness polling. Returns the path.
 */
export function writeNginxConfig(c: NginxRouteConfig): string {
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi', 'logs']) mkdirSync(join(c.dir, d), { recursive: true });
  const conf = join(c.dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
pid ${c.dir}/nginx.pid;
error_log stderr;
events { worker_connections 32768; }
http {
  ${c.accessLog ? 'access_log /dev/null combined buffer=64k flush=1s;' : 'access_log off;'}
  client_body_temp_path ${c.dir}/client_body;
  proxy_temp_path ${c.dir}/proxy;
  fastcgi_temp_path ${c.dir}/fastcgi;
  uwsgi_temp_path ${c.dir}/uwsgi;
  scgi_temp_path ${c.dir}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 65s;
  upstream up {
    server ${c.upstream};
    keepalive 64;
    keepalive_requests 1000000;
  }
  map $http_x_model $model_upstream {
    default "";
    "${c.model}" "up";
  }
  map $http_apikey $key_ok {
    default 0;
    "${c.apiKey}" 1;
  }
  server {
    listen 127.0.0.1:${c.port} backlog=4096;
    location = /__ready { return 200; }
    location ${c.prefix}/ {
      if ($model_upstream = "") { return 404; }
      if ($key_ok = 0) { return 401; }
      proxy_pass http://up/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header apikey "";
      proxy_buffering off;
    }
  }
}
`,
  );
  return conf;
}
