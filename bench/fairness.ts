/**
 * `npm run bench:fairness` — does flow control protect a light tenant from a heavy one? Real
 * processes: two `inference-gateway simulate` replicas (batch BATCH each, itl ITL_MS), the real
 * gateway (`inference-gateway start`, least-load balancer) and two open-loop load generators in
 * this process (Poisson arrivals, seeded): tenant A at A_LOAD x the pool's nominal capacity,
 * tenant B at B_LOAD x, each with its own API key.
 *
 * Two workloads (BENCH_WORKLOAD), both streams of MEAN_TOKENS tokens on average:
 *  - varied (default): each request's max_tokens, and so its length, is drawn (seeded) from a
 *    log-normal distribution with mean MEAN_TOKENS and a coefficient of variation of 1, as output
 *    lengths of chat traffic spread, rounded and kept within 1..MAX_DRAWN_TOKENS; prompts of about
 *    PROMPT_TOKENS tokens. The simulators model the engine: a KV cache (--kv-cache-tokens, sized so
 *    the batch, not the cache, is the limit, as for short chats on a serving GPU), prefill time per
 *    prompt token (--prefill-ms-per-token) on top of a base ttft, and non-streamed answers that
 *    take as long as streamed ones (--non-stream-decode; this bench streams, so it does not change
 *    the numbers here). Requests finish spread out, as with real traffic.
 *  - uniform: every request a MEAN_TOKENS-token stream with a short prompt, ttft TTFT_MS, no engine
 *    flags: all requests take the same time, so completions clump (the hardest case for a light
 *    tenant waiting for a free place).
 *
 * Three runs, each with fresh simulators and a fresh gateway:
 *  - idle: B alone (flow control off): B's time to first token when nothing competes;
 *  - off: A and B, flow control off: the engines' own FIFO queues take everything;
 *  - on: A and B, flow control on, weights equal, with the settings an operator who wants latency
 *    isolation would choose (FLOW): `max_inflight` at the engines' batch size, so no request
 *    waits in an engine's queue, and `headroom`, a place kept for a key under its fair share.
 * Reported: B's p95 TTFT in each run and its ratio to idle (target with flow control <= 1.5x),
 * where B's time went (the gateway's access log: waiting in the gateway, waiting in an engine),
 * completed tokens/s of off and on (target: on >= 95 % of off), and in the `on` run probes sent
 * while A's requests wait in the gateway: a priority-10 request (its TTFT, and how many waited
 * when it was sent), and negative-priority requests (answered 503 overloaded; target < 5 ms).
 * The target is the gateway's answer time, so those come from a probe process of their own
 * (bench/lib/shed-probe.ts: SHED_PROBES requests, one at a time on one keep-alive connection,
 * spread over the run), each timed by its client and by the gateway (the access log's total_ms).
 * A few are also sent from this process, for comparison: its event loop, busy with A's and B's
 * streams, adds its own lag to a request it sends.
 *
 * Env: BENCH_WORKLOAD (varied | uniform, default varied; uniform writes fairness-<date>-uniform.md),
 * BENCH_SECONDS (measured seconds per run, default 15), BENCH_SEED, BENCH_FLOW (JSON fields
 * replacing those of the `on` run's flow_control, e.g. '{"headroom":0}'), BENCH_KEEP_LOGS=1
 * (keep the access logs and configs; their folder is printed), BENCH_NO_WRITE=1 (no result file).
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { stringify } from 'yaml';
import { cliEntry, pinLayout, type CliEntry, type Layout } from './lib/layout.js';
import { percentile } from './lib/loadgen.js';
import { OK, mulberry32, openLoop, poissonArrivals, type OpenLoopResult } from './lib/openloop.js';
import { Child, freePorts, stopAll, waitUntilReady, withChildOutput } from './lib/procs.js';
import { publishReport, runBench } from './lib/report.js';
import { positiveEnv } from './lib/env.js';
import type { ProbePlan, ProbeResult } from './lib/shed-probe.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MODEL = 'bench-model';
const PATH = '/v1/chat/completions';
const REPLICAS = 2;
const BATCH = 8;
const ITL_MS = 20;
/** MEAN_TOKENS is the mean stream length of both workloads. */
const MEAN_TOKENS = 16;
const WORKLOAD = process.env.BENCH_WORKLOAD ?? 'varied';
if (WORKLOAD !== 'varied' && WORKLOAD !== 'uniform') throw new Error(`BENCH_WORKLOAD must be varied or uniform, got "${WORKLOAD}"`);
const IS_VARIED = WORKLOAD === 'varied';
/** The varied workload: prompts of about PROMPT_TOKENS tokens, prefilled at PREFILL_MS_PER_TOKEN after a base ttft of BASE_TTFT_MS. */
const PROMPT_TOKENS = 200;
const PREFILL_MS_PER_TOKEN = 0.05;
const BASE_TTFT_MS = 30;
/** KV_CACHE_TOKENS holds a full batch of the longest requests: the batch size is the limit. */
const KV_CACHE_TOKENS = 4096;
/** LENGTH_SIGMA is the log-normal's sigma: a coefficient of variation of 1 (sqrt(exp(sigma^2) - 1)). */
const LENGTH_SIGMA = Math.sqrt(Math.log(2));
const MAX_DRAWN_TOKENS = 8 * MEAN_TOKENS;
/** PADDING makes a varied prompt about PROMPT_TOKENS tokens (4 characters a token, as the simulator counts). */
const PADDING = ' please'.repeat(Math.round((PROMPT_TOKENS * 4) / 7));
/** TTFT_MS is a request's time to first token on an idle engine: the base plus the prompt's prefill (varied), or 40 ms (uniform). */
const TTFT_MS = IS_VARIED ? BASE_TTFT_MS + PREFILL_MS_PER_TOKEN * PROMPT_TOKENS : 40;
const A_LOAD = 4;
const B_LOAD = 0.2;
const GRACE_MS = 2000;
const PROBE_TIMEOUT_MS = 30_000;
const SECONDS = positiveEnv('BENCH_SECONDS', 15);
const SEED = positiveEnv('BENCH_SEED', 7, true);
/** CAPACITY is the pool's nominal throughput: every slot busy, one stream per TTFT + tokens x ITL (mean tokens). */
const CAPACITY = (REPLICAS * BATCH * 1000) / (TTFT_MS + MEAN_TOKENS * ITL_MS);

