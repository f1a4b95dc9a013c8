/**
 * Test harness: real gateways and simulators on 127.0.0.1 port 0, configs written to temp files,
 * and a teardown list so every test closes what it opened.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { Gateway } from '../../src/gateway.js';
import { Simulator, type SimulatorOptions } from '../../src/sim/index.js';

/** tempDir makes a fresh temporary folder. */
export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'igw-test-'));
}

/** writeConfig writes a config (object as YAML, or raw text) into dir and returns its path. */
export function writeConfig(config: object | string, dir: string = tempDir(), name = 'gateway.yaml'): string {
  const path = join(dir, name);
  writeFileSync(path, typeof config === 'string' ? config : stringify(config));
  return path;
}

/** Cleanup collects teardown functions and runs them newest first. */
export class Cleanup {
  readonly #fns: Array<() => Promise<void> | void> = [];

  add(fn: () => Promise<void> | void): void {
    this.#fns.push(fn);
  }

  async run(): Promise<void> {
    while (this.#fns.length > 0) await this.#fns.pop()!();
  }
}

/** LineCapture collects what a log destination is given, one entry per line. */
export class LineCapture {
  readonly lines: string[] = [];

  write(msg: string): void {
    for (const line of msg.split('\n')) if (line !== '') this.lines.push(line);
  }

  /** json parses the captured lines as JSON objects. */
  json<T = Record<string, unknown>>(): T[] {
    return this.lines.map((l) => JSON.parse(l) as T);
  }
}

/** RunningGateway is a started gateway and its base URLs. */
export interface RunningGateway {
  gateway: Gateway;
  /** accessLog holds the access log lines written so far. */
  accessLog: LineCapture;
  /** log holds the gateway's own log lines (stderr in production). */
  log: LineCapture;
  url: string;
  statusUrl: string;
  adminUrl: string;
}

/** startGateway writes the config (listeners forced to 127.0.0.1:0) and starts a gateway. */
export async function startGateway(cleanup: Cleanup, config: Record<string, unknown>, opts: { dir?: string; env?: NodeJS.ProcessEnv; afterCompile?: () => void } = {}): Promise<RunningGateway> {
  const full = {
    ...config,
    proxy: { ...(config.proxy as object | undefined), listen: '127.0.0.1:0' },
    status: { ...(config.status as object | undefined), listen: '127.0.0.1:0' },
    admin: { ...(config.admin as object | undefined), listen: '127.0.0.1:0' },
  };
  const path = writeConfig(full, opts.dir);
  const accessLog = new LineCapture();
  const log = new LineCapture();
  const gateway = new Gateway({ configPath: path, logger: pino({ level: 'info' }, log), accessLogDest: accessLog, shutdownGraceMs: 1000, ...(opts.env ? { env: opts.env } : {}), ...(opts.afterCompile ? { afterCompile: opts.afterCompile } : {}) });
  const ports = await gateway.start();
  cleanup.add(() => gateway.stop());
  return {
    gateway,
    accessLog,
    log,
    url: `http://127.0.0.1:${ports.proxy}`,
    statusUrl: `http://127.0.0.1:${ports.status}`,
    adminUrl: `http://127.0.0.1:${ports.admin}`,
  };
}

/** startSim starts a simulator on a free port. */
export async function startSim(cleanup: Cleanup, opts: SimulatorOptions): Promise<Simulator> {
  const sim = new Simulator(opts);
  await sim.listen(0, '127.0.0.1');
  cleanup.add(() => sim.close());
  return sim;
}

/** chat is a minimal chat completion body. */
export function chat(model: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model, messages: [{ role: 'user', content: 'hello' }], max_tokens: 4, ...extra });
}

/** post sends a JSON POST with fetch. */
export function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
}

/** freePortUrl returns a loopback URL nobody listens on (a port just bound and released). */
export async function deadUrl(): Promise<string> {
  const { createServer } = await import('node:net');
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

/** RawResponse is a response read with node:http, which sends paths exactly as given (fetch normalizes them). */
export interface RawResponse {
  status: number;
  headers: import('node:http').IncomingHttpHeaders;
  body: string;
}

/** rawRequest sends one request with node:http and reads the whole answer. */
export async function rawRequest(url: string, opts: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<RawResponse> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({ host: u.hostname, port: u.port, path: opts.path, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** SpawnedGateway is a gateway running as its own process (the real CLI). */
export interface SpawnedGateway {
  url: string;
  statusUrl: string;
  stop: () => Promise<void>;
}

/** spawnGateway starts `inference-gateway start` on free loopback ports and waits for readiness. */
export async function spawnGateway(cleanup: Cleanup, config: Record<string, unknown>): Promise<SpawnedGateway> {
  const { spawn } = await import('node:child_process');
  const { resolve } = await import('node:path');
  const proxyPort = Number(new URL(await deadUrl()).port);
  const statusPort = Number(new URL(await deadUrl()).port);
  const path = writeConfig({ ...config, proxy: { listen: `127.0.0.1:${proxyPort}` }, status: { listen: `127.0.0.1:${statusPort}` }, admin: { listen: '127.0.0.1:0' }, log: { access_log: false } });
  const child = spawn(process.execPath, ['--import', 'tsx', resolve('src/main.ts'), 'start', '--config', path], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, IGW_LOG_LEVEL: 'warn' } });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  };
  cleanup.add(stop);
  const deadline = Date.now() + 15_000;
  while ((await fetch(`http://127.0.0.1:${statusPort}/status/ready`).then((r) => r.status, () => 0)) !== 200) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`gateway did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return { url: `http://127.0.0.1:${proxyPort}`, statusUrl: `http://127.0.0.1:${statusPort}`, stop };
}
