/**
 * compileSnapshot turns a checked configuration into the immutable Snapshot requests run on:
 * maps from path prefix and model name, key-hash ownership, parsed targets and timeouts in ms.
 * Everything a request would otherwise derive is derived here, once.
 */
import { createHash } from 'node:crypto';
import { toKeyHash } from '../auth/index.js';
import { RoundRobin } from '../upstream/index.js';
import type { LoadedConfig, ModelSpec } from './load.js';
import type { Model, PathRoute, Snapshot, Target } from './snapshot.js';
import { toBytes, toMs } from './units.js';

/** Default values of the settings DESIGN.md and the issues fix. */
export const DEFAULTS = Object.freeze({
  maxBodyBytes: 32 * 1024 * 1024,
  connectMs: 5_000,
  firstByteMs: 600_000,
  idleMs: 120_000,
});

function toTarget(t: { url: string; weight?: number | undefined }): Target {
  const u = new URL(t.url);
  return Object.freeze({
    url: t.url,
    origin: u.origin,
    basePath: u.pathname.replace(/\/+$/, ''),
    weight: t.weight ?? 1,
  });
}

function compileModel(spec: ModelSpec): Model {
  const keys = spec.api_keys ?? [];
  const targets = Object.freeze((spec.targets ?? []).map(toTarget));
  return Object.freeze({
    name: spec.name,
    path: spec.path ?? '',
    servedModel: spec.served_model ?? null,
    keyHashes: keys.length > 0 ? new Set(keys.map((k) => toKeyHash(k)!)) : null,
    keyInQuery: spec.key_in_query ?? false,
    upstreamAuthorization: spec.upstream_api_key ? `Bearer ${spec.upstream_api_key}` : null,
    targets,
    timeouts: Object.freeze({
      connectMs: toMs(spec.timeouts?.connect, DEFAULTS.connectMs),
      firstByteMs: toMs(spec.timeouts?.first_byte, DEFAULTS.firstByteMs),
      idleMs: toMs(spec.timeouts?.idle, DEFAULTS.idleMs),
    }),
    healthPath: spec.health_check?.path ?? null,
    source: `${spec.source.file} (${spec.source.field})`,
    balancer: new RoundRobin(targets),
  });
}

/** compileSnapshot compiles a loaded configuration. */
export function compileSnapshot(loaded: LoadedConfig, now: Date = new Date()): Snapshot {
  const models = loaded.models.map(compileModel);
  const grouped = new Map<string, Model[]>();
  for (const m of models) {
    const list = grouped.get(m.path);
    if (list) list.push(m);
    else grouped.set(m.path, [m]);
  }
  const routes = new Map<string, PathRoute>();
  let maxDepth = 0;
  for (const [path, list] of grouped) {
    const byName = new Map<string, Model>();
    const byServedModel = new Map<string, Model>();
    for (const m of list) {
      byName.set(m.name, m);
      // The first model declaring a served id wins body routing by that id; names always win over ids.
      if (m.servedModel !== null && !byServedModel.has(m.servedModel)) byServedModel.set(m.servedModel, m);
    }
    routes.set(path, Object.freeze({ path, byName, byServedModel, models: Object.freeze(list) }));
    maxDepth = Math.max(maxDepth, path === '' ? 0 : path.split('/').length - 1);
  }
  const keyOwners = new Map<string, Model>();
  for (const m of models) for (const h of m.keyHashes ?? []) keyOwners.set(h, m);

  const settings = Object.freeze({ maxBodyBytes: toBytes(loaded.config.proxy?.max_body_size, DEFAULTS.maxBodyBytes) });
  return Object.freeze({
    hash: hashOf(settings, models),
    loadedAt: now,
    settings,
    routes,
    maxDepth,
    keyOwners,
    models: Object.freeze(models),
  });
}

/** hashOf fingerprints what routing depends on (keys only by hash), so an unchanged reload can be skipped. */
function hashOf(settings: object, models: readonly Model[]): string {
  const canonical = JSON.stringify({
    settings,
    models: models.map((m) => ({ ...m, keyHashes: m.keyHashes ? [...m.keyHashes].sort() : null, balancer: undefined, source: undefined })),
  });
  return createHash('sha256').update(canonical).digest('hex');
}

/** describeSnapshot is a printable summary of a snapshot: keys never appear, only their count. */
export function describeSnapshot(s: Snapshot): object {
  return {
    hash: s.hash,
    models: s.models.map((m) => ({
      name: m.name,
      path: m.path || '/',
      served_model: m.servedModel,
      keys: m.keyHashes?.size ?? 0,
      targets: m.targets.map((t) => t.url),
      health_check_path: m.healthPath,
      source: m.source,
    })),
  };
}
