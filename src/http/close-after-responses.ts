import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** node:http keeps the response being written on a connection here (its own clientError handler reads it too). */
type HttpSocket = Socket & { _httpMessage?: ServerResponse | null };

const closing = new WeakSet<Socket>();

/**
 * closeAfterResponses is what node:http's default clientError handler does for a malformed
 * request behind one that is still being answered on the same connection: nothing is written
 * (a 400 would land in the middle of a streamed body, or in place of an answer not started yet).
 * Here the connection then closes once every response already due on it has been sent. Returns
 * false when no response is in progress: the connection is idle and the caller answers it.
 */
export function closeAfterResponses(socket: Socket): boolean {
  const res = (socket as HttpSocket)._httpMessage;
  if (res === undefined || res === null) return false;
  // The parser stays failed, so each later read reports the error again: wait once.
  if (closing.has(socket)) return true;
  closing.add(socket);
  res.once('close', () => waitForNext(socket));
  return true;
}

/** waitForNext closes the connection, or waits for the pipelined response node:http assigned next. */
function waitForNext(socket: Socket): void {
  const next = (socket as HttpSocket)._httpMessage;
  if (next === undefined || next === null) socket.destroySoon();
  else next.once('close', () => waitForNext(socket));
}