/**
 * drawLengths draws n stream lengths (seeded): MEAN_TOKENS each for uniform; for varied, a
 * log-normal with mean MEAN_TOKENS and sigma LENGTH_SIGMA (Box-Muller), rounded into 1..MAX_DRAWN_TOKENS.
 */
function drawLengths(n: number, random: () => number): Uint16Array {
  const out = new Uint16Array(n).fill(MEAN_TOKENS);
  if (!IS_VARIED) return out;
  const mu = Math.log(MEAN_TOKENS) - (LENGTH_SIGMA * LENGTH_SIGMA) / 2;
  for (let i = 0; i < n; i++) {
    const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    out[i] = Math.min(MAX_DRAWN_TOKENS, Math.max(1, Math.round(Math.exp(mu + LENGTH_SIGMA * z))));
  }
  return out;
}

/** FLOW is the `on` run's flow_control; BENCH_FLOW (JSON) replaces fields of it to try other settings. */
const FLOW: Record<string, unknown> = {
  enabled: true,
  saturation: { max_inflight: BATCH, queue_depth: null, kv_cache: null },
  headroom: 1,
  max_queue: 100_000,
  max_wait: '120s',
  ...(process.env.BENCH_FLOW ? (JSON.parse(process.env.BENCH_FLOW) as Record<string, unknown>) : {}),
};

const KEYS = { a: 'bench-tenant-a-key-0001', b: 'bench-tenant-b-key-0001', vip: 'bench-vip-key-00000001', shed: 'bench-batch-key-0000001' };

interface Run {
  name: 'idle' | 'off' | 'on';
  a: OpenLoopResult | null;
  b: OpenLoopResult;
  /** aLengths / bLengths are the stream length of each of A's and B's requests. */
  aLengths: Uint16Array;
  bLengths: Uint16Array;
  seconds: number;
  probes: { vipTtftMs: number; waitingAtVip: number; shedMs: number[]; shedStatus: number[]; dedicated: DedicatedProbes } | null;
  /** parts are where B's requests spent their time, from the gateway's access log (ms, sorted). */
  parts: { gateway: Float64Array; engineQueue: Float64Array };
  /** bQueueMs[i] is B's request i's queue_ms in the access log (NaN: no line). */
  bQueueMs: Float64Array;
}

