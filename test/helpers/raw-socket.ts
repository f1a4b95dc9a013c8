import { connect, type Socket } from 'node:net';

/** RawResult is what came back on a raw connection. */
export interface RawResult {
  text: string;
  /** closed tells whether the server closed the connection before the deadline. */
  closed: boolean;
  ms: number;
}

/** rawExchange writes bytes (optionally in timed pieces) to a port and reads until close or timeout. */
export function rawExchange(port: number, pieces: Array<string | Buffer | { waitMs: number }>, timeoutMs = 2000): Promise<RawResult> {
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
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.on('connect', async () => {
      for (const p of pieces) {
        if (done) return;
        if (typeof p === 'object' && !Buffer.isBuffer(p)) await new Promise((r) => setTimeout(r, p.waitMs));
        else socket.write(p);
      }
    });
  });
}

/** statusOf reads the status code of the first response in raw text (0 if none). */
export function statusOf(text: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return m ? Number(m[1]) : 0;
}
