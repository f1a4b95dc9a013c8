/**
 * `npm run bench:tokens` — many concurrent slow token streams, as an inference fleet sends them,
 * through the gateway and through nginx (same routing), one at a time, to find how many streams
 * each sustains on one core.
 *
 * Processes: the upstream (bench/raw-token-upstream.ts: one event per BENCH_INTERVAL_MS, default
 * 20 ms = 50 tokens/s per stream, each stamped with its emit time) and the load generator
 * (bench/raw-token-client.ts: one process, HTTP/1.1 keep-alive, reads into one shared buffer, no
 * allocation per event) share CPU 1; the proxy under test runs alone on CPU 0. The gateway runs
 * with every feature on: usage tracking on every stream (it asks the upstream for the usage event
 * and hides it from the client), metrics, access log (JSON lines to /dev/null).
 *
 * Per N in BENCH_TOKEN_STREAMS (default 500,1000,2000,4000), per target (direct, the upstream
 * itself as a reference for the load side's own jitter; gateway; nginx): N connections, each
 * running streams of BENCH_EVENTS (200) events back to back; connections open over 1 s, then
 * BENCH_WARM_SECONDS (2) of warm-up, BENCH_MEASURE_SECONDS (5) measured, then the running streams
 * finish. Reported per N and target:
 *   - events/s delivered in the window (N × 50/s expected);
 *   - proxy CPU in % of its core over the window, RSS at its end;
 *   - added inter-token latency p50 / p99: per event, the gap to the stream's previous event at
 *     the client minus the gap between their emit stamps (so the upstream's own timer jitter is
 *     not counted; the load side's is, equally for every target — see the direct row);
 *   - events lost: events missing from streams that ended or were cut (must be 0);
 *   - how idle the load CPU was (near 0: the load side, not the proxy, was the limit);
 *   - for the gateway, how late its own event loop ran in the window (p99, max), from its
 *     /metrics (bench/lib/loop-delay.ts): a lower bound on the gateway's own stalls.
 * Headline: the largest N each proxy sustains with added p99 < 2 ms, its core below 90 % and no
 * event lost, and the ratio of ours to nginx's.
 *
 * Env: BENCH_TOKEN_STREAMS (comma list), BENCH_EVENTS, BENCH_INTERVAL_MS, BENCH_WARM_SECONDS,
 * BENCH_MEASURE_SECONDS, BENCH_TARGETS (comma list of direct,gateway,nginx), BENCH_ENTRY (tsx),
 * BENCH_CPU_PROF=1 (gateway under `--cpu-prof`: where its CPU went during its measured windows),
 * BENCH_NODE_FLAGS (extra node flags for the gateway, e.g. `--single-threaded-gc`; named in the report),
 * BENCH_NO_WRITE=1. Result: bench/results/tokens-<date>.md.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { benchEntry } from './lib/build.js';
import { monotonicMicros, summarizeProfile, type Window } from './lib/cpuprofile.js';
import { pinLayout } from './lib/layout.js';
import { nginxBinary, writeNginxConfig } from './lib/nginx.js';
import { Child, cpuShare, freePorts, readCpuTimes, stopAll, waitUntilReady, type CpuTimes } from './lib/procs.js';
import { cpuSecondsOf, fdLimit, machineFacts, rssMiB } from './lib/procstat.js';
import { publishReport, runBench } from './lib/report.js';
import { positiveEnv } from './lib/env.js';
import { LOOP_SAMPLE_MS, scrapeLoopDelay, type LoopDelay } from './lib/loop-delay.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MODEL = 'bench-model';
const API_KEY = 'bench-key-0123456789abcdef';
const PREFIX = '/ai/models';
const CHAT = '/v1/chat/completions';

const COUNTS = (process.env.BENCH_TOKEN_STREAMS ?? '500,1000,2000,4000').split(',').map((s) => Math.round(Number(s.trim()))).filter((n) => n > 0);
const EVENTS = Math.round(positiveEnv('BENCH_EVENTS', 200));
const INTERVAL_MS = Math.round(positiveEnv('BENCH_INTERVAL_MS', 20));
const WARM_S = positiveEnv('BENCH_WARM_SECONDS', 2);
const MEASURE_S = positiveEnv('BENCH_MEASURE_SECONDS', 5);
const TARGETS = (process.env.BENCH_TARGETS ?? 'direct,gateway,nginx').split(',').map((s) => s.trim());
const PROFILE = process.env.BENCH_CPU_PROF === '1';
/** Extra node flags for the gateway process (e.g. `--single-threaded-gc`), space-separated. */
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');

