/**
 * A lean HTTP load generator on undici: one keep-alive Pool per origin, request bodies and headers
 * built once, latencies kept in a growable Float64Array (no per-request allocation of ours beyond
 * what undici needs) and percentiles read from the sorted array.
 */
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

/** Endpoint is one side of the comparison: where requests go and with which headers. */
export interface Endpoint {
  name: string;
  pool: Pool;
  path: string;
  headers: Record<string, string>;
}

/** makeEndpoint opens a Pool of `connections` keep-alive connections (pipelining 1) to origin. */
export function makeEndpoint(name: string, origin: string, path: string, headers: Record<string, string>, connections: number): Endpoint {
  const pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 600_000 });
  return { name, pool, path, headers };
}

/** Samples is a growable array of latencies in ms. */
export class Samples {
  #buf = new Float64Array(1 << 16);
  #n = 0;

  get count(): number {
    return this.#n;
  }

  push(v: number): void {
    if (this.#n === this.#buf.length) {
      const bigger = new Float64Array(this.#buf.length * 2);
      bigger.set(this.#buf);
      this.#buf = bigger;
    }
    this.#buf[this.#n++] = v;
  }

  /** sorted returns a sorted copy (TypedArray sort is numeric). */
  sorted(): Float64Array {
    return this.#buf.slice(0, this.#n).sort();
  }
}

/** percentile is the nearest-rank p-th percentile (0 < p <= 100) of a sorted array, NaN if empty. */
export function percentile(sorted: Float64Array, p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const rank = Math.min(n, Math.max(1, Math.ceil((p / 100) * n)));
  return sorted[rank - 1]!;
}

/** Failures counts requests that did not complete with a 200, keeping the first few reasons. */
export class Failures {
  count = 0;
  readonly reasons: string[] = [];

  add(reason: string): void {
    this.count++;
    if (this.reasons.length < 3 && !this.reasons.includes(reason)) this.reasons.push(reason);
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** LoadResult is the outcome of a closed-loop run. */
export interface LoadResult {
  ok: number;
  failures: Failures;
  seconds: number;
  rps: number;
  latencies: Float64Array;
}

/**
 * closedLoop keeps `concurrency` requests in flight for `seconds`: each worker sends a request,
 * reads the whole response, records the latency and sends the next. Throughput counts only 200s.
 */
export async function closedLoop(ep: Endpoint, body: Buffer, concurrency: number, seconds: number): Promise<LoadResult> {
  const samples = new Samples();
  const failures = new Failures();
  const opts = { path: ep.path, method: 'POST' as const, headers: ep.headers, body };
  const pool = ep.pool;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        const res = await pool.request(opts);
        await res.body.dump();
        if (res.statusCode === 200) samples.push(performance.now() - t0);
        else failures.add(`status ${res.statusCode}`);
      } catch (err) {
        failures.add(errorText(err));
        // Do not spin on a dead endpoint.
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - start) / 1000;
  return { ok: samples.count, failures, seconds: elapsed, rps: samples.count / elapsed, latencies: samples.sorted() };
}

/** SequentialResult is per-endpoint latency of one-at-a-time requests. */
export interface SequentialResult {
  latencies: Float64Array;
  failures: Failures;
  /** headerValues are the numeric values of `headerName` seen in 200 responses (sorted). */
  headerValues: Float64Array;
}

/**
 * sequential sends one request at a time, alternating between the endpoints in blocks of
 * `block` requests so both see the same machine conditions, until each sent `count` requests or
 * spent `maxSeconds`. `headerName` (optional) is a numeric response header to collect.
 */
export async function sequential(
  eps: readonly Endpoint[],
  body: Buffer,
  opts: { count: number; maxSeconds: number; block: number; headerName?: string },
): Promise<SequentialResult[]> {
  const state = eps.map(() => ({ samples: new Samples(), header: new Samples(), failures: new Failures(), sent: 0, ms: 0 }));
  const maxMs = opts.maxSeconds * 1000;
  const isDone = (i: number): boolean => state[i]!.sent >= opts.count || state[i]!.ms >= maxMs;
  while (!state.every((_, i) => isDone(i))) {
    for (let i = 0; i < eps.length; i++) {
      if (isDone(i)) continue;
      const ep = eps[i]!;
      const st = state[i]!;
      const reqOpts = { path: ep.path, method: 'POST' as const, headers: ep.headers, body };
      const blockStart = performance.now();
      for (let k = 0; k < opts.block && st.sent < opts.count; k++) {
        st.sent++;
        const t0 = performance.now();
        try {
          const res = await ep.pool.request(reqOpts);
          await res.body.dump();
          const dt = performance.now() - t0;
          if (res.statusCode !== 200) {
            st.failures.add(`status ${res.statusCode}`);
            continue;
          }
          st.samples.push(dt);
          if (opts.headerName !== undefined) {
            const v = Number(res.headers[opts.headerName]);
            if (Number.isFinite(v)) st.header.push(v);
          }
        } catch (err) {
          st.failures.add(errorText(err));
        }
      }
      st.ms += performance.now() - blockStart;
    }
  }
  return state.map((s) => ({ latencies: s.samples.sorted(), failures: s.failures, headerValues: s.header.sorted() }));
}

/** StreamResult is per-endpoint time to first body byte and to the end of streams. */
export interface StreamResult {
  ttfb: Float64Array;
  total: Float64Array;
  failures: Failures;
}

/**
 * streams sends `count` streaming requests to each endpoint, one at a time and alternating between
 * the endpoints, and records the time to the first body chunk and to the end of the stream.
 */
export async function streams(eps: readonly Endpoint[], body: Buffer, count: number): Promise<StreamResult[]> {
  const state = eps.map(() => ({ ttfb: new Samples(), total: new Samples(), failures: new Failures() }));
  for (let n = 0; n < count; n++) {
    for (let i = 0; i < eps.length; i++) {
      const ep = eps[i]!;
      const st = state[i]!;
      const t0 = performance.now();
      try {
        const res = await ep.pool.request({ path: ep.path, method: 'POST', headers: ep.headers, body });
        let first = 0;
        for await (const _chunk of res.body) {
          if (first === 0) first = performance.now();
        }
        const end = performance.now();
        if (res.statusCode !== 200 || first === 0) {
          st.failures.add(res.statusCode !== 200 ? `status ${res.statusCode}` : 'empty stream');
          continue;
        }
        st.ttfb.push(first - t0);
        st.total.push(end - t0);
      } catch (err) {
        st.failures.add(errorText(err));
      }
    }
  }
  return state.map((s) => ({ ttfb: s.ttfb.sorted(), total: s.total.sorted(), failures: s.failures }));
}
