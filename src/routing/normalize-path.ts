/**
 * normalizePath: the path routes are matched on and forwarded with. Empty and "." segments go,
 * ".." removes the segment before it (%2e counts as "."), so "/ai/models/../admin" is matched as
 * "/ai/admin" and can never reach an upstream as a way out of its prefix. Encoded or raw
 * separators (%2f, %5c, "\") are refused: an upstream might split on them differently than we do.
 * Most paths need none of this; one precompiled test sends them straight through.
 */

const NEEDS_WORK = /\/\/|\/\.|\/$|%|\\/;
const REFUSED = /%2f|%5c|\\/i;
const DOT = /%2e/gi;

/** normalizePath returns the normalized path, or null when it must be refused (400 invalid_path). */
export function normalizePath(path: string): string | null {
  if (path.charCodeAt(0) !== 47 /* "/" */) return null;
  if (!NEEDS_WORK.test(path)) return path;
  if (REFUSED.test(path)) return null;
  const decoded = path.includes('%') ? path.replace(DOT, '.') : path;
  const out: string[] = [];
  for (const seg of decoded.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      // Climbing above the root is not a path, it is an attack.
      if (out.length === 0) return null;
      out.pop();
      continue;
    }
    out.push(seg);
  }
  // A trailing slash is kept: "/v1/models/" and "/v1/models" may differ upstream.
  const trailing = decoded.length > 1 && decoded.endsWith('/') && out.length > 0 ? '/' : '';
  return `/${out.join('/')}${trailing}`;
}
