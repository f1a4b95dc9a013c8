/**
 * `npm run bench:balance` — do the balancers earn their keep? Six scenarios, one run, real
 * processes: four `inference-gateway simulate` children (vLLM-shaped engines), the real gateway
 * (`inference-gateway start` with a temporary config naming the four as targets of one model) and
 * an open-loop load generator in this process (bench/lib/openloop.ts: Poisson arrivals from a
 * seeded source, so every balancer gets the same arrival times and the same bodies).
 *
 *  1. A slow replica. Three replicas at speed 1 and one three times slower (--speed-factor 3), each
 *     with 4 generation slots, ttft 40 ms and itl 5 ms; streaming chat requests of 16 tokens. The
 *     cluster's capacity follows from the parameters (printed) and is then measured (each replica
 *     with every slot busy, requests sent to it directly: timers firing late cost a few %); arrivals
 *     come at S1_LOAD_SHARE of the measured figure. round-robin, least-request and least-load
 *     (load_metrics interval 100ms) are compared on time to first token (TTFT: send to the first SSE
 *     event with generated content), completed throughput, errors, and the share of requests the slow
 *     replica got (from each simulator's /sim/stats).
 *  2. Shared system prompts. Four equal replicas with a prefix cache of 8 prompts each; PROMPTS
 *     distinct ~1000-character system prompts, each request one of them at random plus a random
 *     short user message. round-robin, consistent-hash on the prompt prefix, least-load and
 *     prefix-aware: prefix-cache hit rate (sum of hits / sum of lookups over all simulators,
 *     counted over the measured window only), TTFT, throughput.
 *  3. Three gateway processes. The replicas of scenario 1, behind three `inference-gateway start`
 *     processes with one config, the open-loop load spread round-robin over them (as a cloud load
 *     balancer in front of gateway replicas does): each gateway sees only its own third of the
 *     in-flight requests. round-robin, least-request, least-load, prefix-aware and least-load with
 *     flow control: TTFT, throughput, share of the slow replica.
 *  4. Mixed prompt sizes. Four equal replicas with a per-prompt-token prefill cost and a KV cache
 *     (`--prefill-ms-per-token`, `--kv-cache-tokens`), one gateway; 90 % short prompts, 10 % 50x
 *     longer, whose KV blocks fill most of a cache, so a second long prompt on a replica waits
 *     (and the requests behind it). The same balancers: TTFT, throughput.
 *  5. Multi-turn conversations. Three replicas whose caches hold the whole prompt in blocks
 *     (`--prefix-block-chars`, as vLLM's prefix cache does); 200 conversations x 8 turns
 *     (bench/lib/multiturn.ts), each turn resending the history, under 4 shared system prompts.
 *     round-robin, consistent-hash, least-load and prefix-aware: block hit rate, TTFT, load skew
 *     (max / mean of the replicas' time-averaged in-flight requests). Every request counts.
 *  6. LoRA adapters (bench/balance-lora.ts, also `npm run bench:lora`). Three replicas with two
 *     adapter slots each (`--max-loras 2`), six adapters in a skewed mix: adapter loads per 1,000
 *     requests and TTFT for round-robin, least-request, least-load and adapter routing.
 *
 * Prefill contention (--ttft-per-waiting-ms) is off by default: in the simulator it grows with the
 * whole queue, so near capacity one burst can make a queue feed itself and collapse the run
 * whatever the balancer (the setup text prints the break-even queue length); BENCH_CONTENTION_MS
 * turns it on.
 *
 * Every balancer gets fresh simulators and a fresh gateway (no queue or cache state carries over),
 * a warm-up, then the measured window of BENCH_SECONDS (default 20). Requests are those SENT in the
 * window; after it, stragglers get GRACE_MS and are then cut off (the gateway cancels them
 * upstream). A request that had no first token by then counts in the TTFT percentiles with its
 * waiting time so far, a lower bound, and a percentile that such a value may affect is shown as
 * ">= x". Throughput counts streams completed inside the window.
 *
 * Layout on two cores (as bench/compare-direct.ts): the gateway pinned to the first allowed CPU,
 * the four simulators and this process to the second. The requests are slow (tens to hundreds of
 * ms), so one core is plenty for the load side; CPU use is reported, and time other processes took
 * on our CPUs is flagged (DISTURBED), since late simulator timers would distort TTFT.
 *
 * Env: BENCH_SECONDS (measured seconds per balancer, default 20; scenario 5 has a fixed workload), BENCH_SCENARIO (1 to 6 or all),
 * BENCH_PROMPTS (scenario 2 prompt count, default 24), BENCH_CONTENTION_MS (default 0),
 * BENCH_SEED, BENCH_ENTRY (tsx|dist). The tables are printed and, when all scenarios ran,
 * written to docs/balancing-bench.md. bench/balance-model.ts runs the same scenarios as a
 * discrete-event model over the real balancer classes (no processes, no noise).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Pool, request } from 'undici';
import { stringify } from 'yaml';
import { ConsistentHashBalancer, toPromptPrefixKey, type Target } from '../src/upstream/balancer/index.js';
import { TargetState } from '../src/upstream/index.js';
import { cliEntry, pinLayout, type CliEntry, type Layout } from './lib/layout.js';
import { Samples, percentile } from './lib/loadgen.js';
import { multiTurnWorkload } from './lib/multiturn.js';
import { FAILED, OK, UNFINISHED, mulberry32, openLoop, poissonArrivals, type OpenLoopResult } from './lib/openloop.js';
import { Child, cpuShare, freePorts, readCpuTimes, stopAll, waitUntilReady, withChildOutput, type CpuTimes } from './lib/procs.js';
import { runBench } from './lib/report.js';
import { positiveEnv } from './lib/env.js';
import { runLoraScenario } from './balance-lora.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DOC_PATH = join(ROOT, 'docs', 'balancing-bench.md');
const MODEL = 'bench-model';
const PATH = '/v1/chat/completions';
const REPLICAS = 4;
const MAX_TOKENS = 16;

/** Engine is one simulated replica's shape (the `simulate` flags). */
interface Engine {
  maxConcurrency: number;
  ttftMs: number;
  itlMs: number;
  ttftPerWaitingMs: number;
  speedFactor: number;
  prefixCacheSize: number;
  prefixChars: number;
  prefixHitTtftFactor: number;
  /** prefixBlockChars > 0: the cache holds the whole prompt in blocks of this many characters (--prefix-block-chars). */
  prefixBlockChars: number;
  /** prefillMsPerToken > 0: ttft grows by this per prompt token (--prefill-ms-per-token). */
  prefillMsPerToken: number;
  /** kvCacheTokens > 0: the KV cache in tokens (--kv-cache-tokens). */
  kvCacheTokens: number;
}

const CONTENTION_MS = nonNegativeEnv('BENCH_CONTENTION_MS', 0);
const BASE_ENGINE: Engine = { maxConcurrency: 4, ttftMs: 40, itlMs: 5, ttftPerWaitingMs: CONTENTION_MS, speedFactor: 1, prefixCacheSize: 0, prefixChars: 256, prefixHitTtftFactor: 0.2, prefixBlockChars: 0, prefillMsPerToken: 0, kvCacheTokens: 0 };

// Scenario 1: one replica three times slower, arrivals at LOAD_SHARE of the cluster's capacity.
const SLOW_FACTOR = 3;
const S1_ENGINES: Engine[] = [BASE_ENGINE, BASE_ENGINE, BASE_ENGINE, { ...BASE_ENGINE, speedFactor: SLOW_FACTOR }];
const S1_LOAD_SHARE = 0.875;
const S1_TARGET_RATIO = 0.6;

// Scenario 2: prefix caches of 8 prompts, PROMPTS shared system prompts, arrivals at LOAD_SHARE of the all-miss capacity.
const S2_ENGINE: Engine = { ...BASE_ENGINE, prefixCacheSize: 8, prefixChars: 256 };
const S2_LOAD_SHARE = 0.7;
const S2_SYSTEM_CHARS = 1000;
const S2_HASH_CHARS = 256;
const S2_TARGET_RATIO = 2;
// prefix-aware's index sized like the engines' caches: 8 prompts of ~1000 + ~60 characters in 64-character blocks.
const S2_PREFIX_BLOCKS = 8 * Math.ceil((S2_SYSTEM_CHARS + 60) / 64);

// Scenarios 3 and 4: least-load against least-request.
const LL_TARGET_RATIO = 0.7;
/** LL_THROUGHPUT_SLACK: "throughput not lower" allows this much measurement noise (an open loop below capacity completes what it is offered). */
const LL_THROUGHPUT_SLACK = 0.99;

// Scenario 3: scenario 1's replicas behind three gateway processes.
const S3_GATEWAYS = 3;

// Scenario 4: mixed prompt sizes on engines with a prefill cost per prompt token and a KV cache.
const S4_ENGINE: Engine = { ...BASE_ENGINE, prefillMsPerToken: 0.02, kvCacheTokens: 16_384 };
const S4_SHORT_CHARS = 800;
const S4_LONG_FACTOR = 50;
const S4_LONG_SHARE = 0.1;
const S4_LOAD_SHARE = 0.45;

