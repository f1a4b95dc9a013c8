import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RoundRobin } from '../../src/upstream/index.js';

describe('smooth weighted round-robin', () => {
  const seq = (weights: number[], n: number): string => {
    const targets = weights.map((weight, i) => ({ weight, id: String.fromCharCode(97 + i) }));
    const rr = new RoundRobin(targets);
    return Array.from({ length: n }, () => rr.pick()!.id).join('');
  };

  it('alternates equal weights', () => assert.equal(seq([1, 1, 1], 6), 'abcabc'));
  it('spreads a heavy target instead of bursting it (nginx order for 5,1,1)', () => assert.equal(seq([5, 1, 1], 7), 'aabacaa'));
  it('always returns the single target', () => assert.equal(seq([3], 3), 'aaa'));
  it('returns undefined without targets', () => assert.equal(new RoundRobin([]).pick(), undefined));
});
