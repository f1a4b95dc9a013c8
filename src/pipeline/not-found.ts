/**
 * The 404 answers of routing, worded to say where to look: route_not_found names the configured
 * path prefixes (a few, then how many more), model_not_found points at the path's model list.
 * Only names from the configuration appear, never a key.
 */
import type { PathRoute, Snapshot } from '../config/index.js';
import { GatewayError } from '../errors/index.js';

/** MAX_LISTED_PATHS caps the prefixes a route_not_found message names (a config may have thousands). */
const MAX_LISTED_PATHS = 10;

// The route_not_found message of each snapshot, built on its first miss rather than per request.
const routeMessages = new WeakMap<Snapshot, string>();

/** routeNotFound is the 404 for a path under no configured prefix. */
export function routeNotFound(snapshot: Snapshot): GatewayError {
  let message = routeMessages.get(snapshot);
  if (message === undefined) {
    message = toRouteMessage([...snapshot.routes.keys()]);
    routeMessages.set(snapshot, message);
  }
  return new GatewayError('route_not_found', { message });
}

function toRouteMessage(paths: string[]): string {
  if (paths.length === 0) return 'No route matches this path: no models are configured.';
  const sorted = paths.map((p) => p || '/').sort();
  const shown = sorted.slice(0, MAX_LISTED_PATHS).join(', ');
  const more = sorted.length > MAX_LISTED_PATHS ? ` (and ${sorted.length - MAX_LISTED_PATHS} more)` : '';
  return `No route matches this path. Models are served under: ${shown}${more}.`;
}

/** modelNotFound is the 404 for a model name not served on the matched path. */
export function modelNotFound(route: PathRoute, name: string, param?: string): GatewayError {
  const shown = name.length > 100 ? `${name.slice(0, 100)}…` : name;
  const message = `Model "${shown}" is not served on this path; GET ${route.path}/v1/models lists the models you may use.`;
  return new GatewayError('model_not_found', param === undefined ? { message } : { message, param });
}
