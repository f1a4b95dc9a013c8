/**
 * A load balancer in front of gateway processes: Debian's nginx, started in the foreground with its
 * own config and prefix in a temp folder (no root paths, no service), on a free loopback port.
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, type Cleanup } from './harness.js';
import { freePort, waitFor } from './gateway-process.js';

/** nginxBinary finds nginx (Debian puts it in /usr/sbin, which a user's PATH may lack). */
function nginxBinary(): string {
  for (const bin of ['nginx', '/usr/sbin/nginx']) if (spawnSync(bin, ['-v']).status === 0) return bin;
  throw new Error('nginx is not installed: apt-get install -y nginx (.ci/run does this)');
}

/** Nginx is a running nginx balancing over loopback upstreams. */
export class Nginx {
  readonly url: string;
  readonly #log: () => string;

  private constructor(url: string, log: () => string) {
    this.url = url;
    this.#log = log;
  }

  /** errorLog is what nginx wrote to stderr (its error log). */
  get errorLog(): string {
    return this.#log();
  }

  /**
   * launch starts nginx round-robin over `upstreams` ("host:port"). A request whose connection to
   * a gateway fails (refused, reset before it was sent, timeout) is passed to the next one
   * (proxy_next_upstream error timeout); a failed gateway is skipped for 10 s. A POST that was
   * already sent is never passed on (nginx's rule for non-idempotent requests). No upstream
   * keepalive: every request opens its own connection, so none can be sent on a pooled connection
   * of a gateway that has just died.
   */
  static async launch(cleanup: Cleanup, upstreams: string[]): Promise<Nginx> {
    const bin = nginxBinary();
    const dir = tempDir();
    const port = await freePort();
    const conf = join(dir, 'nginx.conf');
    writeFileSync(
      conf,
      `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream gateways {
${upstreams.map((u) => `    server ${u} max_fails=1 fail_timeout=10s;`).join('\n')}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://gateways;
      proxy_http_version 1.1;
      proxy_next_upstream error timeout;
      proxy_connect_timeout 2s;
      proxy_buffering off;
    }
  }
}
`,
    );
    const child = spawn(bin, ['-p', dir, '-c', conf, '-e', 'stderr'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    cleanup.add(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    });
    const url = `http://127.0.0.1:${port}`;
    await waitFor('nginx to listen', async () => {
      if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${log}`);
      return fetch(`${url}/`).then(async (r) => (await r.arrayBuffer(), true), () => false);
    });
    return new Nginx(url, () => log);
  }
}
