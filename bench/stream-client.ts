/**
 * The load generator of `npm run bench:streams`: opens N streaming requests, either over raw `net`
 * sockets (HTTP/1.1, `Connection: close`, one socket per stream; no HTTP library in the way) or,
 * with `--h2`, as HTTP/2 streams over TLS, `--streams-per-conn` (default 100) per connection
 * (node:http2; the gateway then holds one socket per stream, upstream, instead of two), and checks
 * every stream: status 200, exactly `--expect` `data: ` events, the last one `data: [DONE]`, and
 * the gap between consecutive events (a gap over `--stall-ms` is a stall). Runs as its own
 * process (pinned by the parent); prints one `PROGRESS {json}` line every 500 ms and one
 * `RESULT {json}` line at the end.
 *
 *   node stream-client.js --port P --path /v1/chat/completions --headers '{"x-model":"m"}'
 *     --body '{"stream":true,...}' --streams 10000 --batch 500 --batch-ms 100 --expect 32 --stall-ms 1000
 */
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';

const argv = process.argv;
const arg = (name: string, fallback?: string): string => {
  const i = argv.indexOf(name);
  if (i !== -1 && argv[i + 1] !== undefined) return argv[i + 1]!;
  if (fallback !== undefined) return fallback;
  throw new Error(`missing ${name}`);
};
const port = Number(arg('--port'));
const path = arg('--path');
const headers = JSON.parse(arg('--headers', '{}')) as Record<string, string>;
const body = arg('--body');
const total = Number(arg('--streams'));
const batch = Number(arg('--batch', '500'));
const batchMs = Number(arg('--batch-ms', '100'));
const expect = Number(arg('--expect'));
const stallMs = Number(arg('--stall-ms', '1000'));
const timeoutMs = Number(arg('--timeout-ms', '120000'));
const isH2 = argv.includes('--h2');
const perConn = Number(arg('--streams-per-conn', '100'));

const head = Buffer.from(
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
    Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('') +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
);

const State = { Connecting: 0, Headers: 1, Body: 2, Done: 3 } as const;
type StateValue = (typeof State)[keyof typeof State];

interface Stream {
  /** close drops the stream's transport (its socket, or its HTTP/2 stream). */
  close: () => void;
  state: StateValue;
  sentAt: number;
  lastAt: number;
  firstEventAt: number;
  events: number;
  maxGap: number;
  stalls: number;
  tail: string;
  headBuf: string;
  sawDone: boolean;
}

let opened = 0;
let active = 0;
let peakActive = 0;
let finished = 0;
let intact = 0;
let totalEvents = 0;
let totalStalls = 0;
let streamsWithStall = 0;
const failures = new Map<string, number>();
const maxGaps: number[] = [];
const firstEvent: number[] = [];
const t0 = performance.now();
let lastOpenAt = 0;

function fail(s: Stream, reason: string): void {
  if (s.state === State.Done) return;
  if (s.state === State.Body) active--;
  s.state = State.Done;
  finished++;
  failures.set(reason, (failures.get(reason) ?? 0) + 1);
  s.close();
}

function complete(s: Stream): void {
  if (s.state === State.Done) return;
  if (s.state === State.Body) active--;
  s.state = State.Done;
  finished++;
  if (s.events === expect && s.sawDone) intact++;
  else failures.set(`wrong event count ${s.events} (want ${expect})${s.sawDone ? '' : ', no [DONE]'}`, (failures.get(`wrong event count ${s.events} (want ${expect})${s.sawDone ? '' : ', no [DONE]'}`) ?? 0) + 1);
  maxGaps.push(s.maxGap);
  if (s.stalls > 0) streamsWithStall++;
  totalStalls += s.stalls;
  s.close();
}

function countEvents(s: Stream, text: string): number {
  // `data: ` may be split across reads: search with the previous read's tail in front, counting
  // only matches that end in the new text (those fully inside the tail were counted already).
  const tailLen = s.tail.length;
  const hay = s.tail + text;
  let n = 0;
  let i = hay.indexOf('data: ', Math.max(0, tailLen - 5));
  while (i !== -1) {
    n++;
    i = hay.indexOf('data: ', i + 6);
  }
  if (!s.sawDone && hay.includes('data: [DONE]')) s.sawDone = true;
  s.tail = hay.slice(-16);
  return n;
}

function startBody(s: Stream, now: number): void {
  s.state = State.Body;
  active++;
  if (active > peakActive) peakActive = active;
  s.lastAt = now;
}

function onBody(s: Stream, text: string, now: number): void {
  const n = countEvents(s, text);
  if (n === 0) return;
  if (s.events === 0) {
    s.firstEventAt = now;
    firstEvent.push(now - s.sentAt);
  } else {
    const gap = now - s.lastAt;
    if (gap > s.maxGap) s.maxGap = gap;
    if (gap > stallMs) s.stalls++;
  }
  s.events += n;
  totalEvents += n;
  s.lastAt = now;
}

