/**
 * `npm run bench:limits` — what rate, token and concurrency limit checks cost the gateway.
 *
 * One run starts a zero-delay simulator (`inference-gateway simulate`, as bench/compare-direct.ts),
 * a redis-server on a free loopback port (`--save '' --appendonly no`) and three gateway children
 * (`inference-gateway start --config <tmp yaml>`, IGW_LOG_LEVEL=warn, `log.access_log: false` in
 * every config so logging costs the same everywhere), one per configuration:
 *   1. none:  one model, one API key, no `limits`;
 *   2. local: limits that never trigger but are all checked, request and token rules at three
 *             scopes (gateway `requests.per_second`, model `requests.per_minute` + `tokens.per_minute`,
 *             key `requests.per_hour`), counted in the gateway process (tokens: reserve + settle);
 *   3. redis: the same limits with `limits_store: { policy: redis }` on the redis-server above.
 * Each gateway gets a warm-up (WARMUP_SECONDS of the same load), then non-streaming chat
 * completions (max_tokens 16) from wrk, 50 connections, BENCH_SECONDS (default 10) per
 * configuration (wrk, not a Node client: a Node client paid for parsing the rate-limit headers on
 * the load core, which then bounded throughput and showed up as "limit cost"). The
 * measured time is split into BENCH_ROUNDS slices (default 3, or 1 when BENCH_SECONDS < 6) and the
 * configurations take turns in a rotating order (none/local/redis, local/redis/none, ...), so
 * slow drift of the machine does not land on one configuration. The idle gateways wait meanwhile
 * (nothing runs in them but timers).
 *
 * Reported per configuration: requests/s, latency p50/p99, % of the no-limit throughput, the
 * gateway's CPU time per request (from /proc/<pid>/stat over the measured slices) and the req/s of
 * each slice (their spread is the noise to judge a few-% difference against; a slice during which
 * other processes or hypervisor steal took >= 5 % of one of our CPUs is marked '*'), the gateway
 * CPU's interrupt / idle share (idle near 0: the gateway core is saturated). Checks: no request
 * failed, no 429 (igw_requests_total by status, igw_rate_limited_total), no store error
 * (igw_ratelimit_store_errors_total: the redis gateway would otherwise count locally and look
 * cheap), limited responses carry X-RateLimit-* headers, and the redis gateway really used Redis
 * (EVALSHA/EVAL calls in INFO commandstats, `igw:rl:*` keys present, and the key's request
 * counters in Redis add up to the requests it answered).
 * Last lines: `local costs X % (target < 5 %)`, `redis costs Y % (target < 20 %)`, X and Y being
 * the throughput lost against the no-limit gateway.
 *
 * Layout on two cores (as compare-direct): the gateways pinned to the first allowed CPU; the
 * simulator, redis-server and wrk to the second (Redis stands for a separate
 * server, so its CPU is not charged to the gateway's core; it is reported).
 *
 * Env: BENCH_SECONDS, BENCH_ROUNDS, BENCH_ENTRY (tsx|dist: default tsx, i.e. `node --import tsx
 * src/main.ts`), BENCH_CPU_PROF=1 (run the gateways under `node --cpu-prof` and print where their
 * CPU time went during the measured slices, per configuration: code areas and top functions by
 * self time, relative to the no-limit gateway; throughput is then lower than without profiling).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { stringify } from 'yaml';
import { monotonicMicros, summarizeProfile, type ProfileSummary, type Window } from './lib/cpuprofile.js';
import { cliEntry, pinLayout, type CliEntry } from './lib/layout.js';
import { Failures, makeEndpoint, type Endpoint } from './lib/loadgen.js';
import { runWrk, writeWrkScript, type WrkResult } from './lib/wrk.js';
import { Child, cpuShare, freePorts, readCpuTimes, stopAll, waitUntilReady, withChildOutput, type CpuTimes } from './lib/procs.js';
import { runBench } from './lib/report.js';
import { positiveEnv } from './lib/env.js';
import { metricSum } from './lib/metrics-text.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MODEL = 'bench-model';
const API_KEY = 'bench-key';
const PATH = '/v1/chat/completions';
const CONCURRENCY = 50;
const WARMUP_SECONDS = 3;
const TARGET_LOCAL_PCT = 5;
const TARGET_REDIS_PCT = 20;
const SATURATED_PCT = 90;
/** DISTURBED_SLICE_PCT: a slice where other processes (or steal) took this much of one of our CPUs is marked with '*'. */
const DISTURBED_SLICE_PCT = 5;


