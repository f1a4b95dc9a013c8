/**
 * `npm run bench:streams` — many concurrent slow SSE streams through one gateway process: every
 * stream delivered intact, no stalls, gateway memory bounded.
 *
 * Processes: the upstream (`inference-gateway simulate --itl-ms 1000`: one token event a second)
 * and the load generator (bench/stream-client.ts) on CPU 1; the gateway (`inference-gateway
 * start`, one model + key, access log to /dev/null) alone on CPU 0. Every child is started through
 * `sh -c 'ulimit -n …; exec …'` with the highest fd limit allowed.
 *
 * Client protocol (BENCH_PROTOCOL): `h1` opens one raw HTTP/1.1 socket per stream, so the gateway
 * holds two sockets per stream (client + upstream): 10,000 streams need 20,064 fds, over this
 * machine's hard limit of 20,000 (raising it needs CAP_SYS_RESOURCE). `h2` sends the streams as
 * HTTP/2 over TLS to the gateway's tls_listen (self-signed development certificate),
 * BENCH_STREAMS_PER_CONN (100) per connection, as an ingress or a multiplexing client does: one
 * gateway socket per stream (upstream) plus one per 100. Default: h1 when its fds fit, else h2.
 *
 * The client opens BENCH_STREAMS streams (default 10,000) in batches (BENCH_BATCH every
 * BENCH_BATCH_MS: 100 every 25 ms, 4,000/s, so a batch never overflows the accept backlog), each
 * `stream: true` with max_tokens BENCH_CHUNKS (default 30): role event + 30 tokens + [DONE] = 32
 * events per stream, ~31 s each, so all streams are open at once for ~28 s after the 2.5 s ramp.
 * Why one event per second (BENCH_ITL_MS, 1000) and not per 100 ms: 10,000 streams at 10 events/s
 * are 100,000 events/s, and one core relays ~40,000/s (~23 µs per event, measured here), so at
 * 100 ms the run measures CPU starvation, not memory or stalls; at 1000 ms it is 10,000 events/s.
 * A stream is intact when it answered 200 with exactly those events; a stall is a gap of more
 * than BENCH_STALL_MS (default 2 × BENCH_ITL_MS) between two consecutive events of a stream. The
 * gateway's RSS, CPU and open fds are sampled every 500 ms from /proc.
 *
 * Env: BENCH_STREAMS, BENCH_CHUNKS, BENCH_ITL_MS, BENCH_STALL_MS, BENCH_PROTOCOL (h1|h2),
 * BENCH_STREAMS_PER_CONN, BENCH_UPSTREAM
 * (sim | raw: bench/raw-upstream.ts with one interval timer per stream), BENCH_ENTRY (tsx),
 * BENCH_NO_WRITE=1. Result: bench/results/streams-<date>.md.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { benchEntry } from './lib/build.js';
import { pinLayout } from './lib/layout.js';
import { Child, freePorts, stopAll, waitUntilReady } from './lib/procs.js';
import { cpuSecondsOf, fdLimit, hwmMiB, machineFacts, openFds, rssMiB, tcpCounters } from './lib/procstat.js';
import { publishReport, runBench } from './lib/report.js';
import { positiveEnv } from './lib/env.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MODEL = 'bench-model';
const API_KEY = 'bench-key-0123456789abcdef';
const WANTED = Math.round(positiveEnv('BENCH_STREAMS', 10_000));
const CHUNKS = Math.round(positiveEnv('BENCH_CHUNKS', 30));
const BATCH = Math.round(positiveEnv('BENCH_BATCH', 100));
const BATCH_MS = Math.round(positiveEnv('BENCH_BATCH_MS', 25));
const ITL_MS = Math.round(positiveEnv('BENCH_ITL_MS', 1000));
const STALL_MS = positiveEnv('BENCH_STALL_MS', 2 * ITL_MS);
const PER_CONN = Math.round(positiveEnv('BENCH_STREAMS_PER_CONN', 100));
const UPSTREAM_KIND = process.env.BENCH_UPSTREAM === 'raw' ? 'raw' : 'sim';
const EXPECT = CHUNKS + 2; // role event + CHUNKS tokens + [DONE]
const T_RSS_MIB = 512;
// Sockets besides streams: listeners, stdio, epoll, the upstream's health probe, slack.
const FD_SLACK = 64;

interface ClientResult {
  streams: number;
  intact: number;
  failures: Record<string, number>;
  events: number;
  expectedEvents: number;
  peakActive: number;
  streamsWithStall: number;
  stalls: number;
  maxGapP50: number;
  maxGapP99: number;
  maxGapMax: number;
  firstEventP50: number;
  firstEventP99: number;
  openedInMs: number;
  wallMs: number;
  cpuMs: number;
}

/** limited wraps a command so it runs with the fd limit raised as far as allowed and pinned to cpu. */
function limited(fds: number, cpu: number | null, args: string[]): [string, string[]] {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const pin = cpu === null ? '' : `taskset -c ${cpu} `;
  return ['sh', ['-c', `ulimit -n ${fds} 2>/dev/null || ulimit -n $(ulimit -Hn); exec ${pin}${args.map(q).join(' ')}`]];
}

