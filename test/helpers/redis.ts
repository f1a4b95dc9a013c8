/**
 * A real Redis for limit tests: Debian's redis-server on a free loopback port, no persistence.
 * stop() kills it (SIGKILL, as a crash would); start() again brings it back on the same port.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { deadUrl } from './harness.js';

/** RedisServer is a redis-server child process. */
export class RedisServer {
  readonly port: number;
  #proc: ChildProcess | null = null;

  private constructor(port: number) {
    this.port = port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** launch starts redis-server on a free port; fails clearly when it is not installed. */
  static async launch(): Promise<RedisServer> {
    if (spawnSync('redis-server', ['--version']).status !== 0) throw new Error('redis-server is not installed: apt-get install -y redis-server (.ci/run does this)');
    const r = new RedisServer(Number(new URL(await deadUrl()).port));
    await r.start();
    return r;
  }

  /** start runs redis-server and resolves once it accepts connections. */
  async start(): Promise<void> {
    this.#proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = createConnection(this.port, '127.0.0.1', () => {
          s.end();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      });
      if (ok) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('redis-server did not start');
  }

  /** kill stops redis-server abruptly and waits until it is gone. */
  async kill(): Promise<void> {
    const p = this.#proc;
    this.#proc = null;
    if (p === null || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }

  /** cli runs one redis-cli command and returns its output. */
  cli(...args: string[]): string {
    return spawnSync('redis-cli', ['-p', String(this.port), ...args], { encoding: 'utf8' }).stdout.trim();
  }
}