const SECONDS = positiveEnv('BENCH_SECONDS', 10);
const ROUNDS = positiveEnv('BENCH_ROUNDS', SECONDS >= 6 ? 3 : 1, true);
const IS_PROFILING = process.env.BENCH_CPU_PROF === '1';

type Kind = 'none' | 'local' | 'redis';
const KINDS: readonly Kind[] = ['none', 'local', 'redis'];
const TITLE: Record<Kind, string> = { none: 'no limits', local: 'local limits', redis: 'redis limits' };

/** cli is `node --import tsx src/main.ts` unless BENCH_ENTRY asks otherwise (dist follows compare-direct's rules). */
function cli(): CliEntry {
  const forced = process.env.BENCH_ENTRY;
  if (forced !== undefined && forced !== '') return cliEntry(ROOT);
  return { args: ['--import', 'tsx', join(ROOT, 'src', 'main.ts')], label: 'node --import tsx src/main.ts' };
}

// ---------------------------------------------------------------------------------------------
// Configurations

interface Ports {
  proxy: number;
  status: number;
  admin: number;
}

/** gatewayConfig is the YAML of one configuration: identical but for the limits. */
function gatewayConfig(kind: Kind, ports: Ports, simPort: number, redisUrl: string): string {
  const model: Record<string, unknown> = { name: MODEL, api_keys: [API_KEY], targets: [{ url: `http://127.0.0.1:${simPort}` }] };
  const cfg: Record<string, unknown> = {
    proxy: { listen: `127.0.0.1:${ports.proxy}` },
    status: { listen: `127.0.0.1:${ports.status}` },
    admin: { listen: `127.0.0.1:${ports.admin}` },
    log: { access_log: false },
    shutdown_grace_s: 1,
  };
  if (kind !== 'none') {
    // Limits that are all checked and never reached: three scopes, request and token rules.
    cfg.limits_store = kind === 'redis' ? { policy: 'redis', redis_url: redisUrl } : { policy: 'local' };
    cfg.limits = { requests: { per_second: 1_000_000 } };
    model.limits = { requests: { per_minute: 100_000_000 }, tokens: { per_minute: 1_000_000_000 } };
    // The key's rule is hourly so its Redis counters outlive any run (the check below sums them).
    model.api_keys = [{ key: API_KEY, name: 'bench', limits: { requests: { per_hour: 100_000_000 } } }];
  }
  cfg.models = [model];
  return stringify(cfg);
}

// ---------------------------------------------------------------------------------------------
// Redis

/** redisCli runs one redis-cli command against the benchmark's redis-server. */
function redisCli(port: number, ...args: string[]): string {
  const r = spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 });
  if (r.error !== undefined) throw new Error(`redis-cli failed: ${r.error.message}`);
  return r.stdout.trim();
}

async function waitRedis(child: Child, port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.isExited) throw new Error(child.describe());
    if (redisCli(port, 'ping') === 'PONG') return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`redis-server did not answer PING; ${child.describe()}`);
}

/** commandCalls reads `calls` per command from INFO commandstats. */
function commandCalls(port: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of redisCli(port, 'info', 'commandstats').split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m !== null) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Gateway metrics