// Scenario 5: multi-turn chat on 3 replicas whose prefix caches hold 4096 blocks of 64 characters.
const S5_REPLICAS = 3;
const S5_BLOCK_CHARS = 64;
const S5_CACHE_BLOCKS = 4096;
const S5_ENGINE: Engine = { ...BASE_ENGINE, prefixCacheSize: S5_CACHE_BLOCKS, prefixBlockChars: S5_BLOCK_CHARS };
const S5_SHAPE = { conversations: 200, turns: 8, systemPrompts: 4, systemChars: 1500, startSpreadMs: 15_000, thinkMs: 2000 };
const S5_HIT_RATIO = 1.2;
const S5_P99_SLACK = 1.1;
const S5_SKEW = 1.3;

const GRACE_MS = 5000;
const CALIBRATION_SECONDS = 4;

function nonNegativeEnv(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${v}"`);
  return n;
}


const SECONDS = positiveEnv('BENCH_SECONDS', 20);
const WARMUP_SECONDS = Math.min(3, Math.max(1, SECONDS / 4));
const PROMPTS = positiveEnv('BENCH_PROMPTS', 24, true);
const SEED = positiveEnv('BENCH_SEED', 20240601, true);
const SCENARIO = process.env.BENCH_SCENARIO ?? 'all';
if (!['1', '2', '3', '4', '5', '6', 'all'].includes(SCENARIO)) throw new Error(`BENCH_SCENARIO must be 1 to 6 or all, got "${SCENARIO}"`);

// ---------------------------------------------------------------------------------------------
// Model of the engine: what the parameters promise

/** serviceMs is how long one request holds a generation slot when nothing waits: ttft + (tokens - 1) * itl, times the speed factor. */
function serviceMs(e: Engine, hit = false): number {
  return e.speedFactor * (e.ttftMs * (hit ? e.prefixHitTtftFactor : 1) + (MAX_TOKENS - 1) * e.itlMs);
}

/** capacity is the requests/s a replica completes with every slot busy and no queue (so no prefill contention). */
function capacity(e: Engine, hit = false): number {
  return (e.maxConcurrency * 1000) / serviceMs(e, hit);
}

// ---------------------------------------------------------------------------------------------
// One measured run: fresh simulators + gateway, warm-up, window, cut-off

interface SimStats {
  requests: number;
  prefixHits: number;
  prefixQueries: number;
}

interface RunSpec {
  balancer: 'round-robin' | 'least-request' | 'least-load' | 'consistent-hash' | 'prefix-aware';
  /** label names the run in tables (default: the balancer). */
  label?: string;
  /** gateways is how many gateway processes share the load, round-robin (default 1). */
  gateways?: number;
  engines: readonly Engine[];
  /** extra are model fields beyond name/targets/balancer (load_metrics, hash_on, ...). */
  extra: Record<string, unknown>;
  arrivals: Float64Array;
  bodies: readonly Buffer[];
  /** window is the measured [start, end) in ms of the schedule (default: the warm-up, then SECONDS). */
  window?: readonly [number, number];
}

interface RunResult {
  balancer: string;
  /** ttft: sorted TTFTs (ms) of window requests, unfinished ones at their lower bound; censoredMin: smallest such bound (Infinity if none). */
  ttft: Float64Array;
  /** ttftOf[i] is request i's TTFT (ms), 0 when it had no first token. */
  ttftOf: Float64Array;
  /** ttftByReplica[i]: sorted TTFTs of the window requests replica i answered (those with a first token). */
  ttftByReplica: Float64Array[];
  censored: number;
  censoredMin: number;
  sent: number;
  ok: number;
  failed: number;
  unfinished: number;
  failureReasons: string[];
  throughput: number;
  /** perReplica[i] is replica i's share of the requests the simulators received in the window. */
  perReplica: number[];
  hits: number;
  queries: number;
  lagP99: number;
  maxInflight: number;
  cpu: { gateway: number; sims: number; loadgen: number };
  /** replicaOf[i] is the replica index that answered request i (-1: none); window requests are i >= firstInWindow. */
  replicaOf: Int8Array;
  firstInWindow: number;
  /** disturbed says how much of our CPUs other processes (or the hypervisor) took during the window, when it was enough to matter; else null. */
  disturbed: string | null;
  /** skew is max / mean of the replicas' time-averaged requests in flight over the window's requests (send to end). */
  skew: number;
  /** urls are the replicas' target URLs (for the consistent-hash ring report). */
  urls: string[];
  gatewayLog: string;
}

async function simStats(port: number): Promise<SimStats> {
  const res = await request(`http://127.0.0.1:${port}/sim/stats`, { method: 'GET', headersTimeout: 5000, bodyTimeout: 5000 });
  const s = (await res.body.json()) as SimStats;
  return { requests: s.requests, prefixHits: s.prefixHits, prefixQueries: s.prefixQueries };
}

function simArgs(cli: CliEntry, port: number, id: string, e: Engine): string[] {
  const args = [
    ...cli.args,
    'simulate',
    '--port', String(port),
    '--model', MODEL,
    '--id', id,
    '--max-concurrency', String(e.maxConcurrency),
    '--ttft-ms', String(e.ttftMs),
    '--itl-ms', String(e.itlMs),
    '--ttft-per-waiting-ms', String(e.ttftPerWaitingMs),
    '--speed-factor', String(e.speedFactor),
  ];
  if (e.prefixCacheSize > 0) args.push('--prefix-cache-size', String(e.prefixCacheSize), '--prefix-chars', String(e.prefixChars), '--prefix-hit-ttft-factor', String(e.prefixHitTtftFactor));
  if (e.prefixBlockChars > 0) args.push('--prefix-block-chars', String(e.prefixBlockChars));
  if (e.prefillMsPerToken > 0) args.push('--prefill-ms-per-token', String(e.prefillMsPerToken));
  if (e.kvCacheTokens > 0) args.push('--kv-cache-tokens', String(e.kvCacheTokens));
  return args;
}

const sleepUntil = (t: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, t - performance.now())));

/** checkStream sends one streaming request through the gateway and fails unless it streams content and ends with [DONE]. */
async function checkStream(origin: string, headers: Record<string, string>, body: Buffer): Promise<void> {
  const res = await request(`${origin}${PATH}`, { method: 'POST', headers, body, headersTimeout: 10_000, bodyTimeout: 10_000 });
  const text = await res.body.text();
  if (res.statusCode !== 200 || !text.includes('"content":"tok') || !text.endsWith('data: [DONE]\n\n')) {
    throw new Error(`sanity stream through the gateway failed: status ${res.statusCode}, body: ${text.slice(0, 300)}`);
  }
}

/** startSims starts one simulator child per engine (pinned to the load CPU) and waits until all answer /health. */
async function startSims(engines: readonly Engine[], ports: readonly number[], cli: CliEntry, layout: Layout, children: Child[]): Promise<{ sims: Child[]; urls: string[] }> {
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  const sims = engines.map((e, i) => new Child(`simulator ${i + 1}`, process.execPath, simArgs(cli, ports[i]!, `replica-${i + 1}`, e), { cpu: layout.loadCpu, cwd: ROOT }));
  children.push(...sims);
  await Promise.all(sims.map((s, i) => waitUntilReady(s, `${urls[i]}/health`)));
  return { sims, urls };
}

/** Calibration is what each replica measurably serves: completed streams per second with every slot busy and nothing queued. */
interface Calibration {
  /** rps[i] is replica i's measured capacity (req/s). */
  rps: number[];
  /** serviceMs[i] is the mean time a stream held one of replica i's slots (send to end of stream). */
  serviceMs: number[];
}

/**
 * calibrate measures each replica's real capacity: for CALIBRATION_SECONDS every replica runs a
 * closed loop of exactly maxConcurrency streams sent to it directly (all replicas at once, so the
 * load CPU is about as busy as in a run). No request ever waits, so there is no prefill contention;
 * what it adds to the nominal figure is timer and I/O overhead (a 5 ms setTimeout fires after 5-6 ms).
 */