/**
 * DedicatedProbes are the sheddable requests of the probe process (bench/lib/shed-probe.ts): per
 * probe its status, the time its client saw, and the gateway's own time for it (the access log's
 * total_ms: from the parsed request head to the response's end; NaN if its line is missing).
 */
interface DedicatedProbes {
  status: number[];
  clientMs: number[];
  gatewayMs: number[];
  warmupStatus: number;
}

/** SHED_PROBES is how many sheddable requests the probe process sends, spread over SHED_WINDOW of the `on` run. */
const SHED_PROBES = 60;
const SHED_WINDOW = [0.2, 0.9] as const;
const SHED_ID_PREFIX = 'bench-shed-probe-';

/** B_ID_PREFIX + i is the X-Request-Id of B's request i. */
const B_ID_PREFIX = 'bench-tenant-b-';

/** fieldById reads one number field of the access log lines whose request id starts with `prefix`. */
function fieldById(logPath: string, prefix: string, field: 'total_ms' | 'queue_ms'): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of readFileSync(logPath, 'utf8').split('\n')) {
    if (!line.startsWith('{') || !line.includes(prefix)) continue;
    const e = JSON.parse(line) as { request_id: string; total_ms: number; queue_ms: number };
    if (e.request_id.startsWith(prefix)) out.set(e.request_id, e[field]);
  }
  return out;
}

const totalMsById = (logPath: string, prefix: string) => fieldById(logPath, prefix, 'total_ms');
const queueMsById = (logPath: string, prefix: string) => fieldById(logPath, prefix, 'queue_ms');

/**
 * partsOf reads B's answered requests from the gateway's access log: queue_ms is the wait in the
 * gateway; upstream_ms (dispatch to response headers) is the wait in the engine's queue, since the
 * simulator sends a stream's headers when the request enters the batch. The rest of the time to
 * first token is the engine's ttft plus the gateway's and the loopback's own time.
 */
function partsOf(logPath: string): Run['parts'] {
  const gateway: number[] = [];
  const engineQueue: number[] = [];
  for (const line of readFileSync(logPath, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line) as { key: string | null; status: number; queue_ms: number; upstream_ms: number | null };
    if (e.key !== 'tenant-b' || e.status !== 200 || e.upstream_ms === null) continue;
    gateway.push(e.queue_ms);
    engineQueue.push(e.upstream_ms);
  }
  return { gateway: Float64Array.from(gateway).sort(), engineQueue: Float64Array.from(engineQueue).sort() };
}

function body(n: number, maxTokens: number = MEAN_TOKENS): Buffer {
  const content = IS_VARIED ? `question ${n}:${PADDING}` : `question ${n}`;
  return Buffer.from(JSON.stringify({ model: MODEL, stream: true, max_tokens: maxTokens, messages: [{ role: 'user', content }] }));
}

/** ttfts are the sorted times to first token of a run's answered requests; with `keep`, only of those it keeps (by index). */
function ttfts(r: OpenLoopResult, keep: ((i: number) => boolean) | null = null): Float64Array {
  const out: number[] = [];
  for (let i = 0; i < r.sentAt.length; i++) if (r.outcome[i] === OK && r.firstAt[i]! > 0 && (keep === null || keep(i))) out.push(r.firstAt[i]! - r.sentAt[i]!);
  return Float64Array.from(out).sort();
}

/** completedTokensPerSec counts the tokens of the requests that completed within [fromMs, toMs]; lengths[k] are run k's stream lengths. */
function completedTokensPerSec(runs: readonly (OpenLoopResult | null)[], lengths: readonly Uint16Array[], fromMs: number, toMs: number): number {
  let n = 0;
  runs.forEach((r, k) => {
    if (r !== null) for (let i = 0; i < r.endAt.length; i++) if (r.outcome[i] === OK && r.endAt[i]! >= fromMs && r.endAt[i]! <= toMs) n += lengths[k]![i]!;
  });
  return n / ((toMs - fromMs) / 1000);
}

/** FIRST_CONTENT_RE finds generated text: the opening event's empty `"content":""` is not a token. */
const FIRST_CONTENT_RE = /"content":"[^"]/;

