/**
 * Golden files for the Anthropic translation tables (test/fixtures/anthropic/*.json): each case
 * holds an input and the exact expected output, compared as serialized JSON (so key order counts).
 * After a deliberate change, regenerate with `UPDATE_GOLDEN=1 npm test` and review the diff.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ResponseTranslator, toChatRequest, type AnswerContext } from '../../src/anthropic/index.js';
import { GatewayError } from '../../src/errors/index.js';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'anthropic');
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const REQUEST_ID = 'req-golden';

type Json = Record<string, unknown>;

function load<T>(name: string): T[] {
  return JSON.parse(readFileSync(join(DIR, name), 'utf8')) as T[];
}

function save(name: string, cases: unknown[]): void {
  if (UPDATE) writeFileSync(join(DIR, name), `${JSON.stringify(cases, null, 2)}\n`);
}

/** same compares exactly (key order included), or records the actual value in update mode. */
function same(c: Json, field: string, actual: unknown): void {
  if (UPDATE) c[field] = actual;
  else assert.equal(JSON.stringify(actual), JSON.stringify(c[field]), `${String(c.name)}: ${field}`);
}

describe('Anthropic request translation (golden)', () => {
  const cases = load<Json & { anthropic: unknown; options: { servedModel: string | null } }>('requests.json');
  for (const c of cases) {
    it(String(c.name), () => {
      const out = toChatRequest(c.anthropic, c.options);
      same(c, 'openai', out.body);
    });
  }
  it('writes the request fixtures in update mode', () => save('requests.json', cases));

  const errors = load<Json & { anthropic: unknown }>('request-errors.json');
  for (const c of errors) {
    it(`refuses: ${String(c.name)}`, () => {
      let err: unknown;
      try {
        toChatRequest(c.anthropic, { servedModel: null });
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof GatewayError, 'a GatewayError is thrown');
      assert.equal(err.status, 400);
      same(c, 'error', { code: err.code, param: err.param, message: err.message });
    });
  }
  it('writes the error fixtures in update mode', () => save('request-errors.json', errors));
});

describe('Anthropic response translation (golden)', () => {
  const cases = load<Json & { context: AnswerContext; status: number; openai: unknown }>('responses.json');
  for (const c of cases) {
    it(String(c.name), () => {
      const t = new ResponseTranslator(c.context, REQUEST_ID);
      const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': '1' };
      t.start(c.status, headers);
      assert.equal(t.isBuffered, true);
      assert.equal(headers['content-length'], undefined);
      const text = JSON.stringify(c.openai);
      // Split inside the body: a JSON answer may arrive in any number of chunks.
      assert.equal(t.data(Buffer.from(text.slice(0, 7))), null);
      assert.equal(t.data(Buffer.from(text.slice(7))), null);
      const body = JSON.parse(t.end()!.toString('utf8')) as unknown;
      same(c, 'anthropic', { status: t.status, body });
    });
  }
  it('writes the response fixtures in update mode', () => save('responses.json', cases));
});

describe('Anthropic stream translation (golden)', () => {
  const cases = load<Json & { context: AnswerContext; openai: string[]; crlf?: boolean }>('streams.json');

  /** run feeds the upstream bytes cut into pieces of `size` bytes (0: one chunk per event). */
  const run = (c: (typeof cases)[number], size: number): string => {
    const sep = c.crlf === true ? '\r\n\r\n' : '\n\n';
    const bytes = Buffer.from(c.openai.map((e) => e + sep).join(''));
    const t = new ResponseTranslator(c.context, REQUEST_ID);
    const headers: Record<string, string> = { 'content-type': 'text/event-stream' };
    t.start(200, headers);
    assert.equal(t.isBuffered, false);
    assert.equal(headers['content-type'], 'text/event-stream; charset=utf-8');
    const pieces: Buffer[] = [];
    if (size === 0) for (const e of c.openai) pieces.push(Buffer.from(e + sep));
    else for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.subarray(i, i + size));
    let out = '';
    for (const p of pieces) out += t.data(p)?.toString('utf8') ?? '';
    return out + (t.end()?.toString('utf8') ?? '');
  };

  for (const c of cases) {
    it(String(c.name), () => {
      const whole = run(c, 0);
      // Any cut of the upstream bytes (inside events, inside UTF-8 characters) gives the same events.
      assert.equal(run(c, 1), whole);
      assert.equal(run(c, 7), whole);
      const events = whole
        .split('\n\n')
        .filter((e) => e !== '')
        .map((e) => {
          const m = /^event: (.+)\ndata: (.+)$/.exec(e);
          assert.ok(m, `framed event: ${e}`);
          return { event: m[1], data: JSON.parse(m[2]!) as unknown };
        });
      for (const e of events) assert.equal((e.data as { type: string }).type, e.event);
      same(c, 'anthropic', events);
    });
  }
  it('writes the stream fixtures in update mode', () => save('streams.json', cases));

  it('ends a started stream with an error event when the upstream fails, and adds nothing after message_stop', () => {
    const t = new ResponseTranslator({ model: 'm', stopSequences: [] }, REQUEST_ID);
    t.start(200, { 'content-type': 'text/event-stream' });
    const first = t.data(Buffer.from('data: {"id":"chatcmpl-x","model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}\n\n'))!.toString();
    assert.match(first, /^event: message_start\n/);
    const err = t.error(new GatewayError('upstream_timeout'), REQUEST_ID)!.toString();
    assert.equal(err, `event: error\ndata: {"type":"error","error":{"type":"timeout_error","message":"The upstream server did not answer in time."},"request_id":"${REQUEST_ID}"}\n\n`);
    assert.equal(t.end(), null);
    const done = new ResponseTranslator({ model: 'm', stopSequences: [] }, REQUEST_ID);
    done.start(200, { 'content-type': 'text/event-stream' });
    done.data(Buffer.from('data: [DONE]\n\n'));
    assert.equal(done.error(new GatewayError('upstream_error'), REQUEST_ID)!.length, 0);
  });
});