async function calibrate(engines: readonly Engine[], bodyFor: (replica: number, n: number) => Buffer, cli: CliEntry, layout: Layout): Promise<Calibration> {
  const children: Child[] = [];
  try {
    const { urls } = await startSims(engines, await freePorts(engines.length), cli, layout, children);
    const seconds = Math.min(CALIBRATION_SECONDS, SECONDS);
    const perReplica = await Promise.all(
      engines.map(async (e, i) => {
        const pool = new Pool(urls[i]!, { connections: e.maxConcurrency, pipelining: 1 });
        const headers = { 'content-type': 'application/json' };
        let n = 0;
        let done = 0;
        let busyMs = 0;
        const one = async (): Promise<number> => {
          const t0 = performance.now();
          const res = await pool.request({ path: PATH, method: 'POST', headers, body: bodyFor(i, n++) });
          const text = await res.body.text();
          if (res.statusCode !== 200 || !text.endsWith('data: [DONE]\n\n')) throw new Error(`calibration request to replica ${i + 1} failed: ${res.statusCode} ${text.slice(0, 200)}`);
          return performance.now() - t0;
        };
        // Warm-up: one round per slot, not counted.
        await Promise.all(Array.from({ length: e.maxConcurrency }, one));
        const start = performance.now();
        const deadline = start + seconds * 1000;
        await Promise.all(
          Array.from({ length: e.maxConcurrency }, async () => {
            while (performance.now() < deadline) {
              // Not `busyMs += await one()`: that reads busyMs before awaiting and loses the other workers' additions.
              const ms = await one();
              busyMs += ms;
              done++;
            }
          }),
        );
        const elapsed = (performance.now() - start) / 1000;
        await pool.destroy();
        return { rps: done / elapsed, serviceMs: busyMs / done };
      }),
    );
    return { rps: perReplica.map((r) => r.rps), serviceMs: perReplica.map((r) => r.serviceMs) };
  } finally {
    await Promise.all(children.map((c) => c.stop()));
  }
}

async function runOne(spec: RunSpec, cli: CliEntry, layout: Layout, dir: string): Promise<RunResult> {
  const replicas = spec.engines.length;
  const gatewayCount = spec.gateways ?? 1;
  const ports = await freePorts(replicas + 3 * gatewayCount);
  const simPorts = ports.slice(0, replicas);
  const children: Child[] = [];
  try {
    const { sims, urls } = await startSims(spec.engines, simPorts, cli, layout, children);
    // One config for every gateway process; each takes its ports from the environment.
    const configPath = join(dir, `gateway-${spec.label ?? spec.balancer}.yaml`.replace(/[^\w./-]+/g, '-'));
    writeFileSync(
      configPath,
      stringify({
        proxy: { listen: '127.0.0.1:${BENCH_PROXY_PORT}' },
        status: { listen: '127.0.0.1:${BENCH_STATUS_PORT}' },
        admin: { listen: '127.0.0.1:${BENCH_ADMIN_PORT}' },
        log: { access_log: false },
        models: [{ name: MODEL, balancer: spec.balancer, ...spec.extra, targets: urls.map((url) => ({ url })) }],
      }),
    );
    const gateways: Child[] = [];
    const origins: string[] = [];
    for (let g = 0; g < gatewayCount; g++) {
      const [proxyPort, statusPort, adminPort] = ports.slice(replicas + 3 * g, replicas + 3 * g + 3) as [number, number, number];
      const gateway = new Child(gatewayCount === 1 ? 'gateway' : `gateway ${g + 1}`, process.execPath, [...cli.args, 'start', '--config', configPath], {
        cpu: layout.gatewayCpu,
        cwd: ROOT,
        env: { ...process.env, IGW_LOG_LEVEL: 'warn', BENCH_PROXY_PORT: String(proxyPort), BENCH_STATUS_PORT: String(statusPort), BENCH_ADMIN_PORT: String(adminPort) },
      });
      children.push(gateway);
      gateways.push(gateway);
      await waitUntilReady(gateway, `http://127.0.0.1:${statusPort}/status/ready`);
      origins.push(`http://127.0.0.1:${proxyPort}`);
    }
    const origin = origins[0]!;
    const headers = { 'content-type': 'application/json', 'x-model': MODEL };
    for (const o of origins) await checkStream(o, headers, spec.bodies[0]!);

    const [windowStartMs, windowEndMs] = spec.window ?? [WARMUP_SECONDS * 1000, (WARMUP_SECONDS + SECONDS) * 1000];
    const t0 = performance.now() + 20;
    const replicaIds = spec.engines.map((_, i) => `replica-${i + 1}`);
    const loop = openLoop({ origin, origins, path: PATH, headers, arrivals: spec.arrivals, bodies: spec.bodies, t0, graceMs: GRACE_MS, replicaIds });

    await sleepUntil(t0 + windowStartMs);
    const before = await Promise.all(simPorts.map(simStats));
    const gatewayCpu = (): number => gateways.reduce((a, g) => a + g.cpuSeconds(), 0);
    const cpu0 = { self: process.cpuUsage(), gateway: gatewayCpu(), sims: sims.reduce((a, s) => a + s.cpuSeconds(), 0), at: performance.now(), cores: readCpuTimes() };
    await sleepUntil(t0 + windowEndMs);
    const after = await Promise.all(simPorts.map(simStats));
    const self = process.cpuUsage(cpu0.self);
    const wall = (performance.now() - cpu0.at) / 1000;
    const cpu = {
      gateway: ((gatewayCpu() - cpu0.gateway) / wall) * 100,
      sims: ((sims.reduce((a, s) => a + s.cpuSeconds(), 0) - cpu0.sims) / wall) * 100,
      loadgen: ((self.user + self.system) / 1e6 / wall) * 100,
    };
    const disturbed = outsideLoad(cpu0.cores, readCpuTimes(), layout, cpu);
    const r = await loop;
    for (const c of children) if (c.isExited) throw new Error(`child died during the run: ${c.describe()}`);

    const deltas = after.map((a, i) => ({
      requests: a.requests - before[i]!.requests,
      hits: a.prefixHits - before[i]!.prefixHits,
      queries: a.prefixQueries - before[i]!.prefixQueries,
    }));
    const received = deltas.reduce((s, d) => s + d.requests, 0);
    return {
      balancer: spec.label ?? spec.balancer,
      ...summarize(r, spec.arrivals, t0, windowStartMs, windowEndMs, replicas),
      perReplica: deltas.map((d) => (received > 0 ? d.requests / received : Number.NaN)),
      hits: deltas.reduce((s, d) => s + d.hits, 0),
      queries: deltas.reduce((s, d) => s + d.queries, 0),
      cpu,
      disturbed,
      replicaOf: r.replica,
      ttftOf: Float64Array.from(r.firstAt, (f, i) => (f > 0 ? f - r.sentAt[i]! : 0)),
      firstInWindow: spec.arrivals.findIndex((a) => a >= windowStartMs),
      urls,
      gatewayLog: gateways.map((g) => g.output.trim()).filter((t) => t !== '').join('\n'),
    };
  } catch (err) {
    throw withChildOutput(err, children);
  } finally {
    await Promise.all(children.map((c) => c.stop()));
  }
}

/** outsideLoad compares per-CPU time with our processes' use: other processes or hypervisor steal on our CPUs make a run unreliable. */
function outsideLoad(before: Map<number, CpuTimes>, after: Map<number, CpuTimes>, layout: Layout, cpu: { gateway: number; sims: number; loadgen: number }): string | null {
  if (layout.gatewayCpu === null || layout.loadCpu === null) return null;
  const parts: string[] = [];
  for (const [c, ours] of [
    [layout.gatewayCpu, cpu.gateway],
    [layout.loadCpu, cpu.sims + cpu.loadgen],
  ] as const) {
    const share = cpuShare(before, after, c);
    if (share === null) continue;
    const others = Math.max(0, share.process - ours);
    if (others >= 10 || share.steal >= 5) parts.push(`CPU ${c}: ${others.toFixed(0)} % other processes, ${share.steal.toFixed(0)} % steal`);
  }
  return parts.length === 0 ? null : parts.join('; ');
}

/** summarize turns per-request timings into the window's figures. */
function summarize(r: OpenLoopResult, arrivals: Float64Array, t0: number, windowStartMs: number, windowEndMs: number, replicas: number) {
  const ttft = new Samples();
  const byReplica = Array.from({ length: replicas }, () => new Samples());
  const busyMs = new Float64Array(replicas);
  let censored = 0;
  let censoredMin = Infinity;
  let sent = 0;
  let ok = 0;
  let failed = 0;
  let unfinished = 0;
  const lag = new Samples();
  const winStart = t0 + windowStartMs;
  const winEnd = t0 + windowEndMs;
  let completedInWindow = 0;
  for (let i = 0; i < arrivals.length; i++) {
    const outcome = r.outcome[i]!;
    if (outcome === OK && r.endAt[i]! >= winStart && r.endAt[i]! <= winEnd) completedInWindow++;
    if (arrivals[i]! < windowStartMs) continue;
    sent++;
    lag.push(r.lag[i]!);
    if (outcome === FAILED) {
      failed++;
      continue;
    }
    if (outcome === OK) ok++;
    else if (outcome === UNFINISHED) unfinished++;
    const rep = r.replica[i]!;
    if (rep >= 0) busyMs[rep] = busyMs[rep]! + ((r.endAt[i]! > 0 ? r.endAt[i]! : r.cutAt) - r.sentAt[i]!);
    if (r.firstAt[i]! > 0) {
      ttft.push(r.firstAt[i]! - r.sentAt[i]!);
      byReplica[r.replica[i]!]?.push(r.firstAt[i]! - r.sentAt[i]!);
    } else {
      const bound = r.cutAt - r.sentAt[i]!;
      ttft.push(bound);
      censored++;
      censoredMin = Math.min(censoredMin, bound);
    }
  }
  return {
    ttft: ttft.sorted(),
    ttftByReplica: byReplica.map((b) => b.sorted()),
    censored,
    censoredMin,
    sent,
    ok,
    failed,
    unfinished,
    failureReasons: r.failures.reasons,
    throughput: completedInWindow / ((windowEndMs - windowStartMs) / 1000),
    lagP99: percentile(lag.sorted(), 99),
    maxInflight: r.maxInflight,
    skew: Math.max(...busyMs) / (busyMs.reduce((a, b) => a + b, 0) / replicas),
  };
}

