import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTopLevelStreamTrue, isTrueAt, maxTokensIn, memberValueAt, topLevelValueAt, uintAt } from '../../src/openai/index.js';

const pad = 'x'.repeat(300);
const short = (s: string): string => JSON.stringify(s.length > 70 ? `${s.slice(0, 70)}…` : s);

/** valueText is the JSON text of the value the scanner points at, read up to the next , } or ] outside a string. */
function valueText(body: string, at: number): string | undefined {
  if (at === -1) return undefined;
  // Re-serializing the parsed value is the simplest oracle for where the scanner stopped.
  for (let end = at + 1; end <= body.length; end++) {
    try {
      return JSON.stringify(JSON.parse(body.slice(at, end)));
    } catch {
      // keep extending
    }
  }
  return undefined;
}

// Valid bodies: the scanner must find exactly what JSON.parse finds at the top level.
const VALID: string[] = [
  '{"model":"m","stream":true}',
  '{"model":"m","stream":false}',
  '{"model":"m"}',
  ' { "model" : "m" , "stream" :\n true }',
  '\t{\r\n"stream"\t:\ttrue\r\n}\n',
  // Nested keys of the same name are not the top-level one.
  '{"metadata":{"stream":true},"model":"m"}',
  '{"messages":[{"stream":true}],"model":"m","max_tokens":1}',
  '{"stream":false,"metadata":{"stream":true}}',
  '{"stream":true,"metadata":{"stream":false}}',
  '{"model":"m","x":[{"stream":true}]}',
  '{"x":[[[{"stream":true}]]],"stream":false}',
  // The key inside strings: escaped quotes never form a member name.
  '{"messages":[{"content":"\\"stream\\": true"}]}',
  '{"user":"\\"stream\\":true","stream":false}',
  '{"user":"\\"stream\\":false","stream":true}',
  '{"a":"\\\\","stream":true}',
  '{"a":"\\\\\\"stream\\": true"}',
  '{"a":"}]\\"{[","stream":true,"b":"' + pad + '"}',
  '{"a":"' + pad + '","b":"}]\\"{[","stream":true}',
  '{"mode":"stream","b":true}',
  '{"stream":"true"}',
  '{"stream":null}',
  '{"content":"\\u0022stream\\u0022: true"}',
  // Duplicate keys: JSON.parse keeps the last, and so must the scanner.
  '{"stream":false,"messages":[{"role":"user","content":"' + pad + '"}],"stream":true}',
  '{"stream":true,"model":"m","stream":false}',
  '{"stream":false,"stream":true,"x":{"stream":false}}',
  '{"stream":true,"messages":[{"role":"user","content":"' + pad + '"}],"stream":false,"y":"' + pad + '"}',
  '{"stream":false,"y":"' + pad + '","stream":true,"messages":[{"role":"user","content":"' + pad + '"}]}',
];

describe('topLevelValueAt agrees with JSON.parse', () => {
  const key = Buffer.from('"stream"');
  for (const body of VALID) {
    it(`reads "stream" of ${short(body)}`, () => {
      const parsed = JSON.parse(body) as { stream?: unknown };
      const at = topLevelValueAt(Buffer.from(body), key);
      assert.equal(valueText(body, at), parsed.stream === undefined ? undefined : JSON.stringify(parsed.stream));
      assert.equal(isTopLevelStreamTrue(Buffer.from(body)), parsed.stream === true);
    });
  }
});

describe('topLevelValueAt on malformed bodies', () => {
  const cases: Array<[string, boolean]> = [
    ['{"a":"unterminated, "stream":true', false],
    ['', false],
    ['"stream"', false],
    ['{"stream" true}', false],
    ['{"stream":', false],
    ['[{"stream":true}]', false],
    ['"stream":true', false],
  ];
  for (const [body, want] of cases) {
    it(`${want ? 'finds' : 'finds no'} stream:true in ${short(body)}`, () => {
      assert.equal(isTopLevelStreamTrue(Buffer.from(body)), want);
    });
  }
});

