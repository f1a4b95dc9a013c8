/**
 * The load generator of `npm run bench:tokens`: `--streams` HTTP/1.1 keep-alive connections, each
 * running one streaming request after another (`--events` content events each, from
 * bench/raw-token-upstream.ts through the proxy under test), on raw `node:net` sockets read into
 * one shared buffer (`onread`), so receiving an event allocates nothing: a byte loop finds each
 * event's emit stamp (`"ts":"<µs>"`), `[DONE]` and the end of the chunked body.
 *
 * Per event it records the added inter-token latency: the gap since the stream's previous event
 * as this client saw it (one clock read per socket read) minus the gap between their emit stamps,
 * in a fixed histogram (10 µs buckets). Per stream it checks the count: events missing from a
 * stream that ended, or was cut, are lost.
 *
 * Timeline: connections open over `--ramp-ms`; after `--warm-ms` more it prints `MEASURE_START`,
 * counts for `--measure-ms`, prints `MEASURE_END`, starts no new stream, waits for the running
 * ones to finish (at most `--drain-ms`; streams still running then are reported as unfinished)
 * and prints `RESULT {json}`.
 *
 *   node raw-token-client.js --port P --path /v1/chat/completions --headers '{"x-model":"m"}'
 *     --body '{"stream":true,...}' --streams 1000 --events 200
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
const streams = Number(arg('--streams'));
const EVENTS = Number(arg('--events'));
const rampMs = Number(arg('--ramp-ms', '1000'));
const warmMs = Number(arg('--warm-ms', '2000'));
const measureMs = Number(arg('--measure-ms', '5000'));
const drainMs = Number(arg('--drain-ms', '15000'));

const REQUEST = Buffer.from(
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
    Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('') +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
);

// Added inter-token latency histogram: 10 µs buckets from MIN_US.
const BUCKET_US = 10;
const MIN_US = -50_000;
const MAX_US = 200_000;
const hist = new Float64Array((MAX_US - MIN_US) / BUCKET_US + 1);
let histCount = 0;

let isMeasuring = false;
let isRunning = true;
let measuredEvents = 0;
let totalEvents = 0;
let lost = 0;
let extra = 0;
let errors = 0;
let streamsDone = 0;
let streamsCut = 0;
let unfinished = 0;
let open = 0;

// One buffer for every socket's reads: each read is parsed before the next one lands.
const READ = Buffer.allocUnsafe(256 * 1024);

// Patterns, matched byte by byte across reads.
const TS = Buffer.from('"ts":"');
const DONE = Buffer.from('[DONE]');
const END = Buffer.from('\r\n\r\n');
const P_TS = 0;
const P_DIGITS = 1;
const P_END = 2;

class Conn {
  readonly sock: Socket;
  /** events of the current stream; -1 while no stream runs. */
  events = -1;
  isFirstRead = true;
  lastArrival = 0;
  lastStamp = 0;
  phase = P_TS;
  tsAt = 0;
  doneAt = 0;
  endAt = 0;
  value = 0;

  constructor() {
    this.sock = connect({ port, host: '127.0.0.1', noDelay: true, onread: { buffer: READ, callback: (n: number) => this.onRead(n) } });
    this.sock.on('connect', () => {
      open++;
      this.start();
    });
    this.sock.on('error', () => {
      errors++;
    });
    this.sock.on('close', () => {
      if (this.events >= 0) {
        streamsCut++;
        if (this.events < EVENTS) lost += EVENTS - this.events;
        this.events = -1;
      }
      open--;
    });
  }

  start(): void {
    this.events = 0;
    this.isFirstRead = true;
    this.phase = P_TS;
    this.tsAt = 0;
    this.doneAt = 0;
    this.endAt = 0;
    this.sock.write(REQUEST);
  }

  onRead(n: number): boolean {
    const b = READ;
    const arrival = performance.now() * 1000;
    let i = 0;
    if (this.isFirstRead) {
      this.isFirstRead = false;
      // "HTTP/1.1 200"
      if (n < 12 || b[9] !== 0x32 || b[10] !== 0x30 || b[11] !== 0x30) {
        errors++;
        this.sock.destroy();
        return false;
      }
      i = 12;
    }
    for (; i < n; i++) {
      const c = b[i]!;
      switch (this.phase) {
        case P_TS: {
          if (c === TS[this.tsAt]) {
            if (++this.tsAt === TS.length) {
              this.phase = P_DIGITS;
              this.value = 0;
              this.tsAt = 0;
            }
          } else this.tsAt = c === 0x22 ? 1 : 0;
          if (c === DONE[this.doneAt]) {
            if (++this.doneAt === DONE.length) {
              this.phase = P_END;
              this.doneAt = 0;
            }
          } else this.doneAt = c === 0x5b ? 1 : 0;
          break;
        }
        case P_DIGITS:
          if (c >= 0x30 && c <= 0x39) this.value = this.value * 10 + (c - 0x30);
          else {
            this.phase = P_TS;
            this.onEvent(arrival, this.value);
          }
          break;
        case P_END:
          if (c === END[this.endAt]) {
            if (++this.endAt === END.length) {
              this.endAt = 0;
              this.onStreamEnd();
              if (this.events === -1 && !isRunning) return false;
            }
          } else this.endAt = c === 0x0d ? 1 : 0;
          break;
      }
    }
    return true;
  }

  onEvent(arrival: number, stamp: number): void {
    if (this.events > 0 && isMeasuring) {
      const added = arrival - this.lastArrival - (stamp - this.lastStamp);
      let k = Math.round((added - MIN_US) / BUCKET_US);
      if (k < 0) k = 0;
      else if (k >= hist.length) k = hist.length - 1;
      hist[k]!++;
      histCount++;
    }
    this.lastArrival = arrival;
    this.lastStamp = stamp;
    this.events++;
    totalEvents++;
    if (isMeasuring) measuredEvents++;
  }

  onStreamEnd(): void {
    const got = this.events;
    if (got < EVENTS) lost += EVENTS - got;
    else if (got > EVENTS) extra += got - EVENTS;
    streamsDone++;
    this.events = -1;
    if (isRunning) this.start();
    else this.sock.end();
  }
}