// ---------------------------------------------------------------------------------------------
// Workloads

function chatBody(messages: Array<{ role: string; content: string }>): Buffer {
  return Buffer.from(JSON.stringify({ model: MODEL, messages, max_tokens: MAX_TOKENS, stream: true }));
}

const WORDS = ['model', 'token', 'latency', 'cluster', 'replica', 'policy', 'answer', 'customer', 'invoice', 'contract', 'ticket', 'summary', 'careful', 'concise', 'always', 'never', 'cite', 'source', 'format', 'table', 'refund', 'order', 'account', 'region'];

/** systemPrompts builds n distinct system prompts of about `chars` characters; they differ from the first characters on. */
function systemPrompts(n: number, chars: number, random: () => number): string[] {
  const out: string[] = [];
  for (let k = 0; k < n; k++) {
    let p = `You are the assistant of tenant ${k + 1} (of ${n}). Follow these house rules:`;
    while (p.length < chars) p += ` ${WORDS[Math.floor(random() * WORDS.length)]}`;
    out.push(p.slice(0, chars));
  }
  return out;
}

function userMessage(random: () => number): string {
  const n = 3 + Math.floor(random() * 8);
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(WORDS[Math.floor(random() * WORDS.length)]!);
  return `Question ${Math.floor(random() * 1e6)}: ${words.join(' ')}?`;
}

// ---------------------------------------------------------------------------------------------
// Output

const f1 = (v: number): string => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');
const pct = (v: number): string => (Number.isFinite(v) ? `${(v * 100).toFixed(1)} %` : 'n/a');

/** ttftText is a TTFT percentile, ">= x" when a cut-off request (lower bound) may sit at or below it. */
function ttftText(r: RunResult, p: number): string {
  const v = percentile(r.ttft, p);
  if (!Number.isFinite(v)) return 'n/a';
  return r.censored > 0 && r.censoredMin <= v ? `>= ${v.toFixed(1)}` : v.toFixed(1);
}

function errorsText(r: RunResult): string {
  return r.failed === 0 ? '0' : `${r.failed} (${r.failureReasons.join('; ')})`;
}

/** table renders a markdown table with padded columns (readable as plain text too). */
function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>, rightAlignFrom = 1): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(3, ...all.map((r) => r[i]!.length)));
  const line = (r: readonly string[]): string => `| ${r.map((c, i) => (i >= rightAlignFrom ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i >= rightAlignFrom ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

function engineFlags(e: Engine): string {
  let s = `--max-concurrency ${e.maxConcurrency} --ttft-ms ${e.ttftMs} --itl-ms ${e.itlMs} --ttft-per-waiting-ms ${e.ttftPerWaitingMs}`;
  if (e.speedFactor !== 1) s += ` --speed-factor ${e.speedFactor}`;
  if (e.prefixBlockChars > 0) s += ` --prefix-cache-size ${e.prefixCacheSize} --prefix-block-chars ${e.prefixBlockChars} --prefix-hit-ttft-factor ${e.prefixHitTtftFactor}`;
  else if (e.prefixCacheSize > 0) s += ` --prefix-cache-size ${e.prefixCacheSize} --prefix-chars ${e.prefixChars} --prefix-hit-ttft-factor ${e.prefixHitTtftFactor}`;
  if (e.prefillMsPerToken > 0) s += ` --prefill-ms-per-token ${e.prefillMsPerToken}`;
  if (e.kvCacheTokens > 0) s += ` --kv-cache-tokens ${e.kvCacheTokens}`;
  return s;
}

function cpuNote(r: RunResult, layout: Layout): string {
  const load = r.cpu.sims + r.cpu.loadgen;
  const text = `${r.balancer}: CPU gateway ${r.cpu.gateway.toFixed(0)} %, simulators ${r.cpu.sims.toFixed(0)} % + load generator ${r.cpu.loadgen.toFixed(0)} %` +
    `${layout.loadCpu === null ? '' : ` (CPU ${layout.loadCpu})`}; send lag p99 ${r.lagP99.toFixed(1)} ms; at most ${r.maxInflight} requests in flight`;
  return load >= 90 || r.cpu.gateway >= 90 ? `${text} — SATURATED: timers run late, TTFT figures are inflated` : text;
}

function runNotes(r: RunResult): string[] {
  const notes: string[] = [];
  if (r.unfinished > 0 || r.censored > 0) {
    notes.push(
      `${r.balancer}: ${r.unfinished} of ${r.sent} window requests were still running ${GRACE_MS / 1000} s after the last arrival and were cut off` +
        (r.censored > 0 ? ` (${r.censored} without a first token: counted at their wait so far, a lower bound)` : ''),
    );
  }
  if (r.disturbed !== null) notes.push(`${r.balancer}: DISTURBED by other load (${r.disturbed}); rerun on a quiet machine`);
  if (r.gatewayLog !== '') notes.push(`${r.balancer}: the gateway logged (warn and above): ${r.gatewayLog.split('\n').slice(-3).join(' | ')}`);
  return notes;
}

// ---------------------------------------------------------------------------------------------
// Scenarios

interface Section {
  title: string;
  setup: string[];
  table: string;
  verdict: string;
  isMet: boolean;
  notes: string[];
}

/** contentionNote explains the prefill-contention setting: off by default, and why (the break-even queue w* at this load). */
function contentionNote(fast: Engine, cal: Calibration, ratePerFastReplica: number): string {
  const S = cal.serviceMs[0]!;
  const wStar = (c: number): string => ((fast.maxConcurrency * 1000) / ratePerFastReplica - S) / c > 0 ? (((fast.maxConcurrency * 1000) / ratePerFastReplica - S) / c).toFixed(1) : '0';
  const why =
    `with c ms of prefill contention per waiting request a replica's capacity drops to slots / (S + c x w) while w requests wait; at this load (${f1(ratePerFastReplica)} req/s per fast replica, ` +
    `S = ${f1(S)} ms measured) that is below the arrival rate once w > w* = (slots / rate - S) / c = ${wStar(20)} for c = 20 (${wStar(2)} for c = 2), and the simulator's contention grows with the whole queue, ` +
    'so one burst can make the queue feed itself until the run collapses, whatever the balancer';
  return fast.ttftPerWaitingMs === 0
    ? `prefill contention (\`--ttft-per-waiting-ms\`) is off (BENCH_CONTENTION_MS=0), so the capacity is a fixed number: ${why}`
    : `prefill contention \`--ttft-per-waiting-ms ${fast.ttftPerWaitingMs}\` (BENCH_CONTENTION_MS) is on; beware: ${why}`;
}

