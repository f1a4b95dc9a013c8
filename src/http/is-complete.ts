import type { GatewayResponse } from './gateway-response.js';

/**
 * isResponseComplete tells, once a response closed, whether the client got all of it. HTTP/1:
 * writableFinished. HTTP/2 (compat API): writableFinished is true even when the client cancelled
 * the stream, so the stream's RST code must be 0 (NO_ERROR) too.
 */
export function isResponseComplete(res: GatewayResponse): boolean {
  if (!res.writableFinished) return false;
  const stream = res.stream;
  return stream === undefined || (stream.rstCode ?? 0) === 0;
}
