/**
 * `npm run bench:compare` — the gateway against nginx, against the least a Node proxy can do
 * (`node:http`, the "floor") and against a raw-socket prototype below that, in one run, on one
 * upstream.
 *
 * Targets (all in front of the same zero-delay upstream):
 *   direct   the upstream itself;
 *   gateway  `inference-gateway start` as a child process: one model on path `/ai/models` with one
 *            key (`apikey`), routed by `X-Model`; metrics on (always), access log on (JSON lines on
 *            stdout, which goes to /dev/null);
 *   nginx    the same routing (bench/lib/nginx.ts: `map $http_x_model` → 404, `map $http_apikey`
 *            + `if` → 401, `location /ai/models/ { proxy_pass http://up/; }`, keep-alive upstream,
 *            `proxy_buffering off`, access log to /dev/null buffered); skipped if nginx is missing;
 *   floor    bench/node-floor.ts: node:http + keep-alive Agent + pipe, no features;
 *   raw      bench/raw-proxy.ts: the "below the floor" prototype: nginx's routing, key
 *            check and prefix strip on raw node:net sockets with a strict hand-written HTTP/1.1
 *            parser, pooled keep-alive upstreams, response bytes relayed as they arrive; no
 *            metrics, no log. Answers the question: what does a Node proxy cost without node:http?
 * Upstream: `inference-gateway simulate` with no delays (default), or bench/raw-upstream.ts with
 * BENCH_UPSTREAM=raw. The simulator writes a stream as 22 separate writes (role event, 20 tokens,
 * [DONE]), as an engine would; the raw upstream writes it at once.
 *
 * Layout: proxies pinned to CPU 0; upstream, wrk and this process (paired client) to CPU 1.
 *
 * Per round (BENCH_ROUNDS, default 3; the order of targets rotates every round), per target:
 *   - wrk, 50 connections, BENCH_SECONDS (default 5): small JSON chat completion (max_tokens 16);
 *   - wrk, same, a 21-event SSE stream (`stream: true`, max_tokens 20: role + 20 tokens, + [DONE]);
 *   - wrk, same, a 201-event SSE stream (max_tokens 200): the difference to the 21-event one,
 *     divided by 180, is the marginal CPU per streamed event (what one more token costs);
 *     all three: req/s, latency p50/p99, errors (socket errors + status > 399), proxy CPU time per
 *     request (utime + stime from /proc/<pid>/stat over the run ÷ requests);
 *   - (proxies) paired sequential latency: BENCH_PAIRS (default 1000) pairs of one request direct
 *     and one through the proxy, one at a time, order alternating; added = proxy − direct per pair;
 *   - (proxies) paired time to first streamed event: BENCH_TTFB_PAIRS (default 300) pairs, same.
 * Reported: medians over rounds (throughput, latency, CPU/request), median and p99 of all paired
 * differences, RSS (VmRSS) idle and after load, peak (VmHWM), error totals, the performance targets
 * (docs/performance.md), and the streaming targets against nginx measured in the same run: CPU per
 * 21-event response and marginal CPU per event ≤ 1.0× nginx's, added time to first streamed
 * event ≤ 1.25× nginx's, CPU per JSON request ≤ 2.0× nginx's, added p50 ≤ 1.5× nginx's.
 * Written to bench/results/compare-<date>.md as well.
 *
 * Env: BENCH_SECONDS, BENCH_ROUNDS, BENCH_PAIRS, BENCH_TTFB_PAIRS, BENCH_UPSTREAM (sim|raw),
 * BENCH_ACCESS_LOG=0 (access log off in gateway and nginx, to price it), BENCH_ENTRY (default: a fresh tsc build of src/ in a temp folder, run as plain node; tsx: via tsx), BENCH_CPU_PROF=1 (gateway under `--cpu-prof`; prints where its CPU went
 * during the JSON runs and during the stream runs; figures are then slightly lower), BENCH_NODE_FLAGS (extra node flags for the
 * gateway, e.g. `--single-threaded-gc`; named in the report), BENCH_NO_WRITE=1 (no result file).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Pool, request } from 'undici';
import { stringify } from 'yaml';
import { monotonicMicros, summarizeProfile, type Window } from './lib/cpuprofile.js';
import { benchEntry } from './lib/build.js';
import { pinLayout } from './lib/layout.js';
import { nginxBinary, writeNginxConfig } from './lib/nginx.js';
import { Child, cpuShare, freePorts, readCpuTimes, stopAll, waitUntilReady } from './lib/procs.js';
import { cpuSecondsOf, hwmMiB, machineFacts, rssMiB } from './lib/procstat.js';
import { runWrk, writeWrkScript, type WrkResult } from './lib/wrk.js';
import { publishReport, runBench } from './lib/report.js';
import { positiveEnv } from './lib/env.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MODEL = 'bench-model';
const API_KEY = 'bench-key-0123456789abcdef';
const PREFIX = '/ai/models';
const CHAT = '/v1/chat/completions';
const CONNECTIONS = 50;
const STREAM_EVENTS = 21;
const LONG_EVENTS = 201;

const SECONDS = positiveEnv('BENCH_SECONDS', 5);
const ROUNDS = Math.round(positiveEnv('BENCH_ROUNDS', 3));
const PAIRS = Math.round(positiveEnv('BENCH_PAIRS', 1000));
const TTFB_PAIRS = Math.round(positiveEnv('BENCH_TTFB_PAIRS', 300));
const WARMUP_SECONDS = Math.min(3, Math.max(1, SECONDS));
const UPSTREAM_KIND = process.env.BENCH_UPSTREAM === 'raw' ? 'raw' : 'sim';
const PROFILE = process.env.BENCH_CPU_PROF === '1';
/** Extra node flags for the gateway process (e.g. `--single-threaded-gc`), space-separated. */
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
// BENCH_ACCESS_LOG=0 turns the access log off in the gateway and in nginx (to price it).
const ACCESS_LOG = process.env.BENCH_ACCESS_LOG !== '0';

