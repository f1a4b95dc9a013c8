/**
 * stream-usage: an OpenAI stream reports token usage only when the request asks for it
 * (`stream_options.include_usage`). For every streamed chat or text completion whose client did
 * not ask, this stage asks the engine for it and sets a UsageChunkHider that removes the extra
 * usage event from what the client receives, so the tokens are counted (metrics, access log,
 * token limits) and the client still gets the stream it asked for.
 *
 * The body is not parsed for this (but in one rare case, below). A body already parsed (routing
 * by `model`) is read directly; otherwise one native search looks for `"stream"` followed by
 * `true`, and a count of brackets outside strings, from the start or from the end (whichever is
 * shorter: the key is usually last), tells whether that key belongs to the top-level object.
 * Without a top-level `stream_options` the option is spliced in right after the opening brace;
 * a client's own `{"include_usage": true}` is recognized the same way and left alone. Only a
 * client's `stream_options` without `include_usage: true` is parsed and re-serialized. A request
 * that is not a stream pays one Buffer search; a malformed body is left for the engine to refuse.
 */
import { UsageChunkHider } from '../transform/index.js';
import { parsedBody, rewriteBody } from './body.js';
import type { RequestContext } from './context.js';

const STREAM_KEY = Buffer.from('"stream"');
const OPTIONS_KEY = Buffer.from('"stream_options"');
const INCLUDE_USAGE_KEY = Buffer.from('"include_usage"');
// Valid after `{` of a non-empty object, which a body holding "stream" is.
const OPEN_WITH_OPTIONS = Buffer.from('{"stream_options":{"include_usage":true},');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

type StreamBody = { stream?: unknown; stream_options?: unknown };

/** streamUsage asks the engine for usage on a stream whose client did not. */
export function streamUsage(ctx: RequestContext): void {
  const model = ctx.model;
  // A transformer is set by translation, which asks for usage itself.
  if (model === null || !model.shouldTrackStreamUsage || ctx.transformer !== null) return;
  const body = ctx.body;
  if (body === null || !ctx.upstreamPath.endsWith('/completions')) return;
  if (ctx.parsedBody !== undefined) {
    const parsed = ctx.parsedBody as StreamBody | null;
    if (parsed === null || typeof parsed !== 'object' || parsed.stream !== true) return;
    if (parsed.stream_options !== undefined) {
      withOptions(ctx, parsed);
      return;
    }
    parsed.stream_options = { include_usage: true };
    splice(ctx, body);
    return;
  }
  if (!isTopLevelStreamTrue(body)) return;
  const options = valueAt(body, OPTIONS_KEY);
  if (options === -1) {
    splice(ctx, body);
    return;
  }
  if (asksForUsage(body, options)) return;
  // stream_options without include_usage: true, the one case parsed.
  const parsed = parsedBody(ctx) as StreamBody | null;
  if (parsed !== null && typeof parsed === 'object' && parsed.stream === true) withOptions(ctx, parsed);
}

/** withOptions sets include_usage in the client's own stream_options, unless it asked for usage. */
function withOptions(ctx: RequestContext, parsed: StreamBody): void {
  const so = parsed.stream_options;
  const isObject = so !== null && typeof so === 'object' && !Array.isArray(so);
  if (isObject && (so as { include_usage?: unknown }).include_usage === true) return;
  parsed.stream_options = { ...(isObject ? so : {}), include_usage: true };
  rewriteBody(ctx);
  ctx.transformer = new UsageChunkHider();
}

/** splice inserts the option after the body's opening brace (the top-level object has no stream_options). */
function splice(ctx: RequestContext, body: Buffer): void {
  let i = 0;
  while (isJsonSpace(body[i]!)) i++;
  if (body[i] !== 0x7b /* { */) return;
  ctx.body = Buffer.concat([OPEN_WITH_OPTIONS, body.subarray(i + 1)], OPEN_WITH_OPTIONS.length + body.length - i - 1);
  ctx.bodyRewritten = true;
  ctx.transformer = new UsageChunkHider();
}

/** isTopLevelStreamTrue tells whether the top-level object of a JSON body has `"stream": true`. */
export function isTopLevelStreamTrue(body: Buffer): boolean {
  const at = valueAt(body, STREAM_KEY);
  return at !== -1 && body[at] === 0x74 /* t */;
}

/** valueAt is where the value of a top-level key (given with its quotes) starts in a JSON object body, or -1. */
function valueAt(body: Buffer, key: Buffer): number {
  for (let at = body.indexOf(key); at !== -1; at = body.indexOf(key, at + 1)) {
    // Inside a string every quote is escaped: an unescaped quoted key is a whole string token.
    if (isEscaped(body, at)) continue;
    const end = at + key.length;
    const value = afterColon(body, end);
    if (value === -1) continue;
    // Depth 1 at the key: one bracket open before it, or one left to close after it.
    const depth = at <= body.length - end ? netDepth(body, 0, at) : -netDepth(body, end, body.length);
    if (depth === 1) return value;
  }
  return -1;
}

/** asksForUsage tells whether the stream_options value at `open` is an object with `"include_usage": true`. */
function asksForUsage(body: Buffer, open: number): boolean {
  if (body[open] !== 0x7b /* { */) return false;
  const close = closeOf(body, open);
  for (let at = body.indexOf(INCLUDE_USAGE_KEY, open); at !== -1 && at < close; at = body.indexOf(INCLUDE_USAGE_KEY, at + 1)) {
    if (isEscaped(body, at)) continue;
    const value = afterColon(body, at + INCLUDE_USAGE_KEY.length);
    if (value !== -1 && body[value] === 0x74 /* t */ && netDepth(body, open, at) === 1) return true;
  }
  return false;
}

/**
 * netDepth is how many brackets `[from, to)` opens minus how many it closes, strings skipped;
 * `from` must be outside a string. NaN when a string does not end.
 */
function netDepth(b: Buffer, from: number, to: number): number {
  let depth = 0;
  for (let i = from; i < to; i++) {
    const c = b[i]!;
    if (c === QUOTE) {
      i = stringEnd(b, i);
      if (i === -1) return Number.NaN;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return depth;
}

/** closeOf is the index of the bracket that closes the one at `open` (strings skipped), or -1. */
function closeOf(b: Buffer, open: number): number {
  let depth = 0;
  for (let i = open; i < b.length; i++) {
    const c = b[i]!;
    if (c === QUOTE) {
      i = stringEnd(b, i);
      if (i === -1) return -1;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if ((c === 0x7d || c === 0x5d) && --depth === 0) return i;
  }
  return -1;
}

/** stringEnd is the index of the quote that ends the string opened at `open`, or -1. */
function stringEnd(b: Buffer, open: number): number {
  let q = b.indexOf(QUOTE, open + 1);
  while (q !== -1 && isEscaped(b, q)) q = b.indexOf(QUOTE, q + 1);
  return q;
}

/** isEscaped tells whether the byte at `at` follows an odd number of backslashes. */
function isEscaped(b: Buffer, at: number): boolean {
  let k = at - 1;
  while (k >= 0 && b[k] === BACKSLASH) k--;
  return (at - 1 - k) % 2 === 1;
}

function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/** afterColon skips whitespace, a colon and whitespace from `from`: the first value byte, or -1. */
function afterColon(b: Buffer, from: number): number {
  let i = from;
  while (isJsonSpace(b[i]!)) i++;
  if (b[i] !== 0x3a /* : */) return -1;
  i++;
  while (isJsonSpace(b[i]!)) i++;
  return i;
}