function onData(s: Stream, chunk: Buffer): void {
  const now = performance.now();
  let text = chunk.toString('latin1');
  if (s.state === State.Headers) {
    s.headBuf += text;
    const end = s.headBuf.indexOf('\r\n\r\n');
    if (end === -1) return;
    if (!s.headBuf.startsWith('HTTP/1.1 200')) {
      fail(s, `status ${s.headBuf.slice(9, 12)}`);
      return;
    }
    text = s.headBuf.slice(end + 4);
    s.headBuf = '';
    startBody(s, now);
  }
  if (s.state !== State.Body) return;
  onBody(s, text, now);
  // The chunked body ends with a zero-size chunk after [DONE].
  if (s.sawDone && text.endsWith('0\r\n\r\n')) complete(s);
}

function newStream(): Stream {
  opened++;
  return { close: () => {}, state: State.Connecting, sentAt: performance.now(), lastAt: 0, firstEventAt: 0, events: 0, maxGap: 0, stalls: 0, tail: '', headBuf: '', sawDone: false };
}

function openH1(): void {
  const s = newStream();
  const sock = connect({ port, host: '127.0.0.1', noDelay: true });
  s.close = () => sock.destroy();
  sock.once('connect', () => {
    s.state = State.Headers;
    s.sentAt = performance.now();
    sock.write(head);
  });
  sock.on('data', (c: Buffer) => onData(s, c));
  sock.on('end', () => (s.sawDone ? complete(s) : fail(s, s.state === State.Body ? `closed after ${s.events} events` : 'closed before headers')));
  sock.on('error', (err: Error & { code?: string }) => fail(s, `socket error ${err.code ?? err.message}`));
  sock.setTimeout(timeoutMs, () => fail(s, 'timeout'));
}

// HTTP/2: a new TLS connection every `perConn` streams (the gateway's certificate is self-signed).
const sessions: ClientHttp2Session[] = [];
const h2Headers = { ':method': 'POST', ':path': path, 'content-type': 'application/json', ...headers };
function openH2(): void {
  if ((opened % perConn) === 0) {
    const session = h2connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    session.on('error', () => {}); // each stream reports its own error
    sessions.push(session);
  }
  const session = sessions[sessions.length - 1]!;
  const s = newStream();
  s.state = State.Headers;
  const req = session.request(h2Headers);
  s.close = () => req.close();
  req.setEncoding('latin1');
  // node:http2 can emit a stream's first 'data' before its 'response' (seen with thousands of
  // streams per process): keep such bytes and count them once the status is known.
  let early = '';
  req.on('response', (h) => {
    if (h[':status'] !== 200) return fail(s, `status ${String(h[':status'])}`);
    const now = performance.now();
    startBody(s, now);
    if (early !== '') onBody(s, early, now);
  });
  req.on('data', (text: string) => {
    if (s.state === State.Body) onBody(s, text, performance.now());
    else if (s.state === State.Headers) early += text;
  });
  req.on('end', () => (s.sawDone ? complete(s) : fail(s, s.state === State.Body ? `closed after ${s.events} events` : 'closed before headers')));
  req.on('error', (err: Error & { code?: string }) => fail(s, `stream error ${err.code ?? err.message}`));
  req.setTimeout(timeoutMs, () => fail(s, 'timeout'));
  req.end(body);
}

const open = isH2 ? openH2 : openH1;

const sorted = (xs: number[]): number[] => xs.slice().sort((a, b) => a - b);
const q = (xs: number[], p: number): number => (xs.length === 0 ? Number.NaN : xs[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!);

const progress = setInterval(() => {
  process.stdout.write(`PROGRESS ${JSON.stringify({ t: Math.round(performance.now() - t0), opened, active, finished, intact, events: totalEvents, stalls: totalStalls })}\n`);
}, 500);

const opener = setInterval(() => {
  for (let k = 0; k < batch && opened < total; k++) open();
  if (opened >= total) {
    clearInterval(opener);
    lastOpenAt = performance.now() - t0;
  }
}, batchMs);

const done = setInterval(() => {
  if (finished < total) return;
  clearInterval(done);
  clearInterval(progress);
  for (const session of sessions) session.close();
  const gaps = sorted(maxGaps);
  const fe = sorted(firstEvent);
  process.stdout.write(
    `RESULT ${JSON.stringify({
      streams: total,
      intact,
      failures: Object.fromEntries(failures),
      events: totalEvents,
      expectedEvents: total * expect,
      peakActive,
      streamsWithStall,
      stalls: totalStalls,
      maxGapP50: q(gaps, 50),
      maxGapP99: q(gaps, 99),
      maxGapMax: gaps.length === 0 ? Number.NaN : gaps[gaps.length - 1],
      firstEventP50: q(fe, 50),
      firstEventP99: q(fe, 99),
      openedInMs: lastOpenAt,
      wallMs: performance.now() - t0,
      cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
    })}\n`,
    () => process.exit(0),
  );
}, 100);
