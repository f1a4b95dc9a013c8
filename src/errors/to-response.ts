import type { ServerResponse } from 'node:http';
import { errorCodes, type ErrorType } from './codes.js';
import { GatewayError } from './gateway-error.js';

/**
 * ErrorBody is what every gateway-made error looks like: the OpenAI error object (read by both
 * OpenAI SDKs) plus Kong's top-level `message` and `request_id`, so Kong-era clients keep working.
 */
export interface ErrorBody {
  error: { message: string; type: ErrorType; param: string | null; code: string };
  message: string;
  request_id: string;
}

/** toErrorBody builds the fixed-shape body for an error; non-gateway errors become a generic internal_error. */
export function toErrorBody(err: unknown, requestId: string): ErrorBody {
  if (err instanceof GatewayError && err.expose) {
    return {
      error: { message: err.message, type: err.type, param: err.param, code: err.code },
      message: err.message,
      request_id: requestId,
    };
  }
  const spec = errorCodes.internal_error;
  return {
    error: { message: spec.message, type: spec.type, param: null, code: 'internal_error' },
    message: spec.message,
    request_id: requestId,
  };
}

/** toGatewayError narrows anything thrown to a GatewayError, wrapping unknown errors as internal_error. */
export function toGatewayError(err: unknown): GatewayError {
  return err instanceof GatewayError ? err : new GatewayError('internal_error', { cause: err });
}

/**
 * sendError writes a gateway error as JSON, with `X-Request-Id`, `x-gateway-error` and, where the
 * error asks for it, `Retry-After` and extra headers. It does nothing if headers already went out.
 */
export function sendError(res: ServerResponse, err: GatewayError, requestId: string, extraHeaders?: Record<string, string>, headerList?: readonly string[] | null): void {
  if (res.headersSent || res.destroyed) return;
  const body = JSON.stringify(toErrorBody(err, requestId));
  const headers: string[] = [
    'content-type', 'application/json',
    'content-length', String(Buffer.byteLength(body)),
    'x-request-id', requestId,
    'x-gateway-error', err.expose ? err.code : 'internal_error',
  ];
  if (err.retryAfterSec !== undefined) headers.push('retry-after', String(err.retryAfterSec));
  if (err.headers) for (const [k, v] of Object.entries(err.headers)) headers.push(k, v);
  if (extraHeaders) for (const [k, v] of Object.entries(extraHeaders)) headers.push(k, v);
  // The error's own list (a 429's counters) wins over the request's earlier rate-limit headers.
  if (err.headerList) headers.push(...err.headerList);
  else if (headerList) headers.push(...headerList);
  res.writeHead(err.status, headers);
  res.end(body);
}
