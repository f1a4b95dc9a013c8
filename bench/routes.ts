/**
 * `npm run bench:routes` — does routing and key auth cost the same with 10,000 models as with 3?
 *
 * Configs (generated, plain YAML): BENCH_MODELS (default 10,000) models, each with its own API key
 * and one target (the same zero-delay simulator for all): 100 path groups × 100 names, one group at
 * the root (no `path`), the others at `/g01` … `/g99`; and a 3-model config of the same shape
 * (`/g01`, `/g02`, root).
 * Measured:
 *   1. `inference-gateway validate --config FILE` wall time (process start + load + validate +
 *      compile), median of 3, for both configs (the 3-model time is the fixed process cost);
 *   2. gateway start to ready (spawn → `GET /status/ready` answers 200), median of 3, and its RSS;
 *   3. routing + auth throughput: wrk, 50 connections, a Lua script that rotates through one
 *      request per model (path + `X-Model` + `apikey`; the same request shape for both configs),
 *      BENCH_SECONDS (default 5) per measurement, BENCH_ROUNDS (3) rounds alternating which
 *      config goes first; medians of req/s and gateway CPU µs per request.
 * Targets: validate < 2 s; 10k-model throughput within 5 % of the 3-model one.
 * Layout: gateways on CPU 0 (both run, the idle one waits), simulator + wrk on CPU 1.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { stringify } from 'yaml';
import { benchEntry, type Build } from './lib/build.js';
import { pinLayout } from './lib/layout.js';
import { Child, freePorts, stopAll, waitUntilReady } from './lib/procs.js';
import { cpuSecondsOf, machineFacts, rssMiB } from './lib/procstat.js';
import { runWrk, writeWrkRotatingScript, type WrkRequest } from './lib/wrk.js';
import { publishReport, runBench } from './lib/report.js';
import { positiveEnv } from './lib/env.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MODELS = Math.round(positiveEnv('BENCH_MODELS', 10_000));
const SECONDS = positiveEnv('BENCH_SECONDS', 5);
const ROUNDS = Math.round(positiveEnv('BENCH_ROUNDS', 3));
const CONNECTIONS = 50;
const T_VALIDATE_S = 2;
const T_PCT = 5;

interface ModelSpec {
  name: string;
  path: string | null;
  key: string;
}

/** specs lays out n models as groups of 100 names per path, the first group at the root. */
function specs(n: number, groups: number): ModelSpec[] {
  const out: ModelSpec[] = [];
  const perGroup = Math.ceil(n / groups);
  for (let i = 0; i < n; i++) {
    const g = Math.floor(i / perGroup);
    out.push({ name: `m${String(i % perGroup).padStart(3, '0')}`, path: g === 0 ? null : `/g${String(g).padStart(2, '0')}`, key: `igw-bench-${i}-${(i * 2654435761) % 1e9}` });
  }
  return out;
}

function writeConfig(file: string, models: ModelSpec[], ports: { proxy: number; status: number; admin: number; up: number }): void {
  writeFileSync(
    file,
    stringify({
      proxy: { listen: `127.0.0.1:${ports.proxy}` },
      status: { listen: `127.0.0.1:${ports.status}` },
      admin: { listen: `127.0.0.1:${ports.admin}` },
      defaults: { targets: [{ url: `http://127.0.0.1:${ports.up}` }] },
      models: models.map((m) => ({ name: m.name, ...(m.path === null ? {} : { path: m.path }), api_keys: [m.key] })),
    }),
  );
}

const median = (xs: number[]): number => {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** timeValidate runs `validate` and returns its wall time in ms (throws if it fails). */
function timeValidate(build: Build, file: string): Promise<number> {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, [...build.cli.args, 'validate', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (out += c.toString()));
    p.once('exit', (code) => (code === 0 ? res(performance.now() - t0) : rej(new Error(`validate failed (${code}):\n${out.slice(0, 2000)}`))));
  });
}

/** startGateway starts a gateway and returns it with its spawn-to-ready time in ms. */
async function startGateway(build: Build, name: string, file: string, statusPort: number, cpu: number | null): Promise<{ child: Child; readyMs: number }> {
  const t0 = performance.now();
  const child = new Child(name, process.execPath, [...build.cli.args, 'start', '--config', file], { cpu, cwd: ROOT, env: { ...process.env, IGW_LOG_LEVEL: 'warn' }, stdout: 'ignore' });
  const url = `http://127.0.0.1:${statusPort}/status/ready`;
  for (;;) {
    if (child.isExited) throw new Error(child.describe());
    try {
      const r = await request(url, { headersTimeout: 1000, bodyTimeout: 1000 });
      await r.body.dump();
      if (r.statusCode === 200) return { child, readyMs: performance.now() - t0 };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 5));
    if (performance.now() - t0 > 60_000) throw new Error(`${name} not ready after 60 s`);
  }
}