async function scenarioSlowReplica(cli: CliEntry, layout: Layout, dir: string): Promise<Section> {
  const random = mulberry32(SEED);
  const nominal = S1_ENGINES.map((e) => capacity(e));
  const nominalTotal = nominal.reduce((a, b) => a + b, 0);
  process.stdout.write('\n## Scenario 1: a slow replica\n\ncalibrating (each replica with every slot busy) ...\n');
  const calBody = chatBody([{ role: 'user', content: 'calibration' }]);
  const cal = await calibrate(S1_ENGINES, () => calBody, cli, layout);
  const total = cal.rps.reduce((a, b) => a + b, 0);
  const rate = total * S1_LOAD_SHARE;
  const arrivals = poissonArrivals(rate, WARMUP_SECONDS + SECONDS, random);
  const bodies = Array.from(arrivals, () => chatBody([{ role: 'user', content: userMessage(random) }]));
  const fast = S1_ENGINES[0]!;
  const slow = S1_ENGINES[REPLICAS - 1]!;
  const slowCap = cal.rps[REPLICAS - 1]!;
  const fastMean = cal.rps.slice(0, REPLICAS - 1).reduce((a, b) => a + b, 0) / (REPLICAS - 1);
  const setup = [
    `replicas: 3 x \`simulate ${engineFlags(fast)}\` and 1 x \`simulate ${engineFlags(slow)}\`; streaming chat requests, max_tokens ${MAX_TOKENS}`,
    `nominal capacity per replica = slots / (speed x (ttft + (tokens - 1) x itl)): fast 4 / ${(serviceMs(fast) / 1000).toFixed(3)} s = ${f1(nominal[0]!)} req/s, ` +
      `slow 4 / ${(serviceMs(slow) / 1000).toFixed(3)} s = ${f1(nominal[REPLICAS - 1]!)} req/s; cluster ${f1(nominalTotal)} req/s`,
    `measured capacity (${Math.min(CALIBRATION_SECONDS, SECONDS)} s, every slot busy, nothing queued, requests sent to the replicas directly): fast ${cal.rps.slice(0, REPLICAS - 1).map(f1).join(' / ')} req/s ` +
      `(a slot held ${f1(cal.serviceMs[0]!)} ms: timers fire late), slow ${f1(slowCap)} req/s (${f1(cal.serviceMs[REPLICAS - 1]!)} ms); cluster ${f1(total)} req/s = ${pct(total / nominalTotal)} of nominal. The load is set from the measured figure.`,
    `offered load: Poisson arrivals at ${f1(rate)} req/s = ${(S1_LOAD_SHARE * 100).toFixed(1)} % of the measured capacity (open loop, seed ${SEED}). ` +
      `An even split sends ${f1(rate / REPLICAS)} req/s to the slow replica, ${((rate / REPLICAS / slowCap) * 100).toFixed(0)} % of what it can serve; a split by capacity would give it ${pct(slowCap / total)}`,
    contentionNote(fast, cal, (rate * fastMean) / total),
    `per balancer: fresh simulators and gateway, ${WARMUP_SECONDS} s warm-up, ${SECONDS} s measured (${arrivals.filter((a) => a >= WARMUP_SECONDS * 1000).length} requests); least-load polls /metrics every 100 ms`,
  ];
  process.stdout.write(`\n${setup.map((x) => `- ${x}`).join('\n')}\n\n`);
  const results: RunResult[] = [];
  const specs: Array<[RunSpec['balancer'], Record<string, unknown>]> = [
    ['round-robin', {}],
    ['least-request', {}],
    ['least-load', { load_metrics: { interval: '100ms' } }],
  ];
  for (const [balancer, extra] of specs) {
    process.stdout.write(`running ${balancer} ...\n`);
    results.push(await runOne({ balancer, engines: S1_ENGINES, extra, arrivals, bodies }, cli, layout, dir));
  }
  const rows = results.map((r) => [
    r.balancer,
    ttftText(r, 50),
    ttftText(r, 99),
    f1(r.throughput),
    errorsText(r),
    String(r.unfinished),
    pct(r.perReplica[REPLICAS - 1]!),
  ]);
  const tbl = table(['balancer', 'p50 TTFT (ms)', 'p99 TTFT (ms)', 'throughput (req/s)', 'errors', 'cut off', 'on slow replica'], rows);
  const rr = results[0]!;
  const ll = results[2]!;
  const ratio = percentile(ll.ttft, 99) / percentile(rr.ttft, 99);
  const isBound = (r: RunResult): boolean => r.censored > 0 && r.censoredMin <= percentile(r.ttft, 99);
  // A lower-bound p99 on least-load's side means the true ratio may be higher: only a ratio with an exact numerator can meet the target.
  const isMet = ratio <= S1_TARGET_RATIO && !isBound(ll);
  let caveat = '';
  if (isBound(ll) && isBound(rr)) caveat = ' (both p99s are lower bounds: the ratio is undetermined)';
  else if (isBound(ll)) caveat = " (least-load's p99 is a lower bound, so the true ratio is at least this)";
  else if (isBound(rr)) caveat = " (round-robin's p99 is a lower bound, so the true ratio is at most this)";
  const verdict = `least-load p99 TTFT = ${ratio.toFixed(3)} x round-robin's (target <= ${S1_TARGET_RATIO}): ${isMet ? 'met' : 'NOT met'}${caveat}`;
  const notes = [
    ...results.map(
      (r) =>
        `${r.balancer}: requests per replica ${r.perReplica.map(pct).join(' / ')} (slow replica last); ` +
        `TTFT p50/p99 per replica (ms, answered requests) ${r.ttftByReplica.map((t) => `${f1(percentile(t, 50))}/${f1(percentile(t, 99))}`).join(', ')}`,
    ),
    ...results.map((r) => cpuNote(r, layout)),
    ...results.flatMap(runNotes),
  ];
  process.stdout.write(`\n${tbl}\n\n${verdict}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n`);
  return { title: 'Scenario 1: a slow replica', setup, table: tbl, verdict, isMet, notes };
}

/** ringOwners says which replica owns each prompt on the consistent-hash ring: where the gateway sends it when no replica is above its load bound. */
function ringOwners(urls: readonly string[], prompts: readonly string[]): number[] {
  const candidates: Target[] = urls.map((url) => ({ url, origin: url, basePath: '', weight: 1, state: new TargetState(url) }));
  const ring = new ConsistentHashBalancer(candidates);
  return prompts.map((p) => {
    const key = toPromptPrefixKey({ messages: [{ role: 'system', content: p }, { role: 'user', content: 'x' }] }, S2_HASH_CHARS);
    const c = ring.pick({ excluded: null, hashKey: key, nowMs: 0 });
    return c === undefined ? -1 : urls.indexOf(c.url);
  });
}

async function scenarioSharedPrompts(cli: CliEntry, layout: Layout, dir: string): Promise<Section> {
  const e = S2_ENGINE;
  const engines = [e, e, e, e];
  const random = mulberry32(SEED + 1);
  const prompts = systemPrompts(PROMPTS, S2_SYSTEM_CHARS, random);
  process.stdout.write('\n## Scenario 2: shared system prompts\n\ncalibrating (each replica with every slot busy, every request a prefix-cache miss) ...\n');
  const missPrompts = systemPrompts(64, S2_SYSTEM_CHARS, mulberry32(SEED + 2)).map((p) => `calibration ${p}`);
  const cal = await calibrate(engines, (i, n) => chatBody([{ role: 'system', content: `${i}-${n} ${missPrompts[n % missPrompts.length]!}` }, { role: 'user', content: 'hi' }]), cli, layout);
  const missCap = cal.rps.reduce((a, b) => a + b, 0);
  const rate = missCap * S2_LOAD_SHARE;
  const arrivals = poissonArrivals(rate, WARMUP_SECONDS + SECONDS, random);
  const promptOf = Array.from(arrivals, () => Math.floor(random() * PROMPTS));
  const bodies = promptOf.map((k) => chatBody([{ role: 'system', content: prompts[k]! }, { role: 'user', content: userMessage(random) }]));
  const rrHit = Math.min(1, e.prefixCacheSize / PROMPTS);
  const setup = [
    `replicas: 4 x \`simulate ${engineFlags(e)}\`: each remembers ${e.prefixCacheSize} prompt prefixes (LRU) of ${e.prefixChars} characters; a hit cuts the ttft to x${e.prefixHitTtftFactor}`,
    `workload: ${PROMPTS} distinct system prompts of ${S2_SYSTEM_CHARS} characters, each request one of them uniformly at random + a random short user message, streaming, max_tokens ${MAX_TOKENS}`,
    `expected: spread evenly, every replica sees all ${PROMPTS} prompts, and an LRU of ${e.prefixCacheSize} under uniform independent requests hits ${e.prefixCacheSize}/${PROMPTS} = ${pct(rrHit)}; ` +
      `hashed by prompt, a replica sees about ${PROMPTS / REPLICAS} of them and can hold them all (the fleet's ${REPLICAS * e.prefixCacheSize} slots >= ${PROMPTS} prompts), so ~100 % minus what the load bound spills; ` +
      `the target (>= ${S2_TARGET_RATIO}x) needs consistent-hash >= ${pct(Math.min(1, S2_TARGET_RATIO * rrHit))}` +
      (S2_TARGET_RATIO * rrHit >= 1 ? ' (NOT reachable with this prompt count: round-robin already hits half, so 2x would need 100 %, cold misses and spills excluded)' : ''),
    `capacity: nominal ${f1(capacity(e) * REPLICAS)} req/s if every request misses (4 x 4 / ${(serviceMs(e) / 1000).toFixed(3)} s), ${f1(capacity(e, true) * REPLICAS)} req/s if every one hits; ` +
      `measured all-miss ${f1(missCap)} req/s (a slot held ${f1(cal.serviceMs[0]!)} ms)`,
    `offered load: Poisson arrivals at ${f1(rate)} req/s = ${(S2_LOAD_SHARE * 100).toFixed(0)} % of the measured all-miss capacity (open loop, seed ${SEED + 1}); ` +
      `prefill contention ${e.ttftPerWaitingMs === 0 ? 'off, as in scenario 1' : `${e.ttftPerWaitingMs} ms per waiting request`}`,
    `consistent-hash: \`hash_on: prompt_prefix\`, \`hash_prompt_chars: ${S2_HASH_CHARS}\`, default \`hash_load_factor\` 1.25; least-load polls every 100 ms; prefix-aware: \`prefix_cache_blocks: ${S2_PREFIX_BLOCKS}\` (8 prompts); hit rate = sum of prefix-cache hits / lookups over the 4 simulators' /sim/stats, measured window only`,
    `per balancer: fresh simulators (cold caches) and gateway, ${WARMUP_SECONDS} s warm-up, ${SECONDS} s measured (${arrivals.filter((a) => a >= WARMUP_SECONDS * 1000).length} requests)`,
  ];
  process.stdout.write(`\n${setup.map((x) => `- ${x}`).join('\n')}\n\n`);
  const results: RunResult[] = [];
  const specs: Array<[RunSpec['balancer'], Record<string, unknown>]> = [
    ['round-robin', {}],
    ['consistent-hash', { hash_on: 'prompt_prefix', hash_prompt_chars: S2_HASH_CHARS }],
    ['least-load', { load_metrics: { interval: '100ms' } }],
    ['prefix-aware', { prefix_cache_blocks: S2_PREFIX_BLOCKS }],
  ];
  for (const [balancer, extra] of specs) {
    process.stdout.write(`running ${balancer} ...\n`);
    results.push(await runOne({ balancer, engines, extra, arrivals, bodies }, cli, layout, dir));
  }
  const hitRate = (r: RunResult): number => (r.queries > 0 ? r.hits / r.queries : Number.NaN);
  const rows = results.map((r) => [r.balancer, pct(hitRate(r)), ttftText(r, 50), ttftText(r, 99), f1(r.throughput), errorsText(r), r.perReplica.map((x) => (x * 100).toFixed(0)).join(' / ')]);
  const tbl = table(['balancer', 'prefix-cache hit rate', 'p50 TTFT (ms)', 'p99 TTFT (ms)', 'throughput (req/s)', 'errors', 'requests per replica (%)'], rows);
  const rr = results[0]!;
  const ch = results[1]!;
  const ratio = hitRate(ch) / hitRate(rr);
  const isMet = ratio >= S2_TARGET_RATIO;
  const verdict = `consistent-hash hit rate = ${ratio.toFixed(2)} x round-robin's (target >= ${S2_TARGET_RATIO}): ${isMet ? 'met' : 'NOT met'}`;
  const owners = ringOwners(ch.urls, prompts);
  const owned = ch.urls.map((_, i) => owners.filter((o) => o === i).length);
  let home = 0;
  let answered = 0;
  for (let i = ch.firstInWindow; i >= 0 && i < ch.replicaOf.length; i++) {
    if (ch.replicaOf[i]! < 0) continue;
    answered++;
    if (ch.replicaOf[i] === owners[promptOf[i]!]) home++;
  }
  const notes = [
    `consistent-hash ring (this run's target URLs): prompts owned per replica ${owned.join(' / ')} of ${PROMPTS}, i.e. traffic shares ${owned.map((c) => ((c / PROMPTS) * 100).toFixed(0)).join(' / ')} % ` +
      `before the load bound (a replica takes a key only while its in-flight + 1 <= ceil(1.25 x (total in flight + 1) / 4)) spills keys to their ring neighbour; ` +
      `${pct(home / answered)} of the window's requests were served by their prompt's home replica. ` +
      'The ring is built from the target URLs, which carry random ports, so ownership and hit rate change from run to run (bench/balance-model.ts shows the spread over 20 rings)',
    ...results.map((r) => `${r.balancer}: ${r.hits} hits / ${r.queries} lookups`),
    ...results.map((r) => cpuNote(r, layout)),
    ...results.flatMap(runNotes),
  ];
  process.stdout.write(`\n${tbl}\n\n${verdict}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n`);
  return { title: 'Scenario 2: shared system prompts', setup, table: tbl, verdict, isMet, notes };
}

