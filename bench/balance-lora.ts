/**
 * `npm run bench:lora` — does adapter-aware routing keep LoRA adapters where they are loaded?
 * Real processes: three `inference-gateway simulate` replicas of one base model, each serving the
 * same ADAPTERS LoRA adapters with MAX_LORAS of them loaded at once (`--max-loras`): a request
 * for an adapter that is not loaded loads it in place of the least recently used one, which adds
 * LOAD_MS to its time to first token (`--lora-load-ms`). The real gateway (`inference-gateway
 * start`) fronts them, and an open-loop load generator in this process (Poisson arrivals from a
 * seeded source, so every run gets the same arrival times and bodies) sends streaming chat
 * requests whose `model` is one of the adapters, drawn from a Zipf-like mix (adapter k with
 * weight 1 / k^ZIPF_S: the first gets about 41 %, the sixth about 7 %).
 *
 * Runs, each with fresh simulators and a fresh gateway: round-robin, least-request and least-load
 * (load_metrics every 100 ms) with the adapter named only in the body (X-Model names the model,
 * so the balancer alone decides), and adapter-aware routing (`adapters: auto`: the adapters are
 * learned from the replicas' GET /v1/models; a request goes to a replica whose
 * vllm:lora_requests_info lists its adapter, else one with a free slot, else the least loaded).
 * Reported per run: adapter loads per 1,000 requests (the simulators' loraLoads over their
 * requests, counted over the measured window only), p50/p99 time to first token (send to the
 * first SSE event with content) of the requests sent in the window, failures, and the busiest
 * replica's share of the requests. Target: adapter-aware routing loads adapters at least 3x less
 * often than round-robin.
 *
 * Note: the simulator lists every loaded adapter under running_lora_adapters; vLLM lists the
 * adapters of running and waiting requests, so between bursts it shows fewer than are loaded.
 *
 * Layout on two cores as bench/balance.ts: the gateway pinned to the first allowed CPU, the
 * simulators and this process to the second.
 *
 * Env: BENCH_SECONDS (measured seconds per run, default 20), BENCH_LORA_LOAD (arrivals as a share
 * of the replicas' nominal capacity, default 0.5), BENCH_LORA_POLICIES (which runs, comma-separated;
 * default all), BENCH_SEED, BENCH_ENTRY (tsx|dist).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { stringify } from 'yaml';
import { cliEntry, pinLayout, type CliEntry, type Layout } from './lib/layout.js';
import { Samples, percentile } from './lib/loadgen.js';
import { FAILED, OK, UNFINISHED, mulberry32, openLoop, poissonArrivals } from './lib/openloop.js';
import { Child, freePorts, stopAll, waitUntilReady, withChildOutput } from './lib/procs.js';
import { publishReport, runBench } from './lib/report.js';
import { positiveEnv } from './lib/env.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MODEL = 'bench-base';
const PATH = '/v1/chat/completions';
const REPLICAS = 3;
const ADAPTERS = ['sql', 'support', 'legal', 'code', 'medical', 'finance'];
const ZIPF_S = 1;
const MAX_LORAS = 2;
const LOAD_MS = 100;
const SLOTS = 4;
const TTFT_MS = 40;
const ITL_MS = 5;
const MAX_TOKENS = 16;
const GRACE_MS = 5000;
const TARGET_RATIO = 3;
/** CAPACITY is the replicas' nominal throughput with no adapter loads: every slot busy, one stream per ttft + (tokens - 1) x itl. */
const CAPACITY = (REPLICAS * SLOTS * 1000) / (TTFT_MS + (MAX_TOKENS - 1) * ITL_MS);

/** LoraPolicy is one compared routing setup. */
export type LoraPolicy = 'round-robin' | 'least-request' | 'least-load' | 'adapter-aware';

/** LoraRow is what one run measured. */
export interface LoraRow {
  policy: LoraPolicy;
  /** requests the simulators received in the measured window, and the adapter loads among them. */
  requests: number;
  loads: number;
  loadsPer1000: number;
  sent: number;
  ok: number;
  failed: number;
  unfinished: number;
  p50: number;
  p99: number;
  /** busiest is the largest share of the window's requests one replica received. */
  busiest: number;
  failures: string[];
}