function percentile(p: number): number {
  if (histCount === 0) return Number.NaN;
  const want = Math.ceil((p / 100) * histCount);
  let seen = 0;
  for (let k = 0; k < hist.length; k++) {
    seen += hist[k]!;
    if (seen >= want) return MIN_US + k * BUCKET_US;
  }
  return MAX_US;
}

const conns: Conn[] = [];
const t0 = performance.now();
// Open the connections evenly over the ramp, so the streams' events are spread over the interval.
const perTick = Math.max(1, Math.ceil(streams / Math.max(1, rampMs / 10)));
const opener = setInterval(() => {
  for (let i = 0; i < perTick && conns.length < streams; i++) conns.push(new Conn());
  if (conns.length >= streams) clearInterval(opener);
}, 10);

let measureStart = 0;
let measureEnd = 0;
setTimeout(() => {
  isMeasuring = true;
  measureStart = performance.now();
  process.stdout.write(`MEASURE_START ${open}\n`);
  setTimeout(() => {
    isMeasuring = false;
    measureEnd = performance.now();
    isRunning = false;
    process.stdout.write('MEASURE_END\n');
    const deadline = setTimeout(finish, drainMs);
    const poll = setInterval(() => {
      if (conns.every((c) => c.events === -1)) {
        clearInterval(poll);
        clearTimeout(deadline);
        finish();
      }
    }, 20);
  }, measureMs);
}, rampMs + warmMs);

function finish(): void {
  // Streams still running past the drain deadline: not lost by the proxy (yet), but far behind.
  for (const c of conns) {
    if (c.events >= 0) {
      unfinished++;
      c.events = -1;
    }
  }
  const seconds = (measureEnd - measureStart) / 1000;
  const result = {
    streams,
    connected: open,
    seconds,
    eventsPerSecond: measuredEvents / seconds,
    measuredEvents,
    totalEvents,
    addedP50Us: percentile(50),
    addedP99Us: percentile(99),
    addedP999Us: percentile(99.9),
    samples: histCount,
    lost,
    extra,
    errors,
    streamsDone,
    streamsCut,
    unfinished,
    wallSeconds: (performance.now() - t0) / 1000,
  };
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  for (const c of conns) c.sock.destroy();
  process.exit(0);
}