/** VERSUS_SPECS are the runs of scenarios 3 and 4: the balancers that need no prompt cache, prefix-aware, and least-load with flow control. */
const VERSUS_SPECS: ReadonlyArray<[RunSpec['balancer'], string, Record<string, unknown>]> = [
  ['round-robin', 'round-robin', {}],
  ['least-request', 'least-request', {}],
  ['least-load', 'least-load', { load_metrics: { interval: '100ms' } }],
  ['prefix-aware', 'prefix-aware', {}],
  ['least-load', 'least-load + flow control', { load_metrics: { interval: '100ms' }, flow_control: { enabled: true } }],
];

/** versusVerdict checks least-load against least-request: p99 TTFT at most LL_TARGET_RATIO of it, throughput not lower. */
function versusVerdict(results: readonly RunResult[]): { verdict: string; isMet: boolean } {
  const lr = results.find((r) => r.balancer === 'least-request')!;
  const ll = results.find((r) => r.balancer === 'least-load')!;
  const isBound = (r: RunResult): boolean => r.censored > 0 && r.censoredMin <= percentile(r.ttft, 99);
  const ratio = percentile(ll.ttft, 99) / percentile(lr.ttft, 99);
  const thr = ll.throughput / lr.throughput;
  const p99Met = ratio <= LL_TARGET_RATIO && !isBound(ll);
  const thrMet = thr >= LL_THROUGHPUT_SLACK;
  const caveat = isBound(ll) ? " (least-load's p99 is a lower bound)" : isBound(lr) ? " (least-request's p99 is a lower bound, so the true ratio is at most this)" : '';
  return {
    verdict:
      `least-load p99 TTFT = ${ratio.toFixed(2)} x least-request's (target <= ${LL_TARGET_RATIO}) ${p99Met ? 'met' : 'NOT met'}${caveat}; ` +
      `throughput ${thr.toFixed(3)} x least-request's (target: not lower, >= ${LL_THROUGHPUT_SLACK} allowing for noise) ${thrMet ? 'met' : 'NOT met'}`,
    isMet: p99Met && thrMet,
  };
}

async function runVersus(engines: readonly Engine[], arrivals: Float64Array, bodies: readonly Buffer[], gateways: number, cli: CliEntry, layout: Layout, dir: string): Promise<RunResult[]> {
  const results: RunResult[] = [];
  for (const [balancer, label, extra] of VERSUS_SPECS) {
    process.stdout.write(`running ${label} ...\n`);
    results.push(await runOne({ balancer, label, gateways, engines, extra, arrivals, bodies }, cli, layout, dir));
  }
  return results;
}

async function scenarioThreeGateways(cli: CliEntry, layout: Layout, dir: string): Promise<Section> {
  const random = mulberry32(SEED + 5);
  process.stdout.write(`\n## Scenario 3: ${S3_GATEWAYS} gateway processes\n\ncalibrating (each replica with every slot busy) ...\n`);
  const calBody = chatBody([{ role: 'user', content: 'calibration' }]);
  const cal = await calibrate(S1_ENGINES, () => calBody, cli, layout);
  const total = cal.rps.reduce((a, b) => a + b, 0);
  const rate = total * S1_LOAD_SHARE;
  const arrivals = poissonArrivals(rate, WARMUP_SECONDS + SECONDS, random);
  const bodies = Array.from(arrivals, () => chatBody([{ role: 'user', content: userMessage(random) }]));
  const slowCap = cal.rps[REPLICAS - 1]!;
  const setup = [
    `replicas: those of scenario 1, 3 x \`simulate ${engineFlags(S1_ENGINES[0]!)}\` and 1 x \`simulate ${engineFlags(S1_ENGINES[REPLICAS - 1]!)}\`; streaming chat requests, max_tokens ${MAX_TOKENS}`,
    `gateways: ${S3_GATEWAYS} \`inference-gateway start\` processes with one config (ports from the environment), all on the gateway CPU; request i goes to gateway i mod ${S3_GATEWAYS} (a cloud load balancer's round-robin), so each sees a third of the traffic and only its own in-flight requests`,
    `measured capacity: fast ${cal.rps.slice(0, REPLICAS - 1).map(f1).join(' / ')} req/s, slow ${f1(slowCap)} req/s; cluster ${f1(total)} req/s`,
    `offered load: Poisson arrivals at ${f1(rate)} req/s = ${(S1_LOAD_SHARE * 100).toFixed(1)} % of the measured capacity (open loop, seed ${SEED + 5}); a split by capacity would give the slow replica ${pct(slowCap / total)}`,
    `per balancer: fresh simulators and gateways, ${WARMUP_SECONDS} s warm-up, ${SECONDS} s measured (${arrivals.filter((a) => a >= WARMUP_SECONDS * 1000).length} requests); least-load polls /metrics every 100 ms in each gateway; ` +
      'prefix-aware sees prompts shorter than one block here, so it balances by least-request; flow control: `flow_control.enabled: true` with its defaults (each gateway holds requests while every replica is saturated)',
  ];
  process.stdout.write(`\n${setup.map((x) => `- ${x}`).join('\n')}\n\n`);
  const results = await runVersus(S1_ENGINES, arrivals, bodies, S3_GATEWAYS, cli, layout, dir);
  const rows = results.map((r) => [r.balancer, ttftText(r, 50), ttftText(r, 99), f1(r.throughput), errorsText(r), String(r.unfinished), pct(r.perReplica[REPLICAS - 1]!)]);
  const tbl = table(['balancer', 'p50 TTFT (ms)', 'p99 TTFT (ms)', 'throughput (req/s)', 'errors', 'cut off', 'on slow replica'], rows);
  const { verdict, isMet } = versusVerdict(results);
  const notes = [
    ...results.map(
      (r) =>
        `${r.balancer}: requests per replica ${r.perReplica.map(pct).join(' / ')} (slow replica last); ` +
        `TTFT p50/p99 per replica (ms, answered requests) ${r.ttftByReplica.map((t) => `${f1(percentile(t, 50))}/${f1(percentile(t, 99))}`).join(', ')}`,
    ),
    ...results.map((r) => cpuNote(r, layout).replace('CPU gateway', `CPU ${S3_GATEWAYS} gateways`)),
    ...results.flatMap(runNotes),
  ];
  process.stdout.write(`\n${tbl}\n\n${verdict}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n`);
  return { title: `Scenario 3: ${S3_GATEWAYS} gateway processes`, setup, table: tbl, verdict, isMet, notes };
}

