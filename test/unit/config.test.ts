import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { compileSnapshot, ConfigError, describeSnapshot, loadConfigFile, type ConfigIssue } from '../../src/config/index.js';
import { schemaFilePath, toJsonSchemaText } from '../../src/config/export-schema.js';
import { fingerprintKey, hashKey } from '../../src/auth/index.js';
import { tempDir, writeConfig } from '../helpers/harness.js';

const BLUEPRINTS = resolve('examples/blueprints');

/** issuesOf loads a config that must fail and returns its issues. */
function issuesOf(config: object | string, dir?: string, env: NodeJS.ProcessEnv = {}): readonly ConfigIssue[] {
  const path = writeConfig(config, dir);
  try {
    loadConfigFile(path, { env });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.issues;
  }
  assert.fail('the load should have failed');
}

describe('blueprint import', () => {
  it('imports the three reference blueprints as DESIGN.md maps them', () => {
    const path = writeConfig({
      blueprints: [
        { file: join(BLUEPRINTS, 'example_vllm_gpt_oss_120b.json') },
        { file: join(BLUEPRINTS, 'example_vllm_llama4_scout.json'), api_keys: ['scout-key'] },
        { file: join(BLUEPRINTS, 'example_vllm_llama4_maverick.json'), api_keys: ['maverick-key'] },
      ],
    });
    const snap = compileSnapshot(loadConfigFile(path, { env: {} }));
    const byName = new Map(snap.models.map((m) => [m.name, m]));
    const gpt = byName.get('gpt-oss-120b')!;
    assert.equal(gpt.path, '/ai/models');
    assert.equal(gpt.servedModel, 'openai/gpt-oss-120b');
    assert.equal(gpt.healthPath, '/health');
    assert.deepEqual(gpt.targets.map((t) => t.url), ['http://gpt-oss-tp2:8000']);
    assert.equal(snap.keyOwners.size, 3);
    assert.equal([...gpt.keyHashes!][0]!.slice(0, 8), fingerprintKey('<any-api-key-here>').slice(4));
    assert.equal(byName.get('scout')!.servedModel, 'Llama-4-Scout-17B-16E-Instruct');
    assert.deepEqual(byName.get('scout')!.targets.map((t) => t.url), ['http://scout:8000']);
    assert.equal(byName.get('maverick')!.servedModel, 'Llama-4-Maverick-17B-128E-Instruct-FP8');
    assert.deepEqual(byName.get('maverick')!.targets.map((t) => t.url), ['http://maverick:8000']);
    assert.equal(snap.routes.get('/ai/models')!.models.length, 3);
  });

  it('rejects a folder whose recipes reuse an api_key, naming both files and never the key', () => {
    const issues = issuesOf({ blueprints: [{ dir: BLUEPRINTS }] });
    assert.equal(issues.length, 2);
    for (const i of issues) {
      assert.match(i.file, /example_vllm_llama4_(scout|maverick)\.json$/);
      assert.equal(i.field, 'recipe_inference_gateway.api_key');
      assert.match(i.message, /example_vllm_gpt_oss_120b\.json/);
      assert.ok(!i.message.includes('<any-api-key-here>'));
      assert.ok(i.message.includes(fingerprintKey('<any-api-key-here>')));
    }
  });

  it('rejects a second recipe reusing a model_name on the same url_path, naming both files', () => {
    const dir = tempDir();
    const recipe = (key: string): string => JSON.stringify({ deployment_name: 'd', recipe_container_port: '8000', recipe_inference_gateway: { model_name: 'same', url_path: '/p', api_key: key } });
    writeFileSync(join(dir, 'a.json'), recipe('k1'));
    writeFileSync(join(dir, 'b.json'), recipe('k2'));
    const issues = issuesOf({ blueprints: [{ dir: '.' }] }, dir);
    assert.equal(issues.length, 1);
    assert.match(issues[0]!.file, /b\.json$/);
    assert.equal(issues[0]!.field, 'recipe_inference_gateway.model_name');
    assert.match(issues[0]!.message, /a\.json/);
  });

  it('rejects unknown fields inside recipe_inference_gateway but ignores other recipe fields', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'r.json'), JSON.stringify({ deployment_name: 'd', anything_else: 1, recipe_inference_gateway: { model_name: 'm', rate_limit: 5 } }));
    const issues = issuesOf({ blueprints: [{ file: 'r.json' }] }, dir);
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.field, 'recipe_inference_gateway');
    assert.match(issues[0]!.message, /rate_limit/);
  });

  it('skips a recipe without recipe_inference_gateway with a note, not an error', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'plain.json'), JSON.stringify({ deployment_name: 'd' }));
    const loaded = loadConfigFile(writeConfig({ blueprints: [{ dir: '.' }] }, dir), { env: {} });
    assert.equal(loaded.models.length, 0);
    assert.match(loaded.notes[0]!, /plain\.json/);
  });

  it('lets a blueprints entry override targets and carry model fields', () => {
    const path = writeConfig({ blueprints: [{ file: join(BLUEPRINTS, 'example_vllm_gpt_oss_120b.json'), targets: [{ url: 'http://10.0.0.1:9000/base', weight: 3 }], timeouts: { connect: '2s' } }] });
    const m = compileSnapshot(loadConfigFile(path, { env: {} })).models[0]!;
    assert.deepEqual(
      m.targets.map(({ url, origin, basePath, weight }) => ({ url, origin, basePath, weight })),
      [{ url: 'http://10.0.0.1:9000/base', origin: 'http://10.0.0.1:9000', basePath: '/base', weight: 3 }],
    );
    assert.equal(m.timeouts.connectMs, 2000);
  });
});