async function fetchText(url: string): Promise<string> {
  const res = await request(url);
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Measuring

/** Run is one configuration's gateway and what was measured on it. */
interface Run {
  kind: Kind;
  gateway: Child;
  ports: Ports;
  ep: Endpoint;
  /** per measured slice: ok count and seconds */
  /** slices: per measured slice, ok count, seconds and the largest share (%) of one of our CPUs other processes used. */
  slices: Array<{ ok: number; seconds: number; othersPct: number }>;
  /** p50s / p99s are wrk's latency percentiles per measured slice, in µs. */
  p50s: number[];
  p99s: number[];
  failures: Failures;
  /** warmup is failures seen during the warm-up (counted in checks, not in figures). */
  warmupFailures: Failures;
  /** cpu is CPU seconds used during the measured slices. */
  cpu: { gateway: number; loadgen: number; sim: number; redis: number };
  /** windows are the measured slices on the monotonic clock, to cut the CPU profile to them. */
  windows: Window[];
  /** gwCore is how the gateway's CPU spent the measured slices (seconds idle / in interrupts / total), from /proc/stat. */
  gwCore: { idle: number; interrupts: number; total: number };
  headers: Record<string, string | string[] | undefined>;
  profile: ProfileSummary | null;
}


async function sanityCheck(run: Run, body: Buffer): Promise<void> {
  const res = await run.ep.pool.request({ path: run.ep.path, method: 'POST', headers: run.ep.headers, body });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${run.kind}: sanity request answered ${res.statusCode}: ${text.slice(0, 300)}`);
  const parsed = JSON.parse(text) as { choices?: Array<{ message?: { content?: string } }>; usage?: { prompt_tokens?: number } };
  if (typeof parsed.choices?.[0]?.message?.content !== 'string') throw new Error(`${run.kind}: unexpected completion body: ${text.slice(0, 300)}`);
  if (typeof parsed.usage?.prompt_tokens !== 'number') throw new Error(`${run.kind}: completion without usage (token settlement would not run): ${text.slice(0, 300)}`);
  const hasLimitHeaders = res.headers['x-ratelimit-remaining-minute'] !== undefined && res.headers['ratelimit-limit'] !== undefined;
  if (run.kind === 'none' && hasLimitHeaders) throw new Error('none: the no-limit gateway sent RateLimit headers');
  if (run.kind !== 'none' && !hasLimitHeaders) throw new Error(`${run.kind}: no RateLimit-* / X-RateLimit-*-Minute headers: are the limits applied? headers: ${JSON.stringify(res.headers)}`);
  run.headers = res.headers;
}

// ---------------------------------------------------------------------------------------------
// Output

const f1 = (v: number): string => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');
const f3 = (v: number): string => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');

function printTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): void {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('   ');
  process.stdout.write(`${line(header)}\n${'-'.repeat(widths.reduce((a, b) => a + b + 3, -3))}\n`);
  for (const r of rows) process.stdout.write(`${line(r)}\n`);
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s.length === 0 ? Number.NaN : s[Math.floor(s.length / 2)]!;
}

const us = (n: number): string => `${(n / 1000).toFixed(1)} ms`;

function printProfiles(runs: readonly Run[], requestsOf: (r: Run) => number): void {
  const base = runs.find((r) => r.kind === 'none');
  for (const run of runs) {
    const p = run.profile;
    if (p === null) continue;
    const n = requestsOf(run);
    const perReq = (v: number): string => (n > 0 ? `${(v / n).toFixed(2)} us/req` : 'n/a');
    process.stdout.write(
      `\n--- CPU profile, ${TITLE[run.kind]}: ${us(p.sampledUs)} sampled (${perReq(p.sampledUs)}), idle ${us(p.idleUs)}` +
        `${p.isWindowed ? ', measured slices only' : ', WHOLE PROFILE (windows did not match)'}\n`,
    );
    const baseArea = new Map(base?.profile?.byArea ?? []);
    const baseN = base === undefined ? 0 : requestsOf(base);
    process.stdout.write('code area                                        self      us/req   vs no-limit us/req\n');
    for (const [area, v] of p.byArea.slice(0, 18)) {
      const b = baseArea.get(area);
      const delta = base !== undefined && run !== base && baseN > 0 && n > 0 ? `${v / n - (b ?? 0) / baseN >= 0 ? '+' : ''}${(v / n - (b ?? 0) / baseN).toFixed(2)}` : '';
      process.stdout.write(`  ${area.slice(0, 45).padEnd(45)} ${us(v).padStart(10)} ${(n > 0 ? (v / n).toFixed(2) : 'n/a').padStart(9)}   ${delta.padStart(8)}\n`);
    }
    process.stdout.write('top functions by self time:\n');
    for (const [label, v] of p.bySelf.slice(0, 25)) process.stdout.write(`  ${((v / p.sampledUs) * 100).toFixed(1).padStart(5)} %  ${perReq(v).padStart(14)}  ${label}\n`);
    if (run.kind !== 'none') {
      process.stdout.write('limit-related functions, inclusive (anywhere on the stack):\n');
      const interesting = /admit|ratelimit|limit|settle|take|toHeaders|estimateTokens|parsedBody|rewriteBody|requestUsage|ioredis|Redis|igwTake|sendCommand|evalsha/i;
      for (const [label, v] of p.byInclusive.filter(([l]) => interesting.test(l)).slice(0, 25)) {
        process.stdout.write(`  ${((v / p.sampledUs) * 100).toFixed(1).padStart(5)} %  ${perReq(v).padStart(14)}  ${label}\n`);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const layout = pinLayout('simulator + redis-server + load generator');
  const entry = cli();
  const dir = mkdtempSync(join(tmpdir(), 'igw-bench-limits-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const runs: Run[] = [];
  const started: Child[] = [];
  const track = (c: Child): Child => {
    started.push(c);
    return c;
  };
  try {
    const allPorts = await freePorts(2 + 3 * KINDS.length);
    const simPort = allPorts[0]!;
    const redisPort = allPorts[1]!;
    const gwPorts = allPorts.slice(2);
    process.stdout.write(
      `Limit checks benchmark: ${CONCURRENCY} connections, ${SECONDS} s per configuration in ${ROUNDS} rotating slice(s) ` +
        `(+${WARMUP_SECONDS} s warm-up each), node ${process.version}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n` +
        `${layout.note}\nchildren: ${entry.label}${IS_PROFILING ? ' (gateways under --cpu-prof: PROFILING, throughput is lower)' : ''}\n`,
    );

    const sim = track(new Child('simulator', process.execPath, [...entry.args, 'simulate', '--port', String(simPort), '--model', MODEL], { cpu: layout.loadCpu, cwd: ROOT }));
    const redis = track(
      new Child('redis-server', 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
        cpu: layout.loadCpu,
        cwd: dir,
      }),
    );
    await waitUntilReady(sim, `http://127.0.0.1:${simPort}/health`);
    await waitRedis(redis, redisPort);
    const redisVersion = /redis_version:(\S+)/.exec(redisCli(redisPort, 'info', 'server'))?.[1] ?? '?';
    const redisUrl = `redis://127.0.0.1:${redisPort}`;

    for (const [i, kind] of KINDS.entries()) {
      const ports: Ports = { proxy: gwPorts[3 * i]!, status: gwPorts[3 * i + 1]!, admin: gwPorts[3 * i + 2]! };
      const configPath = join(dir, `gateway-${kind}.yaml`);
      writeFileSync(configPath, gatewayConfig(kind, ports, simPort, redisUrl));
      const profArgs = IS_PROFILING ? ['--cpu-prof', '--cpu-prof-dir', join(dir, `prof-${kind}`)] : [];
      const gateway = track(
        new Child(`gateway (${TITLE[kind]})`, process.execPath, [...profArgs, ...entry.args, 'start', '--config', configPath], {
          cpu: layout.gatewayCpu,
          cwd: ROOT,
          env: { ...process.env, IGW_LOG_LEVEL: 'warn' },
          stdout: 'ignore',
        }),
      );
      const ep = makeEndpoint(kind, `http://127.0.0.1:${ports.proxy}`, PATH, { 'content-type': 'application/json', 'x-model': MODEL, apikey: API_KEY }, CONCURRENCY);
      runs.push({
        kind,
        gateway,
        ports,
        ep,
        slices: [],
        p50s: [],
        p99s: [],
        failures: new Failures(),
        warmupFailures: new Failures(),
        cpu: { gateway: 0, loadgen: 0, sim: 0, redis: 0 },
        windows: [],
        gwCore: { idle: 0, interrupts: 0, total: 0 },
        headers: {},
        profile: null,
      });
    }
    // Started one after another above, so they compile in parallel; wait for all.
    for (const r of runs) await waitUntilReady(r.gateway, `http://127.0.0.1:${r.ports.status}/status/ready`, 60_000);
    process.stdout.write(`redis-server ${redisVersion} on port ${redisPort}\n`);

    const body = Buffer.from(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Say hello to the benchmark.' }], max_tokens: 16 }));
    for (const r of runs) await sanityCheck(r, body);

    const assertAlive = (): void => {
      for (const c of started) if (c.isExited) throw new Error(`child died during the benchmark: ${c.describe()}`);
    };
    // The load is wrk (C, a fraction of a Node client's CPU per request), so the load core has
    // room to spare and req/s measures the gateway rather than the load generator.
    const script = join(dir, 'load.lua');
    writeWrkScript(script, { path: PATH, headers: { 'content-type': 'application/json', 'x-model': MODEL, apikey: API_KEY }, body: body.toString() });
    const load = (r: Run, seconds: number): Promise<WrkResult> => runWrk({ url: `http://127.0.0.1:${r.ports.proxy}`, script, connections: CONCURRENCY, seconds, cpu: layout.loadCpu });
    const countFailures = (into: Failures, w: WrkResult): void => {
      if (w.errorTotal === 0) return;
      for (let i = 0; i < w.errorTotal; i++) into.add(`wrk errors ${JSON.stringify(w.errors)}`);
    };
    for (const r of runs) {
      process.stdout.write(`warm-up: ${TITLE[r.kind]} ...\n`);
      countFailures(r.warmupFailures, await load(r, WARMUP_SECONDS));
      assertAlive();
    }

    // Interference check: CPU time on our CPUs that none of our processes used.
    const others = new Map<number, { used: number; ours: number; total: number; steal: number }>();
    /** addCores accumulates interference and returns the largest share (%) of one CPU other processes used in this slice. */
    const addCores = (c0: Map<number, CpuTimes>, c1: Map<number, CpuTimes>, wall: number, oursByCpu: Map<number, number>): number => {
      let worst = 0;
      for (const [cpu, ours] of oursByCpu) {
        const s = cpuShare(c0, c1, cpu);
        if (s === null) continue;
        worst = Math.max(worst, s.process - (ours / wall) * 100, s.steal);
        const o = others.get(cpu) ?? { used: 0, ours: 0, total: 0, steal: 0 };
        o.used += (s.process / 100) * wall;
        o.ours += ours;
        o.total += wall;
        o.steal += (s.steal / 100) * wall;
        others.set(cpu, o);
      }
      return worst;
    };

    const slice = SECONDS / ROUNDS;
    for (let round = 0; round < ROUNDS; round++) {
      const order = runs.map((_, i) => runs[(i + round) % runs.length]!);
      for (const r of order) {
        process.stdout.write(`round ${round + 1}/${ROUNDS}: ${TITLE[r.kind]} (${slice.toFixed(1)} s) ...\n`);
        const cpu0 = process.cpuUsage();
        const gw0 = r.gateway.cpuSeconds();
        const sim0 = sim.cpuSeconds();
        const redis0 = redis.cpuSeconds();
        const cores0 = readCpuTimes();
        const m0 = monotonicMicros();
        const t0 = performance.now();
        const res = await load(r, slice);
        const wall = (performance.now() - t0) / 1000;
        r.windows.push([m0, monotonicMicros()]);
        const cores1 = readCpuTimes();
        const cpu = process.cpuUsage(cpu0);
        const d = {
          gateway: r.gateway.cpuSeconds() - gw0,
          loadgen: res.cpuSeconds + (cpu.user + cpu.system) / 1e6,
          sim: sim.cpuSeconds() - sim0,
          redis: redis.cpuSeconds() - redis0,
        };
        r.cpu.gateway += d.gateway;
        r.cpu.loadgen += d.loadgen;
        r.cpu.sim += d.sim;
        r.cpu.redis += d.redis;
        let othersPct = 0;
        if (layout.gatewayCpu !== null && layout.loadCpu !== null) {
          othersPct = addCores(cores0, cores1, wall, new Map([[layout.gatewayCpu, d.gateway], [layout.loadCpu, d.loadgen + d.sim + d.redis]]));
          const g = cpuShare(cores0, cores1, layout.gatewayCpu);
          if (g !== null) {
            r.gwCore.idle += (g.idle / 100) * wall;
            r.gwCore.interrupts += (g.interrupts / 100) * wall;
            r.gwCore.total += wall;
          }
        }
        r.slices.push({ ok: res.requests - res.errors.status, seconds: res.seconds, othersPct });
        r.p50s.push(res.p50Us);
        r.p99s.push(res.p99Us);
        countFailures(r.failures, res);
        assertAlive();
      }
    }

    // ---- checks: no 429, no store errors, Redis really used
    const checks: string[] = [];
    const problems: string[] = [];
    const metricsText = new Map<Kind, string>();
    for (const r of runs) metricsText.set(r.kind, await fetchText(`http://127.0.0.1:${r.ports.status}/metrics`));
    const answered = (r: Run): number => metricSum(metricsText.get(r.kind)!, 'igw_requests_total', `model="${MODEL}"`);
    for (const r of runs) {
      const text = metricsText.get(r.kind)!;
      const status429 = metricSum(text, 'igw_requests_total', 'status="429"');
      const limited = metricSum(text, 'igw_rate_limited_total');
      const storeErrors = metricSum(text, 'igw_ratelimit_store_errors_total');
      // 499 (the client left first): wrk closes its connections when a run ends, with up to
      // CONCURRENCY requests in flight, once per warm-up and slice.
      const left = metricSum(text, 'igw_requests_total', 'status="499"');
      const non200 = answered(r) - metricSum(text, 'igw_requests_total', 'status="200"') - Math.min(left, CONCURRENCY * (ROUNDS + 1));
      const failed = r.failures.count + r.warmupFailures.count;
      const line = `${TITLE[r.kind]}: ${answered(r)} requests answered, ${status429} x 429, ${limited} refused by a limit, ${storeErrors} store errors, ${non200} non-200 (besides ${left} x 499 from wrk's last requests), load generator saw ${failed} failures`;
      if (status429 > 0 || limited > 0 || storeErrors > 0 || non200 > 0 || failed > 0) {
        problems.push(`${line}${failed > 0 ? ` (${[...r.failures.reasons, ...r.warmupFailures.reasons].join('; ')})` : ''}`);
      } else checks.push(line);
      if (r.kind !== 'none') {
        const h = r.headers;
        checks.push(`${TITLE[r.kind]}: sample response headers ratelimit-limit=${String(h['ratelimit-limit'])} ratelimit-remaining=${String(h['ratelimit-remaining'])} x-ratelimit-remaining-second=${String(h['x-ratelimit-remaining-second'])} x-ratelimit-remaining-minute=${String(h['x-ratelimit-remaining-minute'])}`);
      }
    }
    const redisRun = runs.find((r) => r.kind === 'redis')!;
    const calls = commandCalls(redisPort);
    const scripts = (calls.get('evalsha') ?? 0) + (calls.get('eval') ?? 0);
    const keys = redisCli(redisPort, '--scan', '--pattern', 'igw:rl:*').split('\n').filter((k) => k !== '');
    // The store sends the takes of one event-loop turn as one script call, so calls <= requests,
    // and writes each distinct counter once per call. Proof that every request was counted in
    // Redis (not locally after a store error): the key's request counters (hour windows, kept an
    // hour and 5 s after their last write) add up to the requests answered.
    const keyCounters = keys.filter((k) => k.startsWith('igw:rl:key:bench:requests:hour:'));
    const counted = keyCounters.length === 0 ? 0 : redisCli(redisPort, 'mget', ...keyCounters).split('\n').reduce((sum, v) => sum + Number(v), 0);
    const redisLine =
      `redis used: ${scripts} EVALSHA/EVAL (batched take) calls for ${answered(redisRun)} requests ` +
      `(${(answered(redisRun) / Math.max(1, scripts)).toFixed(1)} takes per call), ${calls.get('incrby') ?? 0} INCRBY, ` +
      `key request counters in Redis add up to ${counted}; ${keys.length} igw:rl:* keys, e.g. ${keys.slice(0, 3).join(', ')}`;
    if (keys.length === 0 || scripts === 0 || counted !== answered(redisRun)) problems.push(`${redisLine} (expected every request counted in Redis)`);
    else checks.push(redisLine);

    // ---- profiles (stop the gateways first: --cpu-prof writes the profile on exit)
    if (IS_PROFILING) {
      for (const r of runs) await r.gateway.stop(10_000);
      for (const r of runs) {
        const pdir = join(dir, `prof-${r.kind}`);
        const file = readdirSync(pdir).find((f) => f.endsWith('.cpuprofile'));
        if (file !== undefined) r.profile = summarizeProfile(join(pdir, file), r.windows);
      }
    }

    // ---- report
    const measured = (r: Run): { ok: number; seconds: number; rps: number } => {
      const ok = r.slices.reduce((a, s) => a + s.ok, 0);
      const seconds = r.slices.reduce((a, s) => a + s.seconds, 0);
      return { ok, seconds, rps: ok / seconds };
    };
    const base = measured(runs[0]!);
    const baseCpuPerReq = (runs[0]!.cpu.gateway / base.ok) * 1e6;
    process.stdout.write('\n');
    printTable(
      [
        'config',
        'req/s',
        'p50 ms',
        'p99 ms',
        '% of no-limit',
        'gw CPU/req us',
        'vs no-limit',
        'gw CPU',
        `CPU ${layout.gatewayCpu ?? 'gw'} irq/idle`,
        `CPU ${layout.loadCpu ?? 'load'}`,
        'req/s per slice',
        'ok / failed',
      ],
      runs.map((r) => {
        const m = measured(r);
        const cpuPerReq = (r.cpu.gateway / m.ok) * 1e6;
        const loadPct = ((r.cpu.loadgen + r.cpu.sim + r.cpu.redis) / m.seconds) * 100;
        return [
          TITLE[r.kind],
          m.rps.toFixed(0),
          f3(median(r.p50s) / 1000),
          f3(median(r.p99s) / 1000),
          `${((m.rps / base.rps) * 100).toFixed(1)} %`,
          f1(cpuPerReq),
          r.kind === 'none' ? '' : `${cpuPerReq - baseCpuPerReq >= 0 ? '+' : ''}${f1(cpuPerReq - baseCpuPerReq)} us (${(((cpuPerReq - baseCpuPerReq) / baseCpuPerReq) * 100).toFixed(1)} %)`,
          `${((r.cpu.gateway / m.seconds) * 100).toFixed(0)} %`,
          r.gwCore.total > 0 ? `${((r.gwCore.interrupts / r.gwCore.total) * 100).toFixed(0)} / ${((r.gwCore.idle / r.gwCore.total) * 100).toFixed(0)} %` : 'n/a',
          `${loadPct.toFixed(0)} %`,
          r.slices.map((s) => `${(s.ok / s.seconds).toFixed(0)}${s.othersPct >= DISTURBED_SLICE_PCT ? '*' : ''}`).join(' '),
          `${m.ok} / ${r.failures.count}`,
        ];
      }),
    );
    const cpuNote = runs
      .map((r) => {
        const s = measured(r).seconds;
        const pct = (v: number): string => `${((v / s) * 100).toFixed(0)} %`;
        return `${TITLE[r.kind]}: load generator ${pct(r.cpu.loadgen)}, simulator ${pct(r.cpu.sim)}, redis-server ${pct(r.cpu.redis)}`;
      })
      .join('; ');
    const notes: string[] = [`CPU ${layout.loadCpu ?? '(unpinned)'} split: ${cpuNote}`];
    for (const r of runs) {
      const m = measured(r);
      const gwPct = (r.cpu.gateway / m.seconds) * 100;
      const loadPct = ((r.cpu.loadgen + r.cpu.sim + r.cpu.redis) / m.seconds) * 100;
      if (layout.loadCpu !== null && loadPct >= SATURATED_PCT && gwPct < SATURATED_PCT) {
        notes.push(`${TITLE[r.kind]}: CPU ${layout.loadCpu} (load side) was ${loadPct.toFixed(0)} % busy while the gateway used ${gwPct.toFixed(0)} %: this throughput is bounded by the load side, not the gateway.`);
      }
    }
    const disturbed = runs.flatMap((r) => r.slices.filter((sl) => sl.othersPct >= DISTURBED_SLICE_PCT).map((sl) => `${TITLE[r.kind]} ${(sl.ok / sl.seconds).toFixed(0)} req/s: ${sl.othersPct.toFixed(0)} %`));
    if (disturbed.length > 0) notes.push(`slices marked * were disturbed (other processes or steal took >= ${DISTURBED_SLICE_PCT} % of a CPU): ${disturbed.join('; ')}`);
    for (const [cpu, o] of others) {
      const otherPct = (Math.max(0, o.used - o.ours) / o.total) * 100;
      const stealPct = (o.steal / o.total) * 100;
      if (otherPct >= 10 || stealPct >= 5) notes.push(`DISTURBED: CPU ${cpu} spent ${otherPct.toFixed(0)} % on other processes and ${stealPct.toFixed(0)} % to steal during the measurements; rerun on a quiet machine.`);
    }
    for (const r of runs) {
      const out = r.gateway.output.trim();
      if (out !== '') notes.push(`${r.gateway.name} logged:\n${out.split('\n').slice(-5).join('\n')}`);
    }
    process.stdout.write(`\n${checks.map((c) => `ok: ${c}`).join('\n')}\n`);
    if (problems.length > 0) process.stdout.write(`${problems.map((p) => `PROBLEM: ${p}`).join('\n')}\n`);
    process.stdout.write(`${notes.map((n) => `note: ${n}`).join('\n')}\n`);
    if (IS_PROFILING) printProfiles(runs, (r) => measured(r).ok);

    const cost = (k: Kind): number => (1 - measured(runs.find((r) => r.kind === k)!).rps / base.rps) * 100;
    const verdict = (v: number, target: number): string => (problems.length > 0 ? 'INVALID: see PROBLEM above' : v < target ? 'met' : 'NOT met');
    const localCost = cost('local');
    const redisCost = cost('redis');
    process.stdout.write(
      `\nlocal costs ${localCost.toFixed(1)} % (target < ${TARGET_LOCAL_PCT} %): ${verdict(localCost, TARGET_LOCAL_PCT)}\n` +
        `redis costs ${redisCost.toFixed(1)} % (target < ${TARGET_REDIS_PCT} %): ${verdict(redisCost, TARGET_REDIS_PCT)}\n`,
    );
    if (problems.length > 0) process.exitCode = 1;
  } catch (err) {
    throw withChildOutput(err, started);
  } finally {
    await Promise.allSettled(runs.map((r) => r.ep.pool.destroy()));
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

runBench('bench:limits', main, stopAll);