// The performance targets (docs/performance.md).
const T_CPU_JSON = 1.4;
const T_CPU_SSE = 1.25;
const T_ADDED_P50_US = 150;
const T_TTFB_ADDED_US = 200;
const T_RSS_MIB = 128;
// Against nginx, same run.
const T_NX_CPU_SSE = 1.0;
const T_NX_CPU_EVENT = 1.0;
const T_NX_TTFB = 1.25;
const T_NX_CPU_JSON = 2.0;
const T_NX_ADDED = 1.5;

interface Target {
  name: 'direct' | 'gateway' | 'nginx' | 'floor' | 'raw';
  origin: string;
  path: string;
  /** pid is the process whose CPU is charged to the target (the upstream for direct). */
  pid: number;
  child: Child;
}

interface Run {
  wrk: WrkResult;
  cpuUsPerReq: number;
  /** proxyBusyPct is the charged process's CPU over the run in % of one core. */
  proxyBusyPct: number;
  /** loadIdlePct is how idle the load CPU was (near 0: wrk + upstream saturated it). */
  loadIdlePct: number;
}

interface TargetResults {
  json: Run[];
  sse: Run[];
  long: Run[];
  addedUs: number[];
  ttfbAddedUs: number[];
  proxyTtfbUs: number[];
  pairFailures: number;
  rssIdle: number;
  rssAfter: number;
  rssPeak: number;
}

