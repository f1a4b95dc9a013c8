/**
 * listModels: DESIGN 5. `GET <path>/v1/models` without X-Model is answered by the gateway with the
 * models on that path the caller may use: the open ones, plus the one its key belongs to.
 *
 * A model is listed under the id a client can send back as `model`, with or without X-Model: its
 * upstream's own id (`served_model`, else its name). With X-Model the body is forwarded as is, so
 * only the upstream's id works there; without it, body routing finds the model by that id too.
 * Only when that id would route to another model of the path (a model named so, or an earlier
 * model with the same served id) is the model listed by its gateway name, which body routing
 * matches first and replaces with the served id.
 *
 * A model's LoRA adapters (configured, or learned with `adapters: auto`) follow it, each with the
 * model's listed id as `parent`, as vLLM lists them; an adapter id that body routing would take to
 * something else (a model's name or id, an earlier model's adapter) is left out.
 */
import type { Model, PathRoute } from '../config/index.js';
import type { ModelCard, ModelList } from '../openai/index.js';
import { GatewayError } from '../errors/index.js';
import { KEY_CHALLENGE, ownerOfKey, presentedKey } from './authenticate.js';
import type { RequestContext } from './context.js';
import { adapterOwner, baseModel } from './route.js';

/** listModels answers a model listing when route() left no model; otherwise it does nothing. */
export function listModels(ctx: RequestContext): void {
  if (ctx.model !== null) return;
  ctx.isModelList = true;
  const route = ctx.route!;
  const key = presentedKey(ctx, true);
  const owner = key === undefined ? undefined : ownerOfKey(ctx, key);
  const created = Math.floor(ctx.snapshot.loadedAt.getTime() / 1000);
  const data: ModelCard[] = [];
  let openCount = 0;
  for (const m of route.models) {
    if (m.keyHashes === null) openCount++;
    else if (m !== owner) continue;
    const id = listedId(route, m);
    data.push({ id, object: 'model', created, owned_by: 'inference-gateway' });
    if (m.adapters !== null) for (const a of m.adapters) if (routesToAdapter(route, a, m)) data.push({ id: a, object: 'model', created, owned_by: 'inference-gateway', parent: id });
  }
  // A key the gateway does not know is refused unless the path has open models: their clients may
  // send any bearer (an SDK's placeholder, or the upstream's own key, which is passed through).
  if (key !== undefined && owner === undefined && openCount === 0) throw new GatewayError('invalid_api_key', { headers: KEY_CHALLENGE });
  const body = JSON.stringify({ object: 'list', data } satisfies ModelList);
  const length = Buffer.byteLength(body);
  ctx.res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': length,
    'x-request-id': ctx.requestId,
  });
  ctx.bytesOut += length;
  ctx.res.end(body);
}

/** routesToAdapter tells whether a body naming the id is routed to the model as one of its adapters. */
function routesToAdapter(route: PathRoute, id: string, m: Model): boolean {
  return baseModel(route, id) === undefined && adapterOwner(route, id) === m;
}

/** listedId is the id a model is listed under: its upstream's id when that routes back to it, else its name. */
function listedId(route: PathRoute, m: Model): string {
  const served = m.servedModel;
  if (served === null) return m.name;
  return (route.byName.get(served) ?? route.byServedModel.get(served)) === m ? served : m.name;
}
