/**
 * UsageTapHandler reads the engine's token counts off the response as it passes (UsageTap) and
 * hands them to the request when the exchange ends: ctx.promptTokens / ctx.completionTokens, for
 * metrics, the access log and the settling of token limits.
 *
 * A client that leaves after a stream's last content event (its finish_reason) would otherwise
 * lose the count: the engine is done and its usage event is on the way. Then the exchange goes on
 * without the client (ctx.isRecordDeferred), for at most USAGE_GRACE_MS, and this link records
 * the request when it ends.
 */
import type { UpstreamController, UpstreamHeaders } from '../upstream/index.js';
import type { TailContext } from './tail-context.js';
import { ClientGoneError, type TailHandler } from './tail-handler.js';
import { UsageTap } from './usage-tap.js';

const SSE = 'text/event-stream';
// A choice that ended: the generation is over (null is sent while it goes on).
const FINISHED = Buffer.from('"finish_reason":"');
const FINISHED_SPACED = Buffer.from('"finish_reason": "');
/** USAGE_GRACE_MS bounds the wait for the usage event after the client left (engines send it at once). */
const USAGE_GRACE_MS = 2000;

/** UsageTapHandler taps one request's response for its usage. */
export class UsageTapHandler<C extends TailContext> implements TailHandler {
  readonly #ctx: C;
  readonly #next: TailHandler;
  /** #record accounts for a request whose recording the client's departure deferred. */
  readonly #record: (ctx: C) => void;
  readonly #tap = new UsageTap();
  /** isUsageChunk tells whether the chunk being passed on holds part of a usage object (transformers read it). */
  isUsageChunk = false;
  #isStream = false;
  /** #last is the last upstream chunk (a reference): whether it ended the generation decides a client-gone abort. */
  #last: Buffer | null = null;
  /** #lastRun[#lastStart, #lastEnd) is the last chunk of the last run, when the last data came as one (#last is null then). */
  #lastRun: Buffer | null = null;
  #lastStart = 0;
  #lastEnd = 0;
  #graceTimer: NodeJS.Timeout | null = null;

  constructor(ctx: C, record: (ctx: C) => void, next: TailHandler) {
    this.#ctx = ctx;
    this.#record = record;
    this.#next = next;
  }

  onResponseStart(controller: UpstreamController, statusCode: number, headers: UpstreamHeaders): void {
    const type = headers['content-type'];
    this.#isStream = typeof type === 'string' && type.startsWith(SSE);
    this.#next.onResponseStart(controller, statusCode, headers);
  }

  onResponseData(controller: UpstreamController, chunk: Buffer): void {
    this.isUsageChunk = this.#tap.feed(chunk);
    this.#last = chunk;
    this.#lastRun = null;
    this.#next.onResponseData(controller, chunk);
  }

  get takesRuns(): boolean {
    return this.#next.takesRuns;
  }

  onResponseRun(controller: UpstreamController, read: Buffer, start: number, end: number, _dataBytes: number): number {
    // Their data length is the tap's count (cleanBytes). Refused below (an HTTP/2 client, a transformer holding part of an event): not searched for nothing.
    if (!this.#next.takesRuns) return start;
    // The chunks from one holding (part of) a usage object on go one by one, through feed().
    const tap = this.#tap;
    const clean = tap.cleanPrefix(read, start, end);
    if (clean === start) return start;
    const taken = this.#next.onResponseRun(controller, read, start, clean, tap.cleanBytes);
    if (taken === start) return start;
    this.isUsageChunk = false;
    this.#last = null;
    this.#lastRun = read;
    // The last chunk taken, as #last is for data (a link that took fewer: all it took).
    this.#lastStart = taken === clean ? tap.cleanLastAt : start;
    this.#lastEnd = taken;
    return taken;
  }

  onResponseEnd(controller: UpstreamController, trailers: UpstreamHeaders): void {
    this.#settleUsage();
    this.#next.onResponseEnd(controller, trailers);
    if (this.#ctx.isRecordDeferred) this.#recordDeferred();
  }

  onResponseError(controller: UpstreamController, err: Error): void {
    this.#settleUsage();
    this.#next.onResponseError(controller, err);
    if (this.#ctx.isRecordDeferred) this.#recordDeferred();
  }

  onClientGone(controller: UpstreamController): void {
    if (this.#isUsageDue()) {
      // Nothing left to generate: let the engine send its usage (it may have been paused for
      // the client), and record the request then.
      this.#ctx.isRecordDeferred = true;
      this.#graceTimer = setTimeout(UsageTapHandler.#giveUp, USAGE_GRACE_MS, controller).unref();
      controller.resume();
    }
    this.#next.onClientGone(controller);
  }

  /** #isUsageDue tells whether a stream's generation is over and its usage event not seen yet. */
  #isUsageDue(): boolean {
    const last = this.#last ?? (this.#lastRun === null ? null : this.#lastRun.subarray(this.#lastStart, this.#lastEnd));
    if (!this.#isStream || this.#tap.hasUsage || last === null) return false;
    return last.indexOf(FINISHED) !== -1 || last.indexOf(FINISHED_SPACED) !== -1;
  }

  /** #giveUp ends the wait for a usage event that did not come in time (static: no closure per request). */
  static #giveUp(controller: UpstreamController): void {
    controller.abort(new ClientGoneError());
  }

  /** #recordDeferred records, once the exchange ended, a request the client left early. */
  #recordDeferred(): void {
    if (this.#graceTimer !== null) clearTimeout(this.#graceTimer);
    this.#record(this.#ctx);
  }

  #settleUsage(): void {
    if (!this.#tap.hasUsage) return;
    this.#ctx.promptTokens = this.#tap.promptTokens;
    this.#ctx.completionTokens = this.#tap.completionTokens;
  }
}
