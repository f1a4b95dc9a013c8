import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { runDemo } from '../../src/cli/demo.js';
import { hashKey } from '../../src/auth/index.js';
import { Cleanup, deadUrl, post, startSim, writeConfig } from '../helpers/harness.js';

const freePort = async (): Promise<number> => Number(new URL(await deadUrl()).port);

const MAIN = resolve('src/main.ts');
const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', env: { ...process.env, IGW_LOG_LEVEL: 'silent' } });

describe('inference-gateway command', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('validate exits 0 for a good file', () => {
    const path = writeConfig({ blueprints: [{ file: resolve('examples/blueprints/example_vllm_gpt_oss_120b.json') }] });
    const r = cli('validate', '--config', path);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ok \(1 models\)/);
  });

  it('validate exits 1 and prints every error with file and field, never a key', () => {
    const path = writeConfig({
      models: [
        { name: 'a', path: '/x/', api_keys: ['top-secret-key'], targets: [{ url: 'http://h:1' }] },
        { name: 'b', api_keys: ['top-secret-key'], targets: [{ url: 'http://h:1' }] },
      ],
    });
    const r = cli('validate', '--config', path);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /2 configuration errors/);
    assert.match(r.stderr, /gateway\.yaml:\d+:\d+: models\[0\]\.path: /);
    assert.match(r.stderr, /gateway\.yaml:\d+:\d+: models\[1\]\.api_keys\[0\]: .*key#[0-9a-f]{8}/);
    assert.ok(!r.stderr.includes('top-secret-key'));
  });

  it('validate prints file:line:column, the value given, what was expected and the field meant, never a key', () => {
    const path = writeConfig(
      [
        'models:',
        '  - name: a',
        '    upstream_api_key: "secret with spaces"',
        '    targets: [{ url: "http://h:1" }]',
        '    timeouts: { connect: 10 seconds }',
        '    balancr: least-request',
        '  - name: b',
        'targets:',
        '  - url: http://h:2',
        '',
      ].join('\n'),
    );
    const r = cli('validate', '--config', path);
    assert.equal(r.status, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines[0], '4 configuration errors:', r.stderr);
    assert.match(lines[1]!, /gateway\.yaml:3:23: models\[0\]\.upstream_api_key: got key#[0-9a-f]{8};/);
    assert.match(lines[2]!, /gateway\.yaml:5:26: models\[0\]\.timeouts\.connect: got "10 seconds"; expected a duration such as "500ms", "10s", "5m"/);
    assert.match(lines[3]!, /gateway\.yaml:6:5: models\[0\]\.balancr: .*did you mean "balancer"\?/);
    assert.match(lines[4]!, /gateway\.yaml:8:1: targets: .*field of models\[1\] above it, indented too little/);
    assert.ok(!r.stderr.includes('secret with spaces'));
  });

  it('validate --print shows the compiled routes without keys', () => {
    const path = writeConfig({ models: [{ name: 'a', path: '/p', api_keys: ['top-secret-key'], targets: [{ url: 'http://h:1' }] }] });
    const r = cli('validate', '--config', path, '--print');
    assert.equal(r.status, 0);
    const printed = JSON.parse(r.stdout) as { models: Array<{ name: string; keys: number }> };
    assert.equal(printed.models[0]!.keys, 1);
    assert.ok(!r.stdout.includes('top-secret-key'));
  });

  it('keygen prints a key and its sha256 form', () => {
    const r = cli('keygen');
    const [key, hashed] = r.stdout.trim().split('\n');
    assert.ok(key && key.length >= 32);
    assert.equal(hashed, `sha256:${hashKey(key)}`);
  });

  it('start serves, and stops cleanly on SIGTERM', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const path = writeConfig({ proxy: { listen: '127.0.0.1:0' }, status: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' }, models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'start', '--config', path], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const port = await new Promise<number>((res, rej) => {
      const t = setInterval(() => {
        const m = /"proxy":(\d+)/.exec(err);
        if (m) {
          clearInterval(t);
          res(Number(m[1]));
        }
      }, 20);
      child.once('exit', () => rej(new Error(`exited early: ${err}`)));
    });
    const r = await post(`http://127.0.0.1:${port}/v1/completions`, JSON.stringify({ model: 'm', prompt: 'x', max_tokens: 1 }));
    assert.equal(r.status, 200);
    await r.arrayBuffer();
    const code = await new Promise<number | null>((res) => {
      child.once('exit', (c) => res(c));
      child.kill('SIGTERM');
    });
    assert.equal(code, 0);
  });

  it('SIGTERM during a stream: readiness turns 503, the stream completes, the process exits 0', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const ports = await Promise.all([freePort(), freePort()]);
    const path = writeConfig({ proxy: { listen: `127.0.0.1:${ports[0]}` }, status: { listen: `127.0.0.1:${ports[1]}` }, admin: { listen: '127.0.0.1:0' }, shutdown_grace_s: 10, models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'start', '--config', path], { stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
    const ready = `http://127.0.0.1:${ports[1]}/status/ready`;
    const deadline = Date.now() + 15_000;
    while ((await fetch(ready).then((r) => r.status, () => 0)) !== 200) {
      assert.ok(child.exitCode === null && Date.now() < deadline, 'the gateway process became ready');
      await new Promise((r) => setTimeout(r, 20));
    }
    const res = await post(`http://127.0.0.1:${ports[0]}/v1/chat/completions`, JSON.stringify({ model: 'm', messages: [], max_tokens: 30, stream: true }), { 'x-sim-itl-ms': '30' });
    assert.equal(res.status, 200);
    const body = res.text();
    child.kill('SIGTERM');
    let sawDraining = false;
    for (let i = 0; i < 20 && !sawDraining; i++) {
      sawDraining = (await fetch(ready).then((r) => r.status, () => 0)) === 503;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(sawDraining, 'readiness answered 503 while draining');
    assert.match(await body, /data: \[DONE\]/);
    assert.equal(await exited, 0);
  });

  it('start refuses an admin listener beyond loopback without a token', () => {
    const path = writeConfig({ admin: { listen: '0.0.0.0:0' }, models: [] });
    const r = cli('start', '--config', path);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /admin\.token/);
  });
});

describe('demo', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('prints curl lines that work against the three simulated blueprints', async () => {
    const lines: string[] = [];
    const demo = await runDemo({
      env: { DEMO_PROXY_LISTEN: '127.0.0.1:0', DEMO_STATUS_LISTEN: '127.0.0.1:0', DEMO_ADMIN_LISTEN: '127.0.0.1:0', IGW_LOG_LEVEL: 'silent' },
      print: (l) => lines.push(l),
      ttftMs: 0,
      itlMs: 0,
    });
    cleanup.add(() => demo.stop());
    const text = lines.join('\n');
    // Each curl block: URL, X-Model, apikey and body, taken from what was printed.
    const blocks = [...text.matchAll(/curl -X POST (\S+) \\\n.*\n\s+-H "X-Model: ([^"]+)" \\\n\s+-H "apikey: ([^"]+)" \\\n\s+-d '([^']+)'/g)];
    assert.equal(blocks.length, 3);
    for (const [, url, model, key, body] of blocks) {
      const res = await post(url!, body!, { 'x-model': model!, apikey: key! });
      assert.equal(res.status, 200, model);
      const json = (await res.json()) as { usage: { completion_tokens: number } };
      assert.equal(json.usage.completion_tokens, 200);
    }
    assert.match(text, /Ctrl-C/);
  });
});
