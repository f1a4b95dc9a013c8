import type { Model, PathRoute, Snapshot, Target } from '../config/index.js';
import type { ErrorCode, ErrorFormat } from '../errors/index.js';
import type { GatewayRequest, GatewayResponse } from '../http/index.js';
import type { ResponseTransformer } from '../transform/index.js';
import type { LimitTake, Semaphore } from '../ratelimit/index.js';
import type { Ticket } from '../flow/index.js';

/**
 * RequestContext carries one request through the pipeline. Every field is set in the constructor
 * so all contexts share one hidden class; stages fill them in as they learn things.
 */
export class RequestContext {
  readonly req: GatewayRequest;
  readonly res: GatewayResponse;
  /** snapshot is read from the store once, when the request arrives; nothing later reads the store. */
  readonly snapshot: Snapshot;
  /** startedAt is performance.now() when the request arrived. */
  readonly startedAt: number;
  requestId: string;
  /** path is the request path without the query; query starts with "?" or is "". */
  path: string;
  query: string;
  body: Buffer | null;
  /** parsedBody is the JSON body, parsed at most once and only when a stage needs it. */
  parsedBody: unknown;
  route: PathRoute | null;
  /** upstreamPath is the request path with the route prefix stripped. */
  upstreamPath: string;
  model: Model | null;
  /** serving is the model whose targets serve the request: the routed model (or the one its split chose), or a fallback. */
  serving: Model | null;
  /** chosen is the model the routed model's split chose (prepare); null when the routed model has targets. */
  chosen: Model | null;
  /** adapter is the LoRA adapter of the model the body's `model` names (select prefers a replica that has it); null otherwise. */
  adapter: string | null;
  /** tried are the targets already attempted (set once a retry is considered). */
  tried: Set<Target> | null;
  attempts: number;
  /** bodyRewritten is set when the body was re-serialized (e.g. model alias replaced by served id). */
  bodyRewritten: boolean;
  /** keyFromQuery is set when the API key came from the query string, which must then be cleaned. */
  keyFromQuery: boolean;
  target: Target | null;
  /** dispatchedAt is performance.now() when the request went upstream (0 before). */
  dispatchedAt: number;
  /** headersAt / firstByteAt are performance.now() of the upstream's response headers and first body byte (0: not yet). */
  headersAt: number;
  /** connectMs is the answering attempt's time to connect to its target (0: a kept-alive connection; -1: unknown). */
  connectMs: number;
  firstByteAt: number;
  /** keyHash is the SHA-256 of the key the request authenticated with, or null. */
  keyHash: string | null;
  /** traceId is the W3C trace id of this request; traceparent is what the upstream gets. */
  traceId: string;
  traceparent: string;
  bytesOut: number;
  promptTokens: number;
  completionTokens: number;
  /** errorCode is set when the gateway answered (or ended a stream) with its own error. */
  errorCode: ErrorCode | null;
  /** onClientGone aborts the upstream request (or leaves the wait queue) when the client disconnects. */
  onClientGone: (() => void) | null;
  /** isClosed is set when the response closed (finished or aborted). */
  isClosed: boolean;
  /**
   * isRecordDeferred is set when the client left after the engine finished generating but
   * before its usage arrived: forward then records the request when the upstream ends.
   */
  isRecordDeferred: boolean;
  /** limitTake is what admit took from the rate-limit counters (settled when the request ends). */
  limitTake: LimitTake | null;
  /** limitHeaders are the RateLimit-* headers for the response, or null. */
  limitHeaders: string[] | null;
  /** heldSlots are the concurrency slots the request holds. */
  heldSlots: Semaphore[] | null;
  /** queueMs is the time spent waiting in concurrency queues and the flow-control queue (0 when nothing was awaited). */
  queueMs: number;
  /** transformer rewrites the upstream's response for the client (usage hiding, protocol translation), or null. */
  transformer: ResponseTransformer | null;
  /** errorFormat is the dialect of the gateway's own errors: Anthropic's on `…/v1/messages` paths. */
  errorFormat: ErrorFormat;
  /** isMessagesApi is set by route when the request is for the Anthropic Messages API (`/v1/messages…`). */
  isMessagesApi: boolean;
  /** upgradeHead is set (possibly empty) on a WebSocket upgrade: the bytes that came after the request head. */
  upgradeHead: Buffer | null;
  /** tunnelStatus is the status a WebSocket tunnel got from the upstream (101, or its refusal); 0 otherwise. */
  tunnelStatus: number;
  /** tunnelBytesIn counts the bytes a WebSocket tunnel carried from the client to the upstream. */
  tunnelBytesIn: number;
  /** keyName is the configured name of the key used, or null. */
  keyName: string | null;
  /**
   * statsRow and modelName are the routed model's metrics row and name, copied when the request
   * is dispatched (the model is in cache then): record() needs them ~a response later, when with
   * thousands of models the model object has gone cold. -1 / null before dispatch.
   */
  statsRow: number;
  modelName: string | null;
  /** servedName is the name of the model that served the request, copied at dispatch like modelName. */
  servedName: string | null;
  /** isModelList is set when the gateway answers the request with its own model list. */
  isModelList: boolean;
  /** flowTicket is the request's place in its model's flow-control queue (null: no flow control); settled when it ends. */
  flowTicket: Ticket | null;

  constructor(req: GatewayRequest, res: GatewayResponse, snapshot: Snapshot, startedAt: number, requestId: string) {
    this.req = req;
    this.res = res;
    this.snapshot = snapshot;
    this.startedAt = startedAt;
    this.requestId = requestId;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    this.path = q === -1 ? url : url.slice(0, q);
    this.query = q === -1 ? '' : url.slice(q);
    this.body = null;
    this.parsedBody = undefined;
    this.route = null;
    this.upstreamPath = '/';
    this.model = null;
    this.serving = null;
    this.chosen = null;
    this.adapter = null;
    this.tried = null;
    this.attempts = 0;
    this.bodyRewritten = false;
    this.keyFromQuery = false;
    this.target = null;
    this.dispatchedAt = 0;
    this.headersAt = 0;
    this.connectMs = -1;
    this.firstByteAt = 0;
    this.keyHash = null;
    this.traceId = '';
    this.traceparent = '';
    this.bytesOut = 0;
    this.promptTokens = -1;
    this.completionTokens = -1;
    this.errorCode = null;
    this.onClientGone = null;
    this.isClosed = false;
    this.isRecordDeferred = false;
    this.limitTake = null;
    this.limitHeaders = null;
    this.heldSlots = null;
    this.queueMs = 0;
    this.transformer = null;
    // Anthropic SDKs read errors in Anthropic's shape; the suffix check is all it costs others.
    this.errorFormat = this.path.endsWith('/v1/messages') || this.path.includes('/v1/messages/') ? 'anthropic' : 'openai';
    this.isMessagesApi = false;
    this.upgradeHead = null;
    this.tunnelStatus = 0;
    this.tunnelBytesIn = 0;
    this.keyName = null;
    this.statsRow = -1;
    this.modelName = null;
    this.servedName = null;
    this.isModelList = false;
    this.flowTicket = null;
  }
}
