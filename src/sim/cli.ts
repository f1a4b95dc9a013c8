/**
 * Entry point of `inference-gateway simulate`: starts one simulator and announces where it listens,
 * so a demo or benchmark script can point a gateway upstream at it.
 */
import { Simulator } from './simulator.js';
import type { SimulatorOptions } from './simulator.js';

/**
 * SimulatorCliOptions are the `simulate` command's options: SimulatorOptions plus where to listen, and
 * the prefix cache as flat flags (`--prefix-cache-size` > 0 turns it on).
 */
export interface SimulatorCliOptions extends SimulatorOptions {
  port: number;
  host: string;
  /** Prefixes the prefix cache remembers (0 or unset: off). */
  prefixCacheSize?: number;
  /** Prompt characters forming the prefix (default 256). */
  prefixChars?: number;
  /** ttft multiplier on a prefix-cache hit (default 0.2). */
  prefixHitTtftFactor?: number;
  /** Block size in characters: the cache holds prompt blocks, prefixCacheSize of them (0 or unset: whole prefixes). */
  prefixBlockChars?: number;
}

/** runSimulator starts a Simulator on opts.host:opts.port and prints one "listening" line to stdout. */
export async function runSimulator(opts: SimulatorCliOptions): Promise<Simulator> {
  const { port, host, prefixCacheSize, prefixChars, prefixHitTtftFactor, prefixBlockChars, ...simOpts } = opts;
  if (simOpts.prefixCache === undefined && prefixCacheSize !== undefined && prefixCacheSize > 0) {
    simOpts.prefixCache = { capacity: prefixCacheSize, prefixChars: prefixChars ?? 256, hitTtftFactor: prefixHitTtftFactor ?? 0.2, blockChars: prefixBlockChars ?? 0 };
  }
  const sim = new Simulator(simOpts);
  const bound = await sim.listen(port, host);
  const shownHost = host.includes(':') ? `[${host}]` : host;
  process.stdout.write(`simulator ${opts.model} listening on http://${shownHost}:${bound}\n`);
  return sim;
}
