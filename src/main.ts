#!/usr/bin/env node
/**
 * The `inference-gateway` command: parses arguments and hands over; no logic lives here.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, checkStart, describeSnapshot, compileSnapshot, formatIssues, loadConfigFile } from './config/index.js';
import { Gateway } from './gateway.js';
import { runDemo } from './cli/demo.js';
import { fullGc } from './cli/full-gc.js';
import { generateKey } from './cli/keygen.js';
import { runSimulator } from './sim/index.js';

// package.json sits one level above both src/main.ts and dist/main.js; read at run time, so the
// version printed is the installed package's.
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('inference-gateway')
  .description('One OpenAI-compatible endpoint in front of self-hosted LLM servers.')
  .version(version, '-V, --version', 'print the version')
  .showHelpAfterError();

const toInt = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
};
const toRate = (v: string): number => {
  const n = Number(v);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('expected a number from 0 to 1');
  return n;
};

/** reportConfigError prints every config issue and returns the exit code. */
function reportConfigError(err: unknown): number {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.issues.length} configuration error${err.issues.length === 1 ? '' : 's'}:\n${formatIssues(err.issues)}\n`);
    return 1;
  }
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
}

/** stopOnSignals stops gracefully on SIGINT/SIGTERM (a second signal exits at once). */
function stopOnSignals(stop: () => Promise<void>): void {
  let isStopping = false;
  const onSignal = (): void => {
    if (isStopping) process.exit(130);
    isStopping = true;
    stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

program
  .command('start')
  .description('run the gateway')
  .option('-c, --config <file>', 'configuration file (YAML or JSON)', './gateway.yaml')
  .option('-w, --watch', 'reload when the configuration file changes')
  .action(async (o: { config: string; watch?: boolean }) => {
    let gateway: Gateway;
    try {
      gateway = new Gateway({ configPath: o.config, afterCompile: fullGc });
      await gateway.start();
    } catch (err) {
      process.exit(reportConfigError(err));
    }
    if (o.watch) gateway.watch();
    process.on('SIGHUP', () => gateway.tryReload());
    stopOnSignals(() => gateway.stop());
  });

program
  .command('validate')
  .description('check a configuration file as start would; exit 0 if valid (warnings printed), else print every error and exit 1')
  .option('-c, --config <file>', 'configuration file (YAML or JSON)', './gateway.yaml')
  .option('--print', 'print the compiled routing table (keys only counted)')
  .action((o: { config: string; print?: boolean }) => {
    try {
      const loaded = loadConfigFile(o.config);
      const warnings = checkStart(loaded, dirname(resolve(o.config)));
      const snapshot = compileSnapshot(loaded);
      for (const note of loaded.notes) process.stderr.write(`note: ${note}\n`);
      if (warnings.length > 0) process.stderr.write(`${warnings.length} warning${warnings.length === 1 ? '' : 's'}:\n${formatIssues(warnings)}\n`);
      process.stdout.write(o.print ? `${JSON.stringify(describeSnapshot(snapshot), null, 2)}\n` : `${o.config}: ok (${snapshot.models.length} models)\n`);
    } catch (err) {
      process.exit(reportConfigError(err));
    }
  });

program
  .command('simulate')
  .description('run a vLLM-compatible model server (for demos, tests and benchmarks)')
  .option('-p, --port <port>', 'port to listen on', toInt, 9000)
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('-m, --model <id>', 'served model id', 'sim-model')
  .option('--ttft-ms <ms>', 'delay before the first token', toInt, 0)
  .option('--itl-ms <ms>', 'delay between tokens', toInt, 0)
  .option('--max-concurrency <n>', 'requests generating at once; more wait in a queue (0: unlimited)', toInt, 0)
  .option('--fail-rate <p>', 'share of requests answered with 500', toRate, 0)
  .option('--id <id>', 'instance id sent as X-Simulator-Id and the simulator_id metric label (default host:port)')
  .option(
    '--speed-factor <x>',
    'multiplies every generation delay (ttft, itl); 3 = three times slower',
    (v: string): number => {
      const n = Number(v);
      if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError('expected a positive number');
      return n;
    },
    1,
  )
  .option('--scheduling-policy <policy>', 'queue order: fcfs, or priority (the body\'s "priority", lower first, as vLLM\'s --scheduling-policy priority)', (v: string): 'fcfs' | 'priority' => {
    if (v !== 'fcfs' && v !== 'priority') throw new InvalidArgumentError('expected fcfs or priority');
    return v;
  }, 'fcfs')
  .option('--ttft-per-waiting-ms <ms>', 'extra ttft per request still waiting in the queue when one starts', toInt, 0)
  .option('--prefill-ms-per-token <ms>', 'extra ttft per prompt token (prefill cost)', (v: string): number => {
    const n = Number(v);
    if (!(Number.isFinite(n) && n >= 0)) throw new InvalidArgumentError('expected a number >= 0');
    return n;
  }, 0)
  .option('--kv-cache-tokens <n>', 'KV-cache size in tokens: running requests hold their prompt + generated tokens, and a request waits while its blocks do not fit (0: not modelled)', toInt, 0)
  .option('--non-stream-decode', 'non-streamed answers also spend one --itl-ms per generated token, as streamed ones do', false)
  .option('--prefix-cache-size <n>', 'prompt prefixes kept in an LRU prefix cache (0: off)', toInt, 0)
  .option('--prefix-chars <n>', 'prompt characters that form the cached prefix', toInt, 256)
  .option('--prefix-hit-ttft-factor <x>', 'ttft multiplier on a prefix-cache hit', toRate, 0.2)
  .option('--prefix-block-chars <n>', 'cache the whole prompt in blocks of n characters, --prefix-cache-size of them (0: the first --prefix-chars per request)', toInt, 0)
  .option('--lora-modules <a,b>', 'LoRA adapters served as extra model ids', (v: string): string[] => v.split(',').filter((x) => x !== ''))
  .option('--max-loras <n>', 'adapters loaded at once; another one is loaded (a longer ttft) in place of the least recently used', toInt, 1)
  .option('--lora-load-ms <ms>', 'ttft added when an adapter has to be loaded', toInt, 100)
  .action(
    async (o: {
      port: number;
      host: string;
      model: string;
      ttftMs: number;
      itlMs: number;
      maxConcurrency: number;
      failRate: number;
      id?: string;
      speedFactor: number;
      ttftPerWaitingMs: number;
      prefillMsPerToken: number;
      kvCacheTokens: number;
      nonStreamDecode: boolean;
      schedulingPolicy: 'fcfs' | 'priority';
      prefixCacheSize: number;
      prefixChars: number;
      prefixHitTtftFactor: number;
      prefixBlockChars: number;
      loraModules?: string[];
      maxLoras: number;
      loraLoadMs: number;
    }) => {
      const sim = await runSimulator({
        port: o.port,
        host: o.host,
        model: o.model,
        ttftMs: o.ttftMs,
        itlMs: o.itlMs,
        maxConcurrency: o.maxConcurrency,
        failRate: o.failRate,
        id: o.id,
        speedFactor: o.speedFactor,
        ttftPerWaitingMs: o.ttftPerWaitingMs,
        prefillMsPerToken: o.prefillMsPerToken,
        kvCacheTokens: o.kvCacheTokens,
        nonStreamDecode: o.nonStreamDecode,
        schedulingPolicy: o.schedulingPolicy,
        prefixCacheSize: o.prefixCacheSize,
        prefixChars: o.prefixChars,
        prefixHitTtftFactor: o.prefixHitTtftFactor,
        prefixBlockChars: o.prefixBlockChars,
        ...(o.loraModules === undefined ? {} : { loraModules: o.loraModules }),
        maxLoras: o.maxLoras,
        loraLoadMs: o.loraLoadMs,
      });
      stopOnSignals(() => sim.close());
    },
  );

program
  .command('demo')
  .description('simulated models for the three reference blueprints behind a gateway on 8000/8100/8001')
  .action(async () => {
    try {
      const demo = await runDemo();
      stopOnSignals(() => demo.stop());
    } catch (err) {
      process.exit(reportConfigError(err));
    }
  });

program
  .command('keygen')
  .description('print a strong API key and its "sha256:" config form, one per line')
  .action(() => {
    const { key, hashed } = generateKey();
    process.stdout.write(`${key}\n${hashed}\n`);
  });

await program.parseAsync(process.argv);
