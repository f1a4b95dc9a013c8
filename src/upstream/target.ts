import type { TargetState } from './target-state.js';

/** Target is one upstream server of a model: where requests go, its share of them, and its live state. */
export interface Target {
  readonly url: string;
  /** origin is scheme://host:port, the key of the connection pool. */
  readonly origin: string;
  /** basePath is the target URL's own path without a trailing "/", prepended to forwarded paths. */
  readonly basePath: string;
  readonly weight: number;
  /** state is the target's live state, shared by every model and snapshot that lists its URL. */
  readonly state: TargetState;
}

/** toTarget builds a target from its URL (checked by the schema) and its live state. */
export function toTarget(url: string, weight: number, state: TargetState): Target {
  const u = new URL(url);
  return Object.freeze({ url, origin: u.origin, basePath: u.pathname.replace(/\/+$/, ''), weight, state });
}