describe('Anthropic translation under arbitrary input', () => {
  // A small deterministic PRNG (mulberry32), so a failure reproduces.
  let seed = 0x9e3779b9;
  const rnd = (): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const KEYS = ['model', 'max_tokens', 'messages', 'system', 'role', 'content', 'type', 'text', 'source', 'tools', 'tool_choice', 'name', 'input', 'input_schema', 'tool_use_id', 'is_error', 'stop_sequences', 'stream', 'metadata', 'user_id', 'thinking', 'media_type', 'data', 'url', 'output_config', 'format', 'schema', '__proto__'];
  const STRINGS = ['user', 'assistant', 'text', 'image', 'tool_use', 'tool_result', 'base64', 'url', 'auto', 'any', 'tool', 'none', 'image/png', 'https://x/y.png', 'json_schema', 'disabled', ''];
  const value = (depth: number): unknown => {
    const r = rnd();
    if (depth > 4 || r < 0.25) return pick([null, true, false, 0, 1, -1, 1.5, 1e9, pick(STRINGS)]);
    if (r < 0.55) return Array.from({ length: Math.floor(rnd() * 4) }, () => value(depth + 1));
    const o: Record<string, unknown> = {};
    for (let i = Math.floor(rnd() * 5); i > 0; i--) o[pick(KEYS)] = value(depth + 1);
    return o;
  };

  it('toChatRequest throws nothing but a 400 GatewayError on 3000 random bodies', () => {
    for (let i = 0; i < 3000; i++) {
      const base = { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] } as Record<string, unknown>;
      const body = rnd() < 0.5 ? value(0) : { ...base, [pick(KEYS)]: value(1) };
      try {
        const out = toChatRequest(body, { servedModel: null });
        assert.equal(typeof JSON.stringify(out.body), 'string');
      } catch (err) {
        assert.ok(err instanceof GatewayError && err.status === 400, `body ${JSON.stringify(body)}: ${String(err)}`);
      }
    }
  });

  it('ResponseTranslator never throws on random streams and bodies', () => {
    const pieces = ['data: ', '{"choices":[{"delta":', '{"content":"x"}', '{"tool_calls":[{"index":', '1', '"id":null', '}]}', ',"finish_reason":"stop"}]}', '[DONE]', '\n\n', '\r\n', '{"error":', '"usage":{"prompt_tokens":', '}', 'ü', '\u0000'];
    for (let i = 0; i < 500; i++) {
      const isStream = rnd() < 0.7;
      const t = new ResponseTranslator({ model: 'm', stopSequences: ['x'] }, REQUEST_ID);
      t.start(pick([200, 400, 500]), { 'content-type': isStream ? 'text/event-stream' : 'application/json' });
      let text = '';
      for (let j = Math.floor(rnd() * 30); j > 0; j--) text += pick(pieces);
      const bytes = Buffer.from(text);
      for (let k = 0; k < bytes.length; k += 1 + Math.floor(rnd() * 9)) t.data(bytes.subarray(k, k + 1 + Math.floor(rnd() * 9)));
      const end = t.end();
      if (!t.isBuffered) continue;
      const body = JSON.parse(end!.toString('utf8')) as { type: string };
      assert.ok(body.type === 'message' || body.type === 'error');
    }
  });
});
