/**
 * How late a Node.js process under test ran its event loop, read from its Prometheus metrics
 * (prom-client's default `nodejs_eventloop_lag_*` gauges). prom-client restarts its loop-delay
 * histogram at each scrape, so a scrape as a window opens and one as it closes give the window's
 * figures. A stall of any cause shows here: busy JavaScript, a GC pause, or the process not
 * running at all. It is a lower bound on the process's own stalls: Node's delay histogram does
 * not record the first sampler tick after a reset, so a stall that begins right at a scrape (the
 * scrape's own work included) is not seen; and a per-tick p99 counts a stall once, where a
 * per-event latency counts it once for every event it held up.
 */
import { metricValue } from './metrics-text.js';

/** LOOP_SAMPLE_MS is prom-client's event-loop sampling interval: each recorded delay includes it. */
export const LOOP_SAMPLE_MS = 10;

/** LoopDelay is one scrape's figures: how late the loop's sampling timer ran (its interval taken out) since the previous scrape. */
export interface LoopDelay {
  p99Ms: number;
  maxMs: number;
}

/** parseLoopDelay reads the figures out of a metrics text (NaN where one is missing). */
export function parseLoopDelay(text: string): LoopDelay {
  const ms = (name: string): number => Math.max(0, metricValue(text, name) * 1000 - LOOP_SAMPLE_MS);
  return { p99Ms: ms('nodejs_eventloop_lag_p99_seconds'), maxMs: ms('nodejs_eventloop_lag_max_seconds') };
}

/** scrapeLoopDelay fetches and parses a metrics endpoint; null when it cannot be read. */
export async function scrapeLoopDelay(url: string): Promise<LoopDelay | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) return null;
    return parseLoopDelay(await res.text());
  } catch {
    return null;
  }
}
