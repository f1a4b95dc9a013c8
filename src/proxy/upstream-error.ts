import type { ErrorCode } from '../errors/index.js';
import { TRANSPORT_CODES } from '../upstream/index.js';

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  TRANSPORT_CODES.connectTimeout,
  TRANSPORT_CODES.headersTimeout,
  TRANSPORT_CODES.bodyTimeout,
  'ETIMEDOUT',
]);
const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

/** UPSTREAM_ERROR_REASONS are the `reason` labels of igw_upstream_errors_total, per error code. */
export const UPSTREAM_ERROR_REASONS: Partial<Record<ErrorCode, string>> = { upstream_timeout: 'timeout', upstream_connect_failed: 'connect_failed', upstream_error: 'reset' };

/** toUpstreamErrorCode maps a transport (built-in or undici) or socket error to the gateway error code the client sees. */
export function toUpstreamErrorCode(err: Error): ErrorCode {
  const code = (err as { code?: string }).code ?? '';
  if (TIMEOUT_CODES.has(code)) return 'upstream_timeout';
  if (CONNECT_CODES.has(code)) return 'upstream_connect_failed';
  return 'upstream_error';
}