/** LoraScenarioOptions set up a run of the scenario; every field has a default. */
export interface LoraScenarioOptions {
  cli?: CliEntry;
  layout?: Layout;
  /** seconds is the measured window per run (after a warm-up). */
  seconds?: number;
  /** load is the arrival rate as a share of CAPACITY. */
  load?: number;
  seed?: number;
  policies?: readonly LoraPolicy[];
  /** log receives progress lines (default: stderr). */
  log?: (line: string) => void;
}

/** LoraScenarioResult is the scenario's rows, its setup in words, a markdown section and the verdict. */
export interface LoraScenarioResult {
  rows: LoraRow[];
  setup: string;
  markdown: string;
  /** ratio is round-robin's loads per 1,000 requests over adapter-aware routing's (Infinity when the latter loaded none). */
  ratio: number;
  isTargetMet: boolean;
}

/** zipfPicker returns a seeded draw of adapter indexes, index k with weight 1 / (k + 1)^s. */
function zipfPicker(n: number, s: number, random: () => number): () => number {
  const weights = Array.from({ length: n }, (_, k) => 1 / (k + 1) ** s);
  const total = weights.reduce((a, b) => a + b, 0);
  const cumulative: number[] = [];
  let sum = 0;
  for (const w of weights) cumulative.push((sum += w / total));
  return () => {
    const u = random();
    const k = cumulative.findIndex((c) => u < c);
    return k === -1 ? n - 1 : k;
  };
}

/** adapterShares are the mix's expected shares, in ADAPTERS order. */
function adapterShares(): number[] {
  const weights = ADAPTERS.map((_, k) => 1 / (k + 1) ** ZIPF_S);
  const total = weights.reduce((a, b) => a + b, 0);
  return weights.map((w) => w / total);
}

interface SimCounters {
  requests: number;
  loraLoads: number;
}

async function simCounters(port: number): Promise<SimCounters> {
  const res = await request(`http://127.0.0.1:${port}/sim/stats`, { method: 'GET', headersTimeout: 5000, bodyTimeout: 5000 });
  const s = (await res.body.json()) as SimCounters;
  return { requests: s.requests, loraLoads: s.loraLoads };
}

function modelFields(policy: LoraPolicy): Record<string, unknown> {
  const loadMetrics = { load_metrics: { interval: '100ms' } };
  if (policy === 'adapter-aware') return { balancer: 'round-robin', adapters: 'auto', health_check: { interval: '500ms' }, ...loadMetrics };
  if (policy === 'least-load') return { balancer: 'least-load', ...loadMetrics };
  return { balancer: policy };
}

/** waitForAdapters waits until the gateway has learned every adapter (adapters: auto reads /v1/models on its health-check interval). */
async function waitForAdapters(adminPort: number): Promise<void> {
  const deadline = performance.now() + 15_000;
  while (performance.now() < deadline) {
    const res = await request(`http://127.0.0.1:${adminPort}/models`, { method: 'GET' });
    const body = (await res.body.json()) as { data: { adapters?: string[] }[] };
    if (body.data[0]?.adapters?.length === ADAPTERS.length) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the gateway did not learn the adapters within 15 s');
}

const sleepUntil = (t: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, t - performance.now())));

