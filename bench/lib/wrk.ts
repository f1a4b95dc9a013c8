/**
 * Driving `wrk` (https://github.com/wg/wrk) from a benchmark: a Lua script for POST bodies and
 * headers (one fixed request, or a list of requests rotated per connection), a `done` hook that
 * prints one machine-readable line (requests, duration, latency percentiles in µs, every error
 * counter), and a runner that pins wrk to a CPU with taskset and parses that line.
 *
 * Errors counted: wrk's socket errors (connect, read, write, timeout) and `status` (responses with
 * a status > 399, wrk's "Non-2xx or 3xx responses").
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpuSecondsOf } from './procstat.js';

/** WrkRequest is one request shape: path, headers and body. */
export interface WrkRequest {
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** WrkResult is what one wrk run measured. */
export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  errors: { connect: number; read: number; write: number; timeout: number; status: number };
  /** errorTotal is every socket error plus every status > 399. */
  errorTotal: number;
  bytes: number;
  /** cpuSeconds is wrk's own CPU time (polled from /proc every 100 ms; the last ≤ 100 ms are missing). */
  cpuSeconds: number;
}

const luaString = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`;

const DONE_HOOK = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p99":%d,"max":%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
`;

/** writeWrkScript writes a Lua script that sends `req` on every request. */
export function writeWrkScript(file: string, req: WrkRequest): void {
  const headers = Object.entries(req.headers)
    .map(([k, v]) => `wrk.headers[${luaString(k)}] = ${luaString(v)}`)
    .join('\n');
  writeFileSync(file, `wrk.method = "POST"\nwrk.path = ${luaString(req.path)}\nwrk.body = ${luaString(req.body)}\n${headers}\n${DONE_HOOK}`);
}

/**
 * writeWrkRotatingScript writes a Lua script whose requests cycle through `reqs`: the raw request
 * bytes are built once at start (wrk.format), each connection's thread starts at its own offset,
 * and request() only returns the next prebuilt string.
 */
export function writeWrkRotatingScript(file: string, reqs: readonly WrkRequest[]): void {
  const rows = reqs
    .map((r) => {
      const h = Object.entries(r.headers)
        .map(([k, v]) => `[${luaString(k)}]=${luaString(v)}`)
        .join(',');
      return `{${luaString(r.path)},{${h}},${luaString(r.body)}}`;
    })
    .join(',\n');
  writeFileSync(
    file,
    `local specs = {\n${rows}\n}
local reqs = {}
local n = #specs
local i = 0
init = function(args)
  for k = 1, n do
    local s = specs[k]
    reqs[k] = wrk.format("POST", s[1], s[2], s[3])
  end
  i = math.random(n) - 1
end
request = function()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end
${DONE_HOOK}`,
  );
}

/** hasWrk tells whether wrk can be run. */
export function hasWrk(): boolean {
  const r = spawnSync('wrk', ['--version'], { stdio: 'ignore' });
  // wrk --version prints its banner and exits 1.
  return r.error === undefined;
}

/** wrkVersion is wrk's banner line (e.g. "wrk debian/4.1.0-3+b2 [epoll]"). */
export function wrkVersion(): string {
  const r = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]!.replace(/ Copyright.*$/, '').trim();
}

/** WrkOptions describe one wrk run. */
export interface WrkOptions {
  url: string;
  script: string;
  connections: number;
  seconds: number;
  threads?: number;
  /** cpu pins wrk with taskset; null runs it unpinned. */
  cpu: number | null;
  timeoutSeconds?: number;
}

/** runWrk runs wrk once (`--latency`) and returns its parsed results. */
export function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = [
    `-t${o.threads ?? 1}`,
    `-c${o.connections}`,
    `-d${Math.max(1, Math.round(o.seconds))}s`,
    `--timeout`,
    `${o.timeoutSeconds ?? 5}s`,
    '--latency',
    '-s',
    o.script,
    o.url,
  ];
  const [cmd, argv] = o.cpu === null ? ['wrk', args] : ['taskset', ['-c', String(o.cpu), 'wrk', ...args]];
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    // taskset execs wrk, so the pid is wrk's.
    let cpuSeconds = 0;
    const poll = setInterval(() => {
      const v = p.pid === undefined ? Number.NaN : cpuSecondsOf(p.pid);
      if (Number.isFinite(v)) cpuSeconds = v;
    }, 100);
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (out += c.toString()));
    p.once('error', reject);
    p.once('exit', () => {
      clearInterval(poll);
      const line = out.split('\n').find((l) => l.startsWith('WRKJSON '));
      if (line === undefined) {
        reject(new Error(`wrk gave no result line; its output:\n${out}`));
        return;
      }
      const j = JSON.parse(line.slice('WRKJSON '.length)) as Record<string, number>;
      const seconds = j.duration_us! / 1e6;
      const errors = { connect: j.connect!, read: j.read!, write: j.write!, timeout: j.timeout!, status: j.status! };
      resolve({
        requests: j.requests!,
        seconds,
        rps: j.requests! / seconds,
        p50Us: j.p50!,
        p99Us: j.p99!,
        maxUs: j.max!,
        errors,
        errorTotal: errors.connect + errors.read + errors.write + errors.timeout + errors.status,
        bytes: j.bytes!,
        cpuSeconds,
      });
    });
  });
}
