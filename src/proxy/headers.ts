/**
 * Header rules of forwarding (RFC 9110 7.6.1): hop-by-hop headers, and any header the Connection
 * header names, apply to one connection only and are never forwarded. Client credentials are
 * dropped here too, so no upstream ever sees a gateway key.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { TailContext } from './tail-context.js';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

// Set by the gateway itself (or by undici from the body and origin), never copied from the client.
// `apikey` and `x-api-key` (what Anthropic SDKs send) only ever hold gateway keys.
const REQUEST_OWN = new Set(['host', 'content-length', 'expect', 'x-request-id', 'traceparent', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'apikey', 'x-api-key']);

const PLAIN_CONNECTION = /^\s*(?:keep-alive|close)\s*$/i;

/** UpstreamHeaderInput is what, besides the client's headers, decides the upstream request headers. */
export interface UpstreamHeaderInput {
  requestId: string;
  /** traceparent is the W3C trace header for the upstream (the gateway's span as parent). */
  traceparent: string;
  remoteAddress: string | undefined;
  isTls: boolean;
  /** shouldDropAuthorization removes the client's Authorization (it held a gateway key). */
  shouldDropAuthorization: boolean;
  /** upstreamAuthorization replaces it with the model's own upstream credential, or null. */
  upstreamAuthorization: string | null;
  /** isIdentityEncoding asks for an uncompressed answer (the gateway reads the body), whatever the client accepts. */
  isIdentityEncoding: boolean;
}

/** toUpstreamHeaders builds the flat [name, value, ...] header list sent to the upstream. */
export function toUpstreamHeaders(headers: IncomingHttpHeaders, input: UpstreamHeaderInput): string[] {
  const out: string[] = [];
  const connection = headers.connection;
  // Rare: only clients that name extra hop-by-hop headers in Connection pay for parsing it.
  const named = connection !== undefined && !PLAIN_CONNECTION.test(connection)
    ? new Set(connection.toLowerCase().split(',').map((s) => s.trim()))
    : null;
  const dropAuth = input.shouldDropAuthorization || input.upstreamAuthorization !== null;
  for (const name in headers) {
    // HTTP/2 pseudo-headers (":path", ":authority", ...) describe this hop only.
    if (HOP_BY_HOP.has(name) || REQUEST_OWN.has(name) || name.charCodeAt(0) === 58 /* ":" */) continue;
    if (name === 'authorization' && dropAuth) continue;
    if (name === 'accept-encoding' && input.isIdentityEncoding) continue;
    if (named !== null && named.has(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  const xff = headers['x-forwarded-for'];
  const remote = input.remoteAddress ?? '';
  out.push('x-forwarded-for', xff ? `${xff}, ${remote}` : remote);
  out.push('x-forwarded-proto', input.isTls ? 'https' : 'http');
  const host = headers.host ?? (headers[':authority'] as string | undefined);
  if (host !== undefined) out.push('x-forwarded-host', host);
  out.push('x-request-id', input.requestId);
  out.push('traceparent', input.traceparent);
  if (input.upstreamAuthorization !== null) out.push('authorization', input.upstreamAuthorization);
  if (input.isIdentityEncoding) out.push('accept-encoding', 'identity');
  return out;
}

// Set by the gateway on every stream (DESIGN 7), so the upstream's own copies are dropped.
const STREAM_OWN = new Set(['cache-control', 'x-accel-buffering']);

/**
 * toClientHeaders copies upstream response headers for the client, without hop-by-hop ones, as a
 * flat list. With isReframed the upstream's Content-Length is dropped too: the gateway changes
 * the body (a transformer) or may append to it (an SSE error event), so the upstream's length
 * would be wrong, and on a kept-alive HTTP/1.1 connection the client would read the next
 * response's head as this body. Node frames such a body itself (chunked on HTTP/1.1).
 */
export function toClientHeaders(headers: Record<string, string | string[] | undefined>, isStream: boolean, isReframed: boolean): string[] {
  const out: string[] = [];
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || (isStream && STREAM_OWN.has(name)) || (isReframed && name === 'content-length')) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  return out;
}

/**
 * headersForAttempt is the header list for one attempt of ctx on `upstream` (the serving model, or
 * a mirror): forwarding headers, the upstream's own authorization in place of a gateway key,
 * identity encoding when a transformer must read the body.
 */
export function headersForAttempt(ctx: TailContext, upstream: { readonly upstreamAuthorization: string | null }, isTls: boolean, isIdentityEncoding: boolean): string[] {
  const req = ctx.req;
  return toUpstreamHeaders(req.headers, {
    requestId: ctx.requestId,
    traceparent: ctx.traceparent,
    remoteAddress: req.socket.remoteAddress,
    isTls,
    shouldDropAuthorization: ctx.model!.keyHashes !== null,
    upstreamAuthorization: upstream.upstreamAuthorization,
    isIdentityEncoding,
  });
}
