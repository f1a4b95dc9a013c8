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
function issuesOf(config: object | string, dir?: string, env: NodeJS.ProcessEnv = {}, name?: string): readonly ConfigIssue[] {
  const path = writeConfig(config, dir, name);
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
    assert.equal(issues[0]!.field, 'recipe_inference_gateway.rate_limit');
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
    assert.deepEqual(fields, ['models[0].balancr', 'models[0].targets[0].url', 'proxy.extra', 'proxy.listen']);
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

  it('reports YAML syntax errors with their line and column', () => {
    const issues = issuesOf('models:\n  - name: a\n   bad: [\n');
    assert.deepEqual([issues[0]!.line, issues[0]!.column], [3, 4]);
    assert.match(issues[0]!.message, /YAML syntax error/);
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

/** issueAt returns the one issue on a field (and fails when there is none or several). */
function issueAt(issues: readonly ConfigIssue[], field: string): ConfigIssue {
  const found = issues.filter((i) => i.field === field);
  assert.equal(found.length, 1, `one issue on ${field}, got: ${JSON.stringify(issues)}`);
  return found[0]!;
}

describe('configuration error messages', () => {
  const target = [{ url: 'http://h:1' }];

  it('echoes the value and says what was expected: enum values, duration examples, the URL form', () => {
    const issues = issuesOf({
      log: { level: 'verbose' },
      models: [
        { name: 'a', targets: [{ url: 'ftp://x:1' }], balancer: 'round_robin', timeouts: { connect: '10 seconds' }, retries: 20 },
      ],
    });
    const level = issueAt(issues, 'log.level').message;
    assert.match(level, /"verbose"/);
    for (const v of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) assert.ok(level.includes(`"${v}"`), level);
    const balancer = issueAt(issues, 'models[0].balancer').message;
    assert.match(balancer, /"round_robin"/);
    assert.match(balancer, /did you mean "round-robin"\?/);
    const connect = issueAt(issues, 'models[0].timeouts.connect').message;
    assert.match(connect, /"10 seconds"/);
    for (const example of ['"500ms"', '"10s"', '"5m"']) assert.ok(connect.includes(example), connect);
    assert.doesNotMatch(connect, /\\d|\^|pattern/, 'no regex in a duration message');
    const url = issueAt(issues, 'models[0].targets[0].url').message;
    assert.match(url, /"ftp:\/\/x:1"/);
    assert.ok(url.includes('http(s)://host:port[/path]'), url);
    assert.match(issueAt(issues, 'models[0].retries').message, /20.*at most 10/);
  });

  it('rejects a target URL holding a space or another character a URL cannot carry', () => {
    const issues = issuesOf({ models: [{ name: 'a', targets: [{ url: 'http://h:1/a b' }, { url: 'http://h st:1' }, { url: 'http://h:1/caf\u00e9' }, { url: 'http://h:1/ok' }] }] });
    assert.deepEqual(issues.map((i) => i.field), ['models[0].targets[0].url', 'models[0].targets[1].url', 'models[0].targets[2].url']);
    assert.match(issues[0]!.message, /"http:\/\/h:1\/a b"/);
    const others = issuesOf({ limits_store: { policy: 'redis', redis_url: 'redis://cache host:6379' }, blueprints: [{ file: 'r.json', target_template: 'http://{deployment_name} .svc:{port}' }] });
    assert.deepEqual(others.map((i) => i.field).sort(), ['blueprints[0].target_template', 'limits_store.redis_url']);
  });

  it('never echoes a key: a bad key value is shown as its fingerprint, also when it came from ${VAR}', () => {
    const issues = issuesOf(
      {
        admin: { token: 4242424 },
        models: [
          { name: 'a', upstream_api_key: 'my upstream secret', targets: target },
          { name: 'b', upstream_api_key: '${UP_KEY}', api_keys: [123456789, { key: 'another-secret', nmae: 'x' }], targets: target },
          { name: 'c', api_keys: [{ 'sk-written-as-a-field': { name: 'x' } }], targets: target },
        ],
      },
      undefined,
      { UP_KEY: 'env secret value' },
    );
    const text = JSON.stringify(issues);
    for (const secret of ['my upstream secret', 'env secret value', '123456789', 'another-secret', '4242424', 'sk-written-as-a-field']) assert.ok(!text.includes(secret), `${secret} is not echoed: ${text}`);
    assert.ok(issueAt(issues, 'models[0].upstream_api_key').message.includes(fingerprintKey('my upstream secret')));
    assert.ok(issueAt(issues, 'models[1].upstream_api_key').message.includes(fingerprintKey('env secret value')));
    assert.match(issueAt(issues, 'models[1].api_keys[0]').message, /a number/);
    assert.match(issueAt(issues, 'models[1].api_keys[1].nmae').message, /did you mean "name"\?/);
    assert.match(issueAt(issues, 'admin.token').message, /a number/);
    assert.ok(issueAt(issues, 'models[2].api_keys[0]').message.includes(fingerprintKey('sk-written-as-a-field')));

    const syntax = issuesOf('models:\n  - name: a\n    api_keys:\n      - sk-pasted-key:\n          name: x\n         limits: {}\n');
    assert.ok(!JSON.stringify(syntax).includes('sk-pasted-key'), JSON.stringify(syntax));
  });

  it('names an unknown field and suggests the closest known one at that level', () => {
    const issues = issuesOf({
      model: [],
      proxy: { listn: '0.0.0.0:8000' },
      models: [{ name: 'a', targets: [{ url: 'http://h:1', wieght: 2 }, { urll: 'http://h:2' }], balancr: 'least-request' }],
    });
    assert.deepEqual(issues.map((i) => i.field).sort(), ['model', 'models[0].balancr', 'models[0].targets[0].wieght', 'models[0].targets[1].urll', 'proxy.listn']);
    assert.match(issueAt(issues, 'model').message, /unknown field "model".*; did you mean "models"\?/);
    assert.match(issueAt(issues, 'proxy.listn').message, /did you mean "listen"\?/);
    assert.match(issueAt(issues, 'models[0].balancr').message, /did you mean "balancer"\?/);
    assert.match(issueAt(issues, 'models[0].targets[0].wieght').message, /did you mean "weight"\?/);
    assert.match(issueAt(issues, 'models[0].targets[1].urll').message, /did you mean "url"\?/);
  });

  it('gives line and column for every error of a YAML file, rules across models included', () => {
    const yaml = [
      'proxy:', //                                   1
      '  listen: nowhere', //                        2
      'models:', //                                  3
      '  - name: a', //                              4
      '    path: /x/', //                            5
      '    targets:', //                             6
      '      - url: http://h:1', //                  7
      '  - name: b', //                              8
      '    targets: []', //                          9
      '  - name: c', //                              10
      '    balancr: round-robin', //                 11
      '    targets: [{ url: "http://h:1" }]', //     12
      '    timeouts: { idle: forever }', //          13
    ].join('\n');
    const issues = issuesOf(yaml);
    const at = (field: string): string => {
      const i = issueAt(issues, field);
      return `${i.line}:${i.column}`;
    };
    assert.equal(at('proxy.listen'), '2:11');
    assert.equal(at('models[0].path'), '5:11');
    assert.equal(at('models[1].name'), '8:11');
    assert.equal(at('models[2].balancr'), '11:5');
    assert.equal(at('models[2].timeouts.idle'), '13:23');
    assert.equal(issues.length, 5);
  });

  it('gives line and column in a JSON config file and in a blueprint recipe file', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'recipe.json'), '{\n  "deployment_name": "d",\n  "recipe_inference_gateway": {\n    "model_name": "m",\n    "url_path": "/p",\n    "rate_limit": 5\n  }\n}\n');
    writeFileSync(join(dir, 'broken.json'), '{\n  "deployment_name": "d",\n  "recipe_inference_gateway": { "model_name": "m" ,, }\n}\n');
    const json = '{\n  "models": [\n    { "name": "a", "targets": [ { "url": "http://h:1" } ], "timeouts": { "connect": "soon" } }\n  ],\n  "blueprints": [ { "file": "recipe.json" }, { "file": "broken.json" } ]\n}\n';
    const issues = issuesOf(json, dir, {}, 'gateway.json');
    const connect = issueAt(issues, 'models[0].timeouts.connect');
    assert.match(connect.file, /gateway\.json$/);
    assert.deepEqual([connect.line, connect.column], [3, 85]);
    const unknown = issueAt(issues, 'recipe_inference_gateway.rate_limit');
    assert.match(unknown.file, /recipe\.json$/);
    assert.deepEqual([unknown.line, unknown.column], [6, 5]);
    const broken = issues.find((i) => i.file.endsWith('broken.json'))!;
    assert.equal(broken.line, 3);
    assert.ok(broken.column !== undefined && broken.column > 40, JSON.stringify(broken));
  });

  it('reports one YAML syntax slip once, with its position and the field it is in', () => {
    const issues = issuesOf('models:\n  - name: a\n    targets:\n      - url: http://h:1\n  - name: b\n     targets:\n       - url: http://h:2\n');
    assert.equal(issues.length, 1, JSON.stringify(issues));
    assert.deepEqual([issues[0]!.line, issues[0]!.column], [6, 6]);
    assert.equal(issues[0]!.field, 'models[1]');
    assert.match(issues[0]!.message, /indented/);
  });

  it('reports a field indented too little once, as the field of the entry above it', () => {
    const issues = issuesOf('models:\n  - name: a\n    path: /a\ntargets:\n  - url: http://h:1\n');
    assert.equal(issues.length, 1, JSON.stringify(issues));
    assert.equal(issues[0]!.field, 'targets');
    assert.deepEqual([issues[0]!.line, issues[0]!.column], [4, 1]);
    assert.match(issues[0]!.message, /models\[0\]/);
    assert.match(issues[0]!.message, /indent/);

    const nested = issuesOf('models:\n  - name: a\n    targets:\n      - url: http://h:1\n    weight: 3\n');
    assert.equal(nested.length, 1, JSON.stringify(nested));
    assert.equal(nested[0]!.field, 'models[0].weight');
    assert.match(nested[0]!.message, /models\[0\]\.targets\[0\]/);
  });

  it('names an entry by its own index when an entry before it failed the schema', () => {
    const issues = issuesOf({ models: [{ name: 'a', balancr: 'x', targets: target }, { name: 'b', targets: [] }] });
    assert.deepEqual(issues.map((i) => i.field), ['models[0].balancr', 'models[1].name']);
    assert.equal(issues[1]!.line, 6);
  });

  it('reports a field indented too far once, as the field of the level above', () => {
    const issues = issuesOf('models:\n  - name: a\n    health_check:\n      path: /health\n      targets:\n        - url: http://h:1\n');
    assert.equal(issues.length, 1, JSON.stringify(issues));
    assert.equal(issues[0]!.field, 'models[0].health_check.targets');
    assert.match(issues[0]!.message, /field of models\[0\]/);
  });
});