// What "sustains" means.
const T_P99_US = 2000;
const T_CORE_PCT = 90;

interface ClientResult {
  streams: number;
  connected: number;
  seconds: number;
  eventsPerSecond: number;
  measuredEvents: number;
  addedP50Us: number;
  addedP99Us: number;
  addedP999Us: number;
  samples: number;
  lost: number;
  extra: number;
  errors: number;
  streamsDone: number;
  streamsCut: number;
  unfinished: number;
}

interface Row {
  target: string;
  n: number;
  r: ClientResult;
  cpuPct: number;
  rss: number;
  loadIdle: number;
  /** loop: how late the gateway's own event loop ran in the window (null for other targets, or unread). */
  loop: LoopDelay | null;
  ok: boolean;
}

/** limited wraps a command so it runs with the fd limit raised as far as allowed and pinned to cpu. */
function limited(fds: number, cpu: number | null, args: string[]): [string, string[]] {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const pin = cpu === null ? '' : `taskset -c ${cpu} `;
  return ['sh', ['-c', `ulimit -n ${fds} 2>/dev/null || ulimit -n $(ulimit -Hn); exec ${pin}${args.map(q).join(' ')}`]];
}

const f0 = (v: number): string => (Number.isFinite(v) ? v.toFixed(0) : 'n/a');
const f2 = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');
const ms = (us: number): string => (Number.isFinite(us) ? (us / 1000).toFixed(2) : 'n/a');

