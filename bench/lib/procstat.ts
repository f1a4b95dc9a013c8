/**
 * Per-process facts from /proc by pid: memory (VmRSS, VmHWM) and CPU time (utime + stime), plus
 * the machine facts benchmark reports carry (CPU model, kernel, tool versions).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { release } from 'node:os';

const CLK_TCK = ((): number => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

function statusKiB(pid: number, field: string): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${field}:`));
    return line === undefined ? Number.NaN : Number.parseInt(line.slice(field.length + 1).trim(), 10);
  } catch {
    return Number.NaN;
  }
}

/** rssMiB is the process's resident set size now (VmRSS), in MiB, or NaN. */
export const rssMiB = (pid: number): number => statusKiB(pid, 'VmRSS') / 1024;

/** hwmMiB is the process's peak resident set size so far (VmHWM), in MiB, or NaN. */
export const hwmMiB = (pid: number): number => statusKiB(pid, 'VmHWM') / 1024;

/** cpuSecondsOf is user + system CPU time of a process so far (/proc/<pid>/stat), or NaN. */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** openFds counts the process's open file descriptors, or NaN. */
export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

/** fdLimit is this process's soft and hard RLIMIT_NOFILE (children inherit them). */
export function fdLimit(): { soft: number; hard: number } {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const m = line === undefined ? null : /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(line);
    const num = (s: string | undefined): number => (s === undefined || s === 'unlimited' ? Number.POSITIVE_INFINITY : Number(s));
    return { soft: num(m?.[1]), hard: num(m?.[2]) };
  } catch {
    return { soft: Number.NaN, hard: Number.NaN };
  }
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error !== undefined) return 'not installed';
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]!.trim();
}

/** machineFacts describes the machine and tools, for result files. */
export function machineFacts(): Record<string, string> {
  let cpu = 'unknown';
  let cores = 0;
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    cpu = /model name\s*:\s*(.*)/.exec(info)?.[1]?.trim() ?? cpu;
    cores = (info.match(/^processor\s*:/gm) ?? []).length;
  } catch {
    // not Linux
  }
  let mem = '';
  try {
    const kib = Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]);
    mem = `${(kib / 1024 / 1024).toFixed(1)} GiB`;
  } catch {
    // not Linux
  }
  const lim = fdLimit();
  return {
    cpu: `${cpu} × ${cores}`,
    memory: mem,
    kernel: release(),
    node: process.version,
    nginx: firstLine('/usr/sbin/nginx', ['-v']).replace(/^nginx version: /, ''),
    wrk: firstLine('wrk', ['--version']).replace(/ Copyright.*$/, ''),
    'fd limit (soft/hard)': `${lim.soft}/${lim.hard}`,
  };
}

/** tcpCounters reads the kernel's TcpExt counters that show accept-queue trouble (system-wide). */
export function tcpCounters(): Record<string, number> {
  const want = ['ListenOverflows', 'ListenDrops', 'TCPReqQFullDoCookies', 'SyncookiesSent', 'TCPSynRetrans', 'TCPTimeouts'];
  const out: Record<string, number> = {};
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    const i = lines.findIndex((l) => l.startsWith('TcpExt:'));
    const names = lines[i]!.split(/\s+/);
    const values = lines[i + 1]!.split(/\s+/);
    for (const w of want) {
      const k = names.indexOf(w);
      if (k !== -1) out[w] = Number(values[k]);
    }
  } catch {
    // not Linux
  }
  return out;
}
