import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';

/**
 * GatewayRequest is the part of a request the pipeline and the proxy may use. node:http's
 * IncomingMessage, node:http2's compatibility request and the fast HTTP/1.1 front's FastRequest
 * all satisfy it as they are (no adapter, no cast): a stage that reaches for anything else does
 * not compile, so it cannot work on one listener and break on another.
 */
export interface GatewayRequest {
  /** method is the request method (node:http types it as optional; it is always set on a server's request). */
  readonly method?: string | undefined;
  /** url is the request target as sent: path and query. */
  readonly url?: string | undefined;
  /** headers are the request's fields: lower-case names, repeated fields joined as node:http joins them. */
  readonly headers: IncomingHttpHeaders;
  /** httpVersionMajor is 1 or 2 (HTTP/2 streams announce no body length). */
  readonly httpVersionMajor: number;
  /** socket is the client connection (its remote address; a WebSocket tunnel's byte stream). */
  readonly socket: Socket;
  /** on delivers the body ('data', 'end') and a transport error ('error'). */
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}
