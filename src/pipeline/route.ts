/**
 * route: pick the path route (longest segment prefix), then the model: X-Model first, else the
 * JSON body's `model` matched against names, then served ids (configured, then learned), then
 * LoRA adapters, configured then learned (which also set ctx.adapter; with X-Model the body of a
 * model with adapters is read for one). Without X-Model the body is parsed
 * here and kept on the context, so the later stages that read it (translate, prepare, admit,
 * select) do not parse it again. A gateway name becomes the served id in prepare.
 */
import type { Model, PathRoute } from '../config/index.js';
import { GatewayError } from '../errors/index.js';
import { matchPath, normalizePath } from '../routing/index.js';
import { modelNotFound, routeNotFound } from './not-found.js';
import type { RequestContext } from './context.js';

/** route resolves ctx.route, ctx.upstreamPath and (unless the request is a model listing) ctx.model. */
export function route(ctx: RequestContext): void {
  const path = normalizePath(ctx.path);
  if (path === null) throw new GatewayError('invalid_path');
  if (ctx.path.length + ctx.query.length > ctx.snapshot.settings.maxUrlLength) throw new GatewayError('uri_too_long');
  ctx.path = path;
  const match = matchPath(ctx.snapshot.routes, ctx.snapshot.maxDepth, path);
  if (match === null) throw routeNotFound(ctx.snapshot);
  ctx.route = match.route;
  ctx.upstreamPath = match.rest;
  // The one check the translate stage costs other requests (on the normalized path).
  const rest = match.rest;
  if (rest.startsWith('/v1/messages') && (rest.length === 12 || rest.charCodeAt(12) === 47 /* "/" */)) {
    ctx.isMessagesApi = true;
    ctx.errorFormat = 'anthropic';
  }

  const header = ctx.req.headers['x-model'];
  if (typeof header === 'string') {
    const model = match.route.byName.get(header);
    if (model === undefined) throw modelNotFound(match.route, header);
    ctx.model = model;
    ctx.serving = model;
    if (model.adapters !== null) adapterOfBody(ctx, match.route, model);
    return;
  }
  // DESIGN 5: GET <path>/v1/models without X-Model is answered by the gateway itself.
  if (ctx.req.method === 'GET' && match.rest === '/v1/models' && ctx.upgradeHead === null) return;

  // A WebSocket upgrade has no body: browsers cannot set X-Model either, so `?model=` names it.
  if (ctx.upgradeHead !== null) {
    routeByQuery(ctx, match.route);
    return;
  }
  const name = bodyModel(ctx);
  let model = baseModel(match.route, name);
  if (model === undefined) {
    model = adapterOwner(match.route, name);
    if (model === undefined) throw modelNotFound(match.route, name, 'model');
    ctx.adapter = name;
  }
  ctx.model = model;
  ctx.serving = model;
}

/** routeByQuery picks the model of an upgrade from `?model=` (name, then served id), like a body's `model`. */
function routeByQuery(ctx: RequestContext, route: PathRoute): void {
  const params = new URLSearchParams(ctx.query);
  const name = params.get('model');
  if (name === null || name === '') throw new GatewayError('model_not_specified', { message: 'No model given: send the X-Model header or a "model" query parameter.', param: 'model' });
  const model = baseModel(route, name);
  if (model === undefined) throw modelNotFound(route, name, 'model');
  ctx.model = model;
  ctx.serving = model;
}

/**
 * adapterOfBody reads the body's `model` of a request routed by X-Model to a model with adapters:
 * an adapter of the model is routed to as one; its name or served id (or, with `adapters: auto`, a
 * base model its targets list) is the base model; anything else is not served by this model.
 */
function adapterOfBody(ctx: RequestContext, route: PathRoute, model: Model): void {
  if (ctx.upgradeHead !== null || ctx.body === null || ctx.body.length === 0) return;
  const name = bodyModel(ctx);
  if (model.adapters!.has(name)) ctx.adapter = name;
  else if (name !== model.name && name !== model.servedModel && model.learnedAdapters?.bases.has(name) !== true) throw modelNotFound(route, name, 'model');
}

/** adapterOwner finds the model an adapter id belongs to: the first listing it in `adapters`, else the first `adapters: auto` model whose targets list it. */
export function adapterOwner(route: PathRoute, id: string): Model | undefined {
  const model = route.byAdapter.get(id);
  if (model !== undefined) return model;
  for (const m of route.learningAdapters) if (m.adapters!.has(id)) return m;
  return undefined;
}

/**
 * baseModel is the model a body's (or `?model=`) id names as a model, not as an adapter: by name,
 * then by configured served id, then the `served_model: auto` model whose targets serve it.
 */
export function baseModel(route: PathRoute, id: string): Model | undefined {
  return route.byName.get(id) ?? route.byServedModel.get(id) ?? learnedModel(route, id);
}

/** learnedModel finds the `served_model: auto` model whose targets serve the id (configured names and ids win). */
function learnedModel(route: PathRoute, id: string): Model | undefined {
  for (const m of route.learning) if (m.servedModel === id) return m;
  return undefined;
}

function bodyModel(ctx: RequestContext): string {
  const body = ctx.body;
  if (body === null || body.length === 0) throw new GatewayError('model_not_specified');
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new GatewayError('invalid_request_body');
  }
  ctx.parsedBody = parsed;
  const model = parsed !== null && typeof parsed === 'object' ? (parsed as { model?: unknown }).model : undefined;
  if (typeof model !== 'string' || model === '') throw new GatewayError('model_not_specified', { param: 'model' });
  return model;
}
