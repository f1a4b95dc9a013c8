import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageTap } from '../../src/proxy/usage-tap.js';
import { UsageChunkHider } from '../../src/transform/index.js';

const head = 'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[';
const content = [`${head}{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n`, `${head}{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}\n\n`];
const usage = `${head}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n`;
const done = 'data: [DONE]\n\n';

/** run feeds the pieces as forward does (the tap first, its finding to the hider) and returns what the client got and the counts. */
function run(pieces: string[]): { out: string; tap: UsageTap; maxHeld: number } {
  const tap = new UsageTap();
  const hider = new UsageChunkHider();
  hider.start(200, { 'content-type': 'text/event-stream' });
  let out = '';
  let inBytes = 0;
  let maxHeld = 0;
  for (const p of pieces) {
    const chunk = Buffer.from(p, 'latin1');
    inBytes += chunk.length;
    const got = hider.data(chunk, tap.feed(chunk));
    if (got !== null) out += got.toString('latin1');
    maxHeld = Math.max(maxHeld, inBytes - out.length);
  }
  out += hider.end()?.toString('latin1') ?? '';
  return { out, tap, maxHeld };
}

function cutAt(s: string, ...at: number[]): string[] {
  const points = [0, ...at.filter((a) => a > 0 && a < s.length).sort((a, b) => a - b), s.length];
  return points.slice(1).map((p, i) => s.slice(points[i], p));
}

describe('UsageChunkHider with the usage tap', () => {
  it('removes the usage event however the stream is cut in two or three pieces', () => {
    const all = content.join('') + usage + done;
    const want = content.join('') + done;
    for (let a = 1; a < all.length; a++) {
      for (const b of [a + 1, a + 7, all.length - 3]) {
        const { out, tap } = run(cutAt(all, a, b));
        assert.equal(out, want, `cut at ${a}, ${b}`);
        assert.deepEqual([tap.promptTokens, tap.completionTokens], [3, 2], `cut at ${a}, ${b}`);
      }
    }
  });

  it('keeps events whose usage is null or that carry choices', () => {
    const withNull = `${head}{"index":0,"delta":{"content":"x"},"finish_reason":null}],"usage":null}\n\n`;
    const continuous = `${head}{"index":0,"delta":{"content":"x"},"finish_reason":null}],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n`;
    assert.equal(run([withNull, continuous, usage, done]).out, withNull + continuous + done);
  });

  it('passes an over-long event through as it comes, then still removes the usage event', () => {
    const long = `${head}{"index":0,"delta":{"content":"${'a'.repeat(40_000)}"},"finish_reason":"stop"}]}\n\n`;
    const all = long + usage + done;
    for (const size of [1000, 4096, 16_000, 65_536]) {
      const pieces: string[] = [];
      for (let i = 0; i < all.length; i += size) pieces.push(all.slice(i, i + size));
      const { out, maxHeld } = run(pieces);
      assert.equal(out, long + done, `pieces of ${size}`);
      assert.ok(maxHeld <= 16 * 1024 + size, `held ${maxHeld} bytes with pieces of ${size}`);
    }
    // The blank line that ends the long event cut between two pieces.
    const end = long.length - 1;
    assert.equal(run([all.slice(0, 20_000), all.slice(20_000, end), all.slice(end)]).out, long + done);
  });

  it('never holds a body that has no event boundary at all', () => {
    const piece = 'a'.repeat(64 * 1024);
    const { out, maxHeld } = run([piece, piece, piece]);
    assert.equal(out.length, 3 * piece.length);
    assert.ok(maxHeld <= piece.length);
  });
});

describe('UsageTap.cleanPrefix: which chunks of a run may pass without a look at each', () => {
  const c = (data: string): string => `${data.length.toString(16)}\r\n${data}\r\n`;
  const ev = (i: number): string => `data: {"choices":[{"delta":{"content":"t${i}"}}],"usage":null}\n\n`;
  const USAGE_EVENT = 'data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2}}\n\n';
  const prefixOf = (text: string, tap = new UsageTap()): { clean: string; bytes: number } => {
    const b = Buffer.from(text, 'latin1');
    const end = tap.cleanPrefix(b, 0, b.length);
    return { clean: text.slice(0, end), bytes: tap.cleanBytes };
  };

  it('takes every chunk that ends an event and holds no usage object ("usage":null is none)', () => {
    const text = c(ev(1)) + c(ev(2)) + c(ev(3));
    assert.deepEqual(prefixOf(text), { clean: text, bytes: ev(1).length + ev(2).length + ev(3).length });
  });

  it('stops before the chunk holding a usage object, and before a chunk that does not end an event', () => {
    assert.equal(prefixOf(c(ev(1)) + c(USAGE_EVENT) + c(ev(2))).clean, c(ev(1)));
    assert.equal(prefixOf(c(ev(1)) + c(ev(2).slice(0, 10)) + c(ev(2).slice(10))).clean, c(ev(1)));
  });

  it('takes nothing while part of a usage object from an earlier chunk is pending', () => {
    const tap = new UsageTap();
    tap.feed(Buffer.from('data: {"choices":[],"us'));
    assert.equal(prefixOf(c(ev(1)), tap).clean, '');
  });
});
