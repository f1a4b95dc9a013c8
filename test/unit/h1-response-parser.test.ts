import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ResponseParser, type ResponseHeaders } from '../../src/upstream/h1/index.js';

interface Read {
  ok: boolean;
  error: string;
  heads: Array<{ status: number; headers: ResponseHeaders }>;
  body: string;
  ends: number;
  isReusable: boolean;
  hasExtraBytes: boolean;
  keepAliveMs: number;
}

/** read feeds raw response bytes in the given pieces (then optionally the upstream's close) and reports what came out. */
function read(pieces: Buffer[], opts: { isHead?: boolean; close?: boolean } = {}): Read {
  const r: Read = { ok: true, error: '', heads: [], body: '', ends: 0, isReusable: false, hasExtraBytes: false, keepAliveMs: 0 };
  const p = new ResponseParser({
    onHead: (status, headers) => r.heads.push({ status, headers: { ...headers } }),
    onBody: (chunk) => (r.body += chunk.toString('latin1')),
    onEnd: () => r.ends++,
  });
  p.start(opts.isHead === true);
  for (const piece of pieces) {
    if (!p.feed(piece)) {
      r.ok = false;
      break;
    }
  }
  if (r.ok && opts.close === true && !p.end()) r.ok = false;
  r.error = p.error;
  r.isReusable = p.isReusable;
  r.hasExtraBytes = p.hasExtraBytes;
  r.keepAliveMs = p.keepAliveMs;
  return r;
}

/** splits yields the bytes whole, cut at every position, and one byte at a time. */
function* splits(text: string): Generator<Buffer[]> {
  const b = Buffer.from(text, 'latin1');
  yield [b];
  for (let i = 1; i < b.length; i++) yield [b.subarray(0, i), b.subarray(i)];
  yield [...b].map((x) => Buffer.from([x]));
}

