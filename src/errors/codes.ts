/**
 * The single table of errors the gateway produces itself. Every gateway-made response body is
 * built from one of these rows; tests assert on the code, never on the wording.
 * Messages of the key-auth rows are Kong's, so Kong-era clients that match on them keep working.
 */

/** ErrorType is the OpenAI `error.type` family of a code. */
export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error';

/** ErrorSpec is one row of the table: HTTP status, OpenAI type, default message, and whether the message may be shown. */
export interface ErrorSpec {
  readonly status: number;
  readonly type: ErrorType;
  readonly message: string;
  readonly expose: boolean;
}

/** errorCodes maps every gateway error code to its row. */
export const errorCodes = {
  route_not_found: { status: 404, type: 'not_found_error', message: 'No route matches this path.', expose: true },
  model_not_found: { status: 404, type: 'not_found_error', message: 'No model with this name is served on this path.', expose: true },
  model_not_specified: {
    status: 400,
    type: 'invalid_request_error',
    message: 'No model given: send the X-Model header or a JSON body with a "model" field.',
    expose: true,
  },
  missing_api_key: { status: 401, type: 'authentication_error', message: 'No API key found in request', expose: true },
  invalid_api_key: { status: 401, type: 'authentication_error', message: 'Invalid authentication credentials', expose: true },
  key_not_allowed: { status: 403, type: 'permission_error', message: 'This API key is not allowed to use this model.', expose: true },
  invalid_request_body: { status: 400, type: 'invalid_request_error', message: 'The request body is not valid JSON.', expose: true },
  invalid_request: { status: 400, type: 'invalid_request_error', message: 'The request is not a valid request for this endpoint.', expose: true },
  unsupported_parameter: { status: 400, type: 'invalid_request_error', message: 'A parameter of this request is not supported by this gateway.', expose: true },
  endpoint_not_found: { status: 404, type: 'not_found_error', message: 'This endpoint is not available for this model.', expose: true },
  invalid_path: { status: 400, type: 'invalid_request_error', message: 'The request path is not valid.', expose: true },
  uri_too_long: { status: 414, type: 'invalid_request_error', message: 'The request URL is longer than this gateway accepts.', expose: true },
  payload_too_large: { status: 413, type: 'invalid_request_error', message: 'The request body is larger than this gateway accepts.', expose: true },
  rate_limit_exceeded: { status: 429, type: 'rate_limit_error', message: 'Rate limit exceeded.', expose: true },
  queue_full: { status: 429, type: 'rate_limit_error', message: 'Too many requests in flight and the wait queue is full.', expose: true },
  queue_timeout: { status: 429, type: 'rate_limit_error', message: 'The request waited too long for a free slot.', expose: true },
  limits_unavailable: { status: 503, type: 'server_error', message: 'The rate-limit store is unreachable.', expose: true },
  overloaded: { status: 503, type: 'server_error', message: 'Every server of this model is busy; this request is sheddable and was not queued.', expose: true },
  no_healthy_upstream: { status: 503, type: 'server_error', message: 'No healthy upstream is available for this model.', expose: true },
  upstream_connect_failed: { status: 502, type: 'server_error', message: 'The upstream server could not be reached.', expose: true },
  upstream_error: { status: 502, type: 'server_error', message: 'The upstream server closed the connection unexpectedly.', expose: true },
  upstream_timeout: { status: 504, type: 'server_error', message: 'The upstream server did not answer in time.', expose: true },
  gateway_draining: { status: 503, type: 'server_error', message: 'The gateway is shutting down.', expose: true },
  internal_error: { status: 500, type: 'server_error', message: 'Internal gateway error.', expose: false },
} as const satisfies Record<string, ErrorSpec>;

/** ErrorCode is one key of the error table. */
export type ErrorCode = keyof typeof errorCodes;
