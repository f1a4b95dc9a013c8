/**
 * prepare: the upstream request differs from the client's in two ways, both made here (after
 * translate, before admit, so token limits reserve on the body the engine gets):
 *
 * - Split. A model with a `split` is served by one of the models it names (several levels when
 *   an alias names a split): the choice is made here, by weight, from the API key's hash or a
 *   header's value when sticky, else at random, and the body's `model` (or an upgrade's
 *   `?model=`) becomes the chosen model's served id (else its name), whatever the client sent.
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
import { hexToUnit, stringToUnit, type SplitChoice } from '../routing/index.js';
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
  if (model.split !== null) {
    const chosen = chooseSplit(ctx, model.split);
    ctx.chosen = chosen;
    ctx.serving = chosen;
    const id = chosen.servedModel ?? chosen.name;
    if (ctx.upgradeHead !== null) withQueryModel(ctx, id);
    else useServedModel(ctx, chosen, id);
    // Stream usage is the engine's business (track_stream_usage of the chosen model), or needed by this model's token limits.
    streamUsage(ctx, chosen.shouldTrackStreamUsage || model.limits?.hasTokenRules === true);
    return;
  }
  const served = model.servedModel;
  if (served !== null && served !== model.name) asServed(ctx, model.name, served);
  streamUsage(ctx, model.shouldTrackStreamUsage);
}

/** useServedModel gives the body the served id of the model that now serves the request (a fallback, a split's choice). */
export function useServedModel(ctx: RequestContext, serving: Model, id: string | null = serving.servedModel): void {
  if (id === null) return;
  const body = parsedBody(ctx);
  if (body !== null && typeof body === 'object' && !Array.isArray(body) && 'model' in body) {
    (body as RequestBody).model = id;
    rewriteBody(ctx);
  }
}

/** chooseSplit follows a split (and splits it names, when an alias names one) to a model with targets. */
function chooseSplit(ctx: RequestContext, split: SplitChoice<Model>): Model {
  let model = split.pick(unitOf(ctx, split, 0));
  for (let level = 1; model.split !== null; level++) model = model.split.pick(unitOf(ctx, model.split, level));
  return model;
}

/**
 * unitOf is the number in [0, 1) a split picks by: a stable hash of the sticky value, else a random
 * draw. A split reached through another one (level > 0) remixes the hash, or the same value would
 * pick the same relative position at every level (a 50/50 under a 50/50 would never reach one side).
 */
function unitOf(ctx: RequestContext, split: SplitChoice<Model>, level: number): number {
  const sticky = split.sticky;
  let u = -1;
  if (sticky.kind === 'api_key') {
    if (ctx.keyHash !== null) u = hexToUnit(ctx.keyHash);
  } else if (sticky.kind === 'header') {
    const v = ctx.req.headers[sticky.header];
    if (typeof v === 'string') u = stringToUnit(v);
  }
  if (u === -1) return Math.random();
  return level === 0 ? u : remix(u, level);
}

/** remix derives another uniform number from u for a deeper split level (murmur3's finalizer). */
function remix(u: number, level: number): number {
  let h = (u * 4294967296) ^ Math.imul(level, 0x9e3779b9);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

/** withQueryModel sets an upgrade's `?model=` (when it names one) to the served id. */
function withQueryModel(ctx: RequestContext, id: string): void {
  const params = new URLSearchParams(ctx.query);
  if (!params.has('model')) return;
  params.set('model', id);
  ctx.query = `?${params.toString()}`;
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
function streamUsage(ctx: RequestContext, shouldTrack: boolean): void {
  // A transformer is set by translation, which asks for usage itself.
  if (!shouldTrack || ctx.transformer !== null) return;
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
