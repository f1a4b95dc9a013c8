import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FIRST_WINDOW, SEARCH_WINDOW, findUsageKey, isSimdSearch } from '../../src/proxy/key-search.js';
import { UsageTap } from '../../src/proxy/usage-tap.js';

const KEY = Buffer.from('"usage":');

/** expected is what a plain search of buf[from, to) answers. */
function expected(buf: Buffer, from: number, to: number): number {
  const at = buf.indexOf(KEY, from);
  return at !== -1 && at + KEY.length <= to ? at : -1;
}

/** A deterministic byte source, so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x80000000;
  };
}

describe('findUsageKey', () => {
  it('runs the SIMD loop on this Node', () => {
    assert.equal(isSimdSearch, true);
  });

  it('agrees with Buffer.indexOf on ranges built from the key\'s own bytes', () => {
    const rnd = random(7);
    const alphabet = '"usage:{} ';
    for (let t = 0; t < 5000; t++) {
      const len = 1 + Math.floor(rnd() * 400);
      const buf = Buffer.alloc(len);
      for (let i = 0; i < len; i++) buf[i] = alphabet.charCodeAt(Math.floor(rnd() * alphabet.length));
      if (rnd() < 0.5 && len >= KEY.length) KEY.copy(buf, Math.floor(rnd() * (len - KEY.length + 1)));
      const from = Math.floor(rnd() * Math.min(len, 20));
      const to = from + Math.floor(rnd() * (len - from + 1));
      assert.equal(findUsageKey(buf, from, to), expected(buf, from, to), `seed 7, case ${t}: len ${len}, [${from}, ${to})`);
    }
  });

  it('finds a key that ends exactly at the end of the range, and not one cut by it', () => {
    const buf = Buffer.from(`data: {"choices":[],"usage":{"prompt_tokens":1}}`);
    const at = buf.indexOf(KEY);
    assert.equal(findUsageKey(buf, 0, at + KEY.length), at);
    assert.equal(findUsageKey(buf, 0, at + KEY.length - 1), -1);
    assert.equal(findUsageKey(buf, at + 1, buf.length), -1);
  });

  it('rejects every near miss: the key with any one byte changed', () => {
    for (let i = 0; i < KEY.length; i++) {
      const miss = Buffer.from(KEY);
      miss[i] = 0x78; // x
      const buf = Buffer.concat([Buffer.alloc(100, ' '), miss, Buffer.alloc(100, ' ')]);
      assert.equal(findUsageKey(buf, 0, buf.length), -1, `byte ${i} changed`);
    }
  });

  it('finds a key at every offset of a range that spans windows of every size, and skips look-alikes', () => {
    const filler = Buffer.alloc(2 * SEARCH_WINDOW + 4 * FIRST_WINDOW, '"model":');
    const buf = Buffer.from(filler);
    for (let at = 0; at + KEY.length <= buf.length; at++) {
      KEY.copy(buf, at);
      const got = findUsageKey(buf, 0, buf.length);
      filler.copy(buf, at, at, at + KEY.length);
      if (got !== at) assert.fail(`key at ${at}: found at ${got}`);
    }
    assert.equal(findUsageKey(filler, 0, filler.length), -1);
  });

  it('finds each of many keys when searched again from each match, as the usage tap does', () => {
    const event = 'data: {"model":"m","choices":[{"delta":{"content":"t"}}],"usage":null}\n\n';
    const run = Buffer.from(event.repeat(400));
    const want: number[] = [];
    for (let at = run.indexOf(KEY); at !== -1; at = run.indexOf(KEY, at + KEY.length)) want.push(at);
    const got: number[] = [];
    for (let at = findUsageKey(run, 0, run.length); at !== -1; at = findUsageKey(run, at + KEY.length, run.length)) got.push(at);
    assert.equal(got.length, 400);
    assert.deepEqual(got, want);
  });

  it('is what the usage tap searches long chunks with', () => {
    const events = Array.from({ length: 50 }, (_, i) => `data: {"model":"m","choices":[{"delta":{"content":"t${i}"}}],"usage":null}\n\n`).join('');
    const tap = new UsageTap();
    assert.equal(tap.feed(Buffer.from(events)), false);
    assert.equal(tap.feed(Buffer.from(`${events}data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":50}}\n\n`)), true);
    assert.equal(tap.promptTokens, 12);
    assert.equal(tap.completionTokens, 50);
  });
});
