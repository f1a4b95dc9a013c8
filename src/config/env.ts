import type { ConfigIssue } from './config-error.js';
import { toFieldPath } from './config-error.js';

const VAR_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * substituteEnv replaces `${VAR}` (and `${VAR:-default}`) in every string of a parsed document.
 * It runs after parsing, so a value holding ":" or "#" cannot break the YAML around it.
 * A missing variable is reported by name and field, never by value. `refs` collects which
 * variables each field's value came from, so an error about that value can say so.
 */
export function substituteEnv(doc: unknown, env: NodeJS.ProcessEnv, file: string, issues: ConfigIssue[], refs?: Map<string, string[]>): unknown {
  const walk = (v: unknown, path: PropertyKey[]): unknown => {
    if (typeof v === 'string') {
      if (!v.includes('${')) return v;
      return v.replace(VAR_REF, (ref: string, name: string, fallback: string | undefined) => {
        if (refs !== undefined) {
          const field = toFieldPath(path);
          refs.set(field, [...(refs.get(field) ?? []), name]);
        }
        const value = env[name];
        if (value !== undefined && value !== '') return value;
        if (fallback !== undefined) return fallback;
        issues.push({ file, field: toFieldPath(path), message: `environment variable ${name} is not set` });
        // Left as written, so the missing variable is reported once rather than again as a bad value.
        return ref;
      });
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, i]));
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = walk(x, [...path, k]);
      return out;
    }
    return v;
  };
  return walk(doc, []);
}
