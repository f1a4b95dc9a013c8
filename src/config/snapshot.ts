/**
 * The compiled, immutable view of a configuration that serves requests. A request reads the
 * current snapshot once and uses only it, so a reload mid-request cannot mix two configs.
 */
import type { RoundRobin } from '../upstream/index.js';

/** Target is one upstream server of a model, split for fast path building. */
export interface Target {
  readonly url: string;
  /** origin is scheme://host:port, the key of the connection pool. */
  readonly origin: string;
  /** basePath is the target URL's own path without a trailing "/", prepended to forwarded paths. */
  readonly basePath: string;
  readonly weight: number;
}

/** Timeouts are a model's upstream timeouts in milliseconds. */
export interface Timeouts {
  readonly connectMs: number;
  readonly firstByteMs: number;
  readonly idleMs: number;
}

/** Model is one compiled, routable model. */
export interface Model {
  readonly name: string;
  /** path is the URL prefix ("" for the root). */
  readonly path: string;
  readonly servedModel: string | null;
  /** keyHashes are the SHA-256 hex of the model's keys; null when the model needs no key. */
  readonly keyHashes: ReadonlySet<string> | null;
  readonly keyInQuery: boolean;
  /** upstreamAuthorization is the ready-made "Bearer <key>" header for targets, or null. */
  readonly upstreamAuthorization: string | null;
  readonly targets: readonly Target[];
  readonly timeouts: Timeouts;
  readonly healthPath: string | null;
  /** source names where the model was defined ("file (field)"), for operators. */
  readonly source: string;
  readonly balancer: RoundRobin<Target>;
}

/** PathRoute is every model served under one path prefix. */
export interface PathRoute {
  readonly path: string;
  readonly byName: ReadonlyMap<string, Model>;
  readonly byServedModel: ReadonlyMap<string, Model>;
  readonly models: readonly Model[];
}

/** Settings are the request-handling settings of the proxy listener. */
export interface Settings {
  readonly maxBodyBytes: number;
}

/** Snapshot is a compiled configuration. */
export interface Snapshot {
  /** hash is the SHA-256 of the compiled content; equal hashes mean equal routing. */
  readonly hash: string;
  readonly loadedAt: Date;
  readonly settings: Settings;
  readonly routes: ReadonlyMap<string, PathRoute>;
  /** maxDepth is the most "/" segments of any configured path: longer request prefixes need no lookup. */
  readonly maxDepth: number;
  /** keyOwners maps a key hash to the one model it belongs to. */
  readonly keyOwners: ReadonlyMap<string, Model>;
  readonly models: readonly Model[];
}
