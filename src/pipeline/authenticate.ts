/**
 * authenticate: Kong key-auth semantics. The key is read from the `apikey` header, else from
 * `x-api-key` (what Anthropic SDKs send), else from `Authorization: Bearer`, else (where the
 * model allows it) from an `apikey` query parameter.
 * Keys are compared by SHA-256 lookup, never by an early-exit string compare.
 */
import type { Model } from '../config/index.js';
import { hashKey } from '../auth/index.js';
import { GatewayError } from '../errors/index.js';
import type { RequestContext } from './context.js';

/** KEY_CHALLENGE is the 401 challenge header; Kong's key-auth sent one and clients may look for it. */
export const KEY_CHALLENGE = Object.freeze({ 'www-authenticate': 'Key realm="inference-gateway"' });

/** presentedKey returns the client's key, or undefined; sets ctx.keyFromQuery when it came from the query. */
export function presentedKey(ctx: RequestContext, allowQuery: boolean): string | undefined {
  const headers = ctx.req.headers;
  const apikey = headers.apikey;
  if (typeof apikey === 'string' && apikey !== '') return apikey;
  const xApiKey = headers['x-api-key'];
  if (typeof xApiKey === 'string' && xApiKey !== '') return xApiKey;
  const auth = headers.authorization;
  if (auth !== undefined && auth.length > 7 && auth.slice(0, 7).toLowerCase() === 'bearer ') return auth.slice(7).trim();
  if (allowQuery && ctx.query !== '') {
    const value = new URLSearchParams(ctx.query).get('apikey');
    if (value) {
      ctx.keyFromQuery = true;
      return value;
    }
  }
  return undefined;
}

/** ownerOfKey is the model a key belongs to, or undefined for an unknown key; it records the key's hash on ctx for logs. */
export function ownerOfKey(ctx: RequestContext, key: string): Model | undefined {
  return ctx.snapshot.keyOwners.get(recordKeyHash(ctx, key));
}

/** recordKeyHash hashes the presented key and keeps the hash on ctx (logs and limits name keys by it). */
function recordKeyHash(ctx: RequestContext, key: string): string {
  const hash = hashKey(key);
  ctx.keyHash = hash;
  return hash;
}

/** authenticate lets the request on only with a key of the routed model (models without keys are open). */
export function authenticate(ctx: RequestContext): void {
  const model = ctx.model;
  if (model === null || model.keyHashes === null) return;
  const key = presentedKey(ctx, model.keyInQuery);
  if (key === undefined) throw new GatewayError('missing_api_key', { headers: KEY_CHALLENGE });
  // The routed model's own keys first (its only key, when it has one, without the set); the map
  // of every key only tells an unknown key (401) from another model's key (403).
  const hash = recordKeyHash(ctx, key);
  if (hash !== model.soleKeyHash && !model.keyHashes.has(hash)) {
    const owner = ctx.snapshot.keyOwners.get(hash);
    if (owner === undefined) throw new GatewayError('invalid_api_key', { headers: KEY_CHALLENGE });
    if (owner !== model) throw new GatewayError('key_not_allowed');
  }
  // Most models name no key: an empty map would still hash the 64-char key hash to say so.
  ctx.keyName = model.keyNames.size === 0 ? null : (model.keyNames.get(hash) ?? null);
}