async function main(): Promise<void> {
  const layout = pinLayout('upstream + load generator');
  const build = benchEntry(ROOT, ['raw-token-upstream', 'raw-token-client']);
  const lim = fdLimit();
  const fds = Math.min(65_535, lim.hard);
  const log = (s: string): void => void process.stdout.write(`${s}\n`);
  const notes: string[] = [];
  const maxN = Math.max(...COUNTS);
  if (2 * maxN + 64 > fds) notes.push(`fd limit ${fds}: a proxy holds 2 sockets per stream; ${maxN} streams need ${2 * maxN + 64}`);
  const [upPort, gwPort, gwStatus, gwAdmin, nxPort] = await freePorts(5);
  const dir = mkdtempSync(join(tmpdir(), 'igw-tokens-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  log(
    `bench:tokens — N = ${COUNTS.join(', ')} streams × one event per ${INTERVAL_MS} ms, ${EVENTS} events per stream, ${WARM_S} s warm-up + ${MEASURE_S} s measured per run; ` +
      `${layout.note}; children: ${build.cli.label}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
  );

  try {
    const [ucmd, uargs] = limited(fds, layout.loadCpu, [process.execPath, ...build.helper('raw-token-upstream'), '--port', String(upPort), '--interval-ms', String(INTERVAL_MS)]);
    const upstream = new Child('token upstream', ucmd, uargs, { cpu: null, cwd: ROOT });
    await waitUntilReady(upstream, `http://127.0.0.1:${upPort}/health`);

    const configPath = join(dir, 'gateway.yaml');
    writeFileSync(
      configPath,
      stringify({
        proxy: { listen: `127.0.0.1:${gwPort}`, max_connections: 65_535 },
        status: { listen: `127.0.0.1:${gwStatus}` },
        admin: { listen: `127.0.0.1:${gwAdmin}` },
        log: { access_log: true, format: 'json' },
        models: [{ name: MODEL, path: PREFIX, api_keys: [API_KEY], targets: [{ url: `http://127.0.0.1:${upPort}` }] }],
      }),
    );
    const profDir = join(dir, 'prof');
    const [gcmd, gargs] = limited(fds, layout.gatewayCpu, [process.execPath, ...NODE_FLAGS, ...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []), ...build.cli.args, 'start', '--config', configPath]);
    const gateway = new Child('gateway', gcmd, gargs, { cpu: null, cwd: ROOT, env: { ...process.env, IGW_LOG_LEVEL: 'warn' }, stdout: 'ignore' });
    await waitUntilReady(gateway, `http://127.0.0.1:${gwStatus}/status/ready`);

    let nginx: Child | null = null;
    const nginxBin = nginxBinary();
    if (nginxBin === null) notes.push('nginx is not installed: its rows are missing (apt-get install nginx).');
    else if (TARGETS.includes('nginx')) {
      const nxDir = join(dir, 'nginx');
      const conf = writeNginxConfig({ dir: nxDir, port: nxPort!, upstream: `127.0.0.1:${upPort}`, model: MODEL, apiKey: API_KEY, prefix: PREFIX, accessLog: true });
      const [ncmd, nargs] = limited(fds, layout.gatewayCpu, [nginxBin, '-p', nxDir, '-c', conf, '-e', 'stderr']);
      nginx = new Child('nginx', ncmd, nargs, { cpu: null, cwd: nxDir });
      await waitUntilReady(nginx, `http://127.0.0.1:${nxPort}/__ready`);
    }

    const targets: Array<{ name: string; port: number; path: string; pid: number; child: Child }> = [];
    if (TARGETS.includes('direct')) targets.push({ name: 'direct', port: upPort!, path: CHAT, pid: upstream.pid, child: upstream });
    if (TARGETS.includes('gateway')) targets.push({ name: 'gateway', port: gwPort!, path: PREFIX + CHAT, pid: gateway.pid, child: gateway });
    if (nginx !== null) targets.push({ name: 'nginx', port: nxPort!, path: PREFIX + CHAT, pid: nginx.pid, child: nginx });

    const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Stream at fleet pace, please.' }], max_tokens: EVENTS, stream: true });
    const headers = JSON.stringify({ 'x-model': MODEL, apikey: API_KEY });
    const rows: Row[] = [];
    const windows: Window[] = [];

    const runOnce = async (t: (typeof targets)[number], n: number): Promise<Row> => {
      const [ccmd, cargs] = limited(fds, layout.loadCpu, [
        process.execPath,
        ...build.helper('raw-token-client'),
        '--port', String(t.port),
        '--path', t.path,
        '--headers', headers,
        '--body', body,
        '--streams', String(n),
        '--events', String(EVENTS),
        '--ramp-ms', '1000',
        '--warm-ms', String(WARM_S * 1000),
        '--measure-ms', String(MEASURE_S * 1000),
      ]);
      const client = new Child('token client', ccmd, cargs, { cpu: null, cwd: ROOT });
      let c0 = 0;
      let w0 = 0;
      let k0: Map<number, CpuTimes> | null = null;
      let cpuPct = Number.NaN;
      let rss = Number.NaN;
      let loadIdle = Number.NaN;
      let result: ClientResult | null = null;
      // The gateway's metrics, scraped as the window opens (which restarts its loop-delay histogram) and as it closes.
      const metricsUrl = `http://127.0.0.1:${gwStatus}/metrics`;
      let loopAtStart: Promise<LoopDelay | null> | null = null;
      let loopAtEnd: Promise<LoopDelay | null> | null = null;
      let buf = '';
      client.proc.stdout!.on('data', (c: Buffer) => {
        buf += c.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) !== -1) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.startsWith('MEASURE_START')) {
            c0 = cpuSecondsOf(t.pid);
            w0 = performance.now();
            if (t.name === 'gateway') {
              windows.push([monotonicMicros(), Number.POSITIVE_INFINITY]);
              loopAtStart = scrapeLoopDelay(metricsUrl);
            }
            k0 = readCpuTimes();
          } else if (line.startsWith('MEASURE_END')) {
            const wall = (performance.now() - w0) / 1000;
            if (t.name === 'gateway') {
              windows[windows.length - 1] = [windows[windows.length - 1]![0], monotonicMicros()];
              loopAtEnd = scrapeLoopDelay(metricsUrl);
            }
            cpuPct = ((cpuSecondsOf(t.pid) - c0) / wall) * 100;
            rss = rssMiB(t.pid);
            const share = layout.loadCpu === null || k0 === null ? null : cpuShare(k0, readCpuTimes(), layout.loadCpu);
            loadIdle = share === null ? Number.NaN : share.idle;
          } else if (line.startsWith('RESULT ')) result = JSON.parse(line.slice(7)) as ClientResult;
        }
      });
      await client.exited;
      if (result === null) throw new Error(`the token client gave no result: ${client.describe()}`);
      if (t.child.isExited) throw new Error(t.child.describe());
      const r: ClientResult = result;
      const [opened, closed] = await Promise.all([loopAtStart, loopAtEnd]);
      const loop = opened !== null ? closed : null;
      const ok = r.lost === 0 && r.errors === 0 && r.unfinished === 0 && r.addedP99Us < T_P99_US && (t.name === 'direct' || cpuPct < T_CORE_PCT);
      return { target: t.name, n, r, cpuPct, rss, loadIdle, loop, ok };
    };

    for (const n of COUNTS) {
      for (const t of targets) {
        const row = await runOnce(t, n);
        rows.push(row);
        const r = row.r;
        log(
          `  N=${String(n).padStart(5)} ${t.name.padEnd(8)} ${f0(r.eventsPerSecond).padStart(7)} events/s (want ${f0((n * 1000) / INTERVAL_MS)}), CPU ${f0(row.cpuPct)} %, ` +
            `added ITL p50 ${ms(r.addedP50Us)} / p99 ${ms(r.addedP99Us)} ms, lost ${r.lost}, errors ${r.errors}, unfinished ${r.unfinished}, RSS ${f0(row.rss)} MiB, load CPU idle ${f0(row.loadIdle)} %` +
            (row.loop === null ? '' : `, gateway loop delay p99 ${f2(row.loop.p99Ms)} / max ${f2(row.loop.maxMs)} ms`) +
            (row.ok ? '' : '  (not sustained)'),
        );
        // Let sockets in TIME_WAIT and the proxy settle between runs.
        await new Promise((res) => setTimeout(res, 1000));
      }
    }

    const date = new Date().toISOString();
    const md: string[] = [];
    md.push(`## bench:tokens — ${date}`, '');
    md.push(
      `N concurrent token streams, one event every ${INTERVAL_MS} ms each (${1000 / INTERVAL_MS} tokens/s), ${EVENTS} events per stream, streams back to back on keep-alive connections; ` +
        `${WARM_S} s warm-up, ${MEASURE_S} s measured per run. Upstream: bench/raw-token-upstream.ts (emit-stamped events); client: bench/raw-token-client.ts (one process). ` +
        `Gateway: usage tracking, metrics and access log on. ${layout.note}. Children: ${build.cli.label}.${NODE_FLAGS.length > 0 ? ` Gateway node flags: \`${NODE_FLAGS.join(' ')}\`.` : ''}`,
      '',
    );
    md.push('| N | target | events/s (expected) | proxy CPU % of core | added inter-token p50 / p99 / p99.9 (ms) | events lost | errors | streams unfinished after the drain | RSS (MiB) | load CPU idle | sustained |');
    md.push('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
    for (const row of rows) {
      const r = row.r;
      md.push(
        `| ${row.n} | ${row.target}${row.target === 'direct' ? ' (CPU = upstream)' : ''} | ${f0(r.eventsPerSecond)} (${f0((row.n * 1000) / INTERVAL_MS)}) | ${f0(row.cpuPct)} % | ${ms(r.addedP50Us)} / ${ms(r.addedP99Us)} / ${ms(r.addedP999Us)} | ${r.lost} | ${r.errors} | ${r.unfinished} | ${f0(row.rss)} | ${f0(row.loadIdle)} % | ${row.ok ? 'yes' : 'no'} |`,
      );
    }
    md.push('');
    const loopRows = rows.filter((x) => x.loop !== null);
    if (loopRows.length > 0) {
      md.push(
        "How late the gateway's own event loop ran in each measured window (p99 / max, ms), from its `/metrics` scraped as the window opened and as it closed " +
          `(prom-client samples the loop every ${LOOP_SAMPLE_MS} ms, so shorter stalls are seen in part; a lower bound on the gateway's own stalls): ` +
          loopRows.map((x) => `${x.n}: ${f2(x.loop!.p99Ms)} / ${f2(x.loop!.maxMs)}`).join(', ') +
          '.',
        '',
      );
    }
    const best = (name: string): number => {
      // The largest N sustained with every smaller N sustained too.
      let n = 0;
      for (const c of COUNTS) {
        const row = rows.find((x) => x.target === name && x.n === c);
        if (row === undefined || !row.ok) break;
        n = c;
      }
      return n;
    };
    const gw = best('gateway');
    const nx = best('nginx');
    md.push(`Sustained (added inter-token p99 < ${T_P99_US / 1000} ms, core < ${T_CORE_PCT} %, no event lost), largest N of ${COUNTS.join(', ')}:`, '');
    md.push('| target | largest N sustained |', '| --- | ---: |');
    for (const t of targets) md.push(`| ${t.name} | ${best(t.name) || 'none'} |`);
    md.push('');
    if (nginx !== null && TARGETS.includes('gateway')) {
      md.push(`Headline: gateway ${gw || 'none'} / nginx ${nx || 'none'} streams = ${nx > 0 ? `${f2(gw / nx)}×` : 'n/a'} of nginx's.`, '');
    }
    const perEvent = (name: string): string =>
      rows
        .filter((x) => x.target === name && x.r.eventsPerSecond > 0)
        .map((x) => `${x.n}: ${((x.cpuPct / 100 / x.r.eventsPerSecond) * 1e6).toFixed(2)}`)
        .join(', ');
    md.push('Proxy CPU per delivered event (µs, by N):', '');
    for (const t of targets) if (t.name !== 'direct') md.push(`- ${t.name}: ${perEvent(t.name)}`);
    md.push('');
    if (rows.some((x) => x.loadIdle < 5)) notes.push('the load CPU (upstream + client) was saturated in some runs (idle < 5 %): those rows measure the load side as much as the proxy.');
    if (notes.length > 0) md.push(...notes.map((n) => `- note: ${n}`), '');
    md.push('Machine:', '');
    for (const [k, v] of Object.entries(machineFacts())) md.push(`- ${k}: ${v}`);
    md.push('');
    if (PROFILE) {
      await gateway.stop(15_000);
      const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
      if (files.length === 0) md.push('(no CPU profile was written)');
      else {
        const p = summarizeProfile(join(profDir, files[0]!), windows);
        const share = (us: number): string => `${((us / p.sampledUs) * 100).toFixed(1)} %`;
        md.push(`### Gateway CPU profile (measured windows; ${(p.sampledUs / 1e6).toFixed(2)} s sampled)`, '');
        md.push('| area | self time |', '| --- | ---: |');
        for (const [a, us] of p.byArea.slice(0, 15)) md.push(`| ${a} | ${share(us)} |`);
        md.push('', '| function (self) | self time |', '| --- | ---: |');
        for (const [fn, us] of p.bySelf.slice(0, 25)) md.push(`| \`${fn}\` | ${share(us)} |`);
        md.push('');
      }
    }
    publishReport(md.join('\n'), `tokens-${date.slice(0, 10)}${flagsSuffix(NODE_FLAGS)}.md`);
  } finally {
    await stopAll();
  }
}

runBench('bench:tokens', main);

/** flagsSuffix names a run with extra gateway node flags in its result file (`--single-threaded-gc` → `-single-threaded-gc`). */
function flagsSuffix(flags: readonly string[]): string {
  return flags.map((f) => `-${f.replace(/^-+/, '').replace(/[^A-Za-z0-9]+/g, '-')}`).join('');
}
