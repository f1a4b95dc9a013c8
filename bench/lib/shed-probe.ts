/**
 * A light probe process for bench/fairness.ts: sends sheddable requests on one keep-alive
 * connection of its own, one at a time, spread evenly over a window, and writes what it saw as
 * JSON. Run apart from the load generator, its timings hold no lag of the load generator's event
 * loop (which at several hundred streams a second adds milliseconds to a request sent from it).
 *
 * argv[2] is a JSON ProbePlan; the result (ProbeResult) is written to plan.out.
 */
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Client } from 'undici';

/** ProbePlan is what the parent asks for. */
export interface ProbePlan {
  origin: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** startAt / endAt bound the window (epoch ms); `count` probes are spread evenly over it. */
  startAt: number;
  endAt: number;
  count: number;
  /** idPrefix + index is each probe's X-Request-Id, so the gateway's access log line can be found. */
  idPrefix: string;
  out: string;
}

/** ProbeResult holds, per probe, its request id, status and client-observed milliseconds (head sent to body read). */
export interface ProbeResult {
  ids: string[];
  status: number[];
  ms: number[];
  /** warmupStatus is the status of the unmeasured request that opened the connection. */
  warmupStatus: number;
}

async function main(): Promise<void> {
  const plan = JSON.parse(process.argv[2]!) as ProbePlan;
  const client = new Client(plan.origin, { pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 600_000 });
  const body = Buffer.from(plan.body);
  const send = async (id: string): Promise<number> => {
    const res = await client.request({ method: 'POST', path: plan.path, headers: { ...plan.headers, 'x-request-id': id }, body, signal: AbortSignal.timeout(30_000) });
    await res.body.dump();
    return res.statusCode;
  };
  const sleepUntil = (epochMs: number) => new Promise((r) => setTimeout(r, Math.max(0, epochMs - Date.now())));
  const result: ProbeResult = { ids: [], status: [], ms: [], warmupStatus: 0 };
  // One unmeasured request first, just before the window: it opens the connection.
  await sleepUntil(plan.startAt - 200);
  result.warmupStatus = await send(`${plan.idPrefix}warmup`);
  const gap = (plan.endAt - plan.startAt) / plan.count;
  for (let i = 0; i < plan.count; i++) {
    await sleepUntil(plan.startAt + i * gap);
    const id = `${plan.idPrefix}${i}`;
    const t = performance.now();
    const status = await send(id);
    result.ms.push(performance.now() - t);
    result.ids.push(id);
    result.status.push(status);
  }
  await client.close();
  writeFileSync(plan.out, JSON.stringify(result));
}

main().catch((err: unknown) => {
  process.stderr.write(`shed probe failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
