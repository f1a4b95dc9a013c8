/**
 * `npx tsx bench/balance-model.ts [seconds]` — the scenarios of bench/balance.ts as a
 * discrete-event model that drives the gateway's REAL balancer classes (src/upstream/balancer) with
 * simulated time: no processes, no sockets, no timers, so no CPU noise and no late timers, and a
 * run of minutes of simulated traffic takes seconds. Use it to tell a balancer's own behaviour
 * from measurement noise, and to check a balancer change before running the real benchmark.
 *
 * The engine model is the simulator's (src/sim/simulator.ts) without prefill contention: `slots`
 * generation slots with a FIFO queue, a request holding its slot for speed x (ttft + (tokens - 1) x
 * itl), the first token at speed x ttft after it starts (x hitTtftFactor on a prefix-cache hit), an
 * LRU prefix cache looked up when a request starts. The load balancer sees what the gateway sees:
 * its own in-flight counts (updated at pick and at stream end) and, for least-load, a /metrics
 * sample per replica every pollMs (waiting, running, finished requests, and KV-cache usage as the
 * simulator reports it: running / slots, or with a KV cache the blocks held), read the moment it is
 * taken (the real poll adds a few ms).
 *
 * Scenario 1 prints TTFT percentiles per balancer for two seeds; scenario 2 prints the prefix-cache
 * hit rate and TTFT averaged over 20 rings (the ring depends on the target URLs, which in the real
 * benchmark carry random ports), with the range.
 *
 * Scenario 3 puts scenario 1's replicas behind three gateways, each with its own balancer, its own
 * in-flight counts and its own polls, the arrivals spread round-robin over them. Scenario 4 is one
 * gateway in front of engines with a prefill cost per prompt token and a KV cache (the simulator's
 * --prefill-ms-per-token and --kv-cache-tokens: a request holds blocks of 16 tokens for its prompt
 * and generated tokens, and starts only when those of its prompt + max_tokens fit, in arrival
 * order), 90 % short prompts and 10 % 50x longer. Both compare round-robin, least-request and
 * least-load (prefix-aware and flow control are in the real benchmark only) over three seeds.
 *
 * Scenario 5 compares round-robin, consistent-hash, least-load and prefix-aware on 3 replicas
 * whose cache works in blocks, as the simulator's `--prefix-block-chars` mode and vLLM do: the whole
 * prompt in chained 64-character blocks, an LRU of blocks, ttft scaled by the share of the prompt
 * not cached: multi-turn chat (bench/lib/multiturn.ts: 200 conversations x 8 turns, each resending
 * its history, under 4 shared system prompts) at three cache sizes; scenario 2b is the shared-prompt
 * workload of scenario 2 in that cache. Hit rate counts blocks (as vLLM counts tokens); skew is max
 * / mean of the replicas' time-averaged in-flight requests.
 *
 * MODEL_SCENARIO=5 (or 1, 2, 3, 4, 2b) runs one scenario. MODEL_DETAIL=1 adds, for scenarios 5 and
 * 2b, the hit rate per seed; where the missed blocks went (held by no replica when the request was
 * picked, or held longer on another replica than on the one picked, split by whether the pick
 * skipped the longest match in prefix-aware's index); the ceiling (the hit rate if every block sent
 * before were still cached wherever a request goes); and per seed prefix-aware's hit rate and the
 * ceiling over consistent-hash's.
 */
import {
  ConsistentHashBalancer,
  LeastLoadBalancer,
  LeastRequestBalancer,
  PrefixAwareBalancer,
  RoundRobinBalancer,
  toPromptBlocks,
  toPromptPrefixKey,
  type Balancer,
  type Target,
} from '../src/upstream/balancer/index.js';
import { TargetState } from '../src/upstream/index.js';
import { blockKeys, chatText, multiTurnWorkload } from './lib/multiturn.js';
import { mulberry32 } from './lib/openloop.js';

const SLOTS = 4;
const TTFT_MS = 40;
const ITL_MS = 5;
const TOKENS = 16;
const WARMUP_MS = 5000;

interface Replica {
  speed: number;
  running: number;
  /** done counts finished requests (vllm:request_success_total). */
  done: number;
  queue: Job[];
  /** lru holds prompt ids (Map insertion order = LRU order); null without a prefix cache. */
  lru: Map<number, true> | null;
}

interface Job {
  arrivedAt: number;
  replica: number;
  prompt: number;
}

const ARRIVAL = 0;
const END = 1;
const POLL = 2;

interface Event {
  at: number;
  kind: typeof ARRIVAL | typeof END | typeof POLL;
  replica: number;
}

/** EventQueue is a binary min-heap on time. */
class EventQueue {
  readonly #a: Event[] = [];

