/**
 * `npx tsx bench/balance-model.ts [seconds]` — the two scenarios of bench/balance.ts as a
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
 * sample per replica every pollMs (waiting, running, and KV-cache usage as the simulator reports
 * it: running / slots), read the moment it is taken (the real poll adds a few ms).
 *
 * Scenario 1 prints TTFT percentiles per balancer for two seeds; scenario 2 prints the prefix-cache
 * hit rate and TTFT averaged over 20 rings (the ring depends on the target URLs, which in the real
 * benchmark carry random ports), with the range.
 */
import { ConsistentHashBalancer, LeastLoadBalancer, LeastRequestBalancer, RoundRobinBalancer, type Balancer, type Target } from '../src/upstream/balancer/index.js';
import { TargetState } from '../src/upstream/index.js';
import { mulberry32 } from './lib/openloop.js';

const SLOTS = 4;
const TTFT_MS = 40;
const ITL_MS = 5;
const TOKENS = 16;
const WARMUP_MS = 5000;

interface Replica {
  speed: number;
  running: number;
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
  const replicas: Replica[] = o.speeds.map((speed) => ({ speed, running: 0, queue: [], lru: o.cacheSize > 0 ? new Map() : null }));
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
      candidates[e.replica]!.state.inflight--;
      const next = r.queue.shift();
      if (next !== undefined) start(next, now);
    } else if (now <= endMs) {
      const r = replicas[e.replica]!;
      candidates[e.replica]!.state.load = { waiting: r.queue.length, running: r.running, kvCacheUsage: Math.min(1, r.running / SLOTS), atMs: now };
      events.push({ at: now + o.pollMs, kind: POLL, replica: e.replica });
    }
  }
  const total = served.reduce((a, b) => a + b, 0);
  return { ttft: Float64Array.from(ttft).sort(), share: served.map((s) => s / total), hits, queries };
}

const pctl = (a: Float64Array, p: number): number => a[Math.min(a.length - 1, Math.max(0, Math.ceil((p / 100) * a.length) - 1))] ?? Number.NaN;
const SECONDS = Number(process.argv[2] ?? 300);
if (!(SECONDS > 10)) throw new Error('seconds must be a number > 10');
const urls = (random: () => number): string[] => Array.from({ length: 4 }, () => `http://127.0.0.1:${20000 + Math.floor(random() * 40000)}`);

// Scenario 1: one replica three times slower, 87.5 % of the nominal capacity.
process.stdout.write(`Scenario 1 (model): 3 replicas at speed 1 + 1 at speed 3, ${SLOTS} slots, ttft ${TTFT_MS} ms, itl ${ITL_MS} ms, ${TOKENS} tokens, Poisson arrivals at 87.5 % of capacity, ${SECONDS} s\n`);
const s1: Array<[string, (c: Target[]) => Balancer, number]> = [
  ['round-robin', (c) => new RoundRobinBalancer(c), Infinity],
  ['least-request', (c) => new LeastRequestBalancer(c), Infinity],
  ['least-load, metrics every 100 ms', (c) => new LeastLoadBalancer(c), 100],
  ['least-load, metrics every 20 ms', (c) => new LeastLoadBalancer(c), 20],
  ['least-load, metrics every 1 ms', (c) => new LeastLoadBalancer(c), 1],
];
for (const seed of [1, 2]) {
  for (const [name, make, pollMs] of s1) {
    const r = simulate(make, { speeds: [1, 1, 1, 3], load: 0.875, seconds: SECONDS, seed, pollMs, prompts: 0, cacheSize: 0, hitTtftFactor: 1, urls: urls(mulberry32(seed)) });
    process.stdout.write(
      `  seed ${seed}  ${name.padEnd(34)} TTFT p50 ${pctl(r.ttft, 50).toFixed(1).padStart(8)}  p90 ${pctl(r.ttft, 90).toFixed(1).padStart(9)}  p99 ${pctl(r.ttft, 99).toFixed(1).padStart(9)} ms  ` +
        `slow replica ${(r.share[3]! * 100).toFixed(1)} %\n`,
    );
  }
}

// Scenario 2: four equal replicas with an LRU of 8 prompt prefixes, 70 % of the all-miss capacity.
for (const prompts of [16, 24]) {
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
