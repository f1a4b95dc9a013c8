import type { OutgoingHttpHeaders } from 'node:http';

/**
 * GatewayResponse is the part of a response the pipeline and the proxy may use. node:http's
 * ServerResponse, node:http2's compatibility response and the fast HTTP/1.1 front's FastResponse
 * all satisfy it as they are: a stage that reaches for anything else does not compile.
 * Headers are written with writeHead only (a flat [name, value, ...] list, or an object), never
 * with setHeader: the fast front keeps no header map.
 */
export interface GatewayResponse {
  statusCode: number;
  /** headersSent is set once writeHead ran. */
  readonly headersSent: boolean;
  /** destroyed is set once the connection (HTTP/2: the stream) was torn down. */
  readonly destroyed: boolean;
  /** writableFinished is set once the whole response was handed to the transport. */
  readonly writableFinished: boolean;
  /** stream is the HTTP/2 stream of a compatibility response (its RST code tells a cancelled response). */
  readonly stream?: { readonly rstCode?: number };
  writeHead(status: number, headers?: string[] | OutgoingHttpHeaders): this;
  /** write sends body bytes; false: the transport is full, wait for 'drain'. */
  write(chunk: Buffer | string): boolean;
  /**
   * relayRun (the fast HTTP/1.1 front only) sends whole chunks of a chunked upstream body,
   * read[start, end), with their own framing instead of framing their data anew
   * (src/http/relay.ts); false: the socket is full; undefined: this response cannot relay them
   * (not chunked, or its head not sent), nothing sent.
   */
  relayRun?(read: Buffer, start: number, end: number): boolean | undefined;
  end(): unknown;
  end(chunk: Buffer | string): unknown;
  /** flushHeaders sends the head now (a stream's head should not wait for its first event). */
  flushHeaders(): void;
  /** destroy drops the connection (HTTP/2: resets the stream): a cut body must not look complete. */
  destroy(err?: Error): unknown;
  once(event: 'close' | 'finish' | 'drain', listener: () => void): unknown;
}

// node:http2's compatibility response takes a flat header list and has flushHeaders at run time,
// but @types/node declares neither.
declare module 'node:http2' {
  interface Http2ServerResponse {
    writeHead(statusCode: number, headers?: OutgoingHttpHeaders | string[]): this;
    flushHeaders(): void;
  }
}