async function scenarioMixedPrompts(cli: CliEntry, layout: Layout, dir: string): Promise<Section> {
  const random = mulberry32(SEED + 6);
  const e = S4_ENGINE;
  const engines = Array.from({ length: REPLICAS }, () => e);
  process.stdout.write('\n## Scenario 4: mixed prompt sizes\n');
  const longChars = S4_SHORT_CHARS * S4_LONG_FACTOR;
  // The simulator counts ceil(characters / 4) + 1 per message as prompt tokens.
  const tokensOf = (chars: number): number => Math.ceil(chars / 4) + 1;
  const shortTokens = tokensOf(S4_SHORT_CHARS);
  const longTokens = tokensOf(longChars);
  const holdMs = (tokens: number): number => e.ttftMs + e.prefillMsPerToken * tokens + (MAX_TOKENS - 1) * e.itlMs;
  const meanHold = (1 - S4_LONG_SHARE) * holdMs(shortTokens) + S4_LONG_SHARE * holdMs(longTokens);
  const nominal = (REPLICAS * e.maxConcurrency * 1000) / meanHold;
  const rate = nominal * S4_LOAD_SHARE;
  const arrivals = poissonArrivals(rate, WARMUP_SECONDS + SECONDS, random);
  const isLong = Array.from(arrivals, () => random() < S4_LONG_SHARE);
  const filler = (chars: number): string => {
    let t = `Document ${Math.floor(random() * 1e9)}:`;
    while (t.length < chars) t += ` ${WORDS[Math.floor(random() * WORDS.length)]}`;
    return t.slice(0, chars);
  };
  const bodies = isLong.map((long) => chatBody([{ role: 'user', content: filler(long ? longChars : S4_SHORT_CHARS) }]));
  const blocks = (tokens: number): number => Math.ceil((tokens + MAX_TOKENS) / 16);
  const cacheBlocks = e.kvCacheTokens / 16;
  const longRatePerReplica = (rate * S4_LONG_SHARE) / REPLICAS;
  const setup = [
    `replicas: 4 x \`simulate ${engineFlags(e)}\`: a request's ttft grows by ${e.prefillMsPerToken} ms per prompt token; it holds KV blocks of 16 tokens for its prompt and generated tokens (reported as \`vllm:kv_cache_usage_perc\`) and starts only when those of its prompt + max_tokens fit, in arrival order`,
    `workload: ${pct(1 - S4_LONG_SHARE)} short prompts of ${S4_SHORT_CHARS} characters (${shortTokens} tokens, ${blocks(shortTokens)} of ${cacheBlocks} blocks, ttft ${f1(e.ttftMs + e.prefillMsPerToken * shortTokens)} ms), ` +
      `${pct(S4_LONG_SHARE)} ${S4_LONG_FACTOR}x longer (${longChars} characters, ${longTokens} tokens, ${blocks(longTokens)} blocks = ${pct(blocks(longTokens) / cacheBlocks)} of a cache, ttft ${f1(e.ttftMs + e.prefillMsPerToken * longTokens)} ms): ` +
      'two long prompts never fit in one cache, so a second one waits for the first, and every request behind it waits too; streaming chat, max_tokens 16',
    `capacity: nominal ${f1(nominal)} req/s = 4 x ${e.maxConcurrency} slots / ${f1(meanHold)} ms (the mean slot time), if the cache never made a request wait`,
    `offered load: Poisson arrivals at ${f1(rate)} req/s = ${(S4_LOAD_SHARE * 100).toFixed(0)} % of nominal (open loop, seed ${SEED + 6}); ${f1(longRatePerReplica)} long prompts/s per replica on an even split, each holding its replica's room for long prompts ${f1(holdMs(longTokens))} ms: that room is busy ${pct(longRatePerReplica * holdMs(longTokens) / 1000)} of the time`,
    `per balancer: fresh simulators and gateway, ${WARMUP_SECONDS} s warm-up, ${SECONDS} s measured (${arrivals.filter((a) => a >= WARMUP_SECONDS * 1000).length} requests, ${isLong.filter((l, i) => l && arrivals[i]! >= WARMUP_SECONDS * 1000).length} long); least-load polls /metrics every 100 ms; ` +
      'prefix-aware finds no shared prefixes here, so it sends each request to the least loaded target; flow control: `flow_control.enabled: true` with its defaults',
  ];
  process.stdout.write(`\n${setup.map((x) => `- ${x}`).join('\n')}\n\n`);
  const results = await runVersus(engines, arrivals, bodies, 1, cli, layout, dir);
  // TTFT of the long prompts alone, answered ones (their own prefill is in it).
  const longTtft = (r: RunResult): string => {
    const first = r.firstInWindow;
    const v: number[] = [];
    for (let i = first; i >= 0 && i < arrivals.length; i++) if (isLong[i] && r.ttftOf[i]! > 0) v.push(r.ttftOf[i]!);
    const sorted = Float64Array.from(v).sort();
    return `${f1(percentile(sorted, 50))} / ${f1(percentile(sorted, 99))}`;
  };
  const rows = results.map((r) => [r.balancer, ttftText(r, 50), ttftText(r, 99), longTtft(r), f1(r.throughput), errorsText(r), String(r.unfinished), r.perReplica.map((x) => (x * 100).toFixed(0)).join(' / ')]);
  const tbl = table(['balancer', 'p50 TTFT (ms)', 'p99 TTFT (ms)', 'long prompts p50 / p99 (ms)', 'throughput (req/s)', 'errors', 'cut off', 'requests per replica (%)'], rows);
  const { verdict, isMet } = versusVerdict(results);
  const notes = [...results.map((r) => cpuNote(r, layout)), ...results.flatMap(runNotes)];
  process.stdout.write(`\n${tbl}\n\n${verdict}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n`);
  return { title: 'Scenario 4: mixed prompt sizes', setup, table: tbl, verdict, isMet, notes };
}

