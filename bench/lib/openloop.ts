/**
 * An open-loop load generator for streaming OpenAI requests: requests start on a fixed schedule
 * (Poisson arrivals from a seeded random source, so every compared setup gets the very same
 * arrival times and bodies), whether or not earlier ones have finished. A closed loop of N workers
 * would slow down with the system under test and hide its queueing; an open loop keeps offering
 * the same load, so a balancer that overloads one replica shows it as growing time to first token.
 *
 * Per request it records when it was sent, when the first SSE event carrying generated content
 * arrived (the role-only opening event of a chat stream does not count), when the stream ended and
 * how: ok (ends with `data: [DONE]`), failed (status, broken stream, error) or unfinished (still
 * running when the run was cut off). The keep-alive Pool has no connection limit, so a request is
 * never queued inside the load generator: its send time is when it goes on the wire.
 */
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { StringDecoder } from 'node:string_decoder';
import { Pool } from 'undici';
import { Failures } from './loadgen.js';

/** mulberry32 is a small seeded PRNG returning numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** poissonArrivals returns arrival offsets in ms (ascending) of a Poisson process of `ratePerSec` over `seconds`. */
export function poissonArrivals(ratePerSec: number, seconds: number, random: () => number): Float64Array {
  const out: number[] = [];
  const meanGapMs = 1000 / ratePerSec;
  let t = 0;
  for (;;) {
    // 1 - random() is in (0, 1]: no log(0).
    t += -Math.log(1 - random()) * meanGapMs;
    if (t >= seconds * 1000) break;
    out.push(t);
  }
  return Float64Array.from(out);
}

/** SseScan follows one SSE response: when the first content event arrives and whether it ends with [DONE]. */
export class SseScan {
  readonly #decoder = new StringDecoder('utf8');
  #pending = '';
  #tail = '';
  hasContent = false;

