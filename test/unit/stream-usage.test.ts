import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { join, resolve } from 'node:path';
import { compileSnapshot, loadConfigFile } from '../../src/config/index.js';
import { isTopLevelStreamTrue } from '../../src/openai/index.js';
import { writeConfig } from '../helpers/harness.js';

describe('isTopLevelStreamTrue', () => {
  const pad = 'x'.repeat(300);
  const cases: Array<[string, boolean]> = [
    ['{"model":"m","stream":true}', true],
    ['{"stream":true,"messages":[{"role":"user","content":"' + pad + '"}]}', true],
    [' { "model" : "m" , "stream" :\n true }', true],
    ['{"model":"m","stream":false}', false],
    ['{"model":"m"}', false],
    ['{"metadata":{"stream":true},"model":"m"}', false],
    ['{"messages":[{"stream":true}],"model":"m","max_tokens":1}', false],
    ['{"model":"m","x":[{"stream":true}]}', false],
    // Quoted inside strings: escaped quotes never form the key.
    ['{"messages":[{"content":"\\"stream\\": true"}]}', false],
    ['{"a":"\\\\","stream":true}', true],
    ['{"a":"}]\\"{[","stream":true,"b":"' + pad + '"}', true],
    ['{"a":"' + pad + '","b":"}]\\"{[","stream":true}', true],
    ['{"mode":"stream","b":true}', false],
    ['{"user":"\\"stream\\":true","stream":true}', true],
    // Malformed: an unterminated string is never a stream.
    ['{"a":"unterminated, "stream":true', false],
    ['', false],
  ];
  for (const [body, want] of cases) {
    it(`${want ? 'finds' : 'does not find'} stream:true in ${JSON.stringify(body.length > 60 ? `${body.slice(0, 60)}…` : body)}`, () => {
      assert.equal(isTopLevelStreamTrue(Buffer.from(body)), want);
    });
  }
});

describe('track_stream_usage', () => {
  it('is on by default, set per model, from defaults and blueprint entries, and forced on by token limits', () => {
    const path = writeConfig({
      defaults: { track_stream_usage: false },
      models: [
        { name: 'inherits', targets: [{ url: 'http://127.0.0.1:9' }] },
        { name: 'on', track_stream_usage: true, targets: [{ url: 'http://127.0.0.1:9' }] },
        { name: 'limited', limits: { tokens: { per_minute: 1000 } }, targets: [{ url: 'http://127.0.0.1:9' }] },
        { name: 'key-limited', api_keys: [{ key: 'stream-usage-key-0123', limits: { tokens: { per_day: 10 } } }], targets: [{ url: 'http://127.0.0.1:9' }] },
        { name: 'request-limited', limits: { requests: { per_minute: 10 } }, targets: [{ url: 'http://127.0.0.1:9' }] },
      ],
      blueprints: [{ file: join(resolve('examples/blueprints'), 'example_vllm_gpt_oss_120b.json'), track_stream_usage: true }],
    });
    const byName = new Map(compileSnapshot(loadConfigFile(path, { env: {} })).models.map((m) => [m.name, m.shouldTrackStreamUsage]));
    assert.deepEqual(Object.fromEntries(byName), { inherits: false, on: true, limited: true, 'key-limited': true, 'request-limited': false, 'gpt-oss-120b': true });
    const plain = writeConfig({ models: [{ name: 'm', targets: [{ url: 'http://127.0.0.1:9' }] }] });
    assert.equal(compileSnapshot(loadConfigFile(plain, { env: {} })).models[0]!.shouldTrackStreamUsage, true);
  });
});
