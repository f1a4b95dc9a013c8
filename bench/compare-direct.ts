/**
 * `npm run bench` — the gateway's overhead, measured against the upstream it fronts.
 *
 * One run starts a zero-delay vLLM simulator (`inference-gateway simulate`, the "infinitely fast"
 * upstream) and the real gateway (`inference-gateway start` with a temporary config: one model
 * `bench-model`, one API key, the simulator as target), then measures the same requests sent to
 * the simulator directly and through the gateway (X-Model + apikey headers, so routing and key
 * auth run):
 *   1. throughput and latency: non-streaming chat completions (max_tokens 16), 50 in flight for
 *      BENCH_SECONDS (default 10) per side after a 1 s warm-up: requests/s, p50, p99;
 *   2. added latency: one request at a time (up to 2000 per side, alternating sides in blocks),
 *      p50/p99 of gateway minus direct (plus, for reference, a direct request to a second simulator
 *      pinned to the gateway's CPU: what crossing CPUs alone costs);
 *   3. streams: 1000 sequential `stream: true` requests per side, alternating sides (21 chunk
 *      events + [DONE] each), time to the first body byte, p50/p99.
 * It prints a table (direct, gateway, gateway relative to direct) and whether the targets are met:
 * gateway throughput >= 30 % of direct, and added p50 latency < 0.3 ms.
 *
 * Process layout on a 2-core machine: the gateway child is pinned with `taskset -c` to the first
 * allowed CPU (core 0); the simulator child and this load generator share the second (core 1),
 * this process pinning all of its threads with `taskset -a -cp`. So the gateway has a core to
 * itself, and the direct run is "load generator + simulator on one core". Per-process CPU use is
 * reported for the throughput runs; when core 1 is saturated the direct figure is a lower bound.
 * Without taskset (or with fewer than 2 CPUs) everything runs unpinned, with a warning.
 *
 * Children run from dist/ when dist/main.js is newer than every file in src/, else via tsx
 * (load-time cost only); BENCH_ENTRY=tsx|dist forces one. The gateway logs at IGW_LOG_LEVEL=warn
 * (stderr, kept for error reports); its stdout (access log, if enabled) goes to /dev/null.
 * Per-CPU accounting from /proc/stat flags runs disturbed by other processes or hypervisor steal.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { Failures, closedLoop, makeEndpoint, percentile, sequential, streams, type Endpoint, type LoadResult } from './lib/loadgen.js';
import { Child, cpuShare, freePorts, readCpuTimes, stopAll, waitUntilReady, withChildOutput, type CpuShare } from './lib/procs.js';
import { cliEntry, pinLayout, type CliEntry } from './lib/layout.js';
import { runBench } from './lib/report.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MODEL = 'bench-model';
const API_KEY = 'bench-key';
const PATH = '/v1/chat/completions';
const CONCURRENCY = 50;
const WARMUP_SECONDS = 1;
const SEQ_COUNT = 2000;
const SEQ_BLOCK = 100;
const STREAM_COUNT = 1000; // per side; ~0.3 ms each, and enough samples for a steadier p99 than 200
const STREAM_WARMUP = 100;
const STREAM_TOKENS = 20; // a chat stream is the role event plus one event per token: 21 events, then [DONE]
const TARGET_THROUGHPUT_PCT = 30;
const TARGET_ADDED_P50_MS = 0.3;
const SATURATED_PCT = 90;

function parseSeconds(v: string | undefined, fallback: number): number {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`BENCH_SECONDS must be a positive number of seconds, got "${v}"`);
  return n;
}

const SECONDS = parseSeconds(process.env.BENCH_SECONDS, 10);
const SEQ_MAX_SECONDS = Math.min(5, SECONDS);

// ---------------------------------------------------------------------------------------------
// Layout: which command starts the children, which CPUs they get

/** cliArgs are the node arguments that run the inference-gateway CLI (dist if fresh, else tsx). */
function cliArgs(): CliEntry {
  return cliEntry(ROOT);
}

