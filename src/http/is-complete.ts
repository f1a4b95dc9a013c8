import type { ServerResponse } from 'node:http';

/**
 * isResponseComplete tells, once a response closed, whether the client got all of it. HTTP/1:
 * writableFinished. HTTP/2 (compat API): writableFinished is true even when the client cancelled
 * the stream, so the stream's RST code must be 0 (NO_ERROR) too.
 */
export function isResponseComplete(res: ServerResponse): boolean {
  if (!res.writableFinished) return false;
  const stream = (res as { stream?: { rstCode?: number } }).stream;
  return stream === undefined || (stream.rstCode ?? 0) === 0;
}
