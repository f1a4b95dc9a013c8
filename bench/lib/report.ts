/**
 * The ending every benchmark shares: print the markdown report, keep a copy in bench/results/
 * (unless BENCH_NO_WRITE=1), and turn the main promise into an exit code.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const RESULTS = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'results');

/** publishReport prints a report and writes it to bench/results/<fileName>. */
export function publishReport(text: string, fileName: string): void {
  process.stdout.write(`\n${text}\n`);
  if (process.env.BENCH_NO_WRITE === '1') return;
  const file = join(RESULTS, fileName);
  writeFileSync(file, `${text}\n`);
  process.stdout.write(`written: ${file}\n`);
}

/**
 * runBench runs a benchmark's main: exit 0 (or process.exitCode) on success, 1 after cleanup on
 * failure. SIGINT/SIGTERM run the cleanup and exit 130; a second signal exits at once.
 */
export function runBench(name: string, main: () => Promise<void>, cleanup: () => Promise<void> = async () => {}): void {
  let isInterrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (isInterrupted) process.exit(130);
      isInterrupted = true;
      process.stderr.write(`\n${signal}: stopping ${name}'s child processes ...\n`);
      // The 'exit' handler in procs.ts SIGKILLs whatever is still running.
      cleanup().finally(() => process.exit(130));
    });
  }
  main().then(
    () => process.exit(process.exitCode ?? 0),
    (err: unknown) => {
      process.stderr.write(`${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      cleanup().finally(() => process.exit(1));
    },
  );
}
