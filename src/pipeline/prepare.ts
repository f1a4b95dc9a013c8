/**
 * prepare: the upstream request differs from the client's in two ways, both made here (after
 * translate, before admit, so token limits reserve on the body the engine gets):
 *
 * - Served model. An engine answers only to its --served-model-name: a client that names the
 *   model by its gateway name (body `model`, or `?model=` of a WebSocket upgrade) gets the
 *   model's served id instead. When select moves a request to a fallback, useServedModel gives
 *   the body the fallback's served id.
 * - Stream usage. An OpenAI stream reports token usage only when the request asks for it
 *   (`stream_options.include_usage`). For every streamed chat or text completion whose client did
 *   not ask, the engine is asked and a UsageChunkHider removes the extra usage event from what
 *   the client receives, so the tokens are counted (metrics, access log, token limits) and the
 *   client still gets the stream it asked for.
 *
 * The body is not parsed for either (but in one rare case, below). A body already parsed
 * (routing by `model`, translation) is changed and re-serialized; otherwise src/openai's scanner
 * finds the top-level `stream` and `stream_options` in the bytes. Without a top-level
 * `stream_options` the option is spliced in right after the opening brace; a client's own
 * `{"include_usage": true}` is left alone. Only a client's `stream_options` without
 * `include_usage: true` is parsed and re-serialized. A request that is not a stream pays one
 * byte search; a malformed body is left for the engine to refuse.
 */
import type { Model } from '../config/index.js';
import { isJsonSpace, isTopLevelStreamTrue, isTrueAt, memberValueAt, topLevelValueAt } from '../openai/index.js';
import { UsageChunkHider } from '../transform/index.js';
import { parsedBody, rewriteBody } from './body.js';
import type { RequestContext } from './context.js';

const OPTIONS_KEY = Buffer.from('"stream_options"');
const INCLUDE_USAGE_KEY = Buffer.from('"include_usage"');
// Valid after `{` of a non-empty object, which a body holding "stream" is.
const OPEN_WITH_OPTIONS = Buffer.from('{"stream_options":{"include_usage":true},');

type RequestBody = { model?: unknown; stream?: unknown; stream_options?: unknown };

/** prepare makes the body (or upgrade query) the engine gets: its served model id, and a request for stream usage. */
export function prepare(ctx: RequestContext): void {
  const model = ctx.model;
  if (model === null) return;
  const served = model.servedModel;
  if (served !== null && served !== model.name) asServed(ctx, model.name, served);
  streamUsage(ctx, model);
}

/** useServedModel gives the body the served id of the model that now serves the request (a fallback). */
export function useServedModel(ctx: RequestContext, serving: Model): void {
  if (serving.servedModel === null) return;
  const body = parsedBody(ctx);
  if (body !== null && typeof body === 'object' && !Array.isArray(body) && 'model' in body) {
    (body as RequestBody).model = serving.servedModel;
    rewriteBody(ctx);
  }
}

/** asServed replaces the gateway name a client routed by (body `model`, or an upgrade's `?model=`) with the served id. */
function asServed(ctx: RequestContext, name: string, served: string): void {
  // Routing by `model` parsed the body; with X-Model it stays unparsed and unchanged.
  const parsed = ctx.parsedBody as RequestBody | null | undefined;
  if (parsed !== undefined) {
    if (parsed !== null && typeof parsed === 'object' && parsed.model === name) {
      parsed.model = served;
      rewriteBody(ctx);
    }
    return;
  }
  if (ctx.upgradeHead === null || typeof ctx.req.headers['x-model'] === 'string') return;
  const params = new URLSearchParams(ctx.query);
  if (params.get('model') !== name) return;
  params.set('model', served);
  ctx.query = `?${params.toString()}`;
}

/** streamUsage asks the engine for usage on a stream whose client did not. */
function streamUsage(ctx: RequestContext, model: Model): void {
  // A transformer is set by translation, which asks for usage itself.
  if (!model.shouldTrackStreamUsage || ctx.transformer !== null) return;
  const body = ctx.body;
  if (body === null || !ctx.upstreamPath.endsWith('/completions')) return;
  if (ctx.parsedBody !== undefined) {
    const parsed = ctx.parsedBody as RequestBody | null;
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
  const options = topLevelValueAt(body, OPTIONS_KEY);
  if (options === -1) {
    splice(ctx, body);
    return;
  }
  if (isTrueAt(body, memberValueAt(body, options, INCLUDE_USAGE_KEY))) return;
  // stream_options without include_usage: true, the one case parsed.
  const parsed = parsedBody(ctx) as RequestBody | null;
  if (parsed !== null && typeof parsed === 'object' && parsed.stream === true) withOptions(ctx, parsed);
}

/** withOptions sets include_usage in the client's own stream_options, unless it asked for usage. */
function withOptions(ctx: RequestContext, parsed: RequestBody): void {
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
  while (isJsonSpace(body[i])) i++;
  if (body[i] !== 0x7b /* { */) return;
  ctx.body = Buffer.concat([OPEN_WITH_OPTIONS, body.subarray(i + 1)], OPEN_WITH_OPTIONS.length + body.length - i - 1);
  ctx.bodyRewritten = true;
  ctx.transformer = new UsageChunkHider();
}