  /** push feeds a body chunk; true when this chunk brought the first event with generated content. */
  push(chunk: Buffer): boolean {
    const text = this.#decoder.write(chunk);
    this.#tail = (this.#tail + text).slice(-32);
    if (this.hasContent) return false;
    this.#pending += text;
    let cut: number;
    while ((cut = this.#pending.indexOf('\n\n')) !== -1) {
      const event = this.#pending.slice(0, cut);
      this.#pending = this.#pending.slice(cut + 2);
      if (hasContent(event)) {
        this.hasContent = true;
        this.#pending = '';
        return true;
      }
    }
    return false;
  }

  /** isDone tells whether the stream so far ends with the `data: [DONE]` event. */
  get isDone(): boolean {
    return this.#tail.endsWith('data: [DONE]\n\n');
  }
}

/** hasContent tells whether one SSE event is a chunk with non-empty generated text (chat delta.content or completion text). */
function hasContent(event: string): boolean {
  for (const line of event.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    try {
      const chunk = JSON.parse(line.slice(6)) as { choices?: Array<{ delta?: { content?: unknown }; text?: unknown }> };
      const c = chunk.choices?.[0];
      const t = c?.delta?.content ?? c?.text;
      if (typeof t === 'string' && t !== '') return true;
    } catch {
      // not JSON: not content
    }
  }
  return false;
}

/** Outcome codes of one request. */
export const PENDING = 0;
export const OK = 1;
export const FAILED = 2;
export const UNFINISHED = 3;

/** OpenLoopOptions describe one open-loop run. */
export interface OpenLoopOptions {
  origin: string;
  /** origins, when given, replace origin: request i goes to origins[i % origins.length] (a cloud load balancer's round-robin over gateway replicas). */
  origins?: readonly string[];
  path: string;
  headers: Record<string, string>;
  /** arrivals are send offsets in ms from t0, ascending. */
  arrivals: Float64Array;
  /** bodies[i] is the body of request i. */
  bodies: readonly Buffer[];
  /** t0 is the performance.now() time the schedule starts at (may be slightly in the future). */
  t0: number;
  /** graceMs is how long after the last arrival unfinished requests may still finish before they are cut off. */
  graceMs: number;
  /** replicaIds, when given, map the `x-simulator-id` response header to a replica index (OpenLoopResult.replica). */
  replicaIds?: readonly string[];
  /** requestIdPrefix, when given, sends request i with `X-Request-Id: <prefix><i>`, so the gateway's access log line of each request can be found. */
  requestIdPrefix?: string;
}

/** OpenLoopResult holds per-request timings (performance.now() ms; 0 = did not happen). */
export interface OpenLoopResult {
  sentAt: Float64Array;
  firstAt: Float64Array;
  endAt: Float64Array;
  outcome: Uint8Array;
  /** lag[i] is how late request i went out relative to its schedule (ms). */
  lag: Float64Array;
  /** cutAt is when unfinished requests were aborted (performance.now() ms). */
  cutAt: number;
  failures: Failures;
  /** maxInflight is the largest number of requests in flight at once. */
  maxInflight: number;
  /** replica[i] is the index in replicaIds of the simulator that answered request i (-1: unknown or no answer). */
  replica: Int8Array;
}

/** openLoop sends every request at its scheduled time and resolves once all ended or were cut off graceMs after the last arrival. */
export async function openLoop(o: OpenLoopOptions): Promise<OpenLoopResult> {
  const n = o.arrivals.length;
  const r: OpenLoopResult = {
    sentAt: new Float64Array(n),
    firstAt: new Float64Array(n),
    endAt: new Float64Array(n),
    outcome: new Uint8Array(n),
    lag: new Float64Array(n),
    cutAt: 0,
    failures: new Failures(),
    maxInflight: 0,
    replica: new Int8Array(n).fill(-1),
  };
  // connections: null = no limit, so nothing ever waits for a free connection on our side.
  const pools = (o.origins ?? [o.origin]).map((origin) => new Pool(origin, { connections: null, pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 600_000 }));
  const abort = new AbortController();
  // One abort listener per request in flight: hundreds, by design.
  setMaxListeners(0, abort.signal);
  let inflight = 0;
  const running: Promise<void>[] = [];

  const one = async (i: number): Promise<void> => {
    const sent = performance.now();
    r.sentAt[i] = sent;
    inflight++;
    if (inflight > r.maxInflight) r.maxInflight = inflight;
    try {
      const headers = o.requestIdPrefix === undefined ? o.headers : { ...o.headers, 'x-request-id': `${o.requestIdPrefix}${i}` };
      const res = await pools[i % pools.length]!.request({ path: o.path, method: 'POST', headers, body: o.bodies[i]!, signal: abort.signal });
      if (o.replicaIds !== undefined) {
        const id = res.headers['x-simulator-id'];
        r.replica[i] = typeof id === 'string' ? o.replicaIds.indexOf(id) : -1;
      }
      if (res.statusCode !== 200) {
        const text = await res.body.text();
        r.outcome[i] = FAILED;
        r.failures.add(`status ${res.statusCode}: ${text.slice(0, 120)}`);
        return;
      }
      const scan = new SseScan();
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        if (scan.push(chunk)) r.firstAt[i] = performance.now();
      }
      r.endAt[i] = performance.now();
      if (scan.isDone && scan.hasContent) r.outcome[i] = OK;
      else {
        r.outcome[i] = FAILED;
        r.failures.add(scan.hasContent ? 'stream ended without [DONE]' : 'stream without content');
      }
    } catch (err) {
      if (abort.signal.aborted) r.outcome[i] = UNFINISHED;
      else {
        r.outcome[i] = FAILED;
        const code = (err as { code?: unknown }).code;
        r.failures.add(err instanceof Error ? (typeof code === 'string' ? `${code}: ${err.message}` : err.message) : String(err));
      }
    } finally {
      inflight--;
    }
  };

  let next = 0;
  while (next < n) {
    const now = performance.now() - o.t0;
    while (next < n && o.arrivals[next]! <= now) {
      r.lag[next] = now - o.arrivals[next]!;
      running.push(one(next));
      next++;
    }
    if (next < n) await sleep(o.arrivals[next]! - (performance.now() - o.t0));
  }
  // Give what is still running graceMs, then cut it off (the gateway sees the disconnects and cancels upstream).
  const all = Promise.all(running);
  let timer: NodeJS.Timeout | undefined;
  const cut = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, o.graceMs);
  });
  await Promise.race([all, cut]);
  clearTimeout(timer);
  r.cutAt = performance.now();
  abort.abort();
  await all;
  await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  return r;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms > 0 ? ms : 0));
}