async function scenarioMultiTurn(cli: CliEntry, layout: Layout, dir: string): Promise<Section> {
  const e = S5_ENGINE;
  const engines = Array.from({ length: S5_REPLICAS }, () => e);
  const turns = multiTurnWorkload({ ...S5_SHAPE, seed: SEED + 3 });
  const arrivals = Float64Array.from(turns, (t) => t.atMs);
  const bodies = turns.map((t) => chatBody(t.messages));
  const spanS = arrivals[arrivals.length - 1]! / 1000;
  const meanChars = turns.reduce((s, t) => s + t.messages.reduce((a, m) => a + m.content.length, 0), 0) / turns.length;
  process.stdout.write('\n## Scenario 5: multi-turn conversations\n');
  const setup = [
    `replicas: ${S5_REPLICAS} x \`simulate ${engineFlags(e)}\`: each caches the whole prompt in chained blocks of ${e.prefixBlockChars} characters, ${e.prefixCacheSize} blocks (LRU, prompt tails evicted first); ` +
      `a request reuses its cached leading blocks and its ttft is x (${e.prefixHitTtftFactor} + ${1 - e.prefixHitTtftFactor} x the share of blocks not cached)`,
    `workload: ${S5_SHAPE.conversations} conversations x ${S5_SHAPE.turns} turns (${turns.length} requests), each turn resending the history plus a new user message (assistant turns 300-900, user 150-450 characters), ` +
      `under ${S5_SHAPE.systemPrompts} system prompts of ${S5_SHAPE.systemChars} characters shared by the conversations at random; conversations start uniformly over ${S5_SHAPE.startSpreadMs / 1000} s, ` +
      `a turn ${S5_SHAPE.thinkMs / 1000} s (x0.5..1.5) after the one before; ${f1(spanS)} s in all, ${f1(turns.length / spanS)} req/s on average, prompts of ${meanChars.toFixed(0)} characters on average; seed ${SEED + 3}`,
    `capacity: nominal ${f1(capacity(e) * S5_REPLICAS)} req/s if every request misses, ${f1(capacity(e, true) * S5_REPLICAS)} req/s if every one hits`,
    `balancers: consistent-hash with \`hash_on: prompt_prefix\`, \`hash_prompt_chars: ${S2_HASH_CHARS}\`; least-load polling every 100 ms; prefix-aware with \`prefix_block_chars: ${S5_BLOCK_CHARS}\`, \`prefix_cache_blocks: ${S5_CACHE_BLOCKS}\` (the engines' size); default \`hash_load_factor\` 1.25`,
    'every request counts (cold caches included, the same for every balancer); hit rate = cached blocks / looked-up blocks over the simulators (as vLLM counts tokens); ' +
      "skew = max / mean over the replicas of the time their requests were in flight (send to end), i.e. of their time-averaged in-flight count",
  ];
  process.stdout.write(`\n${setup.map((x) => `- ${x}`).join('\n')}\n\n`);
  const specs: Array<[RunSpec['balancer'], Record<string, unknown>]> = [
    ['round-robin', {}],
    ['consistent-hash', { hash_on: 'prompt_prefix', hash_prompt_chars: S2_HASH_CHARS }],
    ['least-load', { load_metrics: { interval: '100ms' } }],
    ['prefix-aware', { prefix_block_chars: S5_BLOCK_CHARS, prefix_cache_blocks: S5_CACHE_BLOCKS }],
  ];
  const results: RunResult[] = [];
  for (const [balancer, extra] of specs) {
    process.stdout.write(`running ${balancer} ...\n`);
    results.push(await runOne({ balancer, engines, extra, arrivals, bodies, window: [0, arrivals[arrivals.length - 1]! + 1] }, cli, layout, dir));
  }
  const hitRate = (r: RunResult): number => (r.queries > 0 ? r.hits / r.queries : Number.NaN);
  const rows = results.map((r) => [r.balancer, pct(hitRate(r)), ttftText(r, 50), ttftText(r, 99), r.skew.toFixed(2), errorsText(r), r.perReplica.map((x) => (x * 100).toFixed(0)).join(' / ')]);
  const tbl = table(['balancer', 'prefix-cache hit rate', 'p50 TTFT (ms)', 'p99 TTFT (ms)', 'load skew (max/mean)', 'errors', 'requests per replica (%)'], rows);
  const [, ch, ll, pa] = results as [RunResult, RunResult, RunResult, RunResult];
  const hitRatio = hitRate(pa) / hitRate(ch);
  const p99Ratio = percentile(pa.ttft, 99) / percentile(ll.ttft, 99);
  const checks = [
    [`hit rate ${hitRatio.toFixed(2)} x consistent-hash's (target >= ${S5_HIT_RATIO})`, hitRatio >= S5_HIT_RATIO],
    [`p99 TTFT ${p99Ratio.toFixed(2)} x least-load's (target <= ${S5_P99_SLACK})`, p99Ratio <= S5_P99_SLACK && pa.censored === 0],
    [`skew ${pa.skew.toFixed(2)} (target <= ${S5_SKEW})`, pa.skew <= S5_SKEW],
  ] as const;
  const isMet = checks.every(([, ok]) => ok);
  const verdict = `prefix-aware: ${checks.map(([t, ok]) => `${t} ${ok ? 'met' : 'NOT met'}`).join('; ')}`;
  const notes = [
    ...results.map((r) => `${r.balancer}: ${r.hits} of ${r.queries} blocks cached`),
    ...results.map((r) => cpuNote(r, layout)),
    ...results.flatMap(runNotes),
  ];
  process.stdout.write(`\n${tbl}\n\n${verdict}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n`);
  return { title: 'Scenario 5: multi-turn conversations', setup, table: tbl, verdict, isMet, notes };
}

// ---------------------------------------------------------------------------------------------
// Main

function machineNotes(layout: Layout, cli: CliEntry): string[] {
  const model = cpus()[0]?.model ?? 'unknown CPU';
  let mem = '';
  try {
    const kb = Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]);
    if (Number.isFinite(kb)) mem = `, ${(kb / 1024 / 1024).toFixed(0)} GiB RAM`;
  } catch {
    // not Linux
  }
  return [
    `${cpus().length} CPUs (${model})${mem}, Linux ${release()}, node ${process.version}, load average at start ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
    layout.note,
    `children: ${cli.label} (simulators and gateway are separate processes; the load generator runs in the benchmark process)`,
  ];
}

function writeDoc(sections: Section[], machine: string[], startedAt: Date, elapsedS: number): void {
  const out: string[] = [
    '# Balancer benchmark',
    '',
    `Generated by \`npm run bench:balance\` (bench/balance.ts) on ${startedAt.toISOString()} in ${elapsedS.toFixed(0)} s; rerun it to refresh this file.`,
    '',
    '## How to run',
    '',
    '```bash',
    'npm run bench:balance                      # all six scenarios, 20 s measured per balancer (about 17 minutes)',
    'BENCH_SECONDS=5 npm run bench:balance      # quick look (noisier)',
    'BENCH_SCENARIO=2 BENCH_PROMPTS=16 npm run bench:balance   # one scenario, another prompt count (prints only; this file is written when all ran)',
    "BENCH_CONTENTION_MS=20 BENCH_SCENARIO=1 npm run bench:balance   # with the simulator's prefill contention (see scenario 1)",
    'npx tsx bench/balance-model.ts             # the scenarios as a discrete-event model over the real balancer classes: seconds, no noise',
    '```',
    '',
    'Every balancer gets fresh simulator processes (`inference-gateway simulate`) and a fresh gateway process (`inference-gateway start`,',
    '`log.access_log: false`, `IGW_LOG_LEVEL=warn`; three of them with one config in scenario 3) with the simulators as targets of one',
    'model. The load generator is open-loop:',
    'Poisson arrivals from a seeded source, the same arrival times and request bodies for every balancer of a scenario, sent whether or',
    'not earlier requests finished. TTFT is the time from sending a request to the first SSE event that carries generated text (the',
    "opening role-only event does not count). Only requests sent in the measured window count; they get 5 s after the last arrival, then",
    'are cut off; one without a first token by then counts at its wait so far (a lower bound), and a percentile that such a value may',
    'affect is shown as ">= x". Throughput is streams completed inside the window per second. Shares and hit rates are deltas of the',
    "simulators' `/sim/stats` over the window.",
    '',
    '## Machine',
    '',
    ...machine.map((m) => `- ${m}`),
    `- measured window ${SECONDS} s per balancer after ${WARMUP_SECONDS} s of warm-up`,
  ];
  for (const s of sections) {
    out.push('', `## ${s.title}`, '', ...s.setup.map((x) => `- ${x}`), '', s.table, '', `**${s.verdict}**`, '', ...s.notes.map((n) => `- ${n}`));
  }
  out.push('');
  writeFileSync(DOC_PATH, out.join('\n'));
}

// Scenario 6: LoRA adapters (bench/balance-lora.ts, also `npm run bench:lora` on its own).
async function scenarioLora(cli: CliEntry, layout: Layout): Promise<Section> {
  process.stdout.write('\n## Scenario 6: LoRA adapters\n');
  const r = await runLoraScenario({ cli, layout, seconds: SECONDS, log: (line) => process.stdout.write(`${line}\n`) });
  const [table = '', ...rest] = r.markdown.split('\n\n');
  return { title: 'Scenario 6: LoRA adapters', setup: [r.setup], table, verdict: rest[0] ?? '', isMet: r.isTargetMet, notes: rest.slice(1) };
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const t = performance.now();
  const layout = pinLayout('the four simulators + load generator');
  const cli = cliEntry(ROOT);
  const machine = machineNotes(layout, cli);
  const dir = mkdtempSync(join(tmpdir(), 'igw-bench-balance-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  process.stdout.write(`# Balancer benchmark\n\n${machine.map((m) => `- ${m}`).join('\n')}\n- ${SECONDS} s measured per balancer after ${WARMUP_SECONDS} s of warm-up\n`);
  const sections: Section[] = [];
  try {
    if (SCENARIO === '1' || SCENARIO === 'all') sections.push(await scenarioSlowReplica(cli, layout, dir));
    if (SCENARIO === '2' || SCENARIO === 'all') sections.push(await scenarioSharedPrompts(cli, layout, dir));
    if (SCENARIO === '3' || SCENARIO === 'all') sections.push(await scenarioThreeGateways(cli, layout, dir));
    if (SCENARIO === '4' || SCENARIO === 'all') sections.push(await scenarioMixedPrompts(cli, layout, dir));
    if (SCENARIO === '5' || SCENARIO === 'all') sections.push(await scenarioMultiTurn(cli, layout, dir));
    if (SCENARIO === '6' || SCENARIO === 'all') sections.push(await scenarioLora(cli, layout));
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
  const elapsed = (performance.now() - t) / 1000;
  process.stdout.write(`\n${sections.map((s) => s.verdict).join('\n')}\n`);
  if (SCENARIO === 'all') {
    writeDoc(sections, machine, startedAt, elapsed);
    process.stdout.write(`\nwrote ${DOC_PATH}\n`);
  } else process.stdout.write(`\n(BENCH_SCENARIO=${SCENARIO}: ${DOC_PATH} not written)\n`);
}

runBench('bench:balance', main, stopAll);
