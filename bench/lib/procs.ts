/**
 * Process plumbing for the benchmark: CPU pinning with taskset, free loopback ports, child
 * processes (gateway, simulator) that are always killed when the benchmark ends, readiness polling
 * and per-process CPU time from /proc.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { request } from 'undici';

/** allowedCpus lists the CPUs this process may run on (from /proc/self/status), or null if unknown. */
export function allowedCpus(): number[] | null {
  try {
    const line = readFileSync('/proc/self/status', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Cpus_allowed_list:'));
    if (line === undefined) return null;
    const cpus: number[] = [];
    for (const part of line.slice(line.indexOf(':') + 1).trim().split(',')) {
      const [a, b] = part.split('-').map(Number);
      if (a === undefined || !Number.isInteger(a)) continue;
      const end = b !== undefined && Number.isInteger(b) ? b : a;
      for (let c = a; c <= end; c++) cpus.push(c);
    }
    return cpus.length > 0 ? cpus : null;
  } catch {
    return null;
  }
}

/** hasTaskset tells whether the `taskset` command (util-linux) can be run. */
export function hasTaskset(): boolean {
  const r = spawnSync('taskset', ['--version'], { stdio: 'ignore' });
  return r.error === undefined && r.status === 0;
}

/** pinSelf moves every thread of this process (-a: V8 and libuv threads too) onto `cpu`. */
export function pinSelf(cpu: number): void {
  execFileSync('taskset', ['-a', '-cp', String(cpu), String(process.pid)], { stdio: 'ignore' });
}

/** freePorts returns n distinct loopback ports that were free a moment ago (all bound at once, then released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  const ports: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve());
      });
      const addr = srv.address();
      if (addr === null || typeof addr !== 'object') throw new Error('could not read a bound port');
      ports.push(addr.port);
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))));
  }
  return ports;
}

const TAIL_CHARS = 8192;
const CLK_TCK = readClockTicks();

function readClockTicks(): number {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

const running = new Set<Child>();
let isCleanupInstalled = false;

/** installCleanup kills every child still running when this process exits, however it exits. */
function installCleanup(): void {
  if (isCleanupInstalled) return;
  isCleanupInstalled = true;
  process.on('exit', () => {
    for (const c of running) c.killNow();
  });
}

/** stopAll stops every child still running (SIGTERM, then SIGKILL after a grace period). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((c) => c.stop()));
}

/** ChildOptions describe how a child process is started. */
export interface ChildOptions {
  /** cpu pins the child (and all its threads) to one CPU with taskset; null runs it unpinned. */
  cpu: number | null;
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** stdout 'ignore' sends it to /dev/null (for a per-request access log this process should not pay to read), a file descriptor into that file; default 'pipe'. */
  stdout?: 'pipe' | 'ignore' | number;
}

/** Child is one benchmark child process (gateway or simulator), with the tail of its output kept for error reports. */
export class Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly exited: Promise<void>;
  #output = '';
  #isExited = false;
  #exitDescription = '';

  constructor(name: string, command: string, args: readonly string[], opts: ChildOptions) {
    installCleanup();
    this.name = name;
    // taskset execs the command, so the pid is the node process itself.
    const [cmd, argv] = opts.cpu === null ? [command, [...args]] : ['taskset', ['-c', String(opts.cpu), command, ...args]];
    this.proc = spawn(cmd, argv, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', opts.stdout ?? 'pipe', 'pipe'] });
    running.add(this);
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-TAIL_CHARS);
    };
    this.proc.stdout?.on('data', keep);
    this.proc.stderr?.on('data', keep);
    this.exited = new Promise<void>((resolve) => {
      const done = (desc: string): void => {
        if (this.#isExited) return;
        this.#isExited = true;
        this.#exitDescription = desc;
        running.delete(this);
        resolve();
      };
      this.proc.once('exit', (code, signal) => done(signal !== null ? `killed by ${signal}` : `exited with code ${code}`));
      this.proc.once('error', (err) => done(`failed to start: ${err.message}`));
    });
  }

  /** pid is the child's process id. */
  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get isExited(): boolean {
    return this.#isExited;
  }

  /** output is the last few KiB the child wrote to stdout (unless ignored) and stderr. */
  get output(): string {
    return this.#output;
  }

  /** describe names the child with how it ended and its last output, for error messages. */
  describe(): string {
    const state = this.#isExited ? this.#exitDescription : 'still running';
    const out = this.#output.trim();
    return `${this.name} (pid ${this.pid}) ${state}${out === '' ? '' : `; its last output:\n${out}`}`;
  }

  /** cpuSeconds is the child's user + system CPU time so far (from /proc/<pid>/stat), or NaN. */
  cpuSeconds(): number {
    try {
      const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
      // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
    } catch {
      return Number.NaN;
    }
  }

  /** stop asks the child to stop (SIGTERM) and kills it if it has not exited after graceMs. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.#isExited) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.killNow(), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** killNow sends SIGKILL at once (safe to call from an 'exit' handler). */
  killNow(): void {
    if (this.#isExited) return;
    try {
      this.proc.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** waitUntilReady polls `url` until it answers 200, failing early if the child exits. */
export async function waitUntilReady(child: Child, url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    if (child.isExited) throw new Error(`${child.describe()}\n(before ${url} answered)`);
    try {
      const { statusCode, body } = await request(url, { method: 'GET', headersTimeout: 1000, bodyTimeout: 1000 });
      await body.dump();
      if (statusCode === 200) return;
      lastError = `status ${statusCode}`;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last: ${lastError}); ${child.describe()}`);
}

/** CpuTimes are one CPU's cumulative times from /proc/stat, in clock ticks. */
export interface CpuTimes {
  /** process is user + nice + system: time spent running processes (any process). */
  process: number;
  idle: number;
  /** interrupts is irq + softirq (loopback networking shows up here, not in any process). */
  interrupts: number;
  /** steal is time the hypervisor ran something else. */
  steal: number;
  total: number;
}

/** readCpuTimes reads per-CPU times from /proc/stat (empty map where unavailable). */
export function readCpuTimes(): Map<number, CpuTimes> {
  const out = new Map<number, CpuTimes>();
  try {
    for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
      const m = /^cpu(\d+)\s+(.*)$/.exec(line);
      if (m === null) continue;
      const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = m[2]!.trim().split(/\s+/).map(Number);
      const process = user + nice + system;
      const idleAll = idle + iowait;
      const interrupts = irq + softirq;
      out.set(Number(m[1]), { process, idle: idleAll, interrupts, steal, total: process + idleAll + interrupts + steal });
    }
  } catch {
    // not Linux: no per-CPU accounting
  }
  return out;
}

/** CpuShare is how one CPU spent an interval, in % of the interval. */
export interface CpuShare {
  process: number;
  idle: number;
  interrupts: number;
  steal: number;
}

/** cpuShare compares two readCpuTimes() snapshots for one CPU (null if unknown). */
export function cpuShare(before: Map<number, CpuTimes>, after: Map<number, CpuTimes>, cpu: number): CpuShare | null {
  const a = before.get(cpu);
  const b = after.get(cpu);
  if (a === undefined || b === undefined || b.total <= a.total) return null;
  const pct = (x: number, y: number): number => ((y - x) / (b.total - a.total)) * 100;
  return { process: pct(a.process, b.process), idle: pct(a.idle, b.idle), interrupts: pct(a.interrupts, b.interrupts), steal: pct(a.steal, b.steal) };
}

/**
 * withChildOutput adds the last lines each child printed to err's message (a gateway's error log
 * usually says why a benchmark failed) and returns err.
 */
export function withChildOutput(err: unknown, children: readonly Child[]): unknown {
  const tails = children
    .map((c) => ({ name: c.name, lines: c.output.split('\n').filter((l) => l.trim() !== '' && !/^simulator .* listening on /.test(l)) }))
    .filter((t) => t.lines.length > 0)
    .map((t) => `--- last output of ${t.name}:\n${t.lines.slice(-15).join('\n')}`);
  if (tails.length > 0 && err instanceof Error) err.message += `\n${tails.join('\n')}`;
  return err;
}
