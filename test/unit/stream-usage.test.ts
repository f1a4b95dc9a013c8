import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTopLevelStreamTrue } from '../../src/pipeline/stream-usage.js';

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