async function firstTokenMs(origin: string, headers: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  const res = await request(`${origin}${PATH}`, { method: 'POST', headers, body: body(-1), signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    // Leaving the loop destroys the body: the gateway sees the client go and cancels upstream.
    if (FIRST_CONTENT_RE.test(chunk.toString('utf8'))) return performance.now() - t0;
  }
  return Number.NaN;
}

async function waitingIn(adminOrigin: string): Promise<number> {
  const res = await request(`${adminOrigin}/models`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  const doc = (await res.body.json()) as { data: Array<{ flow_control: { waiting: number } | null }> };
  return doc.data[0]?.flow_control?.waiting ?? 0;
}

async function runOne(name: Run['name'], cli: CliEntry, layout: Layout, dir: string): Promise<Run> {
  const ports = await freePorts(REPLICAS + 3);
  const [proxyPort, statusPort, adminPort] = ports.slice(REPLICAS) as [number, number, number];
  const children: Child[] = [];
  const logPath = join(dir, `access-${name}.log`);
  let logFd = -1;
  try {
    const urls = ports.slice(0, REPLICAS).map((p) => `http://127.0.0.1:${p}`);
    for (let i = 0; i < REPLICAS; i++) {
      const args = [...cli.args, 'simulate', '--port', String(ports[i]), '--model', MODEL, '--id', `replica-${i + 1}`, '--max-concurrency', String(BATCH), '--itl-ms', String(ITL_MS)];
      if (IS_VARIED) args.push('--ttft-ms', String(BASE_TTFT_MS), '--prefill-ms-per-token', String(PREFILL_MS_PER_TOKEN), '--kv-cache-tokens', String(KV_CACHE_TOKENS), '--non-stream-decode');
      else args.push('--ttft-ms', String(TTFT_MS));
      children.push(new Child(`simulator ${i + 1}`, process.execPath, args, { cpu: layout.loadCpu, cwd: ROOT }));
    }
    await Promise.all(children.map((c, i) => waitUntilReady(c, `${urls[i]}/health`)));
    const isFlow = name === 'on';
    const configPath = join(dir, `gateway-${name}.yaml`);
    writeFileSync(
      configPath,
      stringify({
        proxy: { listen: `127.0.0.1:${proxyPort}` },
        status: { listen: `127.0.0.1:${statusPort}` },
        admin: { listen: `127.0.0.1:${adminPort}` },
        log: { access_log: true, format: 'json' },
        models: [
          {
            name: MODEL,
            balancer: 'least-load',
            load_metrics: { interval: '100ms' },
            api_keys: [
              { key: KEYS.a, name: 'tenant-a' },
              { key: KEYS.b, name: 'tenant-b' },
              { key: KEYS.vip, name: 'vip', max_priority: 10 },
              { key: KEYS.shed, name: 'batch', priority: -1 },
            ],
            ...(isFlow ? { flow_control: FLOW } : {}),
            targets: urls.map((url) => ({ url })),
          },
        ],
      }),
    );
    // The access log goes straight to a file: this process reads it once the run is over.
    logFd = openSync(logPath, 'w');
    const gateway = new Child('gateway', process.execPath, [...cli.args, 'start', '--config', configPath], { cpu: layout.gatewayCpu, cwd: ROOT, env: { ...process.env, IGW_LOG_LEVEL: 'warn' }, stdout: logFd });
    children.push(gateway);
    await waitUntilReady(gateway, `http://127.0.0.1:${statusPort}/status/ready`);
    const origin = `http://127.0.0.1:${proxyPort}`;
    const adminOrigin = `http://127.0.0.1:${adminPort}`;
    const headersOf = (key: string, extra: Record<string, string> = {}) => ({ 'content-type': 'application/json', 'x-model': MODEL, apikey: key, ...extra });
    const random = mulberry32(SEED);
    const bArrivals = poissonArrivals(CAPACITY * B_LOAD, SECONDS, random);
    const aArrivals = poissonArrivals(CAPACITY * A_LOAD, SECONDS, random);
    // Lengths from their own seeded streams: the arrivals are the same in both workloads, and B's requests the same in every run.
    const bLengths = drawLengths(bArrivals.length, mulberry32(SEED + 1));
    const aLengths = drawLengths(aArrivals.length, mulberry32(SEED + 2));
    const t0 = performance.now() + 20;
    const b = openLoop({ origin, path: PATH, headers: headersOf(KEYS.b), requestIdPrefix: B_ID_PREFIX, arrivals: bArrivals, bodies: Array.from(bArrivals, (_, i) => body(i, bLengths[i])), t0, graceMs: GRACE_MS });
    // The sheddable probes come from a process of their own, on one keep-alive connection: a
    // request sent from this process would wait for its event loop, busy with A's and B's streams.
    let shedProbe: Child | null = null;
    const shedOut = join(dir, 'shed-probe.json');
    if (isFlow) {
      const epoch = Date.now() + (t0 - performance.now());
      const plan: ProbePlan = {
        origin,
        path: PATH,
        headers: headersOf(KEYS.shed),
        body: body(-3).toString('utf8'),
        startAt: epoch + SECONDS * 1000 * SHED_WINDOW[0],
        endAt: epoch + SECONDS * 1000 * SHED_WINDOW[1],
        count: SHED_PROBES,
        idPrefix: SHED_ID_PREFIX,
        out: shedOut,
      };
      shedProbe = new Child('shed probe', process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'lib', 'shed-probe.ts'), JSON.stringify(plan)], { cpu: layout.loadCpu, cwd: ROOT });
      children.push(shedProbe);
    }
    const a = name === 'idle' ? null : openLoop({ origin, path: PATH, headers: headersOf(KEYS.a), arrivals: aArrivals, bodies: Array.from(aArrivals, (_, i) => body(i, aLengths[i])), t0, graceMs: GRACE_MS });
    let probes: Run['probes'] = null;
    if (isFlow) {
      // Halfway through, with A's requests piled up in the gateway.
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + (SECONDS * 1000) / 2 - performance.now())));
      const waitingAtVip = await waitingIn(adminOrigin);
      const vipTtftMs = await firstTokenMs(origin, headersOf(KEYS.vip, { 'x-priority': '10' }));
      const shedMs: number[] = [];
      const shedStatus: number[] = [];
      for (let i = 0; i < 5; i++) {
        const s = performance.now();
        const res = await request(`${origin}${PATH}`, { method: 'POST', headers: headersOf(KEYS.shed), body: body(-2), signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
        await res.body.dump();
        shedMs.push(performance.now() - s);
        shedStatus.push(res.statusCode);
      }
      probes = { vipTtftMs, waitingAtVip, shedMs, shedStatus, dedicated: { status: [], clientMs: [], gatewayMs: [], warmupStatus: 0 } };
      process.stderr.write(`  probes done\n`);
    }
    const [bResult, aResult] = await Promise.all([b, a]);
    process.stderr.write(`  load done\n`);
    if (shedProbe !== null) {
      await shedProbe.exited;
      if (shedProbe.proc.exitCode !== 0) throw new Error(shedProbe.describe());
    }
    await Promise.all(children.map((c) => c.stop()));
    if (probes !== null) {
      const seen = JSON.parse(readFileSync(shedOut, 'utf8')) as ProbeResult;
      const gatewayMs = totalMsById(logPath, SHED_ID_PREFIX);
      probes.dedicated = { status: seen.status, clientMs: seen.ms, gatewayMs: seen.ids.map((id) => gatewayMs.get(id) ?? Number.NaN), warmupStatus: seen.warmupStatus };
    }
    const bQueueMs = new Float64Array(bArrivals.length).fill(Number.NaN);
    for (const [id, ms] of queueMsById(logPath, B_ID_PREFIX)) bQueueMs[Number(id.slice(B_ID_PREFIX.length))] = ms;
    return { name, a: aResult, b: bResult, aLengths, bLengths, seconds: SECONDS, probes, parts: partsOf(logPath), bQueueMs };
  } catch (err) {
    throw withChildOutput(err, children);
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    if (logFd !== -1) closeSync(logFd);
  }
}