function requestsFor(models: ModelSpec[]): WrkRequest[] {
  const body = JSON.stringify({ messages: [{ role: 'user', content: 'Route me.' }], max_tokens: 16 });
  return models.map((m) => ({
    path: `${m.path ?? ''}/v1/chat/completions`,
    headers: { 'Content-Type': 'application/json', 'X-Model': m.name, apikey: m.key },
    body,
  }));
}

async function main(): Promise<void> {
  const layout = pinLayout('simulator + wrk');
  const build = benchEntry(ROOT);
  const dir = mkdtempSync(join(tmpdir(), 'igw-routes-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const log = (s: string): void => void process.stdout.write(`${s}\n`);
  const [up, p1, s1, a1, p2, s2, a2] = await freePorts(7);
  const big = specs(MODELS, 100);
  // The small config has the same shape: two prefixed models and one at the root.
  const small: ModelSpec[] = [
    { name: 'm000', path: '/g01', key: 'igw-small-1-abcdef' },
    { name: 'm001', path: '/g02', key: 'igw-small-2-abcdef' },
    { name: 'm002', path: null, key: 'igw-small-3-abcdef' },
  ];
  const bigFile = join(dir, 'big.yaml');
  const smallFile = join(dir, 'small.yaml');
  writeConfig(bigFile, big, { proxy: p1!, status: s1!, admin: a1!, up: up! });
  writeConfig(smallFile, small, { proxy: p2!, status: s2!, admin: a2!, up: up! });
  log(`bench:routes — ${MODELS} models vs 3; ${layout.note}; children: ${build.cli.label}`);

  try {
    // 1. validate
    const vBig: number[] = [];
    const vSmall: number[] = [];
    for (let i = 0; i < 3; i++) {
      vSmall.push(await timeValidate(build, smallFile));
      vBig.push(await timeValidate(build, bigFile));
    }
    log(`validate: ${MODELS} models ${median(vBig).toFixed(0)} ms, 3 models ${median(vSmall).toFixed(0)} ms`);

    const sim = new Child('simulator', process.execPath, [...build.cli.args, 'simulate', '--port', String(up), '--model', 'bench-model'], { cpu: layout.loadCpu, cwd: ROOT });
    await waitUntilReady(sim, `http://127.0.0.1:${up}/health`);

    // 2. start to ready (3 times each; the last pair stays up for the throughput runs)
    const rBig: number[] = [];
    const rSmall: number[] = [];
    let gBig: Child | null = null;
    let gSmall: Child | null = null;
    for (let i = 0; i < 3; i++) {
      const a = await startGateway(build, 'gateway (3 models)', smallFile, s2!, layout.gatewayCpu);
      rSmall.push(a.readyMs);
      const b = await startGateway(build, `gateway (${MODELS} models)`, bigFile, s1!, layout.gatewayCpu);
      rBig.push(b.readyMs);
      if (i < 2) {
        await a.child.stop();
        await b.child.stop();
      } else {
        gSmall = a.child;
        gBig = b.child;
      }
    }
    log(`start to ready: ${MODELS} models ${median(rBig).toFixed(0)} ms, 3 models ${median(rSmall).toFixed(0)} ms`);
    const rssIdleBig = rssMiB(gBig!.pid);
    const rssIdleSmall = rssMiB(gSmall!.pid);

    // 3. throughput
    const bigScript = join(dir, 'big.lua');
    const smallScript = join(dir, 'small.lua');
    writeWrkRotatingScript(bigScript, requestsFor(big));
    writeWrkRotatingScript(smallScript, requestsFor(small));
    // Sanity: one request per config must answer 200; a wrong key 401.
    for (const [port, m] of [[p1!, big[big.length - 1]!], [p2!, small[0]!]] as const) {
      const ok = await request(`http://127.0.0.1:${port}${m.path ?? ''}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-model': m.name, apikey: m.key }, body: '{"max_tokens":4,"messages":[]}' });
      await ok.body.dump();
      const bad = await request(`http://127.0.0.1:${port}${m.path ?? ''}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-model': m.name, apikey: 'nope' }, body: '{}' });
      await bad.body.dump();
      if (ok.statusCode !== 200 || bad.statusCode !== 401) throw new Error(`sanity: port ${port} answered ${ok.statusCode} / ${bad.statusCode} (want 200 / 401)`);
    }
    const runs = { big: [] as Array<{ rps: number; cpu: number; p50: number; p99: number; errors: number }>, small: [] as Array<{ rps: number; cpu: number; p50: number; p99: number; errors: number }> };
    const one = async (which: 'big' | 'small', seconds: number, record: boolean): Promise<void> => {
      const g = which === 'big' ? gBig! : gSmall!;
      const c0 = cpuSecondsOf(g.pid);
      const w = await runWrk({ url: `http://127.0.0.1:${which === 'big' ? p1 : p2}`, script: which === 'big' ? bigScript : smallScript, connections: CONNECTIONS, seconds, cpu: layout.loadCpu });
      const cpu = cpuSecondsOf(g.pid) - c0;
      if (record) runs[which].push({ rps: w.rps, cpu: (cpu / w.requests) * 1e6, p50: w.p50Us, p99: w.p99Us, errors: w.errorTotal });
      if (record) log(`  ${which === 'big' ? `${MODELS} models` : '3 models'}: ${w.rps.toFixed(0)} req/s, ${((cpu / w.requests) * 1e6).toFixed(1)} µs CPU/req, errors ${w.errorTotal}`);
    };
    log('warm-up ...');
    await one('small', 3, false);
    await one('big', 3, false);
    for (let r = 0; r < ROUNDS; r++) {
      log(`round ${r + 1}/${ROUNDS}`);
      const order: Array<'big' | 'small'> = r % 2 === 0 ? ['big', 'small'] : ['small', 'big'];
      for (const w of order) await one(w, SECONDS, true);
    }
    const rssAfterBig = rssMiB(gBig!.pid);
    const rssAfterSmall = rssMiB(gSmall!.pid);
    const mb = { rps: median(runs.big.map((x) => x.rps)), cpu: median(runs.big.map((x) => x.cpu)), p50: median(runs.big.map((x) => x.p50)), p99: median(runs.big.map((x) => x.p99)) };
    const ms = { rps: median(runs.small.map((x) => x.rps)), cpu: median(runs.small.map((x) => x.cpu)), p50: median(runs.small.map((x) => x.p50)), p99: median(runs.small.map((x) => x.p99)) };
    const errBig = runs.big.reduce((s, x) => s + x.errors, 0);
    const errSmall = runs.small.reduce((s, x) => s + x.errors, 0);
    const lossPct = (1 - mb.rps / ms.rps) * 100;
    const cpuPct = (mb.cpu / ms.cpu - 1) * 100;

    const date = new Date().toISOString();
    const md: string[] = [];
    md.push(`## bench:routes — ${date}`, '');
    md.push(`${MODELS} models (100 path groups × 100 names, one group at the root, a key each) vs 3 models; zero-delay simulator; wrk -t1 -c${CONNECTIONS} rotating over one request per model, ${ROUNDS} rounds × ${SECONDS} s, medians. ${layout.note}. Children: ${build.cli.label}.`, '');
    md.push(`| | ${MODELS} models | 3 models | target |`, '| --- | ---: | ---: | --- |');
    md.push(`| \`validate\` wall time (process start + load + validate + compile), median of 3 | ${median(vBig).toFixed(0)} ms | ${median(vSmall).toFixed(0)} ms | < ${T_VALIDATE_S * 1000} ms: ${median(vBig) < T_VALIDATE_S * 1000 ? 'met' : '**MISSED**'} |`);
    md.push(`| start → ready, median of 3 | ${median(rBig).toFixed(0)} ms | ${median(rSmall).toFixed(0)} ms | — |`);
    md.push(`| RSS idle / after load | ${rssIdleBig.toFixed(0)} / ${rssAfterBig.toFixed(0)} MiB | ${rssIdleSmall.toFixed(0)} / ${rssAfterSmall.toFixed(0)} MiB | — |`);
    md.push(`| req/s (routing + key auth + proxy) | ${mb.rps.toFixed(0)} | ${ms.rps.toFixed(0)} | within ${T_PCT} %: ${Math.abs(lossPct).toFixed(1)} % ${lossPct >= 0 ? 'lower' : 'higher'} → ${lossPct <= T_PCT ? 'met' : '**MISSED**'} |`);
    md.push(`| gateway CPU µs per request | ${mb.cpu.toFixed(1)} | ${ms.cpu.toFixed(1)} | ${cpuPct >= 0 ? '+' : ''}${cpuPct.toFixed(1)} % |`);
    md.push(`| latency p50 / p99 | ${(mb.p50 / 1000).toFixed(2)} / ${(mb.p99 / 1000).toFixed(2)} ms | ${(ms.p50 / 1000).toFixed(2)} / ${(ms.p99 / 1000).toFixed(2)} ms | — |`);
    md.push(`| req/s per round | ${runs.big.map((x) => x.rps.toFixed(0)).join(', ')} | ${runs.small.map((x) => x.rps.toFixed(0)).join(', ')} | — |`);
    md.push(`| errors (socket + status > 399) | ${errBig} | ${errSmall} | 0 |`);
    md.push('', 'Machine:', '');
    for (const [k, v] of Object.entries(machineFacts())) md.push(`- ${k}: ${v}`);
    md.push('');
    const text = md.join('\n');
    publishReport(text, `routes-${date.slice(0, 10)}.md`);
  } finally {
    await stopAll();
  }
}

runBench('bench:routes', main);