async function runOne(policy: LoraPolicy, arrivals: Float64Array, bodies: readonly Buffer[], windowMs: readonly [number, number], cli: CliEntry, layout: Layout, dir: string): Promise<LoraRow> {
  const ports = await freePorts(REPLICAS + 3);
  const simPorts = ports.slice(0, REPLICAS);
  const [proxyPort, statusPort, adminPort] = ports.slice(REPLICAS) as [number, number, number];
  const children: Child[] = [];
  try {
    const urls = simPorts.map((p) => `http://127.0.0.1:${p}`);
    const sims = simPorts.map(
      (port, i) =>
        new Child(
          `simulator ${i + 1}`,
          process.execPath,
          [
            ...cli.args,
            'simulate',
            '--port', String(port),
            '--model', MODEL,
            '--id', `replica-${i + 1}`,
            '--max-concurrency', String(SLOTS),
            '--ttft-ms', String(TTFT_MS),
            '--itl-ms', String(ITL_MS),
            '--lora-modules', ADAPTERS.join(','),
            '--max-loras', String(MAX_LORAS),
            '--lora-load-ms', String(LOAD_MS),
          ],
          { cpu: layout.loadCpu, cwd: ROOT },
        ),
    );
    children.push(...sims);
    await Promise.all(sims.map((s, i) => waitUntilReady(s, `${urls[i]}/health`)));
    const configPath = join(dir, `gateway-${policy}.yaml`);
    writeFileSync(
      configPath,
      stringify({
        proxy: { listen: `127.0.0.1:${proxyPort}` },
        status: { listen: `127.0.0.1:${statusPort}` },
        admin: { listen: `127.0.0.1:${adminPort}` },
        log: { access_log: false },
        models: [{ name: MODEL, ...modelFields(policy), targets: urls.map((url) => ({ url })) }],
      }),
    );
    const gateway = new Child('gateway', process.execPath, [...cli.args, 'start', '--config', configPath], { cpu: layout.gatewayCpu, cwd: ROOT, env: { ...process.env, IGW_LOG_LEVEL: 'warn' } });
    children.push(gateway);
    await waitUntilReady(gateway, `http://127.0.0.1:${statusPort}/status/ready`);
    if (policy === 'adapter-aware') await waitForAdapters(adminPort);

    const origin = `http://127.0.0.1:${proxyPort}`;
    const t0 = performance.now() + 20;
    const loop = openLoop({ origin, path: PATH, headers: { 'content-type': 'application/json', 'x-model': MODEL }, arrivals, bodies, t0, graceMs: GRACE_MS });
    await sleepUntil(t0 + windowMs[0]);
    const before = await Promise.all(simPorts.map(simCounters));
    await sleepUntil(t0 + windowMs[1]);
    const after = await Promise.all(simPorts.map(simCounters));
    const r = await loop;
    for (const c of children) if (c.isExited) throw new Error(`child died during the run: ${c.describe()}`);

    const perReplica = after.map((a, i) => a.requests - before[i]!.requests);
    const requests = perReplica.reduce((a, b) => a + b, 0);
    const loads = after.reduce((s, a, i) => s + a.loraLoads - before[i]!.loraLoads, 0);
    const ttft = new Samples();
    let sent = 0;
    let ok = 0;
    let failed = 0;
    let unfinished = 0;
    for (let i = 0; i < arrivals.length; i++) {
      if (arrivals[i]! < windowMs[0] || arrivals[i]! >= windowMs[1]) continue;
      sent++;
      const outcome = r.outcome[i]!;
      if (outcome === FAILED) {
        failed++;
        continue;
      }
      if (outcome === OK) ok++;
      else if (outcome === UNFINISHED) unfinished++;
      // A request without a first token counts with its waiting time until the cut-off (a lower bound).
      ttft.push((r.firstAt[i]! > 0 ? r.firstAt[i]! : r.cutAt) - r.sentAt[i]!);
    }
    const sorted = ttft.sorted();
    return {
      policy,
      requests,
      loads,
      loadsPer1000: requests > 0 ? (loads / requests) * 1000 : Number.NaN,
      sent,
      ok,
      failed,
      unfinished,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      busiest: requests > 0 ? Math.max(...perReplica) / requests : Number.NaN,
      failures: r.failures.reasons,
    };
  } catch (err) {
    throw withChildOutput(err, children);
  } finally {
    await Promise.all(children.map((c) => c.stop()));
  }
}

const fmt = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');

const POLICIES: readonly LoraPolicy[] = ['round-robin', 'least-request', 'least-load', 'adapter-aware'];

/** policiesOfEnv reads BENCH_LORA_POLICIES (comma-separated), else every policy. */
function policiesOfEnv(): readonly LoraPolicy[] {
  const v = process.env.BENCH_LORA_POLICIES;
  if (v === undefined || v === '') return POLICIES;
  const list = v.split(',');
  for (const p of list) if (!POLICIES.includes(p as LoraPolicy)) throw new Error(`BENCH_LORA_POLICIES: expected a list of ${POLICIES.join(', ')}, got "${p}"`);
  return list as LoraPolicy[];
}

