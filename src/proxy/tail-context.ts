import type { ErrorCode, ErrorFormat } from '../errors/index.js';
import type { GatewayRequest, GatewayResponse } from '../http/index.js';
import type { Model, Target } from '../config/index.js';
import type { ResponseTransformer } from '../transform/index.js';

/** TailModel is what the tail reads of a model (the routed one, or the one serving it). */
export type TailModel = Pick<Model, 'name' | 'keyHashes' | 'upstreamAuthorization' | 'timeouts' | 'health' | 'retries' | 'retryTimeoutMs'>;

/** TailTarget is what the tail reads of a target. */
export type TailTarget = Pick<Target, 'url' | 'origin' | 'basePath' | 'state'>;

/**
 * TailContext is what the request tail (forward, tunnel and their handlers) reads and writes of a
 * request. The pipeline's RequestContext satisfies it as it is; the tail never sees the pipeline.
 */
export interface TailContext {
  readonly req: GatewayRequest;
  readonly res: GatewayResponse;
  readonly snapshot: { readonly settings: { readonly isFastUpstream: boolean } };
  readonly startedAt: number;
  readonly requestId: string;
  readonly traceparent: string;
  readonly query: string;
  readonly upstreamPath: string;
  readonly body: Buffer | null;
  readonly keyFromQuery: boolean;
  readonly model: TailModel | null;
  readonly serving: TailModel | null;
  /** chosen is the model a split chose to serve the request (null: no split, the routed model serves). */
  readonly chosen: TailModel | null;
  readonly target: TailTarget | null;
  tried: Set<TailTarget> | null;
  attempts: number;
  readonly transformer: ResponseTransformer | null;
  readonly limitHeaders: string[] | null;
  readonly errorFormat: ErrorFormat;
  dispatchedAt: number;
  headersAt: number;
  /** connectMs is the answering attempt's time to connect to its target (0: a kept-alive connection; -1: unknown). */
  connectMs: number;
  firstByteAt: number;
  bytesOut: number;
  promptTokens: number;
  completionTokens: number;
  errorCode: ErrorCode | null;
  onClientGone: (() => void) | null;
  readonly isClosed: boolean;
  isRecordDeferred: boolean;
  readonly upgradeHead: Buffer | null;
  tunnelStatus: number;
  tunnelBytesIn: number;
}

/**
 * Reselect is what the select stage offers a retry: pick another target for the request
 * (excluding ctx.tried), setting ctx.target (and ctx.serving on a fallback); false when none is left.
 */
export interface Reselect<C extends TailContext> {
  next(ctx: C): boolean;
}
