/**
 * `start --watch` and SIGHUP as an operator runs them: a real gateway process whose stdout and
 * stderr go to a log file in the config's own folder, reloads counted with
 * igw_config_reloads_total{result}.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { Gateway } from '../../src/gateway.js';
import { Cleanup, LineCapture, chat, post, startSim, tempDir } from '../helpers/harness.js';
import { freePort, startGatewayProcess, waitFor } from '../helpers/gateway-process.js';
import { ConfigMapVolume } from '../helpers/kubernetes.js';
import { parsePrometheus, valueOf } from '../helpers/prometheus.js';

const RELOAD_FAILED = 'config reload failed; the previous configuration keeps serving';

describe('--watch', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('reloads once per change of the config, a blueprint file or a recipe in an imported folder, and never for a log written next to them', async () => {
    const sim = await startSim(cleanup, { model: 'sim' });
    const [proxyPort, statusPort] = [await freePort(), await freePort()];
    const dir = tempDir();
    mkdirSync(join(dir, 'recipes'));
    const recipe = (name: string): string => JSON.stringify({ deployment_name: name, recipe_inference_gateway: { model_name: name } });
    writeFileSync(join(dir, 'b.json'), recipe('b'));
    writeFileSync(join(dir, 'recipes', 'c.json'), recipe('c'));
    const config = (models: string[]): string =>
      stringify({
        proxy: { listen: `127.0.0.1:${proxyPort}` },
        status: { listen: `127.0.0.1:${statusPort}` },
        admin: { listen: '127.0.0.1:0' },
        log: { level: 'info' },
        models: models.map((name) => ({ name, targets: [{ url: sim.url }] })),
        blueprints: [
          { file: './b.json', targets: [{ url: sim.url }] },
          { dir: './recipes', targets: [{ url: sim.url }] },
        ],
      });
    const configPath = join(dir, 'gateway.yaml');
    writeFileSync(configPath, config(['a']));

    // `start -c gateway.yaml --watch > gw.log 2>&1`: the log lands in the config's folder.
    const logPath = join(dir, 'gw.log');
    const logFd = openSync(logPath, 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', resolve('src/main.ts'), 'start', '--config', configPath, '--watch'], {
      stdio: ['ignore', logFd, logFd],
      env: { ...process.env, IGW_LOG_LEVEL: 'info' },
    });
    closeSync(logFd);
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    cleanup.add(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    });
    const statusUrl = `http://127.0.0.1:${statusPort}`;
    await waitFor('the gateway to be ready', async () => (await fetch(`${statusUrl}/status/ready`).then((r) => r.status, () => 0)) === 200, 20_000);

    const reloads = async (): Promise<{ applied: number; unchanged: number; failed: number }> => {
      const samples = parsePrometheus(await (await fetch(`${statusUrl}/metrics`)).text());
      const of = (result: string): number => valueOf(samples, 'igw_config_reloads_total', { result });
      return { applied: of('applied'), unchanged: of('unchanged'), failed: of('failed') };
    };
    const serves = async (model: string): Promise<boolean> => {
      const res = await post(`http://127.0.0.1:${proxyPort}/v1/chat/completions`, chat('sim'), { 'x-model': model });
      await res.arrayBuffer();
      return res.status === 200;
    };
    assert.ok(await serves('b'));
    assert.ok(await serves('c'));

    // Something else keeps writing into both folders: a log every 10 ms, for the whole test.
    let isAppending = true;
    const appender = (async () => {
      for (let i = 0; isAppending; i++) {
        appendFileSync(logPath, `line ${i}\n`);
        appendFileSync(join(dir, 'recipes', 'notes.log'), `line ${i}\n`);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    cleanup.add(async () => {
      isAppending = false;
      await appender;
    });
    const appendFor = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    await appendFor(3000);
    assert.deepEqual(await reloads(), { applied: 0, unchanged: 0, failed: 0 }, '3 s of log lines next to the config reload nothing');

    // An edit in place.
    writeFileSync(configPath, config(['a', 'a2']));
    await waitFor('the edit to be applied', async () => (await reloads()).applied === 1 && (await serves('a2')));
    // An editor's save: a new file renamed over the old one.
    writeFileSync(`${configPath}.tmp`, config(['a', 'a3']));
    renameSync(`${configPath}.tmp`, configPath);
    await waitFor('the replaced file to be applied', async () => (await reloads()).applied === 2 && (await serves('a3')));
    // The same bytes written again: nothing to reload.
    writeFileSync(configPath, readFileSync(configPath));
    // A blueprint file the config imports.
    writeFileSync(join(dir, 'b.json'), recipe('b2'));
    await waitFor('the blueprint change to be applied', async () => (await reloads()).applied === 3 && (await serves('b2')));
    // A new recipe in an imported folder.
    writeFileSync(join(dir, 'recipes', 'd.json'), recipe('d'));
    await waitFor('the new recipe to be applied', async () => (await reloads()).applied === 4 && (await serves('d')));

    isAppending = false;
    await appender;
    assert.deepEqual(await reloads(), { applied: 4, unchanged: 0, failed: 0 }, 'one reload per change, nothing else');
    assert.ok(child.exitCode === null, 'the gateway is still running');
  });
});

describe('--watch on a mounted ConfigMap', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('follows a kubelet swap that changes only a recipe in an imported folder (the folder itself is a symlink through ..data)', async () => {
    const sim = await startSim(cleanup, { model: 'sim' });
    const recipe = (name: string): string => JSON.stringify({ deployment_name: name, recipe_inference_gateway: { model_name: name } });
    const config = stringify({
      proxy: { listen: '127.0.0.1:0' },
      status: { listen: '127.0.0.1:0' },
      admin: { listen: '127.0.0.1:0' },
      log: { access_log: false },
      blueprints: [{ dir: './recipes', targets: [{ url: sim.url }] }],
    });
    const vol = new ConfigMapVolume(tempDir(), { 'gateway.yaml': config, 'recipes/c.json': recipe('c') });
    const gateway = new Gateway({ configPath: join(vol.dir, 'gateway.yaml'), logger: pino({ level: 'warn' }, new LineCapture()), shutdownGraceMs: 100 });
    const ports = await gateway.start();
    cleanup.add(() => gateway.stop());
    gateway.watch();
    const serves = async (model: string): Promise<boolean> => {
      const res = await post(`http://127.0.0.1:${ports.proxy}/v1/chat/completions`, chat('sim'), { 'x-model': model });
      await res.arrayBuffer();
      return res.status === 200;
    };
    assert.ok(await serves('c'));
    vol.update({ 'gateway.yaml': config, 'recipes/c.json': recipe('c'), 'recipes/d.json': recipe('d') });
    await waitFor('the new recipe to be served', () => serves('d'));
    // A second swap: the watches moved to the folder the first one made.
    vol.update({ 'gateway.yaml': config, 'recipes/e.json': recipe('e') });
    await waitFor('the second swap to be served', async () => (await serves('e')) && !(await serves('c')));
  });
});

describe('SIGHUP', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('a failed reload logs the same JSON line as a failed --watch reload, with every issue', async () => {
    const sim = await startSim(cleanup, { model: 'sim' });
    const [proxyPort, statusPort] = [await freePort(), await freePort()];
    const base = { proxy: { listen: `127.0.0.1:${proxyPort}` }, status: { listen: `127.0.0.1:${statusPort}` }, admin: { listen: '127.0.0.1:0' }, log: { access_log: false } };
    const configPath = join(tempDir(), 'gateway.yaml');
    writeFileSync(configPath, stringify({ ...base, models: [{ name: 'a', targets: [{ url: sim.url }] }] }));
    const gw = await startGatewayProcess(cleanup, { configPath, statusPort });
    writeFileSync(configPath, stringify({ ...base, models: [{ name: 'a', path: 'no-slash', targets: [{ url: sim.url }] }, { name: 'b', targets: [] }] }));
    gw.child.kill('SIGHUP');
    const line = await waitFor('the failed reload to be logged', () =>
      gw
        .stderr()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: number; msg: string; issues?: Array<{ file: string; field: string; message: string }> })
        .find((l) => l.msg === RELOAD_FAILED),
    );
    assert.equal(line.level, 50);
    assert.deepEqual(line.issues!.map((i) => i.field).sort(), ['models[0].path', 'models[1].name'].sort());
    assert.ok(line.issues!.every((i) => i.file.includes('gateway.yaml') && i.message.length > 0));
    assert.ok(!/configuration error/.test(gw.stderr()), 'no plain-text report');
    assert.ok(gw.isAlive());
    const res = await post(`http://127.0.0.1:${proxyPort}/v1/chat/completions`, chat('sim'), { 'x-model': 'a' });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  });
});
