/**
 * Entry point of `inference-gateway simulate`: starts one simulator and announces where it listens,
 * so a demo or benchmark script can point a gateway upstream at it.
 */
import { Simulator } from './simulator.js';
import type { SimulatorOptions } from './simulator.js';

/** runSimulator starts a Simulator on opts.host:opts.port and prints one "listening" line to stdout. */
export async function runSimulator(opts: SimulatorOptions & { port: number; host: string }): Promise<Simulator> {
  const { port, host, ...simOpts } = opts;
  const sim = new Simulator(simOpts);
  const bound = await sim.listen(port, host);
  const shownHost = host.includes(':') ? `[${host}]` : host;
  process.stdout.write(`simulator ${opts.model} listening on http://${shownHost}:${bound}\n`);
  return sim;
}