  push(e: Event): void {
    const a = this.#a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.at <= a[i]!.at) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }

  pop(): Event | undefined {
    const a = this.#a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]!.at < a[m]!.at) m = l;
        if (r < a.length && a[r]!.at < a[m]!.at) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

interface ModelRun {
  speeds: readonly number[];
  /** load is the arrival rate as a share of the nominal capacity (all misses). */
  load: number;
  seconds: number;
  seed: number;
  /** pollMs is the least-load metrics interval (Infinity: never polled). */
  pollMs: number;
  prompts: number;
  cacheSize: number;
  hitTtftFactor: number;
  /** urls are the candidates' URLs (the consistent-hash ring is built from them). */
  urls: readonly string[];
}

interface ModelResult {
  ttft: Float64Array;
  share: number[];
  hits: number;
  queries: number;
}

function serviceMs(speed: number, hit: boolean, hitTtftFactor: number): { ttft: number; hold: number } {
  const ttft = speed * TTFT_MS * (hit ? hitTtftFactor : 1);
  return { ttft, hold: ttft + speed * (TOKENS - 1) * ITL_MS };
}

function simulate(make: (c: Target[]) => Balancer, o: ModelRun): ModelResult {
  const random = mulberry32(o.seed);
  const capacity = o.speeds.reduce((s, f) => s + SLOTS / (serviceMs(f, false, 1).hold / 1000), 0);
  const meanGapMs = 1000 / (capacity * o.load);
  const candidates: Target[] = o.urls.map((url) => ({ url, origin: url, basePath: '', weight: 1, state: new TargetState(url) }));
  const balancer = make(candidates);
  const replicas: Replica[] = o.speeds.map((speed) => ({ speed, running: 0, done: 0, queue: [], lru: o.cacheSize > 0 ? new Map() : null }));
  const keys = Array.from({ length: Math.max(1, o.prompts) }, (_, k) => `system prompt of tenant ${k + 1}: ${random().toString(36)}`);
  const events = new EventQueue();
  const ttft: number[] = [];
  const served = o.speeds.map(() => 0);
  let hits = 0;
  let queries = 0;
  const endMs = o.seconds * 1000;

  const start = (job: Job, now: number): void => {
    const r = replicas[job.replica]!;
    r.running++;
    let hit = false;
    if (r.lru !== null) {
      if (now >= WARMUP_MS) queries++;
      hit = r.lru.delete(job.prompt);
      if (hit && now >= WARMUP_MS) hits++;
      if (!hit && r.lru.size >= o.cacheSize) {
        const oldest = r.lru.keys().next();
        if (oldest.done !== true) r.lru.delete(oldest.value);
      }
      r.lru.set(job.prompt, true);
    }
    const s = serviceMs(r.speed, hit, o.hitTtftFactor);
    if (job.arrivedAt >= WARMUP_MS) ttft.push(now + s.ttft - job.arrivedAt);
    events.push({ at: now + s.hold, kind: END, replica: job.replica });
  };

  events.push({ at: 0, kind: ARRIVAL, replica: -1 });
  if (Number.isFinite(o.pollMs)) for (let i = 0; i < replicas.length; i++) events.push({ at: random() * o.pollMs, kind: POLL, replica: i });
  for (let e = events.pop(); e !== undefined; e = events.pop()) {
    const now = e.at;
    if (e.kind === ARRIVAL) {
      if (now > endMs) continue;
      events.push({ at: now - Math.log(1 - random()) * meanGapMs, kind: ARRIVAL, replica: -1 });
      const prompt = Math.floor(random() * keys.length);
      const picked = balancer.pick({ excluded: null, hashKey: o.prompts > 0 ? keys[prompt]! : null, nowMs: now });
      if (picked === undefined) throw new Error('balancer picked nothing');
      picked.state.inflight++;
      const i = candidates.indexOf(picked);
      if (now >= WARMUP_MS) served[i]!++;
      const job: Job = { arrivedAt: now, replica: i, prompt };
      const r = replicas[i]!;
      if (r.running < SLOTS && r.queue.length === 0) start(job, now);
      else r.queue.push(job);
    } else if (e.kind === END) {
      const r = replicas[e.replica]!;
      r.running--;
      r.done++;
      candidates[e.replica]!.state.inflight--;
      const next = r.queue.shift();
      if (next !== undefined) start(next, now);
    } else if (now <= endMs) {
      const r = replicas[e.replica]!;
      candidates[e.replica]!.state.load = { waiting: r.queue.length, running: r.running, kvCacheUsage: Math.min(1, r.running / SLOTS), requestsDone: r.done, atMs: now };
      events.push({ at: now + o.pollMs, kind: POLL, replica: e.replica });
    }
  }
  const total = served.reduce((a, b) => a + b, 0);
  return { ttft: Float64Array.from(ttft).sort(), share: served.map((s) => s / total), hits, queries };
}

const pctl = (a: Float64Array, p: number): number => a[Math.min(a.length - 1, Math.max(0, Math.ceil((p / 100) * a.length) - 1))] ?? Number.NaN;
const SECONDS = Number(process.argv[2] ?? 300);
if (!(SECONDS > 10)) throw new Error('seconds must be a number > 10');
// MODEL_SCENARIO (1, 2, 3, 4, 5 or 2b) runs one scenario; all run by default.
const ONLY = process.env.MODEL_SCENARIO;
if (ONLY !== undefined && !['1', '2', '3', '4', '5', '2b'].includes(ONLY)) throw new Error(`MODEL_SCENARIO must be 1, 2, 3, 4, 5 or 2b, got "${ONLY}"`);
const wanted = (s: string): boolean => ONLY === undefined || ONLY === s;
const urls = (random: () => number): string[] => Array.from({ length: 4 }, () => `http://127.0.0.1:${20000 + Math.floor(random() * 40000)}`);

// Scenario 1: one replica three times slower, 87.5 % of the nominal capacity.
if (wanted('1')) process.stdout.write(`Scenario 1 (model): 3 replicas at speed 1 + 1 at speed 3, ${SLOTS} slots, ttft ${TTFT_MS} ms, itl ${ITL_MS} ms, ${TOKENS} tokens, Poisson arrivals at 87.5 % of capacity, ${SECONDS} s\n`);
const s1: Array<[string, (c: Target[]) => Balancer, number]> = [
  ['round-robin', (c) => new RoundRobinBalancer(c), Infinity],
  ['least-request', (c) => new LeastRequestBalancer(c), Infinity],
  ['least-load, metrics every 100 ms', (c) => new LeastLoadBalancer(c), 100],
  ['least-load, metrics every 20 ms', (c) => new LeastLoadBalancer(c), 20],
  ['least-load, metrics every 1 ms', (c) => new LeastLoadBalancer(c), 1],
];
for (const seed of wanted('1') ? [1, 2] : []) {
  for (const [name, make, pollMs] of s1) {
    const r = simulate(make, { speeds: [1, 1, 1, 3], load: 0.875, seconds: SECONDS, seed, pollMs, prompts: 0, cacheSize: 0, hitTtftFactor: 1, urls: urls(mulberry32(seed)) });
    process.stdout.write(
      `  seed ${seed}  ${name.padEnd(34)} TTFT p50 ${pctl(r.ttft, 50).toFixed(1).padStart(8)}  p90 ${pctl(r.ttft, 90).toFixed(1).padStart(9)}  p99 ${pctl(r.ttft, 99).toFixed(1).padStart(9)} ms  ` +
        `slow replica ${(r.share[3]! * 100).toFixed(1)} %\n`,
    );
  }
}

// Scenario 2: four equal replicas with an LRU of 8 prompt prefixes, 70 % of the all-miss capacity.
for (const prompts of wanted('2') ? [16, 24] : []) {
  process.stdout.write(`\nScenario 2 (model): 4 equal replicas, prefix cache 8, ${prompts} prompts, 70 % of the all-miss capacity; mean (min..max) over 20 rings\n`);
  const s2: Array<[string, (c: Target[]) => Balancer]> = [
    ['round-robin', (c) => new RoundRobinBalancer(c)],
    ['consistent-hash (load factor 1.25)', (c) => new ConsistentHashBalancer(c)],
    ['consistent-hash (load factor 2)', (c) => new ConsistentHashBalancer(c, { loadFactor: 2 })],
  ];
  for (const [name, make] of s2) {
    const runs = Array.from({ length: 20 }, (_, k) =>
      simulate(make, { speeds: [1, 1, 1, 1], load: 0.7, seconds: Math.min(SECONDS, 120), seed: 100 + k, pollMs: Infinity, prompts, cacheSize: 8, hitTtftFactor: 0.2, urls: urls(mulberry32(100 + k)) }),
    );
    const stat = (f: (r: ModelResult) => number, digits: number): string => {
      const v = runs.map(f);
      return `${(v.reduce((a, b) => a + b, 0) / v.length).toFixed(digits)} (${Math.min(...v).toFixed(digits)}..${Math.max(...v).toFixed(digits)})`;
    };
    process.stdout.write(
      `  ${name.padEnd(36)} hit rate ${stat((r) => (100 * r.hits) / r.queries, 1)} %  TTFT p50 ${stat((r) => pctl(r.ttft, 50), 1)}  p99 ${stat((r) => pctl(r.ttft, 99), 1)} ms\n`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Scenarios 3 and 4 (bench/balance.ts): engines with a per-token prefill cost and a KV cache in blocks (the
// simulator's --prefill-ms-per-token and --kv-cache-tokens), several gateways, each with its own
// balancer, in-flight counts and /metrics polls.

/** FleetEngine is one replica's `simulate` flags, as the model reads them. */
interface FleetEngine {
  speed: number;
  slots: number;
  ttftMs: number;
  itlMs: number;
  prefillMsPerToken: number;
  /** kvBlocks is the KV cache in 16-token blocks (0: not modelled). */
  kvBlocks: number;
}

/** FleetReq is one request: when it arrives, its prompt and its generated tokens. */
interface FleetReq {
  atMs: number;
  promptTokens: number;
  tokens: number;
}

interface FleetJob {
  req: FleetReq;
  gateway: number;
  arrivedAt: number;
  reserved: number;
  firstAt: number;
}

interface FleetRun {
  gateways: number;
  pollMs: number;
  warmupMs: number;
  /** windowMs ends the measured window (arrivals after it are not counted; the run drains). */
  windowMs: number;
  seed: number;
}

interface FleetResult {
  ttft: Float64Array;
  /** throughput is requests completed per second inside the measured window. */
  throughput: number;
  share: number[];
  maxKv: number;
}

const KV_BLOCK = 16;

function simulateFleet(make: (c: Target[], random: () => number) => Balancer, engines: readonly FleetEngine[], reqs: readonly FleetReq[], o: FleetRun): FleetResult {
  const random = mulberry32(o.seed);
  const gws = Array.from({ length: o.gateways }, (_, g) => {
    const candidates: Target[] = engines.map((_, i) => ({ url: `http://10.0.0.${i + 1}:8000`, origin: `http://10.0.0.${i + 1}:8000`, basePath: '', weight: 1, state: new TargetState(`g${g}-${i}`) }));
    return { candidates, balancer: make(candidates, random) };
  });
  const reps = engines.map(() => ({ running: [] as FleetJob[], reserved: 0, queue: [] as FleetJob[], completed: 0 }));
  const events = new EventQueue();
  const ttft: number[] = [];
  const served = engines.map(() => 0);
  let completed = 0;
  let maxKv = 0;
  const endJobs = new Map<Event, FleetJob>();
  const fits = (i: number, job: FleetJob): boolean => {
    const r = reps[i]!;
    const e = engines[i]!;
    if (r.running.length >= e.slots) return false;
    return e.kvBlocks === 0 || r.running.length === 0 || r.reserved + job.reserved <= e.kvBlocks;
  };
  const start = (i: number, job: FleetJob, now: number): void => {
    const r = reps[i]!;
    const e = engines[i]!;
    r.running.push(job);
    r.reserved += job.reserved;
    job.firstAt = now + e.speed * (e.ttftMs + e.prefillMsPerToken * job.req.promptTokens);
    if (job.arrivedAt >= o.warmupMs && job.arrivedAt < o.windowMs) ttft.push(job.firstAt - job.arrivedAt);
    const ev: Event = { at: job.firstAt + e.speed * (job.req.tokens - 1) * e.itlMs, kind: END, replica: i };
    endJobs.set(ev, job);
    events.push(ev);
  };
  const kvUsage = (i: number, now: number): number => {
    const e = engines[i]!;
    if (e.kvBlocks === 0) return Math.min(1, reps[i]!.running.length / e.slots);
    let held = 0;
    for (const job of reps[i]!.running) {
      const gen = now < job.firstAt ? 0 : Math.min(job.req.tokens, 1 + Math.floor((now - job.firstAt) / (e.speed * e.itlMs)));
      held += Math.ceil((job.req.promptTokens + gen) / KV_BLOCK);
    }
    return Math.min(1, held / e.kvBlocks);
  };
  let next = 0;
  if (reqs.length > 0) events.push({ at: reqs[0]!.atMs, kind: ARRIVAL, replica: -1 });
  const lastAt = reqs.length > 0 ? reqs[reqs.length - 1]!.atMs : 0;
  // Every gateway polls every replica on its own phase; replica index g * n + i in the event.
  if (Number.isFinite(o.pollMs)) for (let g = 0; g < o.gateways; g++) for (let i = 0; i < engines.length; i++) events.push({ at: random() * o.pollMs, kind: POLL, replica: g * engines.length + i });
  for (let e = events.pop(); e !== undefined; e = events.pop()) {
    const now = e.at;
    if (e.kind === ARRIVAL) {
      const k = next++;
      const req = reqs[k]!;
      if (next < reqs.length) events.push({ at: reqs[next]!.atMs, kind: ARRIVAL, replica: -1 });
      // The cloud load balancer in front spreads requests round-robin over the gateways.
      const g = k % o.gateways;
      const gw = gws[g]!;
      const picked = gw.balancer.pick({ excluded: null, hashKey: null, nowMs: now, size: req.promptTokens * 4 });
      if (picked === undefined) throw new Error('balancer picked nothing');
      picked.state.inflight++;
      const i = gw.candidates.indexOf(picked);
      if (now >= o.warmupMs && now < o.windowMs) served[i]!++;
      const job: FleetJob = { req, gateway: g, arrivedAt: now, reserved: engines[i]!.kvBlocks > 0 ? Math.ceil((req.promptTokens + req.tokens) / KV_BLOCK) : 0, firstAt: 0 };
      const r = reps[i]!;
      if (r.queue.length === 0 && fits(i, job)) start(i, job, now);
      else r.queue.push(job);
    } else if (e.kind === END) {
      const job = endJobs.get(e)!;
      endJobs.delete(e);
      const r = reps[e.replica]!;
      r.running.splice(r.running.indexOf(job), 1);
      r.reserved -= job.reserved;
      r.completed++;
      gws[job.gateway]!.candidates[e.replica]!.state.inflight--;
      if (now >= o.warmupMs && now < o.windowMs) completed++;
      while (r.queue.length > 0 && fits(e.replica, r.queue[0]!)) start(e.replica, r.queue.shift()!, now);
    } else if (now <= lastAt) {
      const g = Math.floor(e.replica / engines.length);
      const i = e.replica % engines.length;
      const r = reps[i]!;
      const kv = kvUsage(i, now);
      if (kv > maxKv) maxKv = kv;
      const state = gws[g]!.candidates[i]!.state;
      state.load = { waiting: r.queue.length, running: r.running.length, kvCacheUsage: kv, atMs: now, inflight: state.inflight, requestsDone: r.completed };
      events.push({ at: now + o.pollMs, kind: POLL, replica: e.replica });
    }
  }
  const total = served.reduce((a, b) => a + b, 0);
  return { ttft: Float64Array.from(ttft).sort(), throughput: completed / ((o.windowMs - o.warmupMs) / 1000), share: served.map((s) => s / total), maxKv };
}

/** fleetArrivals draws Poisson arrivals at ratePerSec over seconds, each with a prompt size from size(). */
function fleetArrivals(ratePerSec: number, seconds: number, random: () => number, size: () => number): FleetReq[] {
  const out: FleetReq[] = [];
  for (let t = -Math.log(1 - random()) * (1000 / ratePerSec); t < seconds * 1000; t += -Math.log(1 - random()) * (1000 / ratePerSec)) out.push({ atMs: t, promptTokens: size(), tokens: TOKENS });
  return out;
}

const fleetBalancers: Array<[string, (c: Target[], random: () => number) => Balancer, number]> = [
  ['round-robin', (c) => new RoundRobinBalancer(c), Infinity],
  ['least-request', (c, random) => new LeastRequestBalancer(c, { random }), Infinity],
  ['least-load, metrics every 100 ms', (c, random) => new LeastLoadBalancer(c, { random }), 100],
  ['least-load, metrics every 250 ms', (c, random) => new LeastLoadBalancer(c, { random }), 250],
];

/** fleetTable prints one row per balancer and seed, and least-load's (100 ms) p99 and throughput over least-request's per seed. */
function fleetTable(title: string, engines: readonly FleetEngine[], gateways: number, reqsOf: (seed: number) => FleetReq[]): void {
  process.stdout.write(`\n${title}\n`);
  for (const seed of [1, 2, 3]) {
    const reqs = reqsOf(seed);
    const results = fleetBalancers.map(([name, make, pollMs]) => [name, simulateFleet(make, engines, reqs, { gateways, pollMs, warmupMs: WARMUP_MS, windowMs: SECONDS * 1000, seed })] as const);
    for (const [name, r] of results) {
      process.stdout.write(
        `  seed ${seed}  ${name.padEnd(34)} TTFT p50 ${pctl(r.ttft, 50).toFixed(1).padStart(8)}  p90 ${pctl(r.ttft, 90).toFixed(1).padStart(8)}  p99 ${pctl(r.ttft, 99).toFixed(1).padStart(9)} ms  ` +
          `throughput ${r.throughput.toFixed(1)} req/s  per replica ${r.share.map((x) => (x * 100).toFixed(0)).join(' / ')} %\n`,
      );
    }
    const lr = results[1]![1];
    const ll = results[2]![1];
    process.stdout.write(`  seed ${seed}  least-load (100 ms) / least-request: p99 TTFT x${(pctl(ll.ttft, 99) / pctl(lr.ttft, 99)).toFixed(2)} (target <= 0.7), throughput x${(ll.throughput / lr.throughput).toFixed(3)}\n`);
  }
}

// Scenario 3: scenario 1's replicas behind three gateways, 87.5 % of the nominal capacity.
if (wanted('3')) {
  const base = { slots: SLOTS, ttftMs: TTFT_MS, itlMs: ITL_MS, prefillMsPerToken: 0, kvBlocks: 0 };
  const engines: FleetEngine[] = [{ ...base, speed: 1 }, { ...base, speed: 1 }, { ...base, speed: 1 }, { ...base, speed: 3 }];
  const capacity = engines.reduce((s, e) => s + (e.slots * 1000) / (e.speed * (e.ttftMs + (TOKENS - 1) * e.itlMs)), 0);
  fleetTable(
    `Scenario 3 (model): 3 gateways (arrivals round-robin over them), 3 replicas at speed 1 + 1 at speed 3, ${SLOTS} slots, ttft ${TTFT_MS} ms, itl ${ITL_MS} ms, ${TOKENS} tokens, Poisson arrivals at 87.5 % of capacity (${capacity.toFixed(1)} req/s), ${SECONDS} s`,
    engines,
    3,
    (seed) => {
      const random = mulberry32(seed);
      return fleetArrivals(capacity * 0.875, SECONDS, random, () => 20);
    },
  );
}

// Scenario 4: one gateway, engines with a prefill cost and a KV cache; 90 % prompts of 201 tokens, 10 % of 10001 (800 and 40000 characters in the benchmark).
if (wanted('4')) {
  const PREFILL_MS = 0.02;
  const KV_TOKENS = 16_384;
  const SHORT = 201;
  const LONG = 10_001;
  const engine: FleetEngine = { speed: 1, slots: SLOTS, ttftMs: TTFT_MS, itlMs: ITL_MS, prefillMsPerToken: PREFILL_MS, kvBlocks: KV_TOKENS / KV_BLOCK };
  const hold = (tokens: number): number => TTFT_MS + PREFILL_MS * tokens + (TOKENS - 1) * ITL_MS;
  const nominal = (4 * SLOTS * 1000) / (0.9 * hold(SHORT) + 0.1 * hold(LONG));
  fleetTable(
    `Scenario 4 (model): 1 gateway, 4 replicas, ${SLOTS} slots, ttft ${TTFT_MS} ms + ${PREFILL_MS} ms per prompt token, KV cache ${KV_TOKENS} tokens; 90 % prompts of ${SHORT} tokens, 10 % of ${LONG}; ` +
      `Poisson arrivals at 45 % of the nominal ${nominal.toFixed(1)} req/s, ${SECONDS} s`,
    [engine, engine, engine, engine],
    1,
    (seed) => {
      const random = mulberry32(seed);
      return fleetArrivals(nominal * 0.45, SECONDS, random, () => (random() < 0.1 ? LONG : SHORT));
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Scenarios 5 and 2b: the four cache-relevant balancers on 3 replicas, with the simulator's
// block-mode prefix cache (the whole prompt in chained blocks, ttft scaled by the uncached share).

/** Req is one precomputed request: when it arrives, and what each balancer and the engine see of it. */
interface Req {
  atMs: number;
  /** hashKey is consistent-hash's prompt_prefix key (hash_prompt_chars characters). */
  hashKey: string | null;
  /** blocks are prefix-aware's prompt blocks (toPromptBlocks). */
  blocks: Uint32Array | null;
  /** simBlocks are the engine's cache keys (the simulator's block mode). */
  simBlocks: number[];
}

interface BlockRun {
  replicas: number;
  cacheBlocks: number;
  hitTtftFactor: number;
  pollMs: number;
  warmupMs: number;
  urls: readonly string[];
}

interface BlockResult {
  ttft: Float64Array;
  hitRate: number;
  /** skew is max / mean of the replicas' time-averaged in-flight requests. */
  skew: number;
  /** lossNowhere is the share of blocks no replica held when the request was picked. */
  lossNowhere: number;
  /** lossPassedOver is the share lost by picking another replica than the longest indexed match (the load bound). */
  lossPassedOver: number;
  /** lossIndexWrong is the share lost on picks that were the longest indexed match (or where no index exists): the engine held more elsewhere. */
  lossIndexWrong: number;
}

function simulateBlocks(make: (c: Target[]) => Balancer, reqs: readonly Req[], o: BlockRun): BlockResult {
  const candidates: Target[] = o.urls.slice(0, o.replicas).map((url) => ({ url, origin: url, basePath: '', weight: 1, state: new TargetState(url) }));
  const balancer = make(candidates);
  const reps = candidates.map(() => ({ running: 0, done: 0, queue: [] as Array<{ req: Req; arrivedAt: number }>, lru: new Map<number, true>(), inflightArea: 0, lastChange: 0, inflight: 0 }));
  const events = new EventQueue();
  const ttft: number[] = [];
  let hits = 0;
  let queries = 0;
  const loss = { nowhere: 0, passedOver: 0, indexWrong: 0 };
  const endMs = reqs.length > 0 ? reqs[reqs.length - 1]!.atMs : 0;
  const touch = (i: number, now: number, delta: number): void => {
    const r = reps[i]!;
    if (now > o.warmupMs) r.inflightArea += r.inflight * (now - Math.max(r.lastChange, o.warmupMs));
    r.lastChange = now;
    r.inflight += delta;
  };
  const start = (i: number, job: { req: Req; arrivedAt: number }, now: number): void => {
    const r = reps[i]!;
    r.running++;
    const blocks = job.req.simBlocks;
    let matched = 0;
    while (matched < blocks.length && r.lru.has(blocks[matched]!)) matched++;
    if (job.arrivedAt >= o.warmupMs) {
      queries += blocks.length;
      hits += matched;
    }
    for (let k = blocks.length - 1; k >= 0; k--) {
      r.lru.delete(blocks[k]!);
      r.lru.set(blocks[k]!, true);
    }
    for (const key of r.lru.keys()) {
      if (r.lru.size <= o.cacheBlocks) break;
      r.lru.delete(key);
    }
    const share = blocks.length === 0 ? 0 : matched / blocks.length;
    const first = TTFT_MS * (o.hitTtftFactor + (1 - o.hitTtftFactor) * (1 - share));
    if (job.arrivedAt >= o.warmupMs) ttft.push(now + first - job.arrivedAt);
    events.push({ at: now + first + (TOKENS - 1) * ITL_MS, kind: END, replica: i });
  };
  let next = 0;
  if (reqs.length > 0) events.push({ at: reqs[0]!.atMs, kind: ARRIVAL, replica: -1 });
  if (Number.isFinite(o.pollMs)) for (let i = 0; i < reps.length; i++) events.push({ at: (i / reps.length) * o.pollMs, kind: POLL, replica: i });
  for (let e = events.pop(); e !== undefined; e = events.pop()) {
    const now = e.at;
    if (e.kind === ARRIVAL) {
      const req = reqs[next++]!;
      if (next < reqs.length) events.push({ at: reqs[next]!.atMs, kind: ARRIVAL, replica: -1 });
      // Loss accounting at pick time: the longest prefix any replica's engine cache holds, and the one the pick gets.
      let bestEngine = 0;
      const engineMatch = reps.map((r) => {
        let m = 0;
        while (m < req.simBlocks.length && r.lru.has(req.simBlocks[m]!)) m++;
        if (m > bestEngine) bestEngine = m;
        return m;
      });
      const indexMatch = candidates.map((c) => (c.state.prefixIndex === null || req.blocks === null ? 0 : c.state.prefixIndex.matched(req.blocks)));
      const picked = balancer.pick({ excluded: null, hashKey: req.hashKey, blocks: req.blocks, nowMs: now });
      if (picked === undefined) throw new Error('balancer picked nothing');
      picked.state.inflight++;
      const i = candidates.indexOf(picked);
      const routed = bestEngine - engineMatch[i]!;
      loss.nowhere += req.simBlocks.length - bestEngine;
      if (routed > 0) {
        if (indexMatch[i]! < Math.max(...indexMatch)) loss.passedOver += routed;
        else loss.indexWrong += routed;
      }
      touch(i, now, 1);
      const r = reps[i]!;
      const job = { req, arrivedAt: now };
      if (r.running < SLOTS && r.queue.length === 0) start(i, job, now);
      else r.queue.push(job);
    } else if (e.kind === END) {
      const r = reps[e.replica]!;
      r.running--;
      r.done++;
      candidates[e.replica]!.state.inflight--;
      touch(e.replica, now, -1);
      const job = r.queue.shift();
      if (job !== undefined) start(e.replica, job, now);
    } else if (now <= endMs) {
      const r = reps[e.replica]!;
      candidates[e.replica]!.state.load = { waiting: r.queue.length, running: r.running, kvCacheUsage: Math.min(1, r.running / SLOTS), requestsDone: r.done, atMs: now };
      events.push({ at: now + o.pollMs, kind: POLL, replica: e.replica });
    }
  }
  const areas = reps.map((r) => r.inflightArea);
  const mean = areas.reduce((a, b) => a + b, 0) / areas.length;
  return {
    ttft: Float64Array.from(ttft).sort(),
    hitRate: queries > 0 ? hits / queries : Number.NaN,
    skew: mean > 0 ? Math.max(...areas) / mean : Number.NaN,
    lossNowhere: loss.nowhere / queries,
    lossPassedOver: loss.passedOver / queries,
    lossIndexWrong: loss.indexWrong / queries,
  };
}

const BLOCK_CHARS = 64;
const HASH_CHARS = 256;
const toReq = (atMs: number, messages: ReadonlyArray<{ role: string; content: string }>, maxBlocks: number): Req => {
  const body = { messages };
  return { atMs, hashKey: toPromptPrefixKey(body, HASH_CHARS), blocks: toPromptBlocks(body, BLOCK_CHARS, maxBlocks), simBlocks: blockKeys(chatText(messages), BLOCK_CHARS) };
};

/** blockTable prints one row per balancer; the last balancer gets its requests through lastReqs (another hash key), when given. */
function blockTable(
  title: string,
  reqs: (seed: number) => Req[],
  run: Omit<BlockRun, 'urls'>,
  balancers: Array<[string, (c: Target[]) => Balancer]>,
  seeds: number,
  lastReqs?: (r: Req[]) => Req[],
): void {
  process.stdout.write(`\n${title}; mean (min..max) over ${seeds} seeds (workload and target URLs)\n`);
  const bySeed = Array.from({ length: seeds }, (_, k) => {
    const r = reqs(300 + k);
    return { r, last: lastReqs === undefined ? r : lastReqs(r) };
  });
  const hitRates = new Map<string, number[]>();
  for (const [b, [name, make]] of balancers.entries()) {
    const runs = bySeed.map((x, k) => simulateBlocks(make, b === balancers.length - 1 ? x.last : x.r, { ...run, urls: urls(mulberry32(300 + k)) }));
    const stat = (f: (r: BlockResult) => number, digits: number): string => {
      const v = runs.map(f);
      return `${(v.reduce((a, b) => a + b, 0) / v.length).toFixed(digits)} (${Math.min(...v).toFixed(digits)}..${Math.max(...v).toFixed(digits)})`;
    };
    process.stdout.write(
      `  ${name.padEnd(36)} hit rate ${stat((r) => 100 * r.hitRate, 1)} %  TTFT p50 ${stat((r) => pctl(r.ttft, 50), 1)}  p99 ${stat((r) => pctl(r.ttft, 99), 1)} ms  skew ${stat((r) => r.skew, 2)}\n`,
    );
    hitRates.set(name, runs.map((r) => r.hitRate));
    if (process.env.MODEL_DETAIL === '1') {
      process.stdout.write(`    per seed hit rate ${runs.map((r) => (100 * r.hitRate).toFixed(1)).join(' ')}\n`);
      process.stdout.write(
        `    blocks missed: held nowhere ${stat((r) => 100 * r.lossNowhere, 1)} %, held longer on another replica than the pick's: pick skipped the longest indexed match ${stat((r) => 100 * r.lossPassedOver, 1)} %, otherwise ${stat((r) => 100 * r.lossIndexWrong, 1)} %\n`,
      );
    }
  }
  if (process.env.MODEL_DETAIL !== '1') return;
  // The ceiling: the hit rate if every block an earlier request sent were still cached where the request goes.
  const ceiling = bySeed.map((x) => {
    const seen = new Set<number>();
    let hit = 0;
    let all = 0;
    for (const req of x.r) {
      let m = 0;
      while (m < req.simBlocks.length && seen.has(req.simBlocks[m]!)) m++;
      hit += m;
      all += req.simBlocks.length;
      for (const k of req.simBlocks) seen.add(k);
    }
    return hit / all;
  });
  const pa = hitRates.get('prefix-aware');
  const ch = [...hitRates].find(([name]) => name.startsWith(`consistent-hash (${HASH_CHARS}`))?.[1];
  process.stdout.write(`  ceiling (every block sent before still cached) per seed ${ceiling.map((v) => (100 * v).toFixed(1)).join(' ')} %\n`);
  if (pa !== undefined && ch !== undefined) {
    process.stdout.write(`  prefix-aware / consistent-hash (${HASH_CHARS} chars) per seed x${pa.map((v, k) => (v / ch[k]!).toFixed(2)).join(' x')}\n`);
    process.stdout.write(`  ceiling / consistent-hash (${HASH_CHARS} chars) per seed (the most any balancer could reach) x${ceiling.map((v, k) => (v / ch[k]!).toFixed(2)).join(' x')}\n`);
  }
}

const MT_SHAPE = { conversations: 200, turns: 8, systemPrompts: 4, systemChars: 1500, startSpreadMs: 15_000, thinkMs: 2000 };
const LONG_HASH_CHARS = 4096;
const cacheBalancers = (cacheBlocks: number): Array<[string, (c: Target[]) => Balancer]> => [
  ['round-robin', (c) => new RoundRobinBalancer(c)],
  [`consistent-hash (${HASH_CHARS} chars)`, (c) => new ConsistentHashBalancer(c)],
  ['least-load (metrics every 100 ms)', (c) => new LeastLoadBalancer(c)],
  ['prefix-aware', (c) => new PrefixAwareBalancer(c, { cacheBlocks })],
];
// The same requests with consistent-hash keyed on LONG_HASH_CHARS characters (system prompt + first user message): the key a tuned consistent-hash would use.
const longKeyed = (reqs: Req[]): Req[] => reqs.map((r, i) => ({ ...r, hashKey: longKeys[i] ?? r.hashKey }));
let longKeys: Array<string | null> = [];
for (const cacheBlocks of wanted('5') ? [2048, 4096, 8192] : []) {
  blockTable(
    `Scenario 5 (model): multi-turn, ${MT_SHAPE.conversations} conversations x ${MT_SHAPE.turns} turns under ${MT_SHAPE.systemPrompts} shared system prompts of ${MT_SHAPE.systemChars} chars, ` +
      `starting over ${MT_SHAPE.startSpreadMs / 1000} s, a turn every ${MT_SHAPE.thinkMs / 1000} s (x0.5..1.5); 3 replicas, ${SLOTS} slots, ` +
      `block-mode prefix cache of ${cacheBlocks} blocks of ${BLOCK_CHARS} chars (prefix-aware's prefix_cache_blocks the same), a full hit cuts ttft to x0.2`,
    (seed) => {
      const turns = multiTurnWorkload({ ...MT_SHAPE, seed });
      longKeys = turns.map((t) => toPromptPrefixKey({ messages: t.messages }, LONG_HASH_CHARS));
      return turns.map((t) => toReq(t.atMs, t.messages, cacheBlocks));
    },
    { replicas: 3, cacheBlocks, hitTtftFactor: 0.2, pollMs: 100, warmupMs: 0 },
    [...cacheBalancers(cacheBlocks), [`consistent-hash (${LONG_HASH_CHARS} chars)`, (c) => new ConsistentHashBalancer(c)]],
    10,
    longKeyed,
  );
}

// Scenario 2b: the shared-prompt workload of scenario 2 on 3 replicas with the block-mode cache,
// sized to hold 8 of the prompts per replica, Poisson arrivals at 70 % of the all-miss capacity.
const SP_PROMPTS = 24;
const SP_SYSTEM_CHARS = 1000;
const SP_CACHE_BLOCKS = 8 * Math.ceil((SP_SYSTEM_CHARS + 80) / BLOCK_CHARS);
const sharedPrompts = (seed: number): Req[] => {
  const random = mulberry32(seed);
  const systems = Array.from({ length: SP_PROMPTS }, (_, k) => `Tenant ${k + 1}. ${Array.from({ length: SP_SYSTEM_CHARS / 10 }, () => random().toString(36).slice(2, 11)).join(' ')}`.slice(0, SP_SYSTEM_CHARS));
  const capacity = (3 * SLOTS * 1000) / (TTFT_MS + (TOKENS - 1) * ITL_MS);
  const meanGapMs = 1000 / (capacity * 0.7);
  const out: Req[] = [];
  for (let at = 0; at < Math.min(SECONDS, 120) * 1000; at += -Math.log(1 - random()) * meanGapMs) {
    const messages = [
      { role: 'system', content: systems[Math.floor(random() * SP_PROMPTS)]! },
      { role: 'user', content: `question ${random().toString(36).slice(2)}` },
    ];
    out.push(toReq(at, messages, SP_CACHE_BLOCKS));
  }
  return out;
};
if (wanted('2b')) blockTable(
  `Scenario 2b (model): shared system prompts, ${SP_PROMPTS} prompts of ${SP_SYSTEM_CHARS} chars + a short user message, Poisson arrivals at 70 % of the all-miss capacity; ` +
    `3 replicas, block-mode prefix cache of ${SP_CACHE_BLOCKS} blocks (8 prompts; prefix-aware's prefix_cache_blocks the same)`,
  sharedPrompts,
  { replicas: 3, cacheBlocks: SP_CACHE_BLOCKS, hitTtftFactor: 0.2, pollMs: 100, warmupMs: WARMUP_MS },
  cacheBalancers(SP_CACHE_BLOCKS),
  10,
);
