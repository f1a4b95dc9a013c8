import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { compileSnapshot, loadConfigText } from '../../src/config/index.js';
import { SplitChoice, hexToUnit, stringToUnit } from '../../src/routing/index.js';

const NONE = { kind: 'none' } as const;

/** share is the fraction of 10,000 picks (u from `unitOf(i)`) that land on 'v1'. */
function share(choice: SplitChoice<string>, unitOf: (i: number) => number): number {
  let v1 = 0;
  for (let i = 0; i < 10_000; i++) if (choice.pick(unitOf(i)) === 'v1') v1++;
  return v1 / 10_000;
}

describe('split choice', () => {
  it('picks by cumulative weight: the bounds fall where the weights say', () => {
    const c = new SplitChoice(['a', 'b', 'c'], [1, 2, 1], NONE);
    assert.deepEqual([0, 0.2499, 0.25, 0.7499, 0.75, 0.9999].map((u) => c.pick(u)), ['a', 'a', 'b', 'b', 'c', 'c']);
    const alias = new SplitChoice(['only'], [5], NONE);
    assert.equal(alias.pick(0.999), 'only');
  });

  it('lands a 90/10 split within 90 ± 2 % over 10,000 random draws, hashed keys and header values', () => {
    const c = new SplitChoice(['v1', 'v2'], [90, 10], NONE);
    for (const [what, unitOf] of [
      ['Math.random', () => Math.random()],
      ['API key hashes', (i: number) => hexToUnit(createHash('sha256').update(`sk-key-${i}`).digest('hex'))],
      ['header values', (i: number) => stringToUnit(`user-${i}`)],
    ] as const) {
      const s = share(c, unitOf);
      assert.ok(Math.abs(s - 0.9) <= 0.02, `${what}: ${s}`);
    }
  });

  it('moves only the keys between the old and the new bound when the weights change', () => {
    const before = new SplitChoice(['v1', 'v2'], [90, 10], NONE);
    const after = new SplitChoice(['v1', 'v2'], [80, 20], NONE);
    let moved = 0;
    for (let i = 0; i < 10_000; i++) {
      const u = stringToUnit(`user-${i}`);
      const [a, b] = [before.pick(u), after.pick(u)];
      if (a === b) continue;
      assert.equal(`${a}->${b}`, 'v1->v2');
      moved++;
    }
    assert.ok(Math.abs(moved / 10_000 - 0.1) <= 0.02, `moved ${moved}`);
  });

  it('hashes into [0, 1) and the same value always to the same number', () => {
    assert.equal(hexToUnit('00000000ffff'), 0);
    assert.equal(hexToUnit('ffffffff'), 0xffffffff / 2 ** 32);
    assert.equal(hexToUnit('80000000'), 0.5);
    assert.equal(stringToUnit('tenant-a'), stringToUnit('tenant-a'));
    for (let i = 0; i < 1000; i++) {
      const u = stringToUnit(String(i));
      assert.ok(u >= 0 && u < 1);
    }
  });

  it('compiles a split into its models, weights and sticky setting', () => {
    const load = (w1: number, w2: number) =>
      loadConfigText(
        [
          'models:',
          '  - { name: v1, path: /ai, served_model: org/v1, targets: [{ url: "http://h:1" }] }',
          '  - { name: v2, path: /ai, targets: [{ url: "http://h:2" }], fallback: [v1] }',
          '  - name: chat',
          '    path: /ai',
          `    split: [{ model: v1, weight: ${w1} }, { model: v2, weight: ${w2} }]`,
          '    sticky: "header:X-User"',
        ].join('\n'),
        { file: 'gateway.yaml', baseDir: '.' },
      );
    const snap = compileSnapshot(load(90, 10));
    const [v1, v2, chat] = snap.models;
    assert.deepEqual(chat!.split!.entries, [v1, v2]);
    assert.deepEqual(chat!.split!.weights, [90, 10]);
    assert.deepEqual(chat!.split!.sticky, { kind: 'header', header: 'x-user' });
    assert.equal(v1!.split, null);
    // A metrics row per model that may serve chat: both sides (v2's fallback v1 is one of them).
    assert.deepEqual([...chat!.servedRows!.keys()], [v1, v2]);
    assert.deepEqual([...v2!.servedRows!.keys()], [v1]);
    assert.equal(v1!.servedRows, null);
    // Weights are part of what a reload compares.
    assert.equal(compileSnapshot(load(90, 10)).hash, snap.hash);
    assert.notEqual(compileSnapshot(load(80, 20)).hash, snap.hash);
  });
});
