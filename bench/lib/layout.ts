/**
 * How benchmark children are started and where they run: the node arguments that run the
 * inference-gateway CLI (dist/ when it is newer than every file in src/, else tsx; BENCH_ENTRY=tsx|dist
 * forces one), and the two-core pinning layout (gateway on the first allowed CPU, simulators and
 * the load generator on the second; this process pins all of its threads there). Same rules as
 * bench/compare-direct.ts, shared here for benchmarks that came later.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { allowedCpus, hasTaskset, pinSelf } from './procs.js';

/** newestMtime is the latest modification time of any file under dir. */
export function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** CliEntry is how to run the inference-gateway CLI: node arguments and a label for reports. */
export interface CliEntry {
  args: string[];
  label: string;
}

/** cliEntry returns the node arguments that run the CLI of the checkout at root (dist if fresh, else tsx). */
export function cliEntry(root: string): CliEntry {
  const dist = join(root, 'dist', 'main.js');
  const forced = process.env.BENCH_ENTRY;
  if (forced !== undefined && forced !== '' && forced !== 'tsx' && forced !== 'dist') throw new Error(`BENCH_ENTRY must be "tsx" or "dist", got "${forced}"`);
  const isDistFresh = existsSync(dist) && statSync(dist).mtimeMs > newestMtime(join(root, 'src'));
  if (forced === 'dist' || (forced !== 'tsx' && isDistFresh)) {
    if (!existsSync(dist)) throw new Error('BENCH_ENTRY=dist but dist/main.js does not exist (npm run build)');
    return { args: [dist], label: `node dist/main.js${isDistFresh ? '' : ' (STALE: older than src/)'}` };
  }
  return { args: ['--import', 'tsx', join(root, 'src', 'main.ts')], label: 'node --import tsx src/main.ts' };
}

/** Layout says which CPU the gateway and the load side (simulators + load generator) run on; null = unpinned. */
export interface Layout {
  gatewayCpu: number | null;
  loadCpu: number | null;
  note: string;
}

/** pinLayout pins this process to the load CPU and says where the children go. */
export function pinLayout(loadSide = 'simulators + load generator'): Layout {
  const cpus = allowedCpus();
  if (!hasTaskset()) {
    return { gatewayCpu: null, loadCpu: null, note: `WARNING: taskset not found; gateway, ${loadSide} run UNPINNED (figures are noisier)` };
  }
  if (cpus === null || cpus.length < 2) {
    return { gatewayCpu: null, loadCpu: null, note: `WARNING: fewer than 2 CPUs allowed (${cpus?.join(',') ?? '?'}); running UNPINNED` };
  }
  const [gatewayCpu, loadCpu] = [cpus[0]!, cpus[1]!];
  try {
    pinSelf(loadCpu);
  } catch (err) {
    return { gatewayCpu: null, loadCpu: null, note: `WARNING: taskset failed (${err instanceof Error ? err.message : String(err)}); running UNPINNED` };
  }
  const extra = cpus.length > 2 ? ` (CPUs ${cpus.slice(2).join(',')} unused)` : '';
  return { gatewayCpu, loadCpu, note: `pinned: gateway on CPU ${gatewayCpu}; ${loadSide} on CPU ${loadCpu}${extra}` };
}