/** runLoraScenario runs every policy on the same arrivals and bodies and reports them side by side. */
export async function runLoraScenario(opts: LoraScenarioOptions = {}): Promise<LoraScenarioResult> {
  const cli = opts.cli ?? cliEntry(ROOT);
  const layout = opts.layout ?? pinLayout();
  const seconds = opts.seconds ?? positiveEnv('BENCH_SECONDS', 20);
  const load = opts.load ?? positiveEnv('BENCH_LORA_LOAD', 0.5);
  const seed = opts.seed ?? positiveEnv('BENCH_SEED', 20240601, true);
  const policies = opts.policies ?? policiesOfEnv();
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const warmupSeconds = Math.min(3, Math.max(1, seconds / 4));
  const rate = CAPACITY * load;
  const random = mulberry32(seed);
  const arrivals = poissonArrivals(rate, warmupSeconds + seconds, random);
  const pick = zipfPicker(ADAPTERS.length, ZIPF_S, random);
  const bodies = Array.from(arrivals, (_, i) =>
    Buffer.from(JSON.stringify({ model: ADAPTERS[pick()], messages: [{ role: 'user', content: `question ${i}` }], max_tokens: MAX_TOKENS, stream: true })),
  );
  const windowMs = [warmupSeconds * 1000, (warmupSeconds + seconds) * 1000] as const;
  const shares = adapterShares()
    .map((s, k) => `${ADAPTERS[k]} ${(s * 100).toFixed(0)} %`)
    .join(', ');
  const setup =
    `${REPLICAS} simulated replicas, ${SLOTS} slots each, ttft ${TTFT_MS} ms, itl ${ITL_MS} ms, ${MAX_TOKENS}-token streams; ` +
    `${ADAPTERS.length} LoRA adapters, --max-loras ${MAX_LORAS}, a load adds ${LOAD_MS} ms to ttft. ` +
    `Mix 1/k^${ZIPF_S}: ${shares}. Poisson arrivals at ${fmt(rate, 1)} req/s (${fmt(load * 100)} % of the ${fmt(CAPACITY, 1)} req/s the replicas serve without loads); ` +
    `${seconds} s measured after ${warmupSeconds} s of warm-up; ${cli.label}; ${layout.note}.`;
  log(setup);
  const dir = mkdtempSync(join(tmpdir(), 'igw-bench-lora-'));
  const rows: LoraRow[] = [];
  try {
    for (const policy of policies) {
      log(`running ${policy} ...`);
      const row = await runOne(policy, arrivals, bodies, windowMs, cli, layout, dir);
      log(`  ${policy}: ${fmt(row.loadsPer1000, 1)} loads / 1,000 requests, p50 ${fmt(row.p50)} ms, p99 ${fmt(row.p99)} ms, ${row.failed} failed`);
      rows.push(row);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rr = rows.find((r) => r.policy === 'round-robin');
  const aware = rows.find((r) => r.policy === 'adapter-aware');
  const ratio = rr !== undefined && aware !== undefined ? (aware.loadsPer1000 === 0 ? Infinity : rr.loadsPer1000 / aware.loadsPer1000) : Number.NaN;
  const isTargetMet = ratio >= TARGET_RATIO && aware?.failed === 0;
  const table = [
    '| routing | adapter loads / 1,000 requests | p50 TTFT ms | p99 TTFT ms | requests ok | busiest replica |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.policy} | ${fmt(r.loadsPer1000, 1)} (${r.loads} of ${r.requests}) | ${fmt(r.p50)} | ${fmt(r.p99)} | ${r.ok} of ${r.sent}${r.failed > 0 ? `, ${r.failed} failed` : ''} | ${fmt(r.busiest * 100)} % |`),
  ].join('\n');
  let verdict = 'Round-robin and adapter-aware routing were not both run: no ratio.';
  if (ratio === Infinity) verdict = `Adapter-aware routing loaded no adapter in the measured window, round-robin ${fmt(rr!.loadsPer1000, 1)} per 1,000 requests (target: at least ${TARGET_RATIO}x fewer): ${isTargetMet ? 'met' : 'MISSED'}.`;
  else if (Number.isFinite(ratio)) verdict = `Round-robin loads adapters ${fmt(ratio, 1)}x as often as adapter-aware routing (target >= ${TARGET_RATIO}x): ${isTargetMet ? 'met' : 'MISSED'}.`;
  const failures = rows.filter((r) => r.failures.length > 0).map((r) => `${r.policy} failures: ${r.failures.slice(0, 3).join('; ')}`);
  const markdown = [table, '', verdict, ...(failures.length > 0 ? ['', ...failures] : [])].join('\n');
  return { rows, setup, markdown, ratio, isTargetMet };
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  runBench(
    'bench:lora',
    async () => {
      const result = await runLoraScenario();
      const date = new Date().toISOString().slice(0, 10);
      publishReport(`# LoRA adapters: loads and time to first token by routing\n\n${result.setup}\n\n${result.markdown}`, `lora-${date}.md`);
      if (!result.isTargetMet) process.exitCode = 1;
    },
    stopAll,
  );
}
