/**
 * TransformHandler passes the response through the request's ResponseTransformer (usage hiding,
 * protocol translation): the links below see the client's body, not the upstream's. It is in a
 * request's tail only when the request has a transformer. What is left when the upstream body
 * ends (a held partial event, or a buffered transformer's whole body) goes down as one last chunk
 * before the end. The head's framing for a transformed body is respond's (it reads the
 * transformer's status and isBuffered).
 */
import type { ResponseTransformer } from '../transform/index.js';
import type { UpstreamController, UpstreamHeaders } from '../upstream/index.js';
import type { TailHandler } from './tail-handler.js';

/** UsageFinding tells whether the chunk being passed on holds part of a usage object (the usage tap's finding). */
export interface UsageFinding {
  readonly isUsageChunk: boolean;
}

const NO_FINDING: UsageFinding = { isUsageChunk: false };

/** TransformHandler rewrites one response for the client. */
export class TransformHandler implements TailHandler {
  readonly #transformer: ResponseTransformer;
  readonly #next: TailHandler;
  /**
   * usage is the usage tap above this link (set once the tap is built around it): the transformer
   * gets its finding with each chunk, so a usage hider need not search the chunk again.
   */
  usage: UsageFinding = NO_FINDING;
  #isClientGone = false;

  constructor(transformer: ResponseTransformer, next: TailHandler) {
    this.#transformer = transformer;
    this.#next = next;
  }

  onResponseStart(controller: UpstreamController, statusCode: number, headers: UpstreamHeaders): void {
    const tf = this.#transformer;
    tf.start(statusCode, headers);
    this.#next.onResponseStart(controller, tf.status, headers);
  }

  onResponseData(controller: UpstreamController, chunk: Buffer): void {
    // Nobody will read it: only the usage is still wanted from an exchange the client left.
    if (this.#isClientGone) return;
    const out = this.#transformer.data(chunk, this.usage.isUsageChunk);
    if (out !== null) this.#next.onResponseData(controller, out);
  }

  /** #passesRun: only a transformer that would pass these chunks unchanged lets them through as they are. */
  #passesRun(): boolean {
    return this.#transformer.passesRun?.() === true;
  }

  get takesRuns(): boolean {
    return this.#isClientGone || (this.#passesRun() && this.#next.takesRuns);
  }

  onResponseRun(controller: UpstreamController, read: Buffer, start: number, end: number, dataBytes: number): number {
    if (this.#isClientGone) return end;
    return this.#passesRun() ? this.#next.onResponseRun(controller, read, start, end, dataBytes) : start;
  }

  onResponseEnd(controller: UpstreamController, trailers: UpstreamHeaders): void {
    if (!this.#isClientGone) {
      const rest = this.#transformer.end();
      if (rest !== null) this.#next.onResponseData(controller, rest);
    }
    this.#next.onResponseEnd(controller, trailers);
  }

  onResponseError(controller: UpstreamController, err: Error): void {
    this.#next.onResponseError(controller, err);
  }

  onClientGone(controller: UpstreamController): void {
    this.#isClientGone = true;
    this.#next.onClientGone(controller);
  }
}