/** WAITED_MS: a B request whose queue_ms is at least this waited in the gateway (below it: the scheduling step's own time). */
const WAITED_MS = 0.5;

/**
 * waitedLine says how often and how long B waited in the gateway in a run, next to how often a
 * request finished (a place freed): with `headroom`, B waits only when it arrives while the kept
 * places are taken and nothing has finished since, so that wait is about one gap between finishes.
 */
function waitedLine(r: Run, headroom: number): string {
  const g = r.parts.gateway;
  let n = 0;
  let sum = 0;
  for (const ms of g) {
    if (ms < WAITED_MS) continue;
    n++;
    sum += ms;
  }
  let finished = 0;
  const t0 = Math.min(r.b.sentAt[0] ?? Infinity, r.a?.sentAt[0] ?? Infinity);
  for (const x of [r.a, r.b]) if (x !== null) for (let i = 0; i < x.endAt.length; i++) if (x.outcome[i] === OK && x.endAt[i]! >= t0 && x.endAt[i]! <= t0 + r.seconds * 1000) finished++;
  const rate = finished / r.seconds;
  return (
    `In the \`${r.name}\` run ${n} of B's ${g.length} answered requests (${((n / Math.max(1, g.length)) * 100).toFixed(0)} %) waited in the gateway, ${n > 0 ? (sum / n).toFixed(0) : '0'} ms on average; ` +
    `requests finished at ${rate.toFixed(1)}/s, one every ${(1000 / rate).toFixed(0)} ms on average. ` +
    (headroom > 0
      ? `With \`headroom: ${headroom}\` a request of B waits when it arrives while B's own earlier requests hold every place kept for it and none has finished since: about one gap between finishes. `
      : 'Without `headroom` no place is kept: B waits whenever every place is busy, for its turn and for a place to free up. ') +
    'Each kept place is idle, throughput given up, while B does not use it: more headroom makes B wait less often and costs throughput (docs/flow-control.md has the numbers of each setting).'
  );
}

