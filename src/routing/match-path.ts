/**
 * Longest segment-prefix match of a request path against the configured path prefixes.
 * Instead of scanning routes, it cuts the request path at its "/" boundaries, longest first, and
 * asks a Map: at most maxDepth + 1 lookups whatever the number of models, and "/ai/modelsX"
 * can never match "/ai/models" because cuts fall only on segment boundaries.
 */
/** PathMatch is the matched route and the path left after stripping its prefix (at least "/"). */
export interface PathMatch<R> {
  route: R;
  rest: string;
}

/** matchPath finds the route of the longest configured prefix of `path`, or null. */
export function matchPath<R>(routes: ReadonlyMap<string, R>, maxDepth: number, path: string): PathMatch<R> | null {
  // End of the first maxDepth segments: deeper prefixes cannot be configured.
  let end = 0;
  for (let depth = 0; depth < maxDepth; depth++) {
    const next = path.indexOf('/', end + 1);
    if (next === -1) {
      end = path.length;
      break;
    }
    end = next;
  }
  while (end > 0) {
    const route = routes.get(path.slice(0, end));
    if (route !== undefined) return { route, rest: end === path.length ? '/' : path.slice(end) };
    end = path.lastIndexOf('/', end - 1);
  }
  const root = routes.get('');
  return root === undefined ? null : { route: root, rest: path };
}
