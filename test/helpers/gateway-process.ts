/**
 * A gateway as its own process, started through the real CLI with a config file the test owns
 * (fixed path, --watch, its own environment): what a container runs. Also `waitFor`, the polling
 * loop the process tests use instead of sleeps.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { deadUrl, type Cleanup } from './harness.js';

/** waitFor polls `check` until it returns a value other than undefined/false, or fails after timeoutMs naming `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** freePort returns a loopback port nobody listens on (bound and released). */
export async function freePort(): Promise<number> {
  return Number(new URL(await deadUrl()).port);
}

/** GatewayProcess is a running `inference-gateway start` child process. */
export interface GatewayProcess {
  child: ChildProcess;
  statusUrl: string;
  /** stderr is everything the gateway logged so far. */
  stderr: () => string;
  /** stdout is what it wrote to stdout so far (the access log), when started with `stdout: true`. */
  stdout: () => string;
  isAlive: () => boolean;
  /** kill sends the signal (default SIGKILL) and waits for the exit. */
  kill: (signal?: NodeJS.Signals) => Promise<void>;
}

/**
 * startGatewayProcess runs `inference-gateway start --config <configPath> [--watch]` (from src, via
 * tsx) with `env` added to the environment, and waits until GET /status/ready on statusPort is 200.
 */
export async function startGatewayProcess(
  cleanup: Cleanup,
  opts: { configPath: string; statusPort: number; watch?: boolean; env?: Record<string, string>; stdout?: boolean },
): Promise<GatewayProcess> {
  const args = ['--import', 'tsx', resolve('src/main.ts'), 'start', '--config', opts.configPath, ...(opts.watch === true ? ['--watch'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', opts.stdout === true ? 'pipe' : 'ignore', 'pipe'], env: { ...process.env, IGW_LOG_LEVEL: 'warn', ...opts.env } });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  let stdout = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const isAlive = (): boolean => child.exitCode === null && child.signalCode === null;
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (isAlive()) child.kill(signal);
    await exited;
  };
  cleanup.add(() => kill());
  const statusUrl = `http://127.0.0.1:${opts.statusPort}`;
  await waitFor(
    'the gateway to be ready',
    async () => {
      if (!isAlive()) throw new Error(`gateway exited (${child.exitCode ?? child.signalCode}): ${stderr}`);
      return (await fetch(`${statusUrl}/status/ready`).then(async (r) => (await r.arrayBuffer(), r.status), () => 0)) === 200;
    },
    20_000,
  );
  return { child, statusUrl, stderr: () => stderr, stdout: () => stdout, isAlive, kill };
}
