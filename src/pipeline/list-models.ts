/**
 * listModels: DESIGN 5. `GET <path>/v1/models` without X-Model is answered by the gateway with the
 * models on that path the caller may use: the open ones, plus the one its key belongs to.
 */
import type { ModelCard, ModelList } from '../openai/index.js';
import { GatewayError } from '../errors/index.js';
import { KEY_CHALLENGE, ownerOfKey, presentedKey } from './authenticate.js';
import type { RequestContext } from './context.js';

/** listModels answers a model listing when route() left no model; otherwise it does nothing. */
export function listModels(ctx: RequestContext): void {
  if (ctx.model !== null) return;
  const route = ctx.route!;
  const key = presentedKey(ctx, true);
  const owner = key === undefined ? undefined : ownerOfKey(ctx, key);
  if (key !== undefined && owner === undefined) throw new GatewayError('invalid_api_key', { headers: KEY_CHALLENGE });
  const created = Math.floor(ctx.snapshot.loadedAt.getTime() / 1000);
  const data: ModelCard[] = [];
  for (const m of route.models) {
    if (m.keyHashes !== null && m !== owner) continue;
    data.push({ id: m.name, object: 'model', created, owned_by: 'inference-gateway', ...(m.servedModel ? { root: m.servedModel } : {}) });
  }
  const body = JSON.stringify({ object: 'list', data } satisfies ModelList);
  ctx.res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': ctx.requestId,
  });
  ctx.res.end(body);
}