describe('configuration rules', () => {
  it('reports every violation at once, each with file and field', () => {
    const issues = issuesOf({
      models: [
        { name: 'a', path: '/x/', targets: [{ url: 'http://h:1' }] },
        { name: 'b', path: 'nope', targets: [{ url: 'http://h:1' }] },
        { name: 'c', path: '/a/../b', targets: [{ url: 'http://h:1' }] },
        { name: 'd', targets: [] },
        { name: 'e', api_keys: ['${MISSING_KEY}'], targets: [{ url: 'http://h:1' }] },
      ],
    });
    const fields = issues.map((i) => i.field).sort();
    assert.deepEqual(fields, ['models[0].path', 'models[1].path', 'models[2].path', 'models[3].name', 'models[4].api_keys[0]']);
    assert.ok(issues.every((i) => i.file.endsWith('gateway.yaml')));
    assert.match(issues.find((i) => i.field === 'models[4].api_keys[0]')!.message, /MISSING_KEY/);
  });

  it('rejects an upstream_api_key that could not travel in a header (e.g. a newline from the environment)', () => {
    const issues = issuesOf({ models: [{ name: 'a', upstream_api_key: '${UP_KEY}', targets: [{ url: 'http://h:1' }] }] }, undefined, { UP_KEY: 'abc\r\nX-Injected: 1' });
    assert.deepEqual(issues.map((i) => i.field), ['models[0].upstream_api_key']);
    assert.doesNotMatch(issues[0]!.message, /Injected/);
  });

  it('reports schema errors, unknown keys included, all together', () => {
    const issues = issuesOf({ proxy: { listen: 'nope', extra: 1 }, models: [{ name: 'a', targets: [{ url: 'ftp://x' }], balancr: 'x' }] });
    const fields = issues.map((i) => i.field).sort();
    assert.deepEqual(fields, ['models[0]', 'models[0].targets[0].url', 'proxy', 'proxy.listen']);
  });

  it('rejects the same name twice on one path and a key used twice, naming both places and no key', () => {
    const issues = issuesOf({
      models: [
        { name: 'a', path: '/p', api_keys: ['secret-one'], targets: [{ url: 'http://h:1' }] },
        { name: 'a', path: '/p', targets: [{ url: 'http://h:1' }] },
        { name: 'a', path: '/q', api_keys: ['secret-one'], targets: [{ url: 'http://h:1' }] },
      ],
    });
    assert.equal(issues.length, 2);
    assert.equal(issues[0]!.field, 'models[1].name');
    assert.match(issues[0]!.message, /models\[0\]\.name/);
    assert.equal(issues[1]!.field, 'models[2].api_keys[0]');
    assert.match(issues[1]!.message, /models\[0\]\.api_keys\[0\]/);
    assert.ok(issues.every((i) => !i.message.includes('secret-one')));
  });

  it('treats a plaintext key and its sha256 form as the same key, and rejects a malformed sha256 entry', () => {
    const issues = issuesOf({
      models: [
        { name: 'a', api_keys: ['k'], targets: [{ url: 'http://h:1' }] },
        { name: 'b', api_keys: [`sha256:${hashKey('k')}`, 'sha256:zz'], targets: [{ url: 'http://h:1' }] },
      ],
    });
    assert.equal(issues.length, 2);
    assert.match(issues[0]!.message, /already used/);
    assert.equal(issues[1]!.field, 'models[1].api_keys[1]');
    assert.match(issues[1]!.message, /malformed/);
  });

  it('substitutes ${VAR} and ${VAR:-default} after parsing', () => {
    const path = writeConfig('models:\n  - name: "${NAME}"\n    path: "${PFX:-/d}"\n    targets: [{ url: "http://${HOST}:1" }]\n');
    const m = compileSnapshot(loadConfigFile(path, { env: { NAME: 'x: #y', HOST: 'h' } })).models[0]!;
    assert.equal(m.name, 'x: #y');
    assert.equal(m.path, '/d');
    assert.equal(m.targets[0]!.url, 'http://h:1');
  });

  it('reports YAML syntax errors with their line', () => {
    const issues = issuesOf('models:\n  - name: a\n   bad: [\n');
    assert.match(issues[0]!.field, /^line \d+$/);
  });

  it('compiles to the same hash for the same content, and prints no keys', () => {
    const cfg = { models: [{ name: 'a', api_keys: ['very-secret'], targets: [{ url: 'http://h:1' }] }] };
    const a = compileSnapshot(loadConfigFile(writeConfig(cfg), { env: {} }));
    const b = compileSnapshot(loadConfigFile(writeConfig(cfg), { env: {} }));
    assert.equal(a.hash, b.hash);
    assert.ok(!JSON.stringify(describeSnapshot(a)).includes('very-secret'));
  });

  it('keeps schema/gateway.schema.json in step with the schema (npm run schema)', () => {
    assert.equal(readFileSync(schemaFilePath, 'utf8'), toJsonSchemaText());
  });
});

describe('blueprint target_template', () => {
  it('builds targets from the recipe: a URL, or a DNS name for per-pod balancing', () => {
    const path = writeConfig({
      blueprints: [
        { file: join(BLUEPRINTS, 'example_vllm_llama4_scout.json'), api_keys: ['k1'], target_template: 'dns:{deployment_name}-headless:{port}' },
        { file: join(BLUEPRINTS, 'example_vllm_llama4_maverick.json'), api_keys: ['k2'], target_template: 'http://{deployment_name}.models.svc:{port}/base' },
      ],
    });
    const snap = compileSnapshot(loadConfigFile(path, { env: {} }));
    const scout = snap.models.find((m) => m.name === 'scout')!;
    assert.deepEqual(scout.dnsTargets.map((d) => `${d.host}:${d.port}`), ['scout-headless:8000']);
    assert.equal(scout.targets.length, 0);
    assert.deepEqual(snap.models.find((m) => m.name === 'maverick')!.targets.map((t) => t.url), ['http://maverick.models.svc:8000/base']);
  });
});