const VALID: Array<{ name: string; text: string; status: number; body: string; isReusable: boolean; isHead?: boolean; close?: boolean; headers?: ResponseHeaders }> = [
  { name: 'Content-Length', text: 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}', status: 200, body: '{"a":1}', isReusable: true, headers: { 'content-type': 'application/json', 'content-length': '7' } },
  { name: 'empty reason phrase', text: 'HTTP/1.1 204\r\n\r\n', status: 204, body: '', isReusable: true },
  { name: 'chunked with extensions and trailers', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n1 ; y\r\n!\r\n2 \r\n!!\r\n0\r\nX-Trailer: t\r\n\r\n', status: 200, body: 'hello!!!', isReusable: true },
  { name: 'uppercase hex chunk size', text: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n', status: 200, body: '0123456789', isReusable: true },
  { name: 'close-delimited', text: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end', status: 200, body: 'until the end', isReusable: false, close: true },
  { name: 'Connection: close', text: 'HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nok', status: 200, body: 'ok', isReusable: false },
  { name: 'HTTP/1.0', text: 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok', status: 200, body: 'ok', isReusable: false },
  { name: '304 ignores its Content-Length', text: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n', status: 304, body: '', isReusable: true },
  { name: 'HEAD response', text: 'HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n', status: 200, body: '', isReusable: true, isHead: true },
  { name: 'interim 100 and 103 heads are skipped', text: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx', status: 200, body: 'x', isReusable: true },
  {
    name: 'repeated fields, OWS and obs-text',
    text: 'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Spaces: \t padded \t\r\nX-Latin: caf\xe9\r\nContent-Length: 0\r\n\r\n',
    status: 200,
    body: '',
    isReusable: true,
    headers: { 'set-cookie': ['a=1', 'b=2'], 'x-spaces': 'padded', 'x-latin': 'caf\xe9', 'content-length': '0' },
  },
  { name: 'a non-chunked final coding reads to close', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw', status: 200, body: 'raw', isReusable: false, close: true },
];

const INVALID: Array<{ name: string; text: string; close?: boolean }> = [
  { name: 'bare LF line ends', text: 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok\r\n\r\n' },
  { name: 'bare LF inside a header value', text: 'HTTP/1.1 200 OK\r\nX-A: a\nX-B: b\r\nContent-Length: 0\r\n\r\n' },
  { name: 'bare CR inside a header value', text: 'HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n' },
  { name: 'obs-fold', text: 'HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n' },
  { name: 'space before the colon', text: 'HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n' },
  { name: 'no colon', text: 'HTTP/1.1 200 OK\r\nnonsense\r\n\r\n' },
  { name: 'HTTP/2.0 status line', text: 'HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n' },
  { name: 'two-digit status', text: 'HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n' },
  { name: 'status 600', text: 'HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n' },
  { name: 'not HTTP', text: 'SSH-2.0-OpenSSH\r\n\r\n' },
  { name: 'Transfer-Encoding with Content-Length', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n2\r\nok\r\n0\r\n\r\n' },
  { name: 'Content-Length with Transfer-Encoding: identity', text: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: identity\r\n\r\nok' },
  { name: 'equal repeated Content-Length (it would be forwarded twice)', text: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok' },
  { name: 'conflicting Content-Length', text: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok' },
  { name: 'conflicting Content-Length list', text: 'HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok' },
  { name: 'signed Content-Length', text: 'HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok' },
  { name: 'Content-Length with a tab inside', text: 'HTTP/1.1 200 OK\r\nContent-Length: 2\t2\r\n\r\nok' },
  { name: 'non-hex chunk size', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n' },
  { name: 'empty chunk size', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nok\r\n0\r\n\r\n' },
  { name: 'chunk longer than its size', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nok\r\n0\r\n\r\n' },
  { name: 'bare LF after a chunk size', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n' },
  { name: 'huge chunk size', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\nok' },
  { name: 'control character in a chunk extension', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a\x01\r\nok\r\n0\r\n\r\n' },
  { name: 'text after a chunk size', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 garbage\r\nok\r\n0\r\n\r\n' },
  { name: 'a trailer line starting with LF', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\nX: 1\r\n\r\n' },
  { name: 'a folded trailer line', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n 2\r\n\r\n' },
  { name: 'bare LF in a trailer', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\n\r\n' },
  { name: 'chunked applied twice', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n' },
  { name: '101 nobody asked for', text: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n' },
  { name: 'body cut short by the close', text: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort', close: true },
  { name: 'chunked body cut short by the close', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel', close: true },
  { name: 'close before any byte', text: '', close: true },
];

describe('upstream response parser', () => {
  for (const c of VALID) {
    it(`reads: ${c.name}, however the bytes are split`, () => {
      for (const pieces of splits(c.text)) {
        const r = read(pieces, { isHead: c.isHead, close: c.close });
        const where = `split ${pieces.map((p) => p.length).join('+')}`;
        assert.equal(r.ok, true, `${where}: ${r.error}`);
        assert.equal(r.heads.length, 1, where);
        assert.equal(r.heads[0]!.status, c.status, where);
        if (c.headers !== undefined) assert.deepEqual(r.heads[0]!.headers, c.headers, where);
        assert.equal(r.body, c.body, where);
        assert.equal(r.ends, 1, where);
        assert.equal(r.isReusable, c.isReusable, where);
        assert.equal(r.hasExtraBytes, false, where);
      }
    });
  }

  for (const c of INVALID) {
    it(`refuses: ${c.name}, however the bytes are split`, () => {
      for (const pieces of c.text === '' ? [[]] : splits(c.text)) {
        const r = read(pieces, { close: c.close });
        assert.equal(r.ok, false, `split ${pieces.map((p) => p.length).join('+')} was accepted`);
        assert.notEqual(r.error, '');
        assert.equal(r.ends, 0);
        assert.equal(r.isReusable, false);
      }
    });
  }

  it('reports bytes after the end of a response, which makes the connection unusable', () => {
    const r = read([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')]);
    assert.equal(r.ok, true);
    assert.equal(r.ends, 1);
    assert.equal(r.hasExtraBytes, true);
    assert.equal(r.isReusable, false);
  });

  it('refuses bytes when no request is outstanding', () => {
    const p = new ResponseParser({ onHead: () => {}, onBody: () => {}, onEnd: () => {} });
    assert.equal(p.feed(Buffer.from('HTTP/1.1 200 OK\r\n\r\n')), false);
  });

  it('refuses a head over 16 KiB, in one piece or many', () => {
    const big = `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\nContent-Length: 0\r\n\r\n`;
    assert.equal(read([Buffer.from(big)]).ok, false);
    const pieces = [];
    for (let i = 0; i < big.length; i += 1000) pieces.push(Buffer.from(big.slice(i, i + 1000)));
    const r = read(pieces);
    assert.equal(r.ok, false);
    assert.match(r.error, /too large/);
  });

  it('reads the Keep-Alive timeout hint (a hint of 0 is not the same as none)', () => {
    const hint = (h: string): number => read([Buffer.from(`HTTP/1.1 200 OK\r\n${h}Content-Length: 0\r\n\r\n`)]).keepAliveMs;
    assert.equal(hint('Keep-Alive: max=100, timeout=5\r\n'), 5000);
    assert.equal(hint('Keep-Alive: timeout=0\r\n'), 0);
    assert.equal(hint(''), -1);
  });

  it('keeps a __proto__ header as a plain field', () => {
    const r = read([Buffer.from('HTTP/1.1 200 OK\r\n__proto__: x\r\nContent-Length: 0\r\n\r\n')]);
    assert.equal(r.ok, true);
    assert.equal(r.heads[0]!.headers['__proto__'], 'x');
    assert.equal(Object.getPrototypeOf({}), Object.prototype);
  });

  it('stops delivering when the exchange is abandoned from inside an event', () => {
    let bodies = 0;
    const p: ResponseParser = new ResponseParser({
      onHead: () => {},
      onBody: () => {
        bodies++;
        p.stop();
      },
      onEnd: () => assert.fail('no end after stop'),
    });
    p.start(false);
    assert.equal(p.feed(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\n')), true);
    assert.equal(bodies, 1);
  });

  it('never throws on mangled responses, and ends each at most once (seeded fuzz)', () => {
    let seed = 0x2545f491;
    const rand = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const bases = VALID.map((c) => Buffer.from(c.text, 'latin1'));
    const alphabet = Buffer.from('\r\n:; \t0123456789abcdefHTTP/1.chunkedContent-Length\x00\x7f\xff');
    for (let round = 0; round < 3000; round++) {
      const bytes = Buffer.from(bases[rand(bases.length)]!);
      for (let m = rand(4) + 1; m > 0; m--) bytes[rand(bytes.length)] = alphabet[rand(alphabet.length)]!;
      let ends = 0;
      let bodyBytes = 0;
      const p = new ResponseParser({ onHead: () => {}, onBody: (c) => (bodyBytes += c.length), onEnd: () => ends++ });
      p.start(rand(8) === 0);
      let at = 0;
      let ok = true;
      while (ok && at < bytes.length) {
        const n = rand(bytes.length - at) + 1;
        ok = p.feed(bytes.subarray(at, at + n));
        at += n;
      }
      if (ok) p.end();
      assert.ok(ends <= 1, `round ${round}: ended ${ends} times`);
      assert.ok(bodyBytes <= bytes.length, `round ${round}: more body than bytes`);
    }
  });

  it('reads one response after another on the same connection', () => {
    const bodies: string[] = [];
    const p = new ResponseParser({ onHead: () => {}, onBody: (c) => bodies.push(c.toString()), onEnd: () => {} });
    for (const n of ['one', 'two']) {
      p.start(false);
      assert.equal(p.feed(Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n${n}`)), true);
      assert.equal(p.isDone, true);
      assert.equal(p.isReusable, true);
    }
    assert.deepEqual(bodies, ['one', 'two']);
  });
});

describe('response head arriving one byte at a time', () => {
  it('parses a head of nearly 16 KiB fed byte by byte, with every header and the body after it', () => {
    const fields = Array.from({ length: 650 }, (_, i) => `x-field-${String(i).padStart(3, '0')}: value-${i}\r\n`).join('');
    const text = `HTTP/1.1 200 OK\r\n${fields}content-length: 4\r\n\r\nbody`;
    assert.ok(text.length > 15_000 && text.length < 16 * 1024, `head of ${text.length} bytes`);
    const r = read([...Buffer.from(text, 'latin1')].map((b) => Buffer.from([b])));
    assert.equal(r.ok, true, r.error);
    assert.equal(r.heads.length, 1);
    assert.equal(Object.keys(r.heads[0]!.headers).length, 651);
    assert.equal(r.heads[0]!.headers['x-field-649'], 'value-649');
    assert.equal(r.body, 'body');
    assert.equal(r.ends, 1);
  });
});

describe('runs of whole chunks (onRun)', () => {
  const HEAD = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
  const c = (data: string, ext = ''): string => `${data.length.toString(16)}${ext}\r\n${data}\r\n`;

  /** feedWithRuns feeds the pieces; onRun takes up to `take(start, end)` and the rest comes as onBody. */
  function feedWithRuns(pieces: string[], take: (read: Buffer, start: number, end: number) => number): { runs: string[]; bodies: string[]; dataBytes: number[]; ends: number } {
    const out = { runs: [] as string[], bodies: [] as string[], dataBytes: [] as number[], ends: 0 };
    const p = new ResponseParser({
      onHead: () => {},
      onBody: (chunk) => out.bodies.push(chunk.toString('latin1')),
      onRun: (read, start, end, dataBytes) => {
        const taken = take(read, start, end);
        if (taken > start) out.runs.push(read.toString('latin1', start, taken));
        out.dataBytes.push(dataBytes);
        return taken;
      },
      onEnd: () => out.ends++,
    });
    p.start(false);
    for (const piece of pieces) assert.ok(p.feed(Buffer.from(piece, 'latin1')), p.error);
    return out;
  }

  it('offers the whole chunks of a read as one run; the last chunk and one cut by the read end are read as before', () => {
    const out = feedWithRuns([HEAD + c('aa') + c('bbb') + c('cccc').slice(0, 4), c('cccc').slice(4) + c('dd') + '0\r\n\r\n'], (_r, _s, end) => end);
    assert.deepEqual(out.runs, [c('aa') + c('bbb'), c('dd')]);
    assert.deepEqual(out.dataBytes, [5, 2]);
    assert.deepEqual(out.bodies, ['c', 'ccc'], 'the chunk cut by the read end comes as data');
    assert.equal(out.ends, 1);
  });

  it('delivers the chunks of a run that were not taken one by one, without offering them again', () => {
    const text = HEAD + c('aa') + c('bbb') + c('cccc') + '0\r\n\r\n';
    const out = feedWithRuns([text], (read, start) => {
      // Take the first chunk only.
      return read.indexOf('\r\n', read.indexOf('\r\n', start) + 2) + 2;
    });
    assert.deepEqual(out.runs, [c('aa')]);
    assert.deepEqual(out.bodies, ['bbb', 'cccc']);
    assert.equal(out.dataBytes.length, 1, 'offered once');
    assert.equal(out.ends, 1);
  });

  it('stops a run at a chunk with extensions, which is read as before', () => {
    const out = feedWithRuns([HEAD + c('aa') + c('bb', ';x=1') + c('cc') + '0\r\n\r\n'], (_r, _s, end) => end);
    assert.deepEqual(out.runs, [c('aa'), c('cc')]);
    assert.deepEqual(out.bodies, ['bb']);
  });
});
