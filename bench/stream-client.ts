/**
 * The load generator of `npm run bench:streams`: opens N streaming requests over raw `net` sockets
 * (HTTP/1.1, `Connection: close`, one socket per stream; no HTTP library in the way) and checks
 * every stream: status 200, exactly `--expect` `data: ` events, the last one `data: [DONE]`, and
 * the gap between consecutive events (a gap over `--stall-ms` is a stall). Runs as its own
 * process (pinned by the parent); prints one `PROGRESS {json}` line every 500 ms and one
 * `RESULT {json}` line at the end.
 *
 *   node stream-client.js --port P --path /v1/chat/completions --headers '{"x-model":"m"}'
 *     --body '{"stream":true,...}' --streams 10000 --batch 500 --batch-ms 100 --expect 32 --stall-ms 1000
 */
import { connect, type Socket } from 'node:net';
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
  sock: Socket;
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
  s.sock.destroy();
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
  s.sock.destroy();
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
    s.state = State.Body;
    active++;
    if (active > peakActive) peakActive = active;
    s.lastAt = now;
  }
  if (s.state !== State.Body) return;
  const n = countEvents(s, text);
  if (n > 0) {
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
  // The chunked body ends with a zero-size chunk after [DONE].
  if (s.sawDone && text.endsWith('0\r\n\r\n')) complete(s);
}

function open(): void {
  const s: Stream = {
    sock: connect({ port, host: '127.0.0.1', noDelay: true }),
    state: State.Connecting,
    sentAt: performance.now(),
    lastAt: 0,
    firstEventAt: 0,
    events: 0,
    maxGap: 0,
    stalls: 0,
    tail: '',
    headBuf: '',
    sawDone: false,
  };
  opened++;
  s.sock.once('connect', () => {
    s.state = State.Headers;
    s.sentAt = performance.now();
    s.sock.write(head);
  });
  s.sock.on('data', (c: Buffer) => onData(s, c));
  s.sock.on('end', () => (s.sawDone ? complete(s) : fail(s, s.state === State.Body ? `closed after ${s.events} events` : 'closed before headers')));
  s.sock.on('error', (err: Error & { code?: string }) => fail(s, `socket error ${err.code ?? err.message}`));
  s.sock.setTimeout(timeoutMs, () => fail(s, 'timeout'));
}

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