/**
 * notWaitedLine is B's p95 time to first token among its requests that did not wait in the
 * gateway: what the rest of the way (the engines, and the host they share with the load
 * generator) costs in the run, apart from flow control's queue.
 */
function notWaitedLine(r: Run, idle: number): string {
  const t = ttfts(r.b, (i) => r.bQueueMs[i]! < WAITED_MS);
  const p = percentile(t, 95);
  return `B's requests that did not wait in the gateway (${t.length}): p95 time to first token ${p.toFixed(0)} ms, ${(p / idle).toFixed(2)}x idle — the engines' and the host's part in the \`${r.name}\` run, with no wait in the gateway.`;
}

async function main(): Promise<void> {
  const layout = pinLayout();
  const cli = cliEntry(ROOT);
  const dir = mkdtempSync(join(tmpdir(), 'igw-fairness-'));
  try {
    const runs: Run[] = [];
    for (const name of ['idle', 'off', 'on'] as const) {
      process.stderr.write(`run ${name} (${SECONDS}s) ...\n`);
      runs.push(await runOne(name, cli, layout, dir));
    }
    const p95 = (r: Run) => percentile(ttfts(r.b), 95);
    const idle = p95(runs[0]!);
    const tokens = (r: Run) => {
      const t0 = Math.min(r.b.sentAt[0] ?? Infinity, r.a?.sentAt[0] ?? Infinity);
      return completedTokensPerSec([r.a, r.b], [r.aLengths, r.bLengths], t0, t0 + r.seconds * 1000);
    };
    const on = runs[2]!;
    const all = [...on.aLengths, ...on.bLengths].sort((x, y) => x - y);
    const mean = all.reduce((sum, x) => sum + x, 0) / all.length;
    const workload = IS_VARIED
      ? [
          `Workload \`varied\`: stream lengths (max_tokens) drawn per request from a log-normal with mean ${MEAN_TOKENS} and coefficient of variation 1, within 1..${MAX_DRAWN_TOKENS}: drawn mean ${mean.toFixed(1)}, median ${all[all.length >> 1]}, p95 ${all[Math.floor(all.length * 0.95)]}, max ${all[all.length - 1]}. Prompts of about ${PROMPT_TOKENS} tokens.`,
          `Simulators: batch ${BATCH}, ttft ${BASE_TTFT_MS} ms + ${PREFILL_MS_PER_TOKEN} ms per prompt token (--prefill-ms-per-token), itl ${ITL_MS} ms, KV cache of ${KV_CACHE_TOKENS} tokens (--kv-cache-tokens; a full batch of the longest requests fits), --non-stream-decode. Nominal capacity ${CAPACITY.toFixed(1)} req/s.`,
        ]
      : [`Workload \`uniform\` (BENCH_WORKLOAD=uniform): every request a ${MEAN_TOKENS}-token stream with a short prompt. Simulators: batch ${BATCH}, ttft ${TTFT_MS} ms, itl ${ITL_MS} ms, no engine flags. Nominal capacity ${CAPACITY.toFixed(1)} req/s.`];
    const lines = [
      '# Flow control: a light tenant next to a heavy one',
      '',
      `${REPLICAS} simulated replicas.`,
      ...workload,
      `Tenant A open-loop at ${A_LOAD}x capacity, tenant B at ${B_LOAD}x; ${SECONDS} s per run; ${cli.label}; ${layout.note}.`,
      '',
      `Flow control in the \`on\` run: \`${JSON.stringify(FLOW)}\`.`,
      '',
      '| run | B requests ok | B p50 TTFT ms | B p95 TTFT ms | B p95 / idle | B in gateway queue p50 / p95 ms | B in engine queue p50 / p95 ms | completed tokens/s |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
      ...runs.map((r) => {
        const t = ttfts(r.b);
        const pp = (a: Float64Array) => `${percentile(a, 50).toFixed(0)} / ${percentile(a, 95).toFixed(0)}`;
        return `| ${r.name} | ${t.length} of ${r.b.sentAt.length} | ${percentile(t, 50).toFixed(0)} | ${p95(r).toFixed(0)} | ${(p95(r) / idle).toFixed(2)}x | ${pp(r.parts.gateway)} | ${pp(r.parts.engineQueue)} | ${tokens(r).toFixed(0)} |`;
      }),
      '',
      'B in gateway queue: the access log\'s queue_ms; B in engine queue: its upstream_ms (the simulator answers headers when a request enters the batch). The rest of B\'s time to first token is the engine\'s ttft and the gateway\'s own time.',
      '',
      `Throughput with flow control: ${((tokens(runs[2]!) / tokens(runs[1]!)) * 100).toFixed(1)} % of without (target >= 95 %). B's p95 with flow control: ${(p95(runs[2]!) / idle).toFixed(2)}x idle (target <= 1.5x).`,
      '',
      waitedLine(on, Number(FLOW.headroom ?? 0)),
      notWaitedLine(on, idle),
    ];
    const probes = runs[2]!.probes;
    if (probes !== null) {
      lines.push(
        `A priority-10 request sent while ${probes.waitingAtVip} requests waited in the gateway: first token after ${probes.vipTtftMs.toFixed(0)} ms (B idle p95: ${idle.toFixed(0)} ms).`,
      );
      const d = probes.dedicated;
      const sorted = (xs: number[]) => Float64Array.from(xs.filter((x) => !Number.isNaN(x))).sort();
      const client = sorted(d.clientMs);
      const gateway = sorted(d.gatewayMs);
      const over = (xs: Float64Array) => xs.filter((x) => x >= 5).length;
      const stats = (xs: Float64Array) => `p50 ${percentile(xs, 50).toFixed(1)} / p95 ${percentile(xs, 95).toFixed(1)} / max ${xs[xs.length - 1]?.toFixed(1)} ms, ${over(xs)} of ${xs.length} at 5 ms or more`;
      const statuses = [...new Set(d.status)].join('/');
      lines.push(
        '',
        `Negative-priority requests under saturation (target: answered in < 5 ms): ${d.status.length} sent from a probe process of their own, one at a time on one keep-alive connection, spread over ${SHED_WINDOW[0] * 100}-${SHED_WINDOW[1] * 100} % of the run (after one unmeasured request that opened the connection, answered ${d.warmupStatus}); status ${statuses}.`,
        `- the gateway's own time (access log total_ms, request head parsed to response end): ${stats(gateway)};`,
        `- as their client saw it (loopback, and the probe process on the CPU the simulators and load generator share): ${stats(client)}.`,
        `Sent from the load generator's own process instead, ${probes.shedMs.length} such requests took ${probes.shedMs.map((m) => m.toFixed(1)).join(', ')} ms (status ${[...new Set(probes.shedStatus)].join('/')}): that process's event loop, busy with A's and B's streams, delays them — a lag of the client, not of the gateway's answer.`,
      );
    }
    publishReport(lines.join('\n'), `fairness-${new Date().toISOString().slice(0, 10)}${IS_VARIED ? '' : '-uniform'}.md`);
  } finally {
    if (process.env.BENCH_KEEP_LOGS === '1') process.stderr.write(`access logs kept in ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

runBench('bench:fairness', main, stopAll);
