/**
 * The built-in HTTP/1.1 upstream client (src/upstream/h1) against a scripted raw-socket engine:
 * connection reuse, what makes a connection unusable, malformed and truncated answers, timeouts,
 * and the same answers as undici (`proxy.fast_upstream: false`) for the simulator.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Cleanup, chat, post, startGateway, startSim } from '../helpers/harness.js';

type ErrorJson = { error: { code: string } };

/** Exchange is one request the scripted engine read: its connection number and raw bytes. */
interface SeenRequest {
  conn: number;
  head: string;
  body: string;
}

/** Script answers the n-th request (0-based) on a connection; it writes to the socket itself. */
type Script = (sock: Socket, req: SeenRequest, n: number) => void;

/** ScriptedEngine is a raw HTTP/1.1 server whose answers the test writes byte by byte. */
class ScriptedEngine {
  readonly server: Server;
  readonly seen: SeenRequest[] = [];
  connections = 0;
  script: Script = (sock) => sock.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');

  constructor() {
    this.server = createServer((sock) => {
      const conn = ++this.connections;
      let buf = Buffer.alloc(0);
      sock.on('error', () => {});
      sock.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buf.subarray(0, end).toString('latin1');
          const len = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
          if (buf.length < end + 4 + len) return;
          const req = { conn, head, body: buf.subarray(end + 4, end + 4 + len).toString() };
          buf = buf.subarray(end + 4 + len);
          this.seen.push(req);
          this.script(sock, req, this.seen.length - 1);
        }
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  close(): Promise<void> {
    this.server.close();
    return Promise.resolve();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('built-in HTTP/1.1 upstream client', () => {
  let cleanup: Cleanup;
  let engine: ScriptedEngine;
  let url: string;

  beforeEach(async () => {
    cleanup = new Cleanup();
    engine = new ScriptedEngine();
    const engineUrl = await engine.listen();
    cleanup.add(() => engine.close());
    const gw = await startGateway(cleanup, {
      models: [{ name: 'm', targets: [{ url: engineUrl }], timeouts: { first_byte: '500ms', idle: '300ms' }, retries: 0 }],
    });
    url = `${gw.url}/v1/chat/completions`;
  });
  afterEach(() => cleanup.run());

  const ask = (extra: Record<string, string> = {}): Promise<Response> => post(url, chat('m'), { 'x-model': 'm', ...extra });

  it('sends one request per exchange on one kept-alive connection', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await ask();
      assert.equal(res.status, 200);
      assert.equal(await res.text(), '{}');
    }
    assert.equal(engine.connections, 1);
    const req = engine.seen[0]!;
    assert.match(req.head, /^POST \/v1\/chat\/completions HTTP\/1\.1\r\n/);
    assert.match(req.head, /\r\nhost: 127\.0\.0\.1:\d+\r\n/);
    assert.match(req.head, new RegExp(`\\r\\ncontent-length: ${Buffer.byteLength(chat('m'))}(\\r\\n|$)`));
    assert.equal(req.body, chat('m'));
  });

  it('reuses a connection that was idle for over a second (after checking it is still open)', async () => {
    assert.equal((await ask()).status, 200);
    await sleep(1100);
    const res = await ask();
    assert.equal(res.status, 200);
    await res.text();
    assert.equal(engine.connections, 1);
  });

  it('drops a connection that sends bytes nobody asked for; the next request opens a new one', async () => {
    engine.script = (sock) => {
      sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}');
      setTimeout(() => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray'), 30);
    };
    assert.equal(await (await ask()).text(), '{}');
    await sleep(100);
    const res = await ask();
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '{}');
    assert.equal(engine.connections, 2);
  });

  it('never hands bytes an engine wrote on an idle connection to the next request, even when both are waiting in the same loop turn', async () => {
    const engineSockets: Socket[] = [];
    engine.script = (sock) => {
      engineSockets.push(sock);
      sock.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
    };
    const body = chat('m');
    const request = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-model: m\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const client = connect(Number(new URL(url).port), '127.0.0.1');
    cleanup.add(() => void client.destroy());
    let text = '';
    const responses = (n: number): Promise<void> => new Promise((resolve) => {
      const check = (): void => {
        if ((text.match(/\r\n\r\n(\{\}|PWNED!)/g) ?? []).length < n) return;
        client.off('data', check);
        resolve();
      };
      client.on('data', check);
    });
    client.on('data', (c: Buffer) => (text += c.toString('latin1')));
    await new Promise((r) => client.once('connect', r));
    let done = responses(1);
    client.write(request);
    await done;
    // The next request and an answer nobody asked for are both waiting when the gateway next reads.
    done = responses(2);
    client.write(request);
    engineSockets[0]!.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 6\r\n\r\nPWNED!');
    await done;
    assert.doesNotMatch(text, /PWNED/);
    assert.equal(engine.seen.length, 2);
    assert.equal(engine.connections, 2, 'the connection that spoke out of turn was not reused');
  });

  it('does not reuse a connection whose response was followed by extra bytes', async () => {
    engine.script = (sock) => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray');
    assert.equal(await (await ask()).text(), '{}');
    assert.equal(await (await ask()).text(), '{}');
    assert.equal(engine.connections, 2);
  });

  it('copes with an engine that closes each connection after its response without saying so', async () => {
    engine.script = (sock) => sock.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}');
    for (let i = 0; i < 5; i++) {
      const res = await ask();
      assert.equal(res.status, 200, `request ${i}`);
      await res.text();
    }
    assert.equal(engine.connections, 5);
  });

  it('does not reuse a connection the engine hinted would close too soon (Keep-Alive: timeout=1)', async () => {
    engine.script = (sock) => sock.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\n{}');
    await (await ask()).text();
    await (await ask()).text();
    assert.equal(engine.connections, 2);
  });

  it('does not reuse a connection whose request body was still being sent when the answer came', async () => {
    // The engine answers from the head alone and stops reading: the rest of the body stays
    // queued on the gateway's side and must never be read as the start of the next request.
    let first = true;
    engine.server.removeAllListeners('connection');
    engine.server.on('connection', (sock: Socket) => {
      engine.connections++;
      sock.on('error', () => {});
      if (first) {
        first = false;
        sock.once('data', () => {
          sock.pause();
          sock.write('HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
        });
        return;
      }
      let buf = '';
      sock.on('data', (c: Buffer) => {
        buf += c.toString('latin1');
        if (buf.includes('\r\n\r\n')) sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}');
      });
    });
    const big = chat('m', { padding: 'x'.repeat(24 * 1024 * 1024) });
    const res = await post(url, big, { 'x-model': 'm' });
    assert.equal(res.status, 413);
    await res.text();
    const next = await post(url, '{}', { 'x-model': 'm' });
    assert.equal(next.status, 200);
    assert.equal(await next.text(), '{}');
    assert.equal(engine.connections, 2);
  });

  it('answers 502 upstream_error for a malformed response head', async () => {
    engine.script = (sock) => sock.write('HTTP/1.1 200 OK\nContent-Length: 2\n\n{}\r\n\r\n');
    const res = await ask();
    assert.equal(res.status, 502);
    assert.equal(((await res.json()) as ErrorJson).error.code, 'upstream_error');
    // The next request gets a fresh connection and a good answer.
    engine.script = (sock) => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}');
    assert.equal((await ask()).status, 200);
  });