const median = (xs: readonly number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const pct = (xs: readonly number[], p: number): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length))) - 1]!;
};
const f0 = (v: number): string => (Number.isFinite(v) ? v.toFixed(0) : 'n/a');
const f1 = (v: number): string => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');
const f2 = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');
const msOf = (us: number): string => (Number.isFinite(us) ? (us / 1000).toFixed(2) : 'n/a');
const signed = (v: number): string => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(0)}` : 'n/a');

// ---------------------------------------------------------------------------------------------
// Measuring

async function measure(t: Target, script: string, loadCpu: number | null, seconds: number): Promise<Run> {
  const c0 = cpuSecondsOf(t.pid);
  const k0 = readCpuTimes();
  const w0 = performance.now();
  const wrk = await runWrk({ url: t.origin, script, connections: CONNECTIONS, seconds, cpu: loadCpu });
  const wall = (performance.now() - w0) / 1000;
  const c1 = cpuSecondsOf(t.pid);
  const share = loadCpu === null ? null : cpuShare(k0, readCpuTimes(), loadCpu);
  const cpu = c1 - c0;
  return {
    wrk,
    cpuUsPerReq: wrk.requests > 0 ? (cpu / wrk.requests) * 1e6 : Number.NaN,
    proxyBusyPct: (cpu / wall) * 100,
    loadIdlePct: share === null ? Number.NaN : share.idle,
  };
}

/** timeJson sends one JSON request and returns its latency in µs (throws on a non-200). */
async function timeJson(pool: Pool, path: string, headers: Record<string, string>, body: Buffer): Promise<number> {
  const t0 = performance.now();
  const res = await pool.request({ path, method: 'POST', headers, body });
  await res.body.dump();
  const t1 = performance.now();
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  return (t1 - t0) * 1000;
}

/** timeFirstEvent sends one streaming request and returns the time to the first `data:` chunk in µs. */
async function timeFirstEvent(pool: Pool, path: string, headers: Record<string, string>, body: Buffer): Promise<number> {
  const t0 = performance.now();
  const res = await pool.request({ path, method: 'POST', headers, body });
  let first = 0;
  let text = '';
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    if (first === 0 && chunk.includes('data: ')) first = performance.now();
    text += chunk.toString('latin1');
  }
  if (res.statusCode !== 200 || first === 0 || !text.endsWith('data: [DONE]\n\n')) throw new Error(`bad stream: status ${res.statusCode}`);
  return (first - t0) * 1000;
}

interface Paired {
  diffs: number[];
  proxy: number[];
  failures: number;
}

/** paired alternates one direct and one proxied request, `n` times, and returns proxy − direct per pair (µs). */
async function paired(n: number, timer: (pool: Pool, path: string) => Promise<number>, direct: { pool: Pool; path: string }, proxy: { pool: Pool; path: string }): Promise<Paired> {
  const out: Paired = { diffs: [], proxy: [], failures: 0 };
  for (let i = 0; i < n; i++) {
    try {
      let d: number;
      let p: number;
      if (i % 2 === 0) {
        d = await timer(direct.pool, direct.path);
        p = await timer(proxy.pool, proxy.path);
      } else {
        p = await timer(proxy.pool, proxy.path);
        d = await timer(direct.pool, direct.path);
      }
      out.diffs.push(p - d);
      out.proxy.push(p);
    } catch {
      out.failures++;
    }
  }
  return out;
}

async function sanity(t: Target, headers: Record<string, string>, json: Buffer, sse: Buffer, long: Buffer): Promise<void> {
  const r1 = await request(t.origin + t.path, { method: 'POST', headers, body: json });
  const text = await r1.body.text();
  if (r1.statusCode !== 200 || !text.includes('"choices"')) throw new Error(`${t.name}: JSON sanity request answered ${r1.statusCode}: ${text.slice(0, 300)}`);
  const r2 = await request(t.origin + t.path, { method: 'POST', headers, body: sse });
  const stext = await r2.body.text();
  const events = stext.split('\n\n').filter((e) => e.startsWith('data: '));
  if (r2.statusCode !== 200 || events.length !== STREAM_EVENTS + 1 || events[events.length - 1] !== 'data: [DONE]') {
    throw new Error(`${t.name}: stream sanity failed: status ${r2.statusCode}, ${events.length} events (want ${STREAM_EVENTS} + [DONE])`);
  }
  const r4 = await request(t.origin + t.path, { method: 'POST', headers, body: long });
  const ltext = await r4.body.text();
  const levents = ltext.split('\n\n').filter((e) => e.startsWith('data: '));
  if (r4.statusCode !== 200 || levents.length !== LONG_EVENTS + 1 || levents[levents.length - 1] !== 'data: [DONE]') {
    throw new Error(`${t.name}: long stream sanity failed: status ${r4.statusCode}, ${levents.length} events (want ${LONG_EVENTS} + [DONE])`);
  }
  // A wrong key must be refused by the proxies that check keys.
  if (t.name === 'gateway' || t.name === 'nginx' || t.name === 'raw') {
    const r3 = await request(t.origin + t.path, { method: 'POST', headers: { ...headers, apikey: 'wrong' }, body: json });
    await r3.body.dump();
    if (r3.statusCode !== 401) throw new Error(`${t.name}: a wrong key got ${r3.statusCode}, not 401`);
  }
}

async function waitHttp(child: Child, url: string): Promise<void> {
  await waitUntilReady(child, url);
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const layout = pinLayout('upstream + wrk + paired client');
  const build = benchEntry(ROOT, ['node-floor', 'raw-upstream', 'raw-proxy']);
  const cli = build.cli;
  const nginxBin = nginxBinary();
  const [upPort, gwPort, gwStatus, gwAdmin, nxPort, floorPort, rawPort] = await freePorts(7);
  const dir = mkdtempSync(join(tmpdir(), 'igw-compare-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const facts = machineFacts();
  const date = new Date().toISOString();
  const notes: string[] = [];
  const log = (s: string): void => void process.stdout.write(`${s}\n`);
  const others = (): string[] => {
    // Other benchmarks on the machine disturb the figures: say so.
    const r = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
    const mine = new Set([process.pid]);
    const found: string[] = [];
    for (const pid of r) {
      if (mine.has(Number(pid))) continue;
      try {
        const cmd = readCmdline(Number(pid));
        const m = /bench\/[\w-]+\.ts/.exec(cmd);
        if (m !== null && !/bench\/(compare|node-floor|raw-upstream|raw-proxy)\.ts/.test(m[0]) && !found.includes(m[0])) found.push(m[0]);
      } catch {
        // gone
      }
    }
    return found;
  };

  log(`bench:compare — ${SECONDS} s per measurement, ${ROUNDS} rounds, ${CONNECTIONS} connections, upstream: ${UPSTREAM_KIND === 'sim' ? 'inference-gateway simulate (zero delay)' : 'bench/raw-upstream.ts'}`);
  log(`${layout.note}; children: ${cli.label}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const busy0 = others();
  if (busy0.length > 0) {
    log(`WARNING: other benchmarks are running (figures may be disturbed): ${busy0.join(', ')}`);
    notes.push(`other benchmarks were running at the start (${busy0.join(', ')}): figures may be disturbed`);
  }

  try {
    // Upstream.
    const upstream =
      UPSTREAM_KIND === 'sim'
        ? new Child('simulator', process.execPath, [...cli.args, 'simulate', '--port', String(upPort), '--model', MODEL], { cpu: layout.loadCpu, cwd: ROOT })
        : new Child('raw upstream', process.execPath, [...build.helper('raw-upstream'), '--port', String(upPort), '--chunks', String(STREAM_EVENTS)], {
            cpu: layout.loadCpu,
            cwd: ROOT,
          });
    await waitHttp(upstream, `http://127.0.0.1:${upPort}/health`);

    // Gateway.
    const configPath = join(dir, 'gateway.yaml');
    writeFileSync(
      configPath,
      stringify({
        proxy: { listen: `127.0.0.1:${gwPort}` },
        status: { listen: `127.0.0.1:${gwStatus}` },
        admin: { listen: `127.0.0.1:${gwAdmin}` },
        log: { access_log: ACCESS_LOG, format: 'json' },
        models: [{ name: MODEL, path: PREFIX, api_keys: [API_KEY], targets: [{ url: `http://127.0.0.1:${upPort}` }] }],
      }),
    );
    const profDir = join(dir, 'prof');
    const gateway = new Child('gateway', process.execPath, [...NODE_FLAGS, ...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []), ...cli.args, 'start', '--config', configPath], {
      cpu: layout.gatewayCpu,
      cwd: ROOT,
      env: { ...process.env, IGW_LOG_LEVEL: 'warn' },
      stdout: 'ignore',
    });
    await waitHttp(gateway, `http://127.0.0.1:${gwStatus}/status/ready`);

    // nginx.
    let nginx: Child | null = null;
    if (nginxBin === null) {
      notes.push('nginx is not installed: its row is missing (apt-get install nginx).');
      log('WARNING: nginx not found; skipping it');
    } else {
      const nxDir = join(dir, 'nginx');
      const conf = writeNginxConfig({ dir: nxDir, port: nxPort!, upstream: `127.0.0.1:${upPort}`, model: MODEL, apiKey: API_KEY, prefix: PREFIX, accessLog: ACCESS_LOG });
      nginx = new Child('nginx', nginxBin, ['-p', nxDir, '-c', conf, '-e', 'stderr'], { cpu: layout.gatewayCpu, cwd: nxDir });
      await waitHttp(nginx, `http://127.0.0.1:${nxPort}/__ready`);
    }

    // Node floor.
    const floor = new Child('node floor', process.execPath, [...build.helper('node-floor'), '--port', String(floorPort), '--upstream', `http://127.0.0.1:${upPort}`], {
      cpu: layout.gatewayCpu,
      cwd: ROOT,
    });
    await waitHttp(floor, `http://127.0.0.1:${floorPort}/health`);

    // Below the floor: raw sockets, same routing as nginx.
    const raw = new Child(
      'raw proxy',
      process.execPath,
      [...build.helper('raw-proxy'), '--port', String(rawPort), '--upstream', `http://127.0.0.1:${upPort}`, '--model', MODEL, '--key', API_KEY, '--prefix', PREFIX],
      { cpu: layout.gatewayCpu, cwd: ROOT },
    );
    await waitHttp(raw, `http://127.0.0.1:${rawPort}/__ready`);

    const targets: Target[] = [
      { name: 'direct', origin: `http://127.0.0.1:${upPort}`, path: CHAT, pid: upstream.pid, child: upstream },
      { name: 'gateway', origin: `http://127.0.0.1:${gwPort}`, path: PREFIX + CHAT, pid: gateway.pid, child: gateway },
      ...(nginx === null ? [] : [{ name: 'nginx' as const, origin: `http://127.0.0.1:${nxPort}`, path: PREFIX + CHAT, pid: nginx.pid, child: nginx }]),
      { name: 'floor', origin: `http://127.0.0.1:${floorPort}`, path: CHAT, pid: floor.pid, child: floor },
      { name: 'raw', origin: `http://127.0.0.1:${rawPort}`, path: PREFIX + CHAT, pid: raw.pid, child: raw },
    ];
    const proxies = targets.filter((t) => t.name !== 'direct');

    // Same request bytes for every target, path aside.
    const headers = { 'content-type': 'application/json', 'x-model': MODEL, apikey: API_KEY };
    const messages = [{ role: 'user', content: 'Say hello to the benchmark.' }];
    const jsonBody = JSON.stringify({ model: MODEL, messages, max_tokens: 16 });
    const sseBody = JSON.stringify({ model: MODEL, messages, max_tokens: STREAM_EVENTS - 1, stream: true });
    const longBody = JSON.stringify({ model: MODEL, messages, max_tokens: LONG_EVENTS - 1, stream: true });
    for (const t of targets) await sanity(t, headers, Buffer.from(jsonBody), Buffer.from(sseBody), Buffer.from(longBody));

    const scripts = new Map<string, { json: string; sse: string; long: string }>();
    for (const t of targets) {
      const json = join(dir, `${t.name}-json.lua`);
      const sse = join(dir, `${t.name}-sse.lua`);
      const long = join(dir, `${t.name}-long.lua`);
      writeWrkScript(json, { path: t.path, headers, body: jsonBody });
      writeWrkScript(sse, { path: t.path, headers, body: sseBody });
      writeWrkScript(long, { path: t.path, headers, body: longBody });
      scripts.set(t.name, { json, sse, long });
    }

    const results = new Map<string, TargetResults>();
    for (const t of targets) {
      results.set(t.name, { json: [], sse: [], long: [], addedUs: [], ttfbAddedUs: [], proxyTtfbUs: [], pairFailures: 0, rssIdle: rssMiB(t.pid), rssAfter: Number.NaN, rssPeak: Number.NaN });
    }

    // Warm-up (JIT, connection pools): not recorded.
    log(`warm-up: ${WARMUP_SECONDS} s JSON + ${WARMUP_SECONDS} s SSE per target ...`);
    for (const t of targets) {
      const s = scripts.get(t.name)!;
      await runWrk({ url: t.origin, script: s.json, connections: CONNECTIONS, seconds: WARMUP_SECONDS, cpu: layout.loadCpu });
      await runWrk({ url: t.origin, script: s.sse, connections: CONNECTIONS, seconds: WARMUP_SECONDS, cpu: layout.loadCpu });
      await runWrk({ url: t.origin, script: s.long, connections: CONNECTIONS, seconds: WARMUP_SECONDS, cpu: layout.loadCpu });
    }

    // Paired clients: one keep-alive connection per target.
    const pools = new Map<string, Pool>(targets.map((t) => [t.name, new Pool(t.origin, { connections: 1, pipelining: 1, keepAliveTimeout: 60_000 })]));
    const jsonBuf = Buffer.from(jsonBody);
    const sseBuf = Buffer.from(sseBody);
    const direct = targets[0]!;
    const jsonTimer = (pool: Pool, path: string): Promise<number> => timeJson(pool, path, headers, jsonBuf);
    const sseTimer = (pool: Pool, path: string): Promise<number> => timeFirstEvent(pool, path, headers, sseBuf);
    // Warm the paired path too.
    for (const t of proxies) {
      await paired(200, jsonTimer, { pool: pools.get('direct')!, path: direct.path }, { pool: pools.get(t.name)!, path: t.path });
      await paired(50, sseTimer, { pool: pools.get('direct')!, path: direct.path }, { pool: pools.get(t.name)!, path: t.path });
    }

    const windows: Window[] = [];
    const streamWindows: Window[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const order = targets.map((_, i) => targets[(i + r) % targets.length]!);
      log(`round ${r + 1}/${ROUNDS}: ${order.map((t) => t.name).join(' → ')}`);
      for (const t of order) {
        const res = results.get(t.name)!;
        const s = scripts.get(t.name)!;
        const w0 = monotonicMicros();
        const j = await measure(t, s.json, layout.loadCpu, SECONDS);
        if (t.name === 'gateway') windows.push([w0, monotonicMicros()]);
        const s0 = monotonicMicros();
        const e = await measure(t, s.sse, layout.loadCpu, SECONDS);
        const l = await measure(t, s.long, layout.loadCpu, SECONDS);
        if (t.name === 'gateway') streamWindows.push([s0, monotonicMicros()]);
        res.json.push(j);
        res.sse.push(e);
        res.long.push(l);
        let line = `  ${t.name.padEnd(8)} JSON ${f0(j.wrk.rps).padStart(6)} req/s p50 ${msOf(j.wrk.p50Us)} ms, ${f1(j.cpuUsPerReq)} µs CPU/req (proxy ${f0(j.proxyBusyPct)} %, load CPU idle ${f0(j.loadIdlePct)} %) | SSE ${f0(e.wrk.rps).padStart(6)} req/s, ${f1(e.cpuUsPerReq)} µs CPU/resp | SSE-${LONG_EVENTS} ${f1(l.cpuUsPerReq)} µs CPU/resp, ${f2((l.cpuUsPerReq - e.cpuUsPerReq) / (LONG_EVENTS - STREAM_EVENTS))} µs/event`;
        if (j.wrk.errorTotal + e.wrk.errorTotal + l.wrk.errorTotal > 0) line += ` | ERRORS ${JSON.stringify(j.wrk.errors)} ${JSON.stringify(e.wrk.errors)} ${JSON.stringify(l.wrk.errors)}`;
        if (t.name !== 'direct') {
          const dp = { pool: pools.get('direct')!, path: direct.path };
          const pp = { pool: pools.get(t.name)!, path: t.path };
          const a = await paired(PAIRS, jsonTimer, dp, pp);
          const b = await paired(TTFB_PAIRS, sseTimer, dp, pp);
          res.addedUs.push(...a.diffs);
          res.ttfbAddedUs.push(...b.diffs);
          res.proxyTtfbUs.push(...b.proxy);
          res.pairFailures += a.failures + b.failures;
          line += ` | added p50 ${signed(median(a.diffs))} µs, TTFB added p50 ${signed(median(b.diffs))} µs`;
        }
        log(line);
        if (t.child.isExited) throw new Error(`${t.child.describe()}`);
      }
    }
    for (const t of targets) {
      const res = results.get(t.name)!;
      res.rssAfter = rssMiB(t.pid);
      res.rssPeak = hwmMiB(t.pid);
    }
    await Promise.all([...pools.values()].map((p) => p.destroy()));
    const busy1 = others();
    if (busy1.length > 0) notes.push(`other benchmarks were running at the end (${busy1.join(', ')}): figures may be disturbed`);

    // ---- report
    const agg = (t: Target) => {
      const r = results.get(t.name)!;
      const m = (runs: Run[], f: (x: Run) => number): number => median(runs.map(f));
      const errors = [...r.json, ...r.sse, ...r.long].reduce((s, x) => s + x.wrk.errorTotal, 0) + r.pairFailures;
      const requests = [...r.json, ...r.sse, ...r.long].reduce((s, x) => s + x.wrk.requests, 0);
      // Per round, then the median: the two stream runs of a round sit next to each other in time.
      const perEvent = r.long.map((x, i) => (x.cpuUsPerReq - r.sse[i]!.cpuUsPerReq) / (LONG_EVENTS - STREAM_EVENTS));
      return {
        name: t.name,
        jsonRps: m(r.json, (x) => x.wrk.rps),
        jsonP50: m(r.json, (x) => x.wrk.p50Us),
        jsonP99: m(r.json, (x) => x.wrk.p99Us),
        sseRps: m(r.sse, (x) => x.wrk.rps),
        sseP50: m(r.sse, (x) => x.wrk.p50Us),
        sseP99: m(r.sse, (x) => x.wrk.p99Us),
        cpuJson: m(r.json, (x) => x.cpuUsPerReq),
        cpuSse: m(r.sse, (x) => x.cpuUsPerReq),
        cpuLong: m(r.long, (x) => x.cpuUsPerReq),
        cpuEvent: median(perEvent),
        roundsCpuEvent: perEvent,
        busyJson: m(r.json, (x) => x.proxyBusyPct),
        busySse: m(r.sse, (x) => x.proxyBusyPct),
        loadIdleJson: m(r.json, (x) => x.loadIdlePct),
        loadIdleSse: m(r.sse, (x) => x.loadIdlePct),
        added50: median(r.addedUs),
        added99: pct(r.addedUs, 99),
        ttfb50: median(r.ttfbAddedUs),
        ttfb99: pct(r.ttfbAddedUs, 99),
        proxyTtfb50: median(r.proxyTtfbUs),
        rssIdle: r.rssIdle,
        rssAfter: r.rssAfter,
        rssPeak: r.rssPeak,
        errors,
        requests,
        roundsJson: r.json.map((x) => x.wrk.rps),
        roundsSse: r.sse.map((x) => x.wrk.rps),
        roundsCpuJson: r.json.map((x) => x.cpuUsPerReq),
        roundsCpuSse: r.sse.map((x) => x.cpuUsPerReq),
      };
    };
    const rows = targets.map(agg);
    const row = (n: string) => rows.find((r) => r.name === n);
    const gw = row('gateway')!;
    const fl = row('floor')!;
    const rw = row('raw')!;
    const nx = row('nginx');

    const md: string[] = [];
    md.push(`## bench:compare — ${date}`, '');
    md.push(
      `Upstream: ${UPSTREAM_KIND === 'sim' ? '`inference-gateway simulate` (zero delay)' : '`bench/raw-upstream.ts`'}. ` +
        `${ROUNDS} rounds × ${SECONDS} s per measurement (order rotated), wrk -t1 -c${CONNECTIONS}; medians over rounds. ` +
        `Paired: ${PAIRS} JSON + ${TTFB_PAIRS} stream pairs per proxy per round. Access log ${ACCESS_LOG ? 'on' : 'OFF'}. ${layout.note}. Children: ${cli.label}.${NODE_FLAGS.length > 0 ? ` Gateway node flags: \`${NODE_FLAGS.join(' ')}\`.` : ''}`,
      '',
    );
    md.push(`| target | JSON req/s | JSON p50 / p99 (ms) | SSE req/s | SSE p50 / p99 (ms) | CPU µs / JSON req | CPU µs / SSE resp | CPU µs / ${LONG_EVENTS}-event resp | marginal CPU µs / event | added latency p50 / p99 (µs) | TTFB added p50 / p99 (µs) | RSS idle / after / peak (MiB) | errors |`);
    md.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const r of rows) {
      const isDirect = r.name === 'direct';
      md.push(
        `| ${r.name}${isDirect ? ' (CPU = upstream)' : ''} | ${f0(r.jsonRps)} | ${msOf(r.jsonP50)} / ${msOf(r.jsonP99)} | ${f0(r.sseRps)} | ${msOf(r.sseP50)} / ${msOf(r.sseP99)} | ` +
          `${f1(r.cpuJson)} | ${f1(r.cpuSse)} | ${f1(r.cpuLong)} | ${f2(r.cpuEvent)} | ${isDirect ? '—' : `${signed(r.added50)} / ${signed(r.added99)}`} | ${isDirect ? '—' : `${signed(r.ttfb50)} / ${signed(r.ttfb99)}`} | ` +
          `${f1(r.rssIdle)} / ${f1(r.rssAfter)} / ${f1(r.rssPeak)} | ${r.errors} of ${r.requests} |`,
      );
    }
    md.push('');
    md.push('CPU per request, ratios (lower is better):', '');
    md.push(`| | JSON | SSE (${STREAM_EVENTS} events) | SSE (${LONG_EVENTS} events) | per streamed event |`, '| --- | ---: | ---: | ---: | ---: |');
    type Row = typeof gw;
    const ratioRow = (label: string, a: Row, b: Row): string =>
      `| ${label} | ${f2(a.cpuJson / b.cpuJson)}× | ${f2(a.cpuSse / b.cpuSse)}× | ${f2(a.cpuLong / b.cpuLong)}× | ${f2(a.cpuEvent / b.cpuEvent)}× |`;
    md.push(ratioRow('gateway ÷ Node floor', gw, fl));
    md.push(ratioRow('gateway ÷ raw prototype', gw, rw));
    md.push(ratioRow('raw prototype ÷ Node floor', rw, fl));
    if (nx !== undefined) {
      md.push(ratioRow('gateway ÷ nginx', gw, nx));
      md.push(ratioRow('Node floor ÷ nginx', fl, nx));
      md.push(ratioRow('raw prototype ÷ nginx', rw, nx));
    }
    md.push('');
    md.push('Saturation (medians): proxy CPU busy in % of its core, and how idle the load CPU (wrk + upstream) was:', '');
    md.push('| target | proxy busy JSON / SSE | load CPU idle JSON / SSE | JSON req/s per round | SSE req/s per round | CPU µs/JSON req per round | CPU µs/SSE resp per round | CPU µs/event per round |', '| --- | ---: | ---: | --- | --- | --- | --- | --- |');
    for (const r of rows) {
      md.push(
        `| ${r.name} | ${f0(r.busyJson)} % / ${f0(r.busySse)} % | ${f0(r.loadIdleJson)} % / ${f0(r.loadIdleSse)} % | ${r.roundsJson.map(f0).join(', ')} | ${r.roundsSse.map(f0).join(', ')} | ${r.roundsCpuJson.map(f1).join(', ')} | ${r.roundsCpuSse.map(f1).join(', ')} | ${r.roundsCpuEvent.map(f2).join(', ')} |`,
      );
    }
    md.push('');
    const verdict = (ok: boolean): string => (ok ? 'met' : '**MISSED**');
    const checks: Array<[string, string, boolean]> = [
      ['gateway CPU per JSON request ≤ 1.4× Node floor', `${f2(gw.cpuJson / fl.cpuJson)}×`, gw.cpuJson / fl.cpuJson <= T_CPU_JSON],
      ['gateway CPU per SSE response ≤ 1.25× Node floor', `${f2(gw.cpuSse / fl.cpuSse)}×`, gw.cpuSse / fl.cpuSse <= T_CPU_SSE],
      ['added latency p50 < +150 µs (paired)', `${signed(gw.added50)} µs (floor ${signed(fl.added50)}, raw ${signed(rw.added50)}${nx ? `, nginx ${signed(nx.added50)}` : ''})`, gw.added50 < T_ADDED_P50_US],
      ['TTFB added p50 < +200 µs (paired)', `${signed(gw.ttfb50)} µs (floor ${signed(fl.ttfb50)}, raw ${signed(rw.ttfb50)}${nx ? `, nginx ${signed(nx.ttfb50)}` : ''})`, gw.ttfb50 < T_TTFB_ADDED_US],
      ['gateway RSS after load < 128 MiB', `${f1(gw.rssAfter)} MiB (peak ${f1(gw.rssPeak)})`, gw.rssAfter < T_RSS_MIB],
      ['zero errors (gateway)', `${gw.errors}`, gw.errors === 0],
    ];
    if (nx !== undefined) {
      checks.push(
        [`gateway CPU per ${STREAM_EVENTS}-event SSE response ≤ ${T_NX_CPU_SSE.toFixed(1)}× nginx`, `${f2(gw.cpuSse / nx.cpuSse)}× (${f1(gw.cpuSse)} vs ${f1(nx.cpuSse)} µs)`, gw.cpuSse / nx.cpuSse <= T_NX_CPU_SSE],
        [`gateway marginal CPU per streamed event ≤ ${T_NX_CPU_EVENT.toFixed(1)}× nginx`, `${f2(gw.cpuEvent / nx.cpuEvent)}× (${f2(gw.cpuEvent)} vs ${f2(nx.cpuEvent)} µs)`, gw.cpuEvent / nx.cpuEvent <= T_NX_CPU_EVENT],
        [`added time to first streamed event ≤ ${T_NX_TTFB}× nginx's (paired)`, `${f2(gw.ttfb50 / nx.ttfb50)}× (${signed(gw.ttfb50)} vs ${signed(nx.ttfb50)} µs)`, gw.ttfb50 / nx.ttfb50 <= T_NX_TTFB],
        [`gateway CPU per JSON request ≤ ${T_NX_CPU_JSON.toFixed(1)}× nginx`, `${f2(gw.cpuJson / nx.cpuJson)}× (${f1(gw.cpuJson)} vs ${f1(nx.cpuJson)} µs)`, gw.cpuJson / nx.cpuJson <= T_NX_CPU_JSON],
        [`added latency p50 ≤ ${T_NX_ADDED}× nginx's (paired)`, `${f2(gw.added50 / nx.added50)}× (${signed(gw.added50)} vs ${signed(nx.added50)} µs)`, gw.added50 / nx.added50 <= T_NX_ADDED],
      );
    }
    md.push('| target | measured | |', '| --- | --- | --- |');
    for (const [what, v, ok] of checks) md.push(`| ${what} | ${v} | ${verdict(ok)} |`);
    md.push('');
    if (gw.loadIdleJson < 5 || (nx !== undefined && nx.loadIdleJson < 5)) {
      notes.push('the load CPU (wrk + upstream) was saturated in some runs: req/s of the faster targets are bounded by it; CPU µs per request stays valid.');
    }
    if (notes.length > 0) md.push(...notes.map((n) => `- note: ${n}`), '');
    md.push('Machine:', '');
    for (const [k, v] of Object.entries(facts)) md.push(`- ${k}: ${v}`);
    md.push('');

    // Profile.
    if (PROFILE) {
      await gateway.stop(15_000);
      const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
      if (files.length === 0) md.push('(no CPU profile was written)');
      else {
        md.push(...profileSection(join(profDir, files[0]!), windows, 'JSON runs'));
        md.push(...profileSection(join(profDir, files[0]!), streamWindows, `stream runs, ${STREAM_EVENTS} and ${LONG_EVENTS} events`));
      }
    }

    const text = md.join('\n');
    publishReport(text, `compare-${date.slice(0, 10)}${PROFILE ? '-profile' : ''}${ACCESS_LOG ? '' : '-no-access-log'}${flagsSuffix(NODE_FLAGS)}.md`);
  } finally {
    await stopAll();
  }
}

