import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { FastResponse, InvalidHeaderError } from '../../src/http/fast/index.js';
import { HAND_OVER, INCOMPLETE, MAX_HEADER_FIELDS, TOO_MANY_FIELDS, parseHead, type Head } from '../../src/http/fast/parse-head.js';

const MAX = 16 * 1024;
const parse = (text: string): ReturnType<typeof parseHead> => parseHead(Buffer.from(text, 'latin1'), 0, MAX);
const head = (text: string): Head => {
  const h = parse(text);
  assert.ok(typeof h === 'object', `expected a head for ${JSON.stringify(text)}, got ${String(h)}`);
  return h;
};

describe('fast HTTP/1.1 head parser', () => {
  it('accepts the common API call and reads it as node:http would', () => {
    const text = 'POST /ai/v1/chat/completions?x=1 HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nX-Model:  m \r\napikey: k\r\nContent-Length: 12\r\n\r\n{"a":"body"}';
    const h = head(text);
    assert.equal(h.method, 'POST');
    assert.equal(h.url, '/ai/v1/chat/completions?x=1');
    assert.equal(h.contentLength, 12);
    assert.equal(h.isClose, false);
    assert.equal(h.end, text.length - 12);
    assert.deepEqual({ ...h.headers }, { host: 'gw', 'content-type': 'application/json', 'x-model': 'm', apikey: 'k', 'content-length': '12' });
    assert.equal(head('GET / HTTP/1.1\r\nhost: x\r\nConnection: Close\r\n\r\n').isClose, true);
    assert.equal(Object.getPrototypeOf(head('GET / HTTP/1.1\r\nhost: x\r\n\r\n').headers), null);
  });

  it('waits for the rest of a head, and hands an oversized one to node:http (which answers 431)', () => {
    assert.equal(parse('POST / HTTP/1.1\r\nhost: x\r\n'), INCOMPLETE);
    assert.equal(parse(`GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(MAX)}\r\n`), HAND_OVER);
    assert.equal(parse(`GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(MAX)}\r\n\r\n`), HAND_OVER);
  });

  it('hands a head with a bare LF to node:http (which answers 400) before its end arrives', () => {
    for (const text of ['GET / HTTP/1.1\nhost: x\n', 'GET / HTTP/1.1\nhost: x\n\n', 'GET / HTTP/1.1\r\nhost: x\n', 'GET / HTTP/1.1\r\nhost: x\r\n\n', '\n']) {
      assert.equal(parse(text), HAND_OVER, JSON.stringify(text));
    }
    assert.equal(parse('GET / HTTP/1.1\r\nhost: x\r'), INCOMPLETE);
  });

  it(`refuses more than ${MAX_HEADER_FIELDS} header fields (431), whatever the size limit allows`, () => {
    const fields = (n: number): string => Array.from({ length: n - 1 }, (_, i) => `f${i.toString(36)}:\r\n`).join('');
    assert.equal(typeof parse(`GET / HTTP/1.1\r\nhost: x\r\n${fields(MAX_HEADER_FIELDS)}\r\n`), 'object');
    assert.equal(parse(`GET / HTTP/1.1\r\nhost: x\r\n${fields(MAX_HEADER_FIELDS + 1)}\r\n`), TOO_MANY_FIELDS);
  });

  it('hands over every shape it does not serve itself', () => {
    const cases: Record<string, string> = {
      'HTTP/1.0': 'GET / HTTP/1.0\r\nhost: x\r\n\r\n',
      'HEAD': 'HEAD / HTTP/1.1\r\nhost: x\r\n\r\n',
      'lower-case method': 'get / HTTP/1.1\r\nhost: x\r\n\r\n',
      'unknown method': 'BREW / HTTP/1.1\r\nhost: x\r\n\r\n',
      'absolute-form target': 'GET http://x/ HTTP/1.1\r\nhost: x\r\n\r\n',
      'asterisk target': 'OPTIONS * HTTP/1.1\r\nhost: x\r\n\r\n',
      'two spaces': 'GET  / HTTP/1.1\r\nhost: x\r\n\r\n',
      'fragment': 'GET /a#b HTTP/1.1\r\nhost: x\r\n\r\n',
      'no host': 'GET / HTTP/1.1\r\n\r\n',
      'two hosts': 'GET / HTTP/1.1\r\nhost: x\r\nhost: y\r\n\r\n',
      'transfer-encoding': 'POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n',
      'CL and TE': 'POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n',
      'duplicate content-length': 'POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\ncontent-length: 3\r\n\r\n',
      'signed content-length': 'POST / HTTP/1.1\r\nhost: x\r\ncontent-length: +3\r\n\r\n',
      'content-length list': 'POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3, 3\r\n\r\n',
      'empty content-length': 'POST / HTTP/1.1\r\nhost: x\r\ncontent-length:\r\n\r\n',
      'content-length with trailing tab': 'POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\t\r\n\r\n',
      'content-length with trailing space': 'POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5 \r\n\r\n',
      '__proto__ header': 'GET / HTTP/1.1\r\nhost: x\r\n__proto__: y\r\n\r\n',
      'expect': 'POST / HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 1\r\n\r\n',
      'upgrade': 'GET / HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n',
      'connection: upgrade': 'GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\n\r\n',
      'obs-fold': 'GET / HTTP/1.1\r\nhost: x\r\nx-a: 1\r\n 2\r\n\r\n',
      'space before colon': 'GET / HTTP/1.1\r\nhost: x\r\nx-a : 1\r\n\r\n',
      'bare LF in a header': 'GET / HTTP/1.1\r\nhost: x\r\nx-a: 1\nx-b: 2\r\n\r\n',
      'bare CR in a value': 'GET / HTTP/1.1\r\nhost: x\r\nx-a: 1\r2\r\n\r\n',
      'NUL in a value': 'GET / HTTP/1.1\r\nhost: x\r\nx-a: 1\x002\r\n\r\n',
      'control byte in a value': 'GET / HTTP/1.1\r\nhost: x\r\nx-a: 1\x7f\r\n\r\n',
      'empty header name': 'GET / HTTP/1.1\r\nhost: x\r\n: 1\r\n\r\n',
      'non-token header name': 'GET / HTTP/1.1\r\nhost: x\r\nx(a): 1\r\n\r\n',
      'duplicate header': 'GET / HTTP/1.1\r\nhost: x\r\napikey: a\r\napikey: b\r\n\r\n',
      'same header, other case': 'GET / HTTP/1.1\r\nhost: x\r\nX-Model: a\r\nx-model: b\r\n\r\n',
      'leading empty line': '\r\nGET / HTTP/1.1\r\nhost: x\r\n\r\n',
    };
    for (const [name, text] of Object.entries(cases)) assert.equal(parse(text), HAND_OVER, name);
  });
});