describe('memberValueAt', () => {
  const KEY = Buffer.from('"include_usage"');
  const OPTIONS = Buffer.from('"stream_options"');
  const cases: string[] = [
    '{"stream":true,"stream_options":{"include_usage":true}}',
    '{"stream":true,"stream_options":{"include_usage":false}}',
    '{"stream":true,"stream_options":{}}',
    '{"stream":true,"stream_options":{"x":{"include_usage":true}}}',
    '{"stream":true,"stream_options":{"x":"\\"include_usage\\":true"}}',
    '{"stream_options":{"include_usage":true,"include_usage":false},"stream":true}',
    '{"stream_options":{"include_usage":false,"include_usage":true},"stream":true}',
    '{"stream_options":{"include_usage":false},"include_usage":true,"stream":true}',
    '{"stream_options":{"a":1},"stream_options":{"include_usage":true},"stream":true}',
  ];
  for (const body of cases) {
    it(`reads stream_options.include_usage of ${short(body)}`, () => {
      const b = Buffer.from(body);
      const parsed = JSON.parse(body) as { stream_options: { include_usage?: unknown } };
      const at = memberValueAt(b, topLevelValueAt(b, OPTIONS), KEY);
      assert.equal(isTrueAt(b, at), parsed.stream_options.include_usage === true);
    });
  }
  it('finds nothing when no object starts at the offset', () => {
    const b = Buffer.from('{"stream_options":true}');
    assert.equal(memberValueAt(b, topLevelValueAt(b, OPTIONS), KEY), -1);
    assert.equal(memberValueAt(b, -1, KEY), -1);
    assert.equal(memberValueAt(Buffer.from('{"stream_options":{"include_usage":true'), 18, KEY), -1);
  });
});

describe('maxTokensIn', () => {
  const cases: Array<[string, number | undefined]> = [
    ['{"model":"m","max_tokens":16}', 16],
    ['{"max_tokens" :\n 16 ,"model":"m"}', 16],
    ['{"model":"m","max_completion_tokens":32}', 32],
    ['{"max_completion_tokens":32,"max_tokens":16}', 32],
    ['{"max_tokens":16,"max_completion_tokens":32}', 32],
    ['{"max_completion_tokens":null,"max_tokens":16}', 16],
    ['{"max_completion_tokens":"a lot","max_tokens":16}', undefined],
    ['{"model":"m"}', undefined],
    ['{"max_tokens":-1}', undefined],
    ['{"max_tokens":0}', 0],
    // Last duplicate wins, nested and quoted ones do not count.
    ['{"max_tokens":16,"messages":[],"max_tokens":64}', 64],
    ['{"tools":[{"parameters":{"max_tokens":5}}],"max_tokens":7}', 7],
    ['{"tools":[{"parameters":{"max_tokens":5}}]}', undefined],
    ['{"messages":[{"content":"\\"max_tokens\\": 9"}],"max_tokens":3}', 3],
    ['{"messages":[{"content":"\\"max_tokens\\": 9"}]}', undefined],
    ['{"messages":[{"role":"user","content":"' + pad + '"}],"max_tokens":12}', 12],
  ];
  for (const [body, want] of cases) {
    it(`reads ${String(want)} from ${short(body)}`, () => {
      assert.equal(maxTokensIn(Buffer.from(body)), want);
    });
  }
});

describe('uintAt', () => {
  const cases: Array<[string, number, number | undefined]> = [
    ['123,', 0, 123],
    ['x7}', 1, 7],
    ['1234567890123', 0, 123456789],
    ['-1', 0, undefined],
    ['', 0, undefined],
    ['5', -1, undefined],
  ];
  for (const [text, at, want] of cases) {
    it(`reads ${String(want)} from ${JSON.stringify(text)} at ${at}`, () => {
      assert.equal(uintAt(Buffer.from(text), at), want);
    });
  }
});
