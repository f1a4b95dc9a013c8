import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { runDemo } from '../../src/cli/demo.js';
import { hashKey } from '../../src/auth/index.js';
import { Cleanup, deadUrl, post, startSim, tempDir, writeConfig } from '../helpers/harness.js';
import { startGatewayProcess } from '../helpers/gateway-process.js';

const freePort = async (): Promise<number> => Number(new URL(await deadUrl()).port);

const MAIN = resolve('src/main.ts');
const cli = (...args: string[]) => cliWith({}, ...args);
const cliWith = (env: Record<string, string>, ...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, IGW_LOG_LEVEL: 'silent', ...env } });

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

  it('validate refuses what start refuses, every reason at once, with file and field', () => {
    const path = writeConfig({
      proxy: { listen: '127.0.0.1:18000', tls_listen: '127.0.0.1:70000', tls: { cert: './missing.crt', key: './missing.key' } },
      status: { listen: '0.0.0.0:18000' },
      admin: { listen: '0.0.0.0:18001' },
      limits_store: { policy: 'redis' },
      models: [],
    });
    const v = cli('validate', '--config', path);
    assert.equal(v.status, 1);
    assert.match(v.stderr, /6 configuration errors/);
    for (const field of ['proxy.tls_listen', 'status.listen', 'admin.token', 'limits_store.redis_url', 'proxy.tls.cert', 'proxy.tls.key']) {
      assert.match(v.stderr, new RegExp(`gateway\\.yaml:\\d+:\\d+: ${field.replaceAll('.', '\\.')}: `), `${field} with its line and column`);
    }
    const s = cli('start', '--config', path);
    assert.equal(s.status, 1);
    assert.equal(s.stderr, v.stderr, 'start reports the same');

    // A certificate and key that are readable but not a usable pair.
    writeFileSync(join(dirname(path), 'missing.crt'), 'not a certificate');
    writeFileSync(join(dirname(path), 'missing.key'), 'not a key');
    const tls = writeConfig({ proxy: { tls_listen: '127.0.0.1:18443', tls: { cert: './missing.crt', key: './missing.key' } }, models: [] }, dirname(path), 'tls.yaml');
    const t = cli('validate', '--config', tls);
    assert.equal(t.status, 1);
    assert.match(t.stderr, /tls\.yaml:\d+:\d+: proxy\.tls: /);

    // The admin and status TLS listeners: the admin token rule, their ports, their own certificate files.
    const more = writeConfig(
      {
        admin: { listen: '127.0.0.1:18101', tls_listen: '0.0.0.0:18442', tls: { cert: './none.crt', key: './none.key' } },
        status: { listen: '127.0.0.1:18100', tls_listen: '127.0.0.1:18101' },
        models: [],
      },
      dirname(path),
      'admin-tls.yaml',
    );
    const a = cli('validate', '--config', more);
    assert.equal(a.status, 1);
    for (const field of ['admin.token', 'admin.listen', 'admin.tls.cert', 'admin.tls.key']) {
      assert.match(a.stderr, new RegExp(`admin-tls\\.yaml:\\d+:\\d+: ${field.replaceAll('.', '\\.')}: `), `${field} with its line and column`);
    }
    assert.match(a.stderr, /admin\.tls_listen 0\.0\.0\.0:18442 is not a loopback address/);
  });

  it('validate warns about short and plain-text keys and exits 0; start logs the same warnings once; no key is printed', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const statusPort = await freePort();
    const keys = { short: 'kq7-zp2', plain: 'plain-key-0123456789abcdef', env: 'env-key-0123456789abcdef' };
    const path = writeConfig({
      proxy: { listen: '127.0.0.1:0' },
      status: { listen: `127.0.0.1:${statusPort}` },
      admin: { listen: '127.0.0.1:0' },
      models: [{ name: 'm', api_keys: [keys.short, '${IGW_TEST_KEY}', `sha256:${hashKey('hashed-key-0123456789')}`, { key: keys.plain, name: 'team' }], targets: [{ url: sim.url }] }],
    });
    const v = cliWith({ IGW_TEST_KEY: keys.env }, 'validate', '--config', path);
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout, /ok \(1 models\)/);
    assert.match(v.stderr, /3 warnings/);
    assert.match(v.stderr, /gateway\.yaml:\d+:\d+: models\[0\]\.api_keys\[0\]: API key key#[0-9a-f]{8} is shorter than 16 characters/);
    assert.match(v.stderr, /gateway\.yaml:\d+:\d+: models\[0\]\.api_keys\[0\]: API key key#[0-9a-f]{8} is written in plain text/);
    assert.match(v.stderr, /gateway\.yaml:\d+:\d+: models\[0\]\.api_keys\[3\]\.key: API key key#[0-9a-f]{8} is written in plain text/);
    for (const key of Object.values(keys)) assert.ok(!v.stderr.includes(key) && !v.stdout.includes(key));

    const gw = await startGatewayProcess(cleanup, { configPath: path, statusPort, env: { IGW_TEST_KEY: keys.env } });
    const logged = gw
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; field?: string; msg: string })
      .filter((l) => l.level === 40 && l.field !== undefined);
    assert.deepEqual(
      logged.map((l) => `${l.field}: ${l.msg.split(' ').slice(3, 6).join(' ')}`).sort(),
      ['models[0].api_keys[0]: is shorter than', 'models[0].api_keys[0]: is written in', 'models[0].api_keys[3].key: is written in'],
    );
    for (const key of Object.values(keys)) assert.ok(!gw.stderr().includes(key));
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

describe('the installed command', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { name: string; version: string; bin: Record<string, string> };
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const scratch = (): string => {
    const d = tempDir();
    dirs.push(d);
    return d;
  };

  // The tests below run the built dist/. CI builds before `npm test`; a missing dist/, or one older
  // than any source file (a local run after an edit), is rebuilt here rather than tested stale.
  before(() => {
    const built = existsSync('dist/main.js') ? statSync('dist/main.js').mtimeMs : 0;
    const newest = Math.max(...readdirSync('src', { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => statSync(join(e.parentPath, e.name)).mtimeMs));
    if (built < newest) {
      const r = spawnSync('npm', ['run', 'build'], { encoding: 'utf8' });
      assert.equal(r.status, 0, `npm run build: ${r.stdout}${r.stderr}`);
    }
  });

  it('--version prints the version of package.json', () => {
    const r = cli('--version');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${pkg.version}\n`);
  });

  it('--version reads package.json at run time, not a copy made at build time', () => {
    // The built command in a package of its own whose package.json says another version.
    const dir = scratch();
    cpSync('dist', join(dir, 'dist'), { recursive: true });
    symlinkSync(resolve('node_modules'), join(dir, 'node_modules'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ ...pkg, version: '9.8.7-test' }));
    const r = spawnSync(process.execPath, [join(dir, 'dist/main.js'), '--version'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '9.8.7-test\n');
  });

  it('the bin entry is a built file with a shebang, packed, and `npm install -g .` puts a working inference-gateway on the PATH', () => {
    const bin = pkg.bin['inference-gateway'];
    assert.equal(bin, 'dist/main.js');
    assert.match(readFileSync(bin, 'utf8'), /^#!\/usr\/bin\/env node\n/);
    const packed = spawnSync('npm', ['pack', '--dry-run', '--json'], { encoding: 'utf8' });
    assert.equal(packed.status, 0, packed.stderr);
    const files = (JSON.parse(packed.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
    assert.ok(files.includes(bin), `npm pack includes ${bin}`);
    // What the README says, into a scratch prefix instead of the system's: the link npm makes
    // (PREFIX/bin/inference-gateway) runs as a command of its own.
    const prefix = scratch();
    const install = spawnSync('npm', ['install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', '.'], { encoding: 'utf8' });
    assert.equal(install.status, 0, install.stderr);
    const r = spawnSync('inference-gateway', ['--version'], { encoding: 'utf8', env: { ...process.env, PATH: `${join(prefix, 'bin')}:${process.env.PATH}` } });
    assert.equal(r.status, 0, `${r.error?.message ?? ''}${r.stderr}`);
    assert.equal(r.stdout, `${pkg.version}\n`);
  });
});
