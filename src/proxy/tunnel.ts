/**
 * tunnel: WebSocket passthrough. An upgrade request that passed route, authenticate, admit and
 * select is written to the chosen target over a new raw connection (HTTP/1.1 upgrades cannot
 * share undici's pooled connections): the stripped path and query, the end-to-end headers with
 * the same credential rules as forwarding, then `Connection: Upgrade` / `Upgrade` for this hop.
 *
 *   connecting --connect--> awaiting head --101--> open: bytes both ways, counted, with
 *        |                        |                     backpressure; either side closing
 *        |                        |                     closes the other
 *        |                        +--other status--> that one response is relayed, cut where its
 *        |                                           framing ends, then both sides close
 *        +--error/timeout--> retry on another target, or a JSON error (502/504) like any request
 *
 * Nothing the client sent after its upgrade head goes upstream before the `101`: those bytes
 * belong to the new protocol. An engine that refuses the upgrade is still speaking HTTP/1.1 on
 * that connection and would read them as requests of its own, run past the gateway's keys,
 * limits and logs. So they wait (the client socket is not read until then), and a refusal ends
 * the connection.
 *
 * The connect timeout and the first-byte timeout (waiting for the upstream's answer head) are
 * the model's; an open session has no idle timeout, since WebSocket sessions are quiet for long
 * stretches and keep themselves alive with ping frames. The session holds its target's in-flight
 * count (balancers see it) and the request's concurrency slot until it closes; record() then logs
 * one access line with status 101.
 */
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { connect as tlsConnect } from 'node:tls';
import { GatewayError, sendError, type ErrorCode } from '../errors/index.js';
import { HeadEnd } from '../http/index.js';
import type { GatewayMetrics } from '../metrics/index.js';
import { ResponseParser, type Outcome } from '../upstream/index.js';
import { headersForAttempt } from './headers.js';
import { toOutcome } from './passive-health.js';
import { retryTarget, upstreamPathOf } from './retry.js';
import type { Reselect, TailContext, TailTarget } from './tail-context.js';
import { UPSTREAM_ERROR_REASONS, toUpstreamErrorCode } from './upstream-error.js';

/** TunnelDeps are the long-lived parts a tunnel uses. */
export interface TunnelDeps<C extends TailContext> {
  /** reselect picks another target for a retry (excluding ctx.tried). */
  reselect: Reselect<C>;
  metrics: GatewayMetrics;
  isTls: boolean;
}

/** MAX_HEAD_BYTES bounds the upstream's answer head (status line and headers). */
const MAX_HEAD_BYTES = 16 * 1024;
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})/;
/** CLOSE_GRACE_MS is how long a side may take to close after the other side closed. */
const CLOSE_GRACE_MS = 2000;
const HEADER_VALUE_OK = /^[^\r\n]*$/;

/** tunnel carries ctx (a WebSocket upgrade) to ctx.target; it answers the client itself, errors included. */
export function tunnel<C extends TailContext>(ctx: C, deps: TunnelDeps<C>): void {
  ctx.dispatchedAt = performance.now();
  new Tunnel(ctx, deps).connect();
}

/** Tunnel is one attempt to tunnel an upgrade to one target. */
class Tunnel<C extends TailContext> {
  readonly #ctx: C;
  readonly #deps: TunnelDeps<C>;
  readonly #target: TailTarget;
  readonly #client: Socket;
  #upstream: Socket | null = null;
  #timer: NodeJS.Timeout | null = null;
  /** #head holds the reads of the upstream's answer head until its blank line arrives. */
  #head: Buffer[] = [];
  #headBytes = 0;
  readonly #headEnd = new HeadEnd();
  /** #refusal reads a non-101 answer's framing, to relay exactly that response. */
  #refusal: ResponseParser | null = null;
  #isRefusalDone = false;
  #isSettled = false;
  #isOpen = false;

  constructor(ctx: C, deps: TunnelDeps<C>) {
    this.#ctx = ctx;
    this.#deps = deps;
    this.#target = ctx.target!;
    this.#client = ctx.req.socket;
  }