  it('answers 502 upstream_error when the engine closes before answering', async () => {
    engine.script = (sock) => sock.destroy();
    const res = await ask();
    assert.equal(res.status, 502);
    assert.equal(((await res.json()) as ErrorJson).error.code, 'upstream_error');
  });

  it('cuts the client connection when a response body is cut short', async () => {
    engine.script = (sock) => sock.end('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"partial":');
    const res = await ask();
    assert.equal(res.status, 200);
    await assert.rejects(res.text());
  });

  it('relays a chunked response (extensions, trailers) as its data', async () => {
    engine.script = (sock) => {
      sock.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{"a"\r\n');
      setTimeout(() => sock.write('3\r\n:1}\r\n0\r\nX-Trailer: yes\r\n\r\n'), 20);
    };
    const res = await ask();
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '{"a":1}');
    assert.equal((await ask()).status, 200);
    assert.equal(engine.connections, 1);
  });

  it('times out a response head that does not come (504) and a stream that goes silent (final SSE error)', async () => {
    engine.script = () => {};
    const res = await ask();
    assert.equal(res.status, 504);
    assert.equal(((await res.json()) as ErrorJson).error.code, 'upstream_timeout');

    engine.script = (sock) => sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n');
    const t0 = performance.now();
    const stream = await ask();
    assert.equal(stream.status, 200);
    const text = await stream.text();
    assert.ok(performance.now() - t0 >= 250, 'the stream ended before the idle timeout');
    const events = text.trim().split('\n\n');
    assert.equal(events[0], 'data: 1');
    assert.equal((JSON.parse(events.at(-1)!.slice(6)) as ErrorJson).error.code, 'upstream_timeout');
  });
});

describe('fast_upstream on and off', () => {
  let cleanup: Cleanup;
  beforeEach(() => {
    cleanup = new Cleanup();
  });
  afterEach(() => cleanup.run());

  it('gives the same answers through the built-in client and through undici', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const shapes: string[][] = [];
    for (const fast of [true, false]) {
      const gw = await startGateway(cleanup, { proxy: { fast_upstream: fast }, models: [{ name: 'm', targets: [{ url: sim.url }] }] });
      const shape: string[] = [];
      const json = await post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm' });
      const body = (await json.json()) as { object: string; choices: unknown[]; usage: unknown };
      shape.push(`${json.status} ${json.headers.get('content-type')} ${body.object} ${body.choices.length} ${JSON.stringify(body.usage)}`);
      const sse = await post(`${gw.url}/v1/chat/completions`, chat('m', { stream: true, max_tokens: 5 }), { 'x-model': 'm' });
      const events = (await sse.text()).trim().split('\n\n');
      shape.push(`${sse.status} ${sse.headers.get('content-type')} ${events.length} ${events.at(-1)}`);
      const err = await post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-model': 'm', 'x-sim-status': '429' });
      shape.push(`${err.status} ${await err.text()}`);
      shapes.push(shape);
    }
    assert.deepEqual(shapes[0], shapes[1]);
  });
});
