/**
 * Streams relayed with the upstream's own chunk framing (src/http/relay.ts): whatever way an
 * engine cuts its chunked body into writes (several chunks in one, a chunk over two, extensions),
 * the client gets a well-framed chunked body holding exactly the events, the usage event the
 * gateway asked for is hidden and counted, and an error after relayed chunks ends the body with
 * an SSE error event in a chunk of its own.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Cleanup, startGateway, type RunningGateway } from '../helpers/harness.js';

/** Script answers one request; it writes to the socket itself. */
type Script = (sock: Socket) => void;

class ScriptedEngine {
  readonly server: Server;
  script: Script = () => {};

  constructor() {
    this.server = createServer((sock) => {
      let buf = Buffer.alloc(0);
      sock.on('error', () => {});
      sock.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const len = Number(/\r\ncontent-length: (\d+)/i.exec(buf.subarray(0, end).toString('latin1'))?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        buf = buf.subarray(end + 4 + len);
        this.script(sock);
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }
}

const HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n';
const event = (i: number, finish: string | null = null): string =>
  `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"t${i} "},"finish_reason":${finish === null ? 'null' : `"${finish}"`}}]}\n\n`;
const USAGE = 'data: {"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":11,"total_tokens":16,"completion_tokens":5}}\n\n';
const DONE = 'data: [DONE]\n\n';
const chunk = (data: string, ext = ''): string => `${Buffer.byteLength(data).toString(16)}${ext}\r\n${data}\r\n`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** RawAnswer is a response read off a raw socket, its chunked body decoded strictly. */
interface RawAnswer {
  head: string;
  /** chunks are the body's chunks as the client received them. */
  chunks: string[];
  body: string;
}

/** ask sends one streaming request on a raw socket and decodes the chunked answer, failing on any framing error. */
async function ask(gw: RunningGateway, extra = ''): Promise<RawAnswer> {
  const port = Number(new URL(gw.url).port);
  const body = `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]${extra}}`;
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const parts: Buffer[] = [];
    sock.on('data', (c: Buffer) => {
      parts.push(c);
      if (Buffer.concat(parts).includes('\r\n0\r\n\r\n')) {
        sock.destroy();
        resolve(Buffer.concat(parts));
      }
    });
    sock.on('error', reject);
    sock.on('close', () => resolve(Buffer.concat(parts)));
    sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
  const text = raw.toString('latin1');
  const headEnd = text.indexOf('\r\n\r\n');
  const head = text.slice(0, headEnd);
  assert.match(head, /^HTTP\/1\.1 200 /);
  assert.match(head, /\r\ntransfer-encoding: chunked/i);
  const chunks: string[] = [];
  let at = headEnd + 4;
  for (;;) {
    const lineEnd = text.indexOf('\r\n', at);
    assert.ok(lineEnd > at, `a chunk size line at ${at}`);
    const line = text.slice(at, lineEnd);
    assert.match(line, /^[0-9a-f]+$/, `a plain chunk size line, got ${JSON.stringify(line)}`);
    const size = parseInt(line, 16);
    at = lineEnd + 2;
    if (size === 0) {
      assert.equal(text.slice(at), '\r\n', 'nothing after the last chunk');
      break;
    }
    chunks.push(text.slice(at, at + size));
    at += size;
    assert.equal(text.slice(at, at + 2), '\r\n', 'CRLF after chunk data');
    at += 2;
  }
  return { head, chunks, body: chunks.join('') };
}

describe('stream relay with the upstream framing', () => {
  let cleanup: Cleanup;
  let engine: ScriptedEngine;
  let gw: RunningGateway;

  beforeEach(async () => {
    cleanup = new Cleanup();
    engine = new ScriptedEngine();
    const url = await engine.listen();
    cleanup.add(() => void engine.server.close());
    gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url }], timeouts: { idle: '300ms' }, retries: 0 }] });
  });
  afterEach(() => cleanup.run());

  const events = [event(1), event(2), event(3), event(4), event(5, 'length')];

  it('passes every event once, however the engine cut its writes; hides the usage event and counts it', async () => {
    engine.script = async (sock) => {
      sock.write(HEAD + chunk(events[0]!) + chunk(events[1]!));
      await sleep(5);
      // One chunk over two writes, cut inside its data.
      const c = chunk(events[2]!);
      sock.write(c.slice(0, 30));
      await sleep(5);
      sock.write(c.slice(30) + chunk(events[3]!, ';x=1'));
      await sleep(5);
      // A size line cut in two, then the end: last event, usage, [DONE] in one write.
      const d = chunk(events[4]!);
      sock.write(d.slice(0, 1));
      await sleep(5);
      sock.write(d.slice(1) + chunk(USAGE) + chunk(DONE) + '0\r\n\r\n');
    };
    const answer = await ask(gw);
    assert.equal(answer.body, events.join('') + DONE);
    assert.ok(!answer.body.includes('"usage"'), 'the usage event is hidden');
    const line = gw.accessLog.json<{ prompt_tokens: number | null; completion_tokens: number | null }>().at(-1)!;
    assert.equal(line.prompt_tokens, 11);
    assert.equal(line.completion_tokens, 5);
  });

  it('keeps the usage event for a client that asked for it', async () => {
    engine.script = (sock) => sock.write(HEAD + events.map((e) => chunk(e)).join('') + chunk(USAGE) + chunk(DONE) + '0\r\n\r\n');
    const answer = await ask(gw, ',"stream_options":{"include_usage":true}');
    assert.equal(answer.body, events.join('') + USAGE + DONE);
  });

  it('relays the chunks of one read up to the usage event as they are, and hides and counts that event', async () => {
    engine.script = (sock) => sock.write(HEAD + events.map((e) => chunk(e)).join('') + chunk(USAGE) + chunk(DONE) + '0\r\n\r\n');
    const answer = await ask(gw);
    assert.equal(answer.body, events.join('') + DONE);
    const line = gw.accessLog.json<{ prompt_tokens: number | null; completion_tokens: number | null; bytes_out: number }>().at(-1)!;
    assert.equal(line.prompt_tokens, 11);
    assert.equal(line.completion_tokens, 5);
    assert.equal(line.bytes_out, Buffer.byteLength(events.join('') + DONE));
  });

  it('finds a usage object cut between two chunks of one read, and an event split over two chunks passes whole', async () => {
    const usage = 'data: {"id":"c","choices":[],"usage":{"prompt_tokens":3,"total_tokens":5,"completion_tokens":2}}\n\n';
    const cut = usage.indexOf('"usage"') + 3;
    const split = events[2]!.length >> 1;
    engine.script = (sock) =>
      sock.write(
        HEAD + chunk(events[0]!) + chunk(events[1]!) + chunk(events[2]!.slice(0, split)) + chunk(events[2]!.slice(split)) + chunk(events[3]!) +
          chunk(usage.slice(0, cut)) + chunk(usage.slice(cut)) + chunk(DONE) + '0\r\n\r\n',
      );
    const answer = await ask(gw, ',"stream_options":{"include_usage":true}');
    assert.equal(answer.body, events.slice(0, 4).join('') + usage + DONE);
    const line = gw.accessLog.json<{ prompt_tokens: number | null; completion_tokens: number | null }>().at(-1)!;
    assert.equal(line.prompt_tokens, 3);
    assert.equal(line.completion_tokens, 2);
  });

  it('ends a stream cut after relayed chunks with an SSE error event in a chunk of its own', async () => {
    engine.script = async (sock) => {
      sock.write(HEAD + chunk(events[0]!) + chunk(events[1]!));
      await sleep(5);
      sock.destroy();
    };
    const answer = await ask(gw);
    assert.ok(answer.body.startsWith(events[0]! + events[1]!), 'the relayed events come first');
    const last = answer.chunks.at(-1)!;
    assert.match(last, /^data: \{"error":/);
    assert.equal(answer.body, events[0]! + events[1]! + last);
  });
});
