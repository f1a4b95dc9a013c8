import { errorCodes, type ErrorCode, type ErrorType } from './codes.js';

/** GatewayErrorOptions are the optional parts of a GatewayError. */
export interface GatewayErrorOptions {
  message?: string;
  param?: string;
  retryAfterSec?: number;
  /** headers are extra response headers (e.g. WWW-Authenticate). */
  headers?: Readonly<Record<string, string>>;
  /** headerList are extra response headers as a flat [name, value, ...] list (e.g. rate-limit headers). */
  headerList?: readonly string[];
  cause?: unknown;
}

/**
 * GatewayError is the only error a pipeline stage throws to end a request; the runner turns it
 * into an OpenAI-shaped response. Anything else thrown is answered as `internal_error`.
 */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: ErrorType;
  readonly param: string | null;
  readonly expose: boolean;
  readonly retryAfterSec: number | undefined;
  readonly headers: Readonly<Record<string, string>> | undefined;
  readonly headerList: readonly string[] | undefined;

  constructor(code: ErrorCode, opts: GatewayErrorOptions = {}) {
    const spec = errorCodes[code];
    super(opts.message ?? spec.message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = spec.status;
    this.type = spec.type;
    this.param = opts.param ?? null;
    this.expose = spec.expose;
    this.retryAfterSec = opts.retryAfterSec;
    this.headers = opts.headers;
    this.headerList = opts.headerList;
  }
}
