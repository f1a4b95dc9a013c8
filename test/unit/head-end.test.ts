import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeadEnd } from '../../src/http/index.js';

/** endOf feeds pieces to a fresh HeadEnd and returns [piece index, offset] where the head ended, or null. */
function endOf(pieces: string[]): [number, number] | null {
  const h = new HeadEnd();
  for (let i = 0; i < pieces.length; i++) {
    const at = h.find(Buffer.from(pieces[i]!, 'latin1'), 0);
    if (at !== -1) return [i, at];
  }
  return null;
}

describe('HeadEnd', () => {
  const cases: Array<[string, number]> = [
    ['GET / HTTP/1.1\r\nhost: x\r\n\r\nbody', 27],
    ['\r\r\n\r\nX', 5],
    ['\r\n\r\r\n\r\n', 7],
    ['\r\n\n\r\n\r\n', 7],
    ['a\r\nb\r\n\r\n', 8],
  ];

  it('finds the blank line however the reads are cut, one byte at a time included', () => {
    for (const [text, end] of cases) {
      assert.deepEqual(endOf([text]), [0, end], JSON.stringify(text));
      for (let cut = 1; cut < text.length; cut++) {
        const expected: [number, number] = end <= cut ? [0, end] : [1, end - cut];
        assert.deepEqual(endOf([text.slice(0, cut), text.slice(cut)]), expected, `${JSON.stringify(text)} cut at ${cut}`);
      }
      assert.deepEqual(endOf([...text]), [end - 1, 1], `${JSON.stringify(text)} byte by byte`);
    }
  });

  it('finds nothing where there is no CRLF CRLF (bare LF, lone CRs, a match broken across reads)', () => {
    for (const pieces of [['a\n\n'], ['\r\n', 'x', '\r\n'], ['\r', '\r', '\r', '\r'], ['\r\n\r', 'x\n'], ['\n\r\n\r']]) {
      assert.equal(endOf(pieces), null, JSON.stringify(pieces));
    }
  });

  it('starts over after reset()', () => {
    const h = new HeadEnd();
    assert.equal(h.find(Buffer.from('\r\n\r'), 0), -1);
    h.reset();
    assert.equal(h.find(Buffer.from('\n'), 0), -1);
  });
});
