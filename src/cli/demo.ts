/**
 * `inference-gateway demo` (`npm start`): one simulator per reference blueprint, the gateway in
 * front of them on the usual ports, and curl lines equivalent to the reference README's
 * "Accessing Deployed Models" block that work when pasted.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gateway } from '../gateway.js';
import { Simulator } from '../sim/index.js';
import { generateKey } from './keygen.js';

/** DemoModel is one simulated blueprint of the demo. */
interface DemoModel {
  name: string;
  served: string;
  envPrefix: string;
}

const MODELS: readonly DemoModel[] = [
  { name: 'gpt-oss-120b', served: 'openai/gpt-oss-120b', envPrefix: 'DEMO_GPT' },
  { name: 'scout', served: 'Llama-4-Scout-17B-16E-Instruct', envPrefix: 'DEMO_SCOUT' },
  { name: 'maverick', served: 'Llama-4-Maverick-17B-128E-Instruct-FP8', envPrefix: 'DEMO_MAVERICK' },
];

/** demoConfigPath is the committed demo config, found from this module whether run from src/ or dist/. */
export function demoConfigPath(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'demo', 'gateway.yaml');
}

/** RunningDemo is what runDemo started, to stop it again. */
export interface RunningDemo {
  gateway: Gateway;
  simulators: Simulator[];
  keys: Record<string, string>;
  stop(): Promise<void>;
}

/** runDemo starts the simulators and the gateway and prints the curl lines; env may override the DEMO_* listen addresses. */
export async function runDemo(opts: { env?: NodeJS.ProcessEnv; print?: (line: string) => void; ttftMs?: number; itlMs?: number } = {}): Promise<RunningDemo> {
  const print = opts.print ?? ((l: string) => process.stdout.write(`${l}\n`));
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  const simulators: Simulator[] = [];
  const keys: Record<string, string> = {};
  for (const m of MODELS) {
    const sim = new Simulator({ model: m.served, id: m.name, ttftMs: opts.ttftMs ?? 150, itlMs: opts.itlMs ?? 5 });
    const port = await sim.listen(0, '127.0.0.1');
    simulators.push(sim);
    const key = env[`${m.envPrefix}_KEY`] ?? generateKey().key;
    keys[m.name] = key;
    env[`${m.envPrefix}_KEY`] = key;
    env[`${m.envPrefix}_PORT`] = String(port);
  }
  let gateway: Gateway;
  try {
    gateway = new Gateway({ configPath: demoConfigPath(), env });
    await gateway.start();
  } catch (err) {
    await Promise.all(simulators.map((s) => s.close()));
    throw err;
  }
  const base = `http://localhost:${gateway.ports.proxy}`;
  print(`Inference Gateway demo: 3 simulated blueprint models behind ${base}`);
  print(`  status  http://localhost:${gateway.ports.status}/status   admin  http://127.0.0.1:${gateway.ports.admin}/models`);
  print(`  dashboard  http://127.0.0.1:${gateway.ports.admin}/ui/`);
  print('');
  for (const m of MODELS) {
    print(`curl -X POST ${base}/ai/models/v1/chat/completions \\`);
    print(`  -H "Content-Type: application/json" \\`);
    print(`  -H "X-Model: ${m.name}" \\`);
    print(`  -H "apikey: ${keys[m.name]}" \\`);
    print(`  -d '{"model": "${m.served}", "messages": [{"role": "user", "content": "What is Kong Gateway?"}], "max_tokens": 200}'`);
    print('');
  }
  print(`# streaming, and the OpenAI-style Authorization header instead of apikey:`);
  print(`curl -N ${base}/ai/models/v1/chat/completions -H "Content-Type: application/json" -H "X-Model: scout" \\`);
  print(`  -H "Authorization: Bearer ${keys.scout}" \\`);
  print(`  -d '{"model": "Llama-4-Scout-17B-16E-Instruct", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 20, "stream": true}'`);
  print('');
  print(`# the models a key may use:`);
  print(`curl ${base}/ai/models/v1/models -H "apikey: ${keys.maverick}"`);
  print('');
  print('Ctrl-C stops everything.');
  return {
    gateway,
    simulators,
    keys,
    stop: async () => {
      await gateway.stop();
      await Promise.all(simulators.map((s) => s.close()));
    },
  };
}
