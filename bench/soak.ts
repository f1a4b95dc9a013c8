/**
 * `npm run bench:soak -- --minutes N` — does the gateway's memory level off under mixed traffic?
 *
 * One gateway process (CPU 0; access log on, to /dev/null) in front of a zero-delay simulator
 * (CPU 1, with this load generator). BENCH_CONCURRENCY (default 64) workers loop for N minutes
 * (default 3), each request drawn from this mix:
 *   35 % non-streaming chat completion                          → 200
 *   25 % stream, 20 tokens 2 ms apart (x-sim-itl-ms)            → 200, all events
 *   12 % stream aborted by the client after 3 events            → (client gone: 499 in the access log)
 *   10 % wrong API key                                          → 401
 *    6 % unknown model (X-Model)                                → 404
 *    5 % upstream answers 500 (x-sim-status)                    → 500 passed through
 *    4 % upstream resets the stream after 5 events (x-sim-fail-after-chunks) → 200 + final error event
 *        (both on a second model, same target, passive health checks off: resets would eject the target)
 *    3 % request body over proxy.max_body_size (64 KiB here)   → 413
 * Every 10 s a compact line (gateway RSS, heap is not visible from outside, CPU, req/s, outcomes);
 * every minute a summary line. At the end: the RSS slope over the second half of the run (least
 * squares on the 10 s samples, MiB/min) and the verdict: it levels off when the second-half slope
 * is below BENCH_SLOPE_MAX (default 1 MiB/min). Outcomes that do not match their kind are counted
 * as unexpected. Result: bench/results/soak-<date>.md.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { benchEntry } from './lib/build.js';
import { pinLayout } from './lib/layout.js';
import { Child, freePorts, stopAll, waitUntilReady } from './lib/procs.js';
import { cpuSecondsOf, hwmMiB, machineFacts, openFds, rssMiB } from './lib/procstat.js';
import { publishReport, runBench } from './lib/report.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MODEL = 'bench-model';
const API_KEY = 'bench-key-0123456789abcdef';
const PATH = '/ai/models/v1/chat/completions';
const FAULTY = 'bench-faulty';
const FAULTY_KEY = 'bench-faulty-key-0123456789';

function minutesArg(): number {
  const i = process.argv.indexOf('--minutes');
  const v = i === -1 ? (process.env.BENCH_MINUTES ?? '3') : process.argv[i + 1];
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--minutes must be a positive number, got "${v}"`);
  return n;
}
const MINUTES = minutesArg();
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const SLOPE_MAX = Number(process.env.BENCH_SLOPE_MAX ?? 1);
const SAMPLE_MS = 10_000;

type Kind = 'json' | 'stream' | 'abort' | 'badkey' | 'nomodel' | 'up500' | 'upreset' | 'toolarge';
const MIX: Array<[Kind, number]> = [
  ['json', 35],
  ['stream', 25],
  ['abort', 12],
  ['badkey', 10],
  ['nomodel', 6],
  ['up500', 5],
  ['upreset', 4],
  ['toolarge', 3],
];
const EXPECTED: Record<Kind, number> = { json: 200, stream: 200, abort: 200, badkey: 401, nomodel: 404, up500: 500, upreset: 200, toolarge: 413 };

function pick(): Kind {
  let r = Math.random() * 100;
  for (const [k, w] of MIX) {
    r -= w;
    if (r < 0) return k;
  }
  return 'json';
}

/** slope is the least-squares slope of ys over xs. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return Number.NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

async function main(): Promise<void> {
  const layout = pinLayout('simulator + load generator');
  const build = benchEntry(ROOT);
  const [up, gp, gs, ga] = await freePorts(4);
  const dir = mkdtempSync(join(tmpdir(), 'igw-soak-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const log = (s: string): void => void process.stdout.write(`${s}\n`);
  const configPath = join(dir, 'gateway.yaml');
  writeFileSync(
    configPath,
    stringify({
      proxy: { listen: `127.0.0.1:${gp}`, max_body_size: '64KiB' },
      status: { listen: `127.0.0.1:${gs}` },
      admin: { listen: `127.0.0.1:${ga}` },
      models: [
        { name: MODEL, path: '/ai/models', api_keys: [API_KEY], targets: [{ url: `http://127.0.0.1:${up}` }] },
        // Injected upstream faults go to their own model with passive health checks off: three resets
        // in a row would otherwise eject the one target and turn the rest of the soak into 503s.
        { name: FAULTY, path: '/ai/models', api_keys: [FAULTY_KEY], targets: [{ url: `http://127.0.0.1:${up}` }], health_check: { passive: { enabled: false } } },
      ],
    }),
  );
  log(`bench:soak — ${MINUTES} min, ${CONCURRENCY} workers, mixed traffic; ${layout.note}; children: ${build.cli.label}`);
  try {
    const sim = new Child('simulator', process.execPath, [...build.cli.args, 'simulate', '--port', String(up), '--model', MODEL], { cpu: layout.loadCpu, cwd: ROOT });
    await waitUntilReady(sim, `http://127.0.0.1:${up}/health`);
    const gateway = new Child('gateway', process.execPath, [...build.cli.args, 'start', '--config', configPath], {
      cpu: layout.gatewayCpu,
      cwd: ROOT,
      env: { ...process.env, IGW_LOG_LEVEL: 'warn' },
      stdout: 'ignore',
    });
    await waitUntilReady(gateway, `http://127.0.0.1:${gs}/status/ready`);
    const pid = gateway.pid;
    const pool = new Pool(`http://127.0.0.1:${gp}`, { connections: CONCURRENCY, pipelining: 1, keepAliveTimeout: 60_000 });
    const messages = [{ role: 'user', content: 'Soak test, please answer.' }];
    const jsonBody = JSON.stringify({ model: MODEL, messages, max_tokens: 16 });
    const streamBody = JSON.stringify({ model: MODEL, messages, max_tokens: 20, stream: true });
    const bigBody = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x'.repeat(80 * 1024) }] });
    const base = { 'content-type': 'application/json', 'x-model': MODEL, apikey: API_KEY };

    const counts = new Map<Kind, number>();
    const unexpected = new Map<string, number>();
    let total = 0;
    const bump = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1);

    const one = async (kind: Kind): Promise<void> => {
      let headers: Record<string, string> = base;
      let body = jsonBody;
      if (kind === 'stream' || kind === 'abort') {
        body = streamBody;
        headers = { ...base, 'x-sim-itl-ms': '2' };
      } else if (kind === 'upreset') {
        body = streamBody;
        headers = { ...base, 'x-model': FAULTY, apikey: FAULTY_KEY, 'x-sim-itl-ms': '2', 'x-sim-fail-after-chunks': '5' };
      } else if (kind === 'badkey') headers = { ...base, apikey: 'not-a-key' };
      else if (kind === 'nomodel') headers = { ...base, 'x-model': 'no-such-model' };
      else if (kind === 'up500') headers = { ...base, 'x-model': FAULTY, apikey: FAULTY_KEY, 'x-sim-status': '500' };
      else if (kind === 'toolarge') body = bigBody;
      const ac = new AbortController();
      try {
        const res = await pool.request({ path: PATH, method: 'POST', headers, body, signal: ac.signal });
        if (res.statusCode !== EXPECTED[kind]) {
          bump(unexpected, `${kind}: status ${res.statusCode}`);
          await res.body.dump();
          return;
        }
        if (kind === 'abort') {
          let events = 0;
          for await (const c of res.body as AsyncIterable<Buffer>) {
            events += c.toString('latin1').split('data: ').length - 1;
            if (events >= 3) {
              ac.abort();
              break;
            }
          }
          return;
        }
        const text = await res.body.text();
        if (kind === 'stream' && !text.endsWith('data: [DONE]\n\n')) bump(unexpected, 'stream: no [DONE]');
        if (kind === 'upreset' && !text.includes('"error"')) bump(unexpected, 'upreset: no final error event');
      } catch (err) {
        if (kind === 'abort' && ac.signal.aborted) return;
        bump(unexpected, `${kind}: ${(err as { code?: string }).code ?? (err as Error).message}`);
      } finally {
        counts.set(kind, (counts.get(kind) ?? 0) + 1);
        total++;
      }
    };

    const t0 = performance.now();
    const deadline = t0 + MINUTES * 60_000;
    const samples: Array<{ min: number; rss: number }> = [{ min: 0, rss: rssMiB(pid) }];
    const rssStart = samples[0]!.rss;
    log(`  t=  0:00  RSS ${rssStart.toFixed(1)} MiB (idle)`);
    let lastTotal = 0;
    let lastCpu = cpuSecondsOf(pid);
    let lastT = t0;
    const minuteLines: string[] = [];
    const timer = setInterval(() => {
      const now = performance.now();
      const min = (now - t0) / 60_000;
      const rss = rssMiB(pid);
      const cpu = cpuSecondsOf(pid);
      samples.push({ min, rss });
      const secs = (now - lastT) / 1000;
      const unexp = [...unexpected.values()].reduce((a, b) => a + b, 0);
      const mmss = `${Math.floor(min)}:${String(Math.round((min % 1) * 60)).padStart(2, '0')}`;
      log(
        `  t=${mmss.padStart(5)}  RSS ${rss.toFixed(1)} MiB  CPU ${(((cpu - lastCpu) / secs) * 100).toFixed(0)} %  ${((total - lastTotal) / secs).toFixed(0)} req/s  total ${total}  unexpected ${unexp}  fds ${openFds(pid)}`,
      );
      const k = samples.length - 1;
      if (k % 6 === 0) {
        const line = `minute ${k / 6}: RSS ${rss.toFixed(1)} MiB (peak so far ${hwmMiB(pid).toFixed(1)}), ${total} requests, ${unexp} unexpected`;
        minuteLines.push(line);
        log(line);
      }
      lastTotal = total;
      lastCpu = cpu;
      lastT = now;
    }, SAMPLE_MS);
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < deadline) await one(pick());
      }),
    );
    clearInterval(timer);
    await pool.destroy();
    if (gateway.isExited) throw new Error(gateway.describe());
    const rssEnd = rssMiB(pid);
    const half = samples.filter((s) => s.min >= MINUTES / 2);
    const first = samples.filter((s) => s.min > 0 && s.min < MINUTES / 2);
    const s2 = slope(half.map((s) => s.min), half.map((s) => s.rss));
    const s1 = slope(first.map((s) => s.min), first.map((s) => s.rss));
    const isLevel = Number.isFinite(s2) && s2 < SLOPE_MAX;
    const unexpTotal = [...unexpected.values()].reduce((a, b) => a + b, 0);

    const date = new Date().toISOString();
    const md: string[] = [];
    md.push(`## bench:soak — ${date}`, '');
    md.push(`${MINUTES} min of mixed traffic, ${CONCURRENCY} workers, one gateway process; RSS sampled every 10 s. ${layout.note}. Children: ${build.cli.label}.`, '');
    md.push('| measure | value |', '| --- | --- |');
    md.push(`| requests | ${total} (${(total / (MINUTES * 60)).toFixed(0)} req/s): ${MIX.map(([k]) => `${k} ${counts.get(k) ?? 0}`).join(', ')} |`);
    md.push(`| unexpected outcomes | ${unexpTotal === 0 ? '0' : [...unexpected].map(([k, v]) => `${v}× ${k}`).join('; ')} |`);
    md.push(`| RSS idle → end (peak VmHWM) | ${rssStart.toFixed(1)} → ${rssEnd.toFixed(1)} MiB (${hwmMiB(pid).toFixed(1)}) |`);
    md.push(`| RSS slope, first half / second half (least squares) | ${s1.toFixed(2)} / **${s2.toFixed(2)} MiB/min** |`);
    md.push(`| levels off (second-half slope < ${SLOPE_MAX} MiB/min) | ${isLevel ? 'yes' : '**NO**'} |`);
    md.push('', 'Per minute:', '', ...minuteLines.map((l) => `- ${l}`), '', 'RSS samples (MiB, every 10 s):', '', '```');
    md.push(samples.map((s) => s.rss.toFixed(1)).join(' '));
    md.push('```', '', 'Machine:', '');
    for (const [k, v] of Object.entries(machineFacts())) md.push(`- ${k}: ${v}`);
    md.push('');
    const text = md.join('\n');
    publishReport(text, `soak-${date.slice(0, 10)}.md`);
  } finally {
    await stopAll();
  }
}

runBench('bench:soak', main);
