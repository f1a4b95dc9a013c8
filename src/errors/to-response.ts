import type { GatewayResponse } from '../http/index.js';
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

/**
 * ErrorFormat is the error dialect of a route: `openai` everywhere, `anthropic` on the Anthropic
 * Messages API paths (`…/v1/messages`), where clients are Anthropic SDKs.
 */
export type ErrorFormat = 'openai' | 'anthropic';

/** AnthropicErrorType is the `error.type` of the Anthropic API (https://docs.anthropic.com/en/api/errors). */
export type AnthropicErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'api_error'
  | 'timeout_error'
  | 'overloaded_error';

/** AnthropicErrorBody is an error in the Anthropic API's shape, with the gateway's request id. */
export interface AnthropicErrorBody {
  type: 'error';
  error: { type: AnthropicErrorType; message: string };
  request_id: string;
}

/**
 * toAnthropicErrorType is the Anthropic error type of an HTTP status. Anthropic SDKs pick their
 * error class by status; the type is for people. 503 (no healthy target, draining) is what
 * Anthropic calls overloaded; 413 has no type of its own in the SDK's list.
 */
export function toAnthropicErrorType(status: number): AnthropicErrorType {
  switch (status) {
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 429:
      return 'rate_limit_error';
    case 503:
    case 529:
      return 'overloaded_error';
    case 504:
      return 'timeout_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
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

/** toAnthropicErrorBody builds the Anthropic-shaped body for an error (same exposure rule as toErrorBody). */
export function toAnthropicErrorBody(err: unknown, requestId: string): AnthropicErrorBody {
  const isShown = err instanceof GatewayError && err.expose;
  const status = isShown ? err.status : errorCodes.internal_error.status;
  return { type: 'error', error: { type: toAnthropicErrorType(status), message: isShown ? err.message : errorCodes.internal_error.message }, request_id: requestId };
}

/** toSseErrorEvent is the last event of a stream that failed after its 200 went out. */
export function toSseErrorEvent(err: unknown, requestId: string, format: ErrorFormat): string {
  if (format === 'anthropic') return `event: error\ndata: ${JSON.stringify(toAnthropicErrorBody(err, requestId))}\n\n`;
  return `data: ${JSON.stringify(toErrorBody(err, requestId))}\n\n`;
}

/** toGatewayError narrows anything thrown to a GatewayError, wrapping unknown errors as internal_error. */
export function toGatewayError(err: unknown): GatewayError {
  return err instanceof GatewayError ? err : new GatewayError('internal_error', { cause: err });
}

/**
 * sendError writes a gateway error as JSON, with `X-Request-Id`, `x-gateway-error` and, where the
 * error asks for it, `Retry-After` and extra headers. It does nothing if headers already went out.
 * It returns the body's length in bytes (0 when nothing was sent), for the request's `bytes_out`.
 */
export function sendError(
  res: GatewayResponse,
  err: GatewayError,
  requestId: string,
  extraHeaders?: Record<string, string>,
  headerList?: readonly string[] | null,
  format: ErrorFormat = 'openai',
): number {
  if (res.headersSent || res.destroyed) return 0;
  const body = JSON.stringify(format === 'anthropic' ? toAnthropicErrorBody(err, requestId) : toErrorBody(err, requestId));
  const length = Buffer.byteLength(body);
  const headers: string[] = [
    'content-type', 'application/json',
    'content-length', String(length),
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
  return length;
}