  connect(): void {
    const ctx = this.#ctx;
    const serving = ctx.serving!;
    ctx.attempts++;
    this.#target.state.begin();
    ctx.onClientGone = this.#onClientGone;
    let head: string;
    let upstream: Socket;
    let isSecure: boolean;
    try {
      const url = new URL(this.#target.origin);
      isSecure = url.protocol === 'https:';
      const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      const port = Number(url.port) || (isSecure ? 443 : 80);
      head = this.#requestHead(url.host);
      upstream = isSecure
        ? tlsConnect({ host, port, servername: isIP(host) === 0 ? host : undefined, ALPNProtocols: ['http/1.1'] })
        : netConnect({ host, port });
    } catch (err) {
      this.#fail('upstream_connect_failed', err);
      return;
    }
    this.#upstream = upstream;
    upstream.setNoDelay(true);
    this.#arm(serving.timeouts.connectMs, 'connect');
    upstream.once(isSecure ? 'secureConnect' : 'connect', () => {
      this.#arm(serving.timeouts.firstByteMs, 'first_byte');
      upstream.write(head);
    });
    upstream.on('data', this.#onHeadData);
    upstream.on('error', this.#onUpstreamError);
    upstream.on('close', this.#onUpstreamClose);
  }

  /** #requestHead is the upgrade request for the target: stripped path, forwarding headers, this hop's upgrade. */
  #requestHead(host: string): string {
    const ctx = this.#ctx;
    const req = ctx.req;
    const headers = headersForAttempt(ctx, ctx.serving!, this.#deps.isTls, false);
    // Connection and Upgrade are hop-by-hop (dropped above); this hop asks for the same upgrade.
    let head = `${req.method ?? 'GET'} ${upstreamPathOf(ctx, this.#target)} HTTP/1.1\r\nhost: ${host}\r\nconnection: Upgrade\r\nupgrade: ${req.headers.upgrade ?? 'websocket'}\r\n`;
    for (let i = 0; i < headers.length; i += 2) {
      const value = headers[i + 1]!;
      // Client headers passed Node's parser; a configured value must not smuggle a header line either.
      if (!HEADER_VALUE_OK.test(value)) throw new Error(`header ${headers[i]} holds a line break`);
      head += `${headers[i]}: ${value}\r\n`;
    }
    return `${head}\r\n`;
  }

  #arm(ms: number, phase: 'connect' | 'first_byte'): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      const err = Object.assign(new Error(`upstream ${phase} timeout`), { code: 'ETIMEDOUT' });
      this.#upstream?.destroy(err);
    }, ms);
  }

  #disarm(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** #settle ends this attempt on its target exactly once, with its passive-health outcome. */
  #settle(outcome: Outcome): void {
    if (this.#isSettled) return;
    this.#isSettled = true;
    this.#target.state.end(outcome, this.#ctx.serving!.health.passive, Date.now());
  }

  /** #onHeadData collects the upstream's answer head, then switches to relaying. */
  readonly #onHeadData = (chunk: Buffer): void => {
    const ctx = this.#ctx;
    if (ctx.firstByteAt === 0) ctx.firstByteAt = performance.now();
    const upstream = this.#upstream!;
    const at = this.#headEnd.find(chunk, 0);
    if (at === -1) {
      this.#head.push(chunk);
      this.#headBytes += chunk.length;
      if (this.#headBytes > MAX_HEAD_BYTES) upstream.destroy(new Error('upstream answer head too large'));
      return;
    }
    // Joined once, when complete (a head arriving byte by byte costs linear work).
    this.#head.push(chunk.subarray(0, at));
    const head = this.#head.length === 1 ? this.#head[0]! : Buffer.concat(this.#head, this.#headBytes + at);
    const rest = chunk.subarray(at);
    this.#head = [];
    upstream.off('data', this.#onHeadData);
    this.#disarm();
    ctx.headersAt = performance.now();
    const headText = head.toString('latin1', 0, head.length - 4);
    const m = STATUS_LINE.exec(headText);
    if (m === null) {
      upstream.destroy(new Error('upstream answer is not HTTP/1.1'));
      return;
    }
    const status = Number(m[1]);
    if (status === 101) {
      this.#answered(status);
      this.#open(this.#headOut(headText), rest);
      return;
    }
    // A refusal is relayed only if its framing can be read: it says where the response ends.
    const refusal = new ResponseParser({ onHead: noop, onBody: noop, onEnd: this.#onRefusalEnd });
    refusal.start(false);
    if (!refusal.feed(head)) {
      upstream.destroy(new Error(`invalid upstream answer: ${refusal.error}`));
      return;
    }
    this.#refusal = refusal;
    this.#answered(status);
    this.#passRefusal(this.#headOut(headText), rest, status);
  };

  /** #answered records the upstream's answer status. */
  #answered(status: number): void {
    const ctx = this.#ctx;
    ctx.tunnelStatus = status;
    if (status >= 500) this.#deps.metrics.upstreamErrors.labels(ctx.serving!.name, this.#target.url, 'status_5xx').inc();
  }

  /** #headOut is the answer head for the client: as the upstream wrote it, plus the request id. */
  #headOut(headText: string): Buffer {
    const head = Buffer.from(`${headText}\r\nx-request-id: ${this.#ctx.requestId}\r\n\r\n`, 'latin1');
    this.#ctx.bytesOut += head.length;
    return head;
  }

  /** #open relays bytes both ways once the upstream switched protocols. */
  #open(head: Buffer, rest: Buffer): void {
    const ctx = this.#ctx;
    const client = this.#client;
    const upstream = this.#upstream!;
    this.#isOpen = true;
    // A session may stay quiet for long (listener idle timeouts are for requests, not sessions).
    client.setTimeout(0);
    client.write(head);
    if (rest.length > 0) {
      ctx.bytesOut += rest.length;
      client.write(rest);
    }
    upstream.on('data', (chunk: Buffer) => {
      ctx.bytesOut += chunk.length;
      if (!client.write(chunk)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
    // The bytes that came with the upgrade head, then (as the client socket is read from now
    // on) whatever the client sent while the upstream had not answered yet.
    const early = ctx.upgradeHead;
    if (early !== null && early.length > 0) {
      ctx.tunnelBytesIn += early.length;
      upstream.write(early);
    }
    client.on('data', (chunk: Buffer) => {
      ctx.tunnelBytesIn += chunk.length;
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    // A half close (FIN) travels on; a full close of either side is handled by #onUpstreamClose / #onClientGone.
    upstream.on('end', () => client.end());
    client.on('end', () => upstream.end());
    client.resume();
  }

  /** #passRefusal passes on an upstream's non-101 answer (e.g. 401, 404), exactly as long as its framing says. */
  #passRefusal(head: Buffer, rest: Buffer, status: number): void {
    const client = this.#client;
    const upstream = this.#upstream!;
    this.#settle(toOutcome(this.#ctx.serving!.health.passive, status));
    client.write(head);
    if (this.#isRefusalDone) return this.#endRefusal();
    upstream.on('data', this.#onRefusalData);
    client.on('drain', () => upstream.resume());
    if (rest.length > 0) this.#onRefusalData(rest);
  }

  /** #onRefusalData relays the refusal's body bytes, up to its end. */
  readonly #onRefusalData = (chunk: Buffer): void => {
    if (this.#isRefusalDone) return;
    const refusal = this.#refusal!;
    if (!refusal.feed(chunk)) {
      // Broken framing: the client cannot be told where the answer ends.
      this.#client.destroy();
      this.#upstream!.destroy();
      return;
    }
    const part = refusal.hasExtraBytes ? chunk.subarray(0, refusal.extraAt) : chunk;
    this.#ctx.bytesOut += part.length;
    if (!this.#client.write(part)) this.#upstream!.pause();
    if (this.#isRefusalDone) this.#endRefusal();
  };

  readonly #onRefusalEnd = (): void => {
    this.#isRefusalDone = true;
  };

  /** #endRefusal closes both sides once the refusal was relayed: what the upstream sends next is not for this client. */
  #endRefusal(): void {
    this.#upstream!.off('data', this.#onRefusalData);
    // The held bytes are read and dropped, so the client's own close is seen (no reset of a connection with unread data).
    this.#client.resume();
    closeSoon(this.#client);
    this.#upstream!.destroy();
  }

  readonly #onUpstreamError = (err: Error): void => {
    if (this.#isOpen || this.#ctx.tunnelStatus !== 0) return; // 'close' follows and ends the session
    this.#fail(toUpstreamErrorCode(err), err);
  };

  readonly #onUpstreamClose = (hadError: boolean): void => {
    this.#disarm();
    if (this.#isOpen) {
      this.#settle('success');
      closeSoon(this.#client);
      return;
    }
    const refusal = this.#refusal;
    if (refusal !== null) {
      if (this.#isRefusalDone) return;
      // A close-delimited refusal ends here; any other is cut short, and the client must see that.
      if (!hadError && refusal.end()) closeSoon(this.#client);
      else this.#client.destroy();
      return;
    }
    // Closed before answering: a reset, unless an error already reported it (or a retry took over).
    if (!this.#isSettled) this.#fail('upstream_error', new Error('upstream closed before answering the upgrade'));
  };

  /** #onClientGone is called by the pipeline when the client's connection closed. */
  readonly #onClientGone = (): void => {
    this.#disarm();
    this.#settle(this.#isOpen ? 'success' : 'neutral');
    const upstream = this.#upstream;
    if (upstream === null) return;
    if (this.#isOpen) closeSoon(upstream);
    else upstream.destroy();
  };

  /** #fail ends an attempt that got no answer: retry on another target, or answer with a gateway error. */
  #fail(code: ErrorCode, err: unknown): void {
    if (this.#isSettled) return;
    this.#disarm();
    this.#settle('failure');
    this.#upstream?.destroy();
    const ctx = this.#ctx;
    this.#deps.metrics.upstreamErrors.labels(ctx.serving!.name, this.#target.url, UPSTREAM_ERROR_REASONS[code] ?? 'error').inc();
    if (ctx.isClosed) return;
    // Nothing reached the client yet and an upgrade is a GET: another target may take it.
    if (retryTarget(ctx, code, this.#deps.reselect)) {
      new Tunnel(ctx, this.#deps).connect();
      return;
    }
    ctx.errorCode = code;
    ctx.bytesOut += sendError(ctx.res, new GatewayError(code, { cause: err }), ctx.requestId, undefined, ctx.limitHeaders, ctx.errorFormat);
  }
}

function noop(): void {}

/** closeSoon ends a socket's writing side (after what is queued) and destroys it if the peer does not close in time. */
function closeSoon(socket: Socket): void {
  if (socket.destroyed) return;
  socket.end();
  setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
}
