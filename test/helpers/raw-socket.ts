import { connect, type Socket } from 'node:net';

/** RawResult is what came back on a raw connection. */
export interface RawResult {
  text: string;
  /** closed tells whether the server closed the connection before the deadline. */
  closed: boolean;
  ms: number;
}

/** RawPiece is bytes to write, a pause, or a wait until what was received so far matches `until`. */
export type RawPiece = string | Buffer | { waitMs: number } | { until: RegExp };

/** rawExchange writes bytes (optionally in timed pieces) to a port and reads until close or timeout. */
export function rawExchange(port: number, pieces: RawPiece[], timeoutMs = 2000): Promise<RawResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const socket: Socket = connect(port, '127.0.0.1');
    let text = '';
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed, ms: performance.now() - t0 });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    let waiting: { until: RegExp; go: () => void } | null = null;
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (waiting !== null && waiting.until.test(text)) waiting.go();
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.on('connect', async () => {
      for (const p of pieces) {
        if (done) return;
        if (typeof p === 'string' || Buffer.isBuffer(p)) socket.write(p);
        else if ('waitMs' in p) await new Promise((r) => setTimeout(r, p.waitMs));
        else if (!p.until.test(text)) {
          const until = p.until;
          await new Promise<void>((go) => (waiting = { until, go }));
          waiting = null;
        }
      }
    });
  });
}

/** statusOf reads the status code of the first response in raw text (0 if none). */
export function statusOf(text: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return m ? Number(m[1]) : 0;
}
