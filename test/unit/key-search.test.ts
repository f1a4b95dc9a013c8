import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findUsageKey, isSimdSearch } from '../../src/proxy/key-search.js';
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

  it('finds keys across the edges of its 64 KiB windows, and skips look-alikes', () => {
    const big = Buffer.alloc(200_000, '"model":');
    for (const at of [65_528, 65_530, 65_535, 131_060, 199_992]) {
      const buf = Buffer.from(big);
      KEY.copy(buf, at);
      assert.equal(findUsageKey(buf, 0, buf.length), at, `key at ${at}`);
      assert.equal(findUsageKey(buf, 1000, buf.length), at, `key at ${at}, from 1000`);
    }
    assert.equal(findUsageKey(big, 0, big.length), -1);
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