/** profileSection summarizes the gateway's CPU profile over the given windows as markdown lines. */
function profileSection(file: string, windows: readonly Window[], what: string): string[] {
  const md: string[] = [];
  const s = summarizeProfile(file, windows);
  const total = s.sampledUs;
  const share = (us: number): string => `${((us / total) * 100).toFixed(1)} %`;
  const groups = new Map<string, number>();
  for (const [area, us] of s.byArea) {
    const g = area.startsWith('src/')
      ? 'ours (src/)'
      : area.startsWith('node_modules/undici')
        ? 'undici'
        : area.startsWith('node_modules/pino') || area.startsWith('node_modules/sonic-boom')
          ? 'pino / sonic-boom'
          : area.startsWith('node_modules/prom-client')
            ? 'prom-client'
            : area.startsWith('node_modules/')
              ? 'other dependencies'
              : area.startsWith('node:')
                ? 'node internals (JS)'
                : area === '(garbage collector)'
                  ? 'GC'
                  : 'native / V8 / program';
    groups.set(g, (groups.get(g) ?? 0) + us);
  }
  md.push(`### Gateway CPU profile (${what}${s.isWindowed ? '' : ' — windows did not match, whole profile'}; ${(total / 1e6).toFixed(2)} s sampled)`, '');
  md.push('| group | self time |', '| --- | ---: |');
  for (const [g, us] of [...groups].sort((a, b) => b[1] - a[1])) md.push(`| ${g} | ${share(us)} |`);
  md.push('', '| area | self time |', '| --- | ---: |');
  for (const [a, us] of s.byArea.slice(0, 20)) md.push(`| ${a} | ${share(us)} |`);
  md.push('', '| function (self) | self time |', '| --- | ---: |');
  for (const [fn, us] of s.bySelf.slice(0, 30)) md.push(`| \`${fn}\` | ${share(us)} |`);
  md.push('', '| function (inclusive, src/ only) | inclusive |', '| --- | ---: |');
  for (const [fn, us] of s.byInclusive.filter(([l]) => l.includes(' src/')).slice(0, 20)) md.push(`| \`${fn}\` | ${share(us)} |`);
  md.push('');
  return md;
}

function readCmdline(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
}

runBench('bench:compare', main);

/** flagsSuffix names a run with extra gateway node flags in its result file (`--single-threaded-gc` → `-single-threaded-gc`). */
function flagsSuffix(flags: readonly string[]): string {
  return flags.map((f) => `-${f.replace(/^-+/, '').replace(/[^A-Za-z0-9]+/g, '-')}`).join('');
}