/** pair returns both ends of a loopback TCP connection. */
async function pair(): Promise<{ server: Socket; client: Socket; close: () => void }> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  const client = connect(port, '127.0.0.1');
  const [server] = (await once(srv, 'connection')) as [Socket];
  return { server, client, close: () => (client.destroy(), server.destroy(), srv.close()) };
}

describe('fast HTTP/1.1 response writer', () => {
  const owner = { keepAliveHeader: 'Connection: keep-alive\r\nKeep-Alive: timeout=65\r\n', isClosing: () => false, done: () => {} };

  it('refuses header names and values that node:http refuses (no response splitting)', async () => {
    const { server, close } = await pair();
    try {
      const res = new FastResponse(server, owner);
      assert.throws(() => res.writeHead(200, ['x-a', 'ok\r\nset-cookie: evil=1']), InvalidHeaderError);
      assert.throws(() => new FastResponse(server, owner).writeHead(200, ['bad name', 'v']), InvalidHeaderError);
      assert.throws(() => new FastResponse(server, owner).writeHead(200, { 'x-a': 'a\nb' }), InvalidHeaderError);
      assert.equal(res.headersSent, false);
    } finally {
      close();
    }
  });

  it('frames bodies as node:http does: length when given, else chunked; none for 204', async () => {
    const { server, client, close } = await pair();
    try {
      let got = '';
      client.on('data', (c: Buffer) => (got += c.toString('latin1')));
      const a = new FastResponse(server, owner);
      a.writeHead(200, ['content-type', 'application/json', 'content-length', '2']).end('{}');
      const b = new FastResponse(server, owner);
      b.writeHead(200, { 'content-type': 'text/event-stream' });
      b.write('data: 1\n\n');
      b.end();
      const c = new FastResponse(server, owner);
      c.writeHead(204, []).end('ignored');
      await new Promise((r) => setTimeout(r, 50));
      const [ra, rb, rc] = got.split(/(?=HTTP\/1\.1 )/);
      assert.match(ra!, /^HTTP\/1\.1 200 OK\r\ncontent-type: application\/json\r\ncontent-length: 2\r\nDate: .+\r\nConnection: keep-alive\r\nKeep-Alive: timeout=65\r\n\r\n\{\}$/);
      assert.match(rb!, /^HTTP\/1\.1 200 OK\r\ncontent-type: text\/event-stream\r\nDate: .+\r\nConnection: keep-alive\r\nKeep-Alive: timeout=65\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n0\r\n\r\n$/);
      assert.match(rc!, /^HTTP\/1\.1 204 No Content\r\nDate: .+\r\nConnection: keep-alive\r\nKeep-Alive: timeout=65\r\n\r\n$/);
      assert.equal(a.writableFinished && b.writableFinished && c.writableFinished, true);
    } finally {
      close();
    }
  });
});