// ---------------------------------------------------------------------------------------------
// Checks before measuring

async function sanityCheck(ep: Endpoint, plain: Buffer, stream: Buffer): Promise<void> {
  const res = await ep.pool.request({ path: ep.path, method: 'POST', headers: ep.headers, body: plain });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${ep.name}: sanity request answered ${res.statusCode}: ${text.slice(0, 300)}`);
  const parsed = JSON.parse(text) as { choices?: Array<{ message?: { content?: string } }> };
  if (typeof parsed.choices?.[0]?.message?.content !== 'string') throw new Error(`${ep.name}: unexpected completion body: ${text.slice(0, 300)}`);
  const sres = await ep.pool.request({ path: ep.path, method: 'POST', headers: ep.headers, body: stream });
  const stext = await sres.body.text();
  const events = stext.split('\n\n').filter((e) => e.startsWith('data: '));
  // The role event, one event per token and [DONE]; a gateway may add events (e.g. usage), not drop any.
  const expected = STREAM_TOKENS + 2;
  if (sres.statusCode !== 200 || events.length < expected || events[events.length - 1] !== 'data: [DONE]') {
    throw new Error(`${ep.name}: stream sanity check failed: status ${sres.statusCode}, ${events.length} events (expected at least ${expected}, ending with [DONE])`);
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring

/** ProcessCpu is each benchmark process's CPU use over a run, in % of one core. */
interface ProcessCpu {
  loadgen: number;
  sim: number;
  gateway: number;
}

interface Throughput {
  result: LoadResult;
  cpu: ProcessCpu;
  /** cores is how each CPU spent the run (from /proc/stat), for spotting outside interference. */
  cores: Map<number, CpuShare>;
}

/** measureThroughput warms up, then runs the closed loop while sampling each process's CPU time. */
async function measureThroughput(ep: Endpoint, body: Buffer, sim: Child, gateway: Child): Promise<Throughput> {
  await closedLoop(ep, body, CONCURRENCY, WARMUP_SECONDS);
  const cpu0 = process.cpuUsage();
  const sim0 = sim.cpuSeconds();
  const gw0 = gateway.cpuSeconds();
  const cores0 = readCpuTimes();
  const t0 = performance.now();
  const result = await closedLoop(ep, body, CONCURRENCY, SECONDS);
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cores1 = readCpuTimes();
  const cores = new Map<number, CpuShare>();
  for (const c of cores1.keys()) {
    const share = cpuShare(cores0, cores1, c);
    if (share !== null) cores.set(c, share);
  }
  const pct = (s: number): number => (s / wall) * 100;
  return {
    result,
    cores,
    cpu: { loadgen: pct((cpu.user + cpu.system) / 1e6), sim: pct(sim.cpuSeconds() - sim0), gateway: pct(gateway.cpuSeconds() - gw0) },
  };
}

function assertAlive(...children: Child[]): void {
  for (const c of children) if (c.isExited) throw new Error(`child died during the benchmark: ${c.describe()}`);
}

// ---------------------------------------------------------------------------------------------
// Output

const ms = (v: number, digits = 3): string => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
const signedMs = (v: number): string => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(3)} ms` : 'n/a');
const pctText = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(0)} %` : 'n/a');
/** usPerRequest turns a CPU share (% of one core) at a request rate into CPU microseconds per request. */
const usPerRequest = (pct: number, rps: number): string => (Number.isFinite(pct) && rps > 0 ? ((pct / 100 / rps) * 1e6).toFixed(1) : 'n/a');

function printTable(rows: ReadonlyArray<readonly [string, string, string, string] | null>): void {
  const header = ['', 'direct', 'gateway', 'gateway vs direct'] as const;
  const all = [header, ...rows.filter((r): r is readonly [string, string, string, string] => r !== null)];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: readonly string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('   ');
  const rule = '-'.repeat(widths.reduce((a, b) => a + b + 3, -3));
  process.stdout.write(`${line(header)}\n${rule}\n`);
  for (const r of rows) process.stdout.write(r === null ? `${rule}\n` : `${line(r)}\n`);
}

function failureText(f: Failures): string {
  return f.count === 0 ? '0' : `${f.count} (${f.reasons.join('; ')})`;
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const layout = pinLayout();
  const cli = cliArgs();
  const [simPort, proxyPort, statusPort, adminPort, crossSimPort] = await freePorts(5);
  const dir = mkdtempSync(join(tmpdir(), 'igw-bench-'));
  // Also removed when the run is interrupted (the finally below does not run on process.exit).
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const endpoints: Endpoint[] = [];
  const allEndpoints: Endpoint[] = [];
  const started: Child[] = [];
  const track = (c: Child): Child => {
    started.push(c);
    return c;
  };
  try {
    const configPath = join(dir, 'gateway.yaml');
    writeFileSync(
      configPath,
      stringify({
        proxy: { listen: `127.0.0.1:${proxyPort}` },
        status: { listen: `127.0.0.1:${statusPort}` },
        admin: { listen: `127.0.0.1:${adminPort}` },
        models: [{ name: MODEL, api_keys: [API_KEY], targets: [{ url: `http://127.0.0.1:${simPort}` }] }],
      }),
    );

    process.stdout.write(
      `Inference Gateway vs direct: ${CONCURRENCY} connections, ${SECONDS} s per throughput run (+${WARMUP_SECONDS} s warm-up), ` +
        `node ${process.version}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n` +
        `${layout.note}\nchildren: ${cli.label}\n`,
    );

    const sim = track(new Child('simulator', process.execPath, [...cli.args, 'simulate', '--port', String(simPort), '--model', MODEL], { cpu: layout.loadCpu, cwd: ROOT }));
    await waitUntilReady(sim, `http://127.0.0.1:${simPort}/health`);
    const gateway = track(
      new Child('gateway', process.execPath, [...cli.args, 'start', '--config', configPath], {
        cpu: layout.gatewayCpu,
        cwd: ROOT,
        env: { ...process.env, IGW_LOG_LEVEL: 'warn' },
        // An access log (one stdout line per request) is written, as in production, but to
        // /dev/null: read through a pipe it would cost the load generator's CPU.
        stdout: 'ignore',
      }),
    );
    await waitUntilReady(gateway, `http://127.0.0.1:${statusPort}/status/ready`);
    // Latency baseline only: a second simulator on the gateway's CPU, so a direct request crosses
    // CPUs as requests through the gateway do (idle during the throughput runs).
    let crossSim: Child | null = null;
    if (layout.gatewayCpu !== null) {
      crossSim = track(
        new Child('simulator (cross-CPU baseline)', process.execPath, [...cli.args, 'simulate', '--port', String(crossSimPort), '--model', MODEL], {
          cpu: layout.gatewayCpu,
          cwd: ROOT,
        }),
      );
      await waitUntilReady(crossSim, `http://127.0.0.1:${crossSimPort}/health`);
    }
    const children = crossSim === null ? [sim, gateway] : [sim, gateway, crossSim];

    const json = { 'content-type': 'application/json' };
    const direct = makeEndpoint('direct', `http://127.0.0.1:${simPort}`, PATH, json, CONCURRENCY);
    const viaGateway = makeEndpoint('gateway', `http://127.0.0.1:${proxyPort}`, PATH, { ...json, 'x-model': MODEL, apikey: API_KEY }, CONCURRENCY);
    endpoints.push(direct, viaGateway);
    const directCross = crossSim === null ? null : makeEndpoint('direct (cross-CPU)', `http://127.0.0.1:${crossSimPort}`, PATH, json, 1);
    const seqEndpoints = directCross === null ? endpoints.slice() : [...endpoints, directCross];
    allEndpoints.push(...seqEndpoints);
    const messages = [{ role: 'user', content: 'Say hello to the benchmark.' }];
    const plainBody = Buffer.from(JSON.stringify({ model: MODEL, messages, max_tokens: 16 }));
    const streamBody = Buffer.from(JSON.stringify({ model: MODEL, messages, max_tokens: STREAM_TOKENS, stream: true }));
    for (const ep of seqEndpoints) await sanityCheck(ep, plainBody, streamBody);

    process.stdout.write(`1/3 throughput, direct ...\n`);
    const tpDirect = await measureThroughput(direct, plainBody, sim, gateway);
    assertAlive(...children);
    process.stdout.write(`1/3 throughput, gateway ...\n`);
    const tpGateway = await measureThroughput(viaGateway, plainBody, sim, gateway);
    assertAlive(...children);

    process.stdout.write(`2/3 one request at a time ...\n`);
    // A short un-recorded pass first, so neither side pays for cold code paths on one connection.
    await sequential(seqEndpoints, plainBody, { count: 200, maxSeconds: 1, block: 50 });
    const [seqDirect, seqGateway, seqCross] = await sequential(seqEndpoints, plainBody, {
      count: SEQ_COUNT,
      maxSeconds: SEQ_MAX_SECONDS,
      block: SEQ_BLOCK,
      headerName: 'x-gateway-latency',
    });
    assertAlive(...children);

    process.stdout.write(`3/3 streams ...\n\n`);
    await streams(endpoints, streamBody, STREAM_WARMUP);
    const [stDirect, stGateway] = await streams(endpoints, streamBody, STREAM_COUNT);
    assertAlive(...children);
    if (seqDirect === undefined || seqGateway === undefined || stDirect === undefined || stGateway === undefined) throw new Error('missing results');

    // ---- report
    const p = percentile;
    const d = tpDirect.result;
    const g = tpGateway.result;
    const throughputPct = (g.rps / d.rps) * 100;
    const added50 = p(seqGateway.latencies, 50) - p(seqDirect.latencies, 50);
    const added99 = p(seqGateway.latencies, 99) - p(seqDirect.latencies, 99);
    const pinned = layout.loadCpu !== null;
    const core = (c: number | null): string => (c === null ? '' : ` (CPU ${c})`);

    printTable([
      [`throughput, ${CONCURRENCY} in flight (req/s)`, d.rps.toFixed(0), g.rps.toFixed(0), `${throughputPct.toFixed(1)} % of direct`],
      [`  latency p50 (ms)`, ms(p(d.latencies, 50)), ms(p(g.latencies, 50)), signedMs(p(g.latencies, 50) - p(d.latencies, 50))],
      [`  latency p99 (ms)`, ms(p(d.latencies, 99)), ms(p(g.latencies, 99)), signedMs(p(g.latencies, 99) - p(d.latencies, 99))],
      [`  requests ok / failed`, `${d.ok} / ${d.failures.count}`, `${g.ok} / ${g.failures.count}`, ''],
      [`  CPU load generator${core(layout.loadCpu)}`, pctText(tpDirect.cpu.loadgen), pctText(tpGateway.cpu.loadgen), ''],
      [`  CPU simulator${core(layout.loadCpu)}`, pctText(tpDirect.cpu.sim), pctText(tpGateway.cpu.sim), ''],
      [`  CPU gateway${core(layout.gatewayCpu)}`, pctText(tpDirect.cpu.gateway), pctText(tpGateway.cpu.gateway), ''],
      [
        `  CPU per request, all processes (us)`,
        usPerRequest(tpDirect.cpu.loadgen + tpDirect.cpu.sim, d.rps),
        usPerRequest(tpGateway.cpu.loadgen + tpGateway.cpu.sim + tpGateway.cpu.gateway, g.rps),
        `gateway alone ${usPerRequest(tpGateway.cpu.gateway, g.rps)} us`,
      ],
      null,
      [`one at a time: latency p50 (ms)`, ms(p(seqDirect.latencies, 50)), ms(p(seqGateway.latencies, 50)), `${signedMs(added50)} added`],
      [`  latency p99 (ms)`, ms(p(seqDirect.latencies, 99)), ms(p(seqGateway.latencies, 99)), `${signedMs(added99)} added`],
      [`  requests ok / failed`, `${seqDirect.latencies.length} / ${seqDirect.failures.count}`, `${seqGateway.latencies.length} / ${seqGateway.failures.count}`, ''],
      seqCross === undefined
        ? null
        : [`  direct to a simulator on CPU ${layout.gatewayCpu}: p50 (ms)`, ms(p(seqCross.latencies, 50)), '', `${signedMs(p(seqCross.latencies, 50) - p(seqDirect.latencies, 50))} crossing CPUs`],
      null,
      [`stream (${STREAM_TOKENS + 1} events): first byte p50 (ms)`, ms(p(stDirect.ttfb, 50)), ms(p(stGateway.ttfb, 50)), `${signedMs(p(stGateway.ttfb, 50) - p(stDirect.ttfb, 50))} added`],
      [`  first byte p99 (ms)`, ms(p(stDirect.ttfb, 99)), ms(p(stGateway.ttfb, 99)), `${signedMs(p(stGateway.ttfb, 99) - p(stDirect.ttfb, 99))} added`],
      [`  whole stream p50 (ms)`, ms(p(stDirect.total, 50)), ms(p(stGateway.total, 50)), `${signedMs(p(stGateway.total, 50) - p(stDirect.total, 50))} added`],
      [`  streams ok / failed`, `${stDirect.ttfb.length} / ${stDirect.failures.count}`, `${stGateway.ttfb.length} / ${stGateway.failures.count}`, ''],
    ]);

    const notes: string[] = [];
    const gwHeader = seqGateway.headerValues;
    if (gwHeader.length > 0) {
      notes.push(`gateway-reported time from request arrival to upstream dispatch (x-gateway-latency, one at a time): p50 ${ms(p(gwHeader, 50))} ms, p99 ${ms(p(gwHeader, 99))} ms`);
    }
    if (seqCross !== undefined && seqCross.latencies.length > 0) {
      const crossing = p(seqCross.latencies, 50) - p(seqDirect.latencies, 50);
      notes.push(
        `a request through the gateway crosses CPUs four times (load generator -> gateway -> simulator and back), a direct one never; ` +
          `two crossings cost ${ms(crossing)} ms at p50 here (cross-CPU row), so CPU wake-ups, not gateway work, may account for up to ~${ms(2 * crossing)} ms ` +
          `of the ${ms(added50)} ms added p50.`,
      );
    }
    const loadCoreDirect = tpDirect.cpu.loadgen + tpDirect.cpu.sim;
    const loadCoreGateway = tpGateway.cpu.loadgen + tpGateway.cpu.sim;
    if (pinned) {
      if (loadCoreDirect >= SATURATED_PCT) {
        notes.push(
          `direct run: CPU ${layout.loadCpu} was ${loadCoreDirect.toFixed(0)} % busy (load generator ${tpDirect.cpu.loadgen.toFixed(0)} % + simulator ${tpDirect.cpu.sim.toFixed(0)} %): ` +
            'the measuring side is saturated, so the direct throughput is a lower bound of what the simulator could serve.',
        );
      }
      const isGatewayBound = tpGateway.cpu.gateway >= SATURATED_PCT;
      if (isGatewayBound) {
        notes.push(
          `gateway run: the gateway used ${tpGateway.cpu.gateway.toFixed(0)} % of CPU ${layout.gatewayCpu}: its throughput is CPU-bound` +
            (loadCoreGateway >= SATURATED_PCT ? ` (CPU ${layout.loadCpu}, load generator + simulator, was also ${loadCoreGateway.toFixed(0)} % busy).` : '.'),
        );
      } else if (loadCoreGateway >= SATURATED_PCT) {
        notes.push(`gateway run: CPU ${layout.loadCpu} (load generator + simulator) was ${loadCoreGateway.toFixed(0)} % busy while the gateway was not: the gateway throughput is a lower bound.`);
      }
    } else if (tpDirect.cpu.loadgen >= SATURATED_PCT) {
      notes.push(`direct run: the load generator used ${tpDirect.cpu.loadgen.toFixed(0)} % of a core: the direct throughput is a lower bound.`);
    }
    // Outside interference: CPU time on our CPUs that none of our processes used (other processes,
    // or the hypervisor running another guest). Interrupt time is not counted: loopback networking
    // is accounted there.
    if (pinned) {
      for (const [run, tp, ours] of [
        // The direct run does not use the gateway's CPU, so only the load CPU matters there.
        ['direct', tpDirect, new Map([[layout.loadCpu!, tpDirect.cpu.loadgen + tpDirect.cpu.sim]])],
        ['gateway', tpGateway, new Map([[layout.loadCpu!, tpGateway.cpu.loadgen + tpGateway.cpu.sim], [layout.gatewayCpu!, tpGateway.cpu.gateway]])],
      ] as const) {
        for (const [cpu, mine] of ours) {
          const share = tp.cores.get(cpu);
          if (share === undefined) continue;
          const others = Math.max(0, share.process - mine);
          if (others >= 10 || share.steal >= 5) {
            notes.push(
              `DISTURBED: during the ${run} run CPU ${cpu} spent ${others.toFixed(0)} % on other processes and lost ${share.steal.toFixed(0)} % to the hypervisor (steal); ` +
                `the ${run} figures are unreliable, rerun on a quiet machine.`,
            );
          }
        }
      }
    }
    for (const [name, f] of [
      ['direct throughput', d.failures],
      ['gateway throughput', g.failures],
      ['direct one-at-a-time', seqDirect.failures],
      ['gateway one-at-a-time', seqGateway.failures],
      ['direct streams', stDirect.failures],
      ['gateway streams', stGateway.failures],
    ] as const) {
      if (f.count > 0) notes.push(`FAILED requests, ${name}: ${failureText(f)}`);
    }
    const gwOutput = gateway.output.trim();
    if (gwOutput !== '') notes.push(`gateway logged (level warn and above):\n${gwOutput.split('\n').slice(-10).join('\n')}`);
    if (notes.length > 0) process.stdout.write(`\n${notes.map((n) => `note: ${n}`).join('\n')}\n`);

    const isThroughputMet = throughputPct >= TARGET_THROUGHPUT_PCT;
    const isLatencyMet = added50 < TARGET_ADDED_P50_MS;
    const anyFailed = [d, g].some((r) => r.failures.count > 0) || [seqDirect, seqGateway, stDirect, stGateway].some((r) => r.failures.count > 0);
    process.stdout.write(
      `\nTargets: gateway throughput >= ${TARGET_THROUGHPUT_PCT} % of direct: ${throughputPct.toFixed(1)} % (${isThroughputMet ? 'met' : 'NOT met'}); ` +
        `added p50 latency < ${TARGET_ADDED_P50_MS} ms: ${added50.toFixed(3)} ms (${isLatencyMet ? 'met' : 'NOT met'})` +
        ` => ${isThroughputMet && isLatencyMet && !anyFailed ? 'ALL TARGETS MET' : anyFailed ? 'TARGETS NOT MET (requests failed)' : 'TARGETS NOT MET'}\n`,
    );
  } catch (err) {
    throw withChildOutput(err, started);
  } finally {
    await Promise.allSettled(allEndpoints.map((ep) => ep.pool.destroy()));
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

runBench('bench', main, stopAll);