async function main(): Promise<void> {
  const layout = pinLayout('upstream + stream client');
  const build = benchEntry(ROOT, ['stream-client', 'raw-upstream']);
  const lim = fdLimit();
  const fdAvail = Math.min(65_535, lim.hard);
  const fdNeed = (protocol: 'h1' | 'h2', n: number): number => (protocol === 'h1' ? 2 * n : n + Math.ceil(n / PER_CONN)) + FD_SLACK;
  const wantedProtocol = process.env.BENCH_PROTOCOL;
  if (wantedProtocol !== undefined && wantedProtocol !== 'h1' && wantedProtocol !== 'h2') throw new Error(`BENCH_PROTOCOL must be h1 or h2, got "${wantedProtocol}"`);
  const protocol: 'h1' | 'h2' = wantedProtocol ?? (fdNeed('h1', WANTED) <= fdAvail ? 'h1' : 'h2');
  const notes: string[] = [];
  if (wantedProtocol === undefined && protocol === 'h2') {
    notes.push(
      `client protocol h2: over HTTP/1.1 the gateway would need 2 sockets per stream, ${fdNeed('h1', WANTED)} fds for ${WANTED} streams, over the hard limit of ${lim.hard} here ` +
        `(raising it needs CAP_SYS_RESOURCE); over HTTP/2 it needs ${fdNeed('h2', WANTED)} (one upstream socket per stream, one client connection per ${PER_CONN} streams).`,
    );
  }
  const fdWanted = fdNeed(protocol, WANTED);
  const streams = fdWanted <= fdAvail ? WANTED : protocol === 'h1' ? Math.floor((fdAvail - FD_SLACK) / 2) : Math.floor(((fdAvail - FD_SLACK) * PER_CONN) / (PER_CONN + 1));
  if (streams < WANTED) {
    const msg = `fd limit: ${protocol} needs ${fdWanted} gateway fds for ${WANTED} streams, the hard limit here is ${lim.hard}: running ${streams} streams instead. BENCH_FORCE=1 runs the full count anyway.`;
    if (process.env.BENCH_FORCE === '1') notes.push(`forced ${WANTED} streams past the fd limit (${lim.hard}): failures below are EMFILE in the gateway`);
    else notes.push(msg);
    process.stdout.write(`WARNING: ${msg}\n`);
  }
  const count = process.env.BENCH_FORCE === '1' ? WANTED : streams;

  const [upPort, gwPort, gwStatus, gwAdmin, gwTls] = await freePorts(5);
  const dir = mkdtempSync(join(tmpdir(), 'igw-streams-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const log = (s: string): void => void process.stdout.write(`${s}\n`);
  log(`bench:streams — ${count} streams × ${EXPECT} events (one per ${ITL_MS} ms) over ${protocol === 'h1' ? 'HTTP/1.1' : `HTTP/2 (TLS, ${PER_CONN} per connection)`}, stall = gap > ${STALL_MS} ms; ${layout.note}; children: ${build.cli.label}`);

  try {
    const [ucmd, uargs] = limited(
      fdAvail,
      layout.loadCpu,
      UPSTREAM_KIND === 'sim'
        ? [process.execPath, ...build.cli.args, 'simulate', '--port', String(upPort), '--model', MODEL, '--itl-ms', String(ITL_MS)]
        : [process.execPath, ...build.helper('raw-upstream'), '--port', String(upPort), '--chunks', String(CHUNKS + 1), '--itl-ms', String(ITL_MS)],
    );
    const upstream = new Child('upstream', ucmd, uargs, { cpu: null, cwd: ROOT });
    await waitUntilReady(upstream, `http://127.0.0.1:${upPort}/health`);

    const configPath = join(dir, 'gateway.yaml');
    writeFileSync(
      configPath,
      stringify({
        proxy: {
          listen: `127.0.0.1:${gwPort}`,
          max_connections: 65_535,
          ...(protocol === 'h2' ? { tls_listen: `127.0.0.1:${gwTls}`, http2_max_concurrent_streams: Math.max(128, PER_CONN) } : {}),
        },
        status: { listen: `127.0.0.1:${gwStatus}` },
        admin: { listen: `127.0.0.1:${gwAdmin}` },
        models: [{ name: MODEL, api_keys: [API_KEY], targets: [{ url: `http://127.0.0.1:${upPort}` }] }],
      }),
    );
    const [gcmd, gargs] = limited(fdAvail, layout.gatewayCpu, [process.execPath, ...build.cli.args, 'start', '--config', configPath]);
    const gateway = new Child('gateway', gcmd, gargs, { cpu: null, cwd: ROOT, env: { ...process.env, IGW_LOG_LEVEL: 'warn' }, stdout: 'ignore' });
    await waitUntilReady(gateway, `http://127.0.0.1:${gwStatus}/status/ready`);
    const gwPid = gateway.pid;

    const rssIdle = rssMiB(gwPid);
    const cpu0 = cpuSecondsOf(gwPid);
    const up0 = cpuSecondsOf(upstream.pid);
    const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Stream slowly, please.' }], max_tokens: CHUNKS, stream: true });
    const [ccmd, cargs] = limited(fdAvail, layout.loadCpu, [
      process.execPath,
      ...build.helper('stream-client'),
      '--port', String(protocol === 'h1' ? gwPort : gwTls),
      ...(protocol === 'h2' ? ['--h2', '--streams-per-conn', String(PER_CONN)] : []),
      '--path', '/v1/chat/completions',
      '--headers', JSON.stringify({ 'x-model': MODEL, apikey: API_KEY }),
      '--body', body,
      '--streams', String(count),
      '--batch', String(BATCH),
      '--batch-ms', String(BATCH_MS),
      '--expect', String(EXPECT),
      '--stall-ms', String(STALL_MS),
    ]);
    const tcp0 = tcpCounters();
    const t0 = performance.now();
    const client = new Child('stream client', ccmd, cargs, { cpu: null, cwd: ROOT });
    let result: ClientResult | null = null;
    let lastProgress = '';
    let buf = '';
    client.proc.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('RESULT ')) result = JSON.parse(line.slice(7)) as ClientResult;
        else if (line.startsWith('PROGRESS ')) lastProgress = line.slice(9);
      }
    });

    // Sample the gateway every 500 ms.
    const samples: Array<{ t: number; rss: number; cpu: number; fds: number }> = [];
    let peakRss = 0;
    let peakFds = 0;
    let lastCpu = cpu0;
    let lastT = performance.now();
    const sampler = setInterval(() => {
      const now = performance.now();
      const rss = rssMiB(gwPid);
      const cpu = cpuSecondsOf(gwPid);
      const fds = openFds(gwPid);
      samples.push({ t: now - t0, rss, cpu, fds });
      if (rss > peakRss) peakRss = rss;
      if (fds > peakFds) peakFds = fds;
      const busy = ((cpu - lastCpu) / ((now - lastT) / 1000)) * 100;
      lastCpu = cpu;
      lastT = now;
      const p = lastProgress === '' ? {} : (JSON.parse(lastProgress) as Record<string, number>);
      log(
        `  t=${((now - t0) / 1000).toFixed(1).padStart(5)} s  gateway RSS ${rss.toFixed(0).padStart(4)} MiB, CPU ${busy.toFixed(0).padStart(3)} %, fds ${String(fds).padStart(5)} | ` +
          `client: opened ${p.opened ?? 0}, streaming ${p.active ?? 0}, finished ${p.finished ?? 0}, intact ${p.intact ?? 0}, stalls ${p.stalls ?? 0}`,
      );
    }, 500);
    await client.exited;
    clearInterval(sampler);
    const wall = (performance.now() - t0) / 1000;
    const r = result as ClientResult | null;
    if (r === null) throw new Error(`the stream client gave no result: ${client.describe()}`);
    const tcp1 = tcpCounters();
    const tcpDelta = Object.entries(tcp1).map(([k, v]) => `${k} +${v - (tcp0[k] ?? 0)}`).join(', ');
    const cpuUsed = cpuSecondsOf(gwPid) - cpu0;
    const upCpu = cpuSecondsOf(upstream.pid) - up0;
    const rssAfter = rssMiB(gwPid);
    const hwm = hwmMiB(gwPid);
    // Memory after the streams ended (connections closed; heap not necessarily collected).
    await new Promise((res) => setTimeout(res, 2000));
    const rssSettled = rssMiB(gwPid);
    if (gateway.isExited) throw new Error(gateway.describe());

    const date = new Date().toISOString();
    const ok = r.intact === count && r.streamsWithStall === 0;
    const md: string[] = [];
    md.push(`## bench:streams — ${date}`, '');
    md.push(
      `${count} concurrent SSE streams through one gateway process; upstream ${UPSTREAM_KIND === 'sim' ? `\`inference-gateway simulate --itl-ms ${ITL_MS}\`` : `bench/raw-upstream.ts --itl-ms ${ITL_MS}`}, ` +
        `max_tokens ${CHUNKS} → ${EXPECT} events per stream (one per ${ITL_MS} ms). Client: bench/stream-client.ts, ${protocol === 'h1' ? 'HTTP/1.1 over raw net sockets, one per stream' : `HTTP/2 over TLS, ${PER_CONN} streams per connection`}, opened ${BATCH} every ${BATCH_MS} ms. ${layout.note}. Children: ${build.cli.label}.`,
      '',
    );
    md.push('| measure | value | target |', '| --- | --- | --- |');
    md.push(`| streams intact (200, all ${EXPECT} events, [DONE]) | ${r.intact} of ${count} | all |`);
    md.push(`| failures | ${Object.keys(r.failures).length === 0 ? 'none' : Object.entries(r.failures).map(([k, v]) => `${v}× ${k}`).join('; ')} | none |`);
    md.push(`| events received / expected | ${r.events} / ${r.expectedEvents} | equal |`);
    md.push(`| peak streams open at once (client) | ${r.peakActive} | ${count} |`);
    md.push(`| streams with a stall (gap > ${STALL_MS} ms) | ${r.streamsWithStall} (stall gaps: ${r.stalls}) | 0 |`);
    md.push(`| largest gap between events per stream: p50 / p99 / max | ${r.maxGapP50.toFixed(0)} / ${r.maxGapP99.toFixed(0)} / ${r.maxGapMax.toFixed(0)} ms | — (${ITL_MS} ms nominal) |`);
    md.push(`| time to first event: p50 / p99 | ${r.firstEventP50.toFixed(1)} / ${r.firstEventP99.toFixed(1)} ms | — |`);
    md.push(`| gateway RSS idle → peak (500 ms samples) → end → 2 s later | ${rssIdle.toFixed(0)} → ${peakRss.toFixed(0)} → ${rssAfter.toFixed(0)} → ${rssSettled.toFixed(0)} MiB (VmHWM ${hwm.toFixed(0)}) | < ${T_RSS_MIB} MiB |`);
    md.push(`| gateway RSS per stream at peak | ${(((peakRss - rssIdle) * 1024) / count).toFixed(1)} KiB | — |`);
    md.push(`| gateway CPU | ${cpuUsed.toFixed(1)} s over ${wall.toFixed(1)} s (${((cpuUsed / wall) * 100).toFixed(0)} % of a core); ${((cpuUsed / r.events) * 1e6).toFixed(1)} µs per event | — |`);
    md.push(`| gateway peak open fds | ${peakFds} (limit ${fdAvail}) | — |`);
    md.push(`| upstream / client CPU | ${upCpu.toFixed(1)} s / ${(r.cpuMs / 1000).toFixed(1)} s (both on CPU ${layout.loadCpu ?? '?'}) | — |`);
    md.push(`| kernel TCP counters during the run (system-wide) | ${tcpDelta} | ListenOverflows 0 |`);
    md.push(`| all streams opened in | ${(r.openedInMs / 1000).toFixed(1)} s; run took ${(r.wallMs / 1000).toFixed(1)} s | — |`);
    md.push('');
    md.push(`Result: ${ok ? 'every stream intact, no stall' : '**NOT all streams intact / stalls seen**'}; RSS peak ${peakRss.toFixed(0)} MiB ${peakRss < T_RSS_MIB ? '<' : '**≥**'} ${T_RSS_MIB} MiB.`, '');
    if (notes.length > 0) md.push(...notes.map((n) => `- note: ${n}`), '');
    md.push('RSS / CPU samples (every 2 s):', '', '```');
    let prevCpu = cpu0;
    let prevT = 0;
    for (let i = 0; i < samples.length; i += 4) {
      const s = samples[i]!;
      md.push(`t=${(s.t / 1000).toFixed(1).padStart(5)} s  RSS ${s.rss.toFixed(0).padStart(4)} MiB  CPU ${(((s.cpu - prevCpu) / ((s.t - prevT) / 1000)) * 100).toFixed(0).padStart(3)} %  fds ${s.fds}`);
      prevCpu = s.cpu;
      prevT = s.t;
    }
    md.push('```', '', 'Machine:', '');
    for (const [k, v] of Object.entries(machineFacts())) md.push(`- ${k}: ${v}`);
    md.push('');
    const text = md.join('\n');
    publishReport(text, `streams-${date.slice(0, 10)}${count !== 10_000 ? `-${count}` : ''}-${protocol}-${UPSTREAM_KIND === 'sim' ? 'sim' : 'raw-upstream'}.md`);
  } finally {
    await stopAll();
  }
}

runBench('bench:streams', main);
