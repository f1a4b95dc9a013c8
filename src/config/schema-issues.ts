/**
 * Turns zod's schema issues into messages a user can act on: the value given (never a key: those
 * show as fingerprints), what was expected (enum values, examples), and for an unknown field either
 * the known field it was probably meant to be, or, when the name is a real field one level up or
 * down, the indentation slip that put it there. A field moved by such a slip is also missing where
 * it belongs; that consequence is not reported a second time (`misplaced` lets the loader skip
 * its own rules about it too).
 */
import type { z } from 'zod';
import { fingerprintKey } from '../auth/index.js';
import { isSecretField, toFieldPath, type ConfigIssue } from './config-error.js';
import type { Locate } from './locator.js';

type ZodIssue = z.core.$ZodIssue;

/** SchemaIssueContext is what a schema issue is explained against. */
export interface SchemaIssueContext {
  file: string;
  /** schema is the schema `input` was checked with; its shapes give the known fields of each level. */
  schema: z.ZodType;
  input: unknown;
  /** prefix is where `input` sits in the file (a recipe's gateway section). */
  prefix?: readonly PropertyKey[];
  locate?: Locate;
  /** isFlow tells whether the mapping at a path is written in flow style ({...}, as in JSON), where a slip is a misplaced brace, not an indent. */
  isFlow?: (path: readonly PropertyKey[]) => boolean;
  /** envRefs maps a field to the `${VAR}` names its value was built from. */
  envRefs?: ReadonlyMap<string, readonly string[]>;
}

/** SchemaIssues are the explained issues, and the fields found written at the wrong level. */
export interface SchemaIssues {
  issues: ConfigIssue[];
  /** misplaced holds the fields (e.g. "models[0].targets") that are written elsewhere by an indentation slip. */
  misplaced: Set<string>;
}

/** Blueprint spellings of model fields, suggested when written in the gateway file. */
const ALIASES: Record<string, string> = { url_path: 'path', model_name: 'name', api_key: 'api_keys' };
const MAX_LISTED_FIELDS = 12;
const MAX_SHOWN_CHARS = 80;

/** toSchemaIssues explains every zod issue of one parse. */
export function toSchemaIssues(zodIssues: readonly ZodIssue[], ctx: SchemaIssueContext): SchemaIssues {
  const prefix = ctx.prefix ?? [];
  const issues: ConfigIssue[] = [];
  const misplaced = new Set<string>();
  const pending: Array<{ path: PropertyKey[]; message: string; atKey: boolean }> = [];

  const unknownField = (objPath: PropertyKey[], key: string, known: ReadonlySet<string>): void => {
    const here = objPath.length === 0 && prefix.length === 0 ? 'at the top level' : `in ${toFieldPath([...prefix, ...objPath])}`;
    const slip = findSlip(ctx.schema, ctx.input, objPath, key);
    let message: string;
    if (slip !== null) {
      misplaced.add(toFieldPath([...prefix, ...slip.path, key]));
      const there = slip.path.length === 0 ? 'the top level' : toFieldPath([...prefix, ...slip.path]);
      const flow = ctx.isFlow?.([...prefix, ...objPath]) ?? false;
      const how = slip.below ? (flow ? 'written after its closing brace' : 'indented too little') : flow ? 'written inside the wrong braces' : 'indented too far';
      message = `unknown field "${key}" ${here}; it looks like a field of ${there}${slip.below ? ' above it' : ''}, ${how}`;
    } else {
      const guess = closest(key, known);
      if (guess === undefined && objPath.some(isSecretField)) {
        // Under api_keys a stray mapping key is likely a key written as "- <key>: ...": never echo it.
        pending.push({ path: objPath, message: `unknown field ${fingerprintKey(key)} ${here}; an entry is a key or {key, name, limits}`, atKey: false });
        return;
      }
      if (guess !== undefined) message = `unknown field "${key}" ${here}; did you mean "${guess}"?`;
      else if (known.size > 0 && known.size <= MAX_LISTED_FIELDS) message = `unknown field "${key}" ${here}; the fields here are ${[...known].map((k) => `"${k}"`).join(', ')}`;
      else message = `unknown field "${key}" ${here}`;
    }
    pending.push({ path: [...objPath, key], message, atKey: true });
  };

  for (const issue of zodIssues) {
    if (issue.code !== 'unrecognized_keys') continue;
    const objPath = [...issue.path];
    const known = knownFields(ctx.schema, objPath);
    for (const key of issue.keys) unknownField(objPath, key, known);
  }
  for (const issue of zodIssues) {
    const path = [...issue.path];
    const value = valueAt(ctx.input, path);
    const shown = (): string => show(value, [...prefix, ...path], ctx.envRefs);
    switch (issue.code) {
      case 'unrecognized_keys':
        break;
      case 'invalid_union': {
        // A mapping that fits no branch: a field no branch knows is the real mistake, the branch's missing fields follow from it.
        const known = knownFields(ctx.schema, path);
        const stray = isRecord(value) ? Object.keys(value).filter((k) => !known.has(k)) : [];
        if (stray.length > 0) for (const key of stray) unknownField(path, key, known);
        else pending.push({ path, message: issue.message === 'Invalid input' ? `got ${shown()}; not a valid value here` : `got ${shown()}; ${issue.message}`, atKey: false });
        break;
      }
      case 'invalid_type':
        if (value === undefined) {
          if (!misplaced.has(toFieldPath([...prefix, ...path]))) pending.push({ path, message: `missing; expected ${typeName(issue.expected)}`, atKey: false });
        } else pending.push({ path, message: `got ${shown()}; expected ${typeName(issue.expected)}`, atKey: false });
        break;
      case 'invalid_value': {
        const allowed = issue.values.map((v) => JSON.stringify(v));
        const guess = typeof value === 'string' ? closest(value, new Set(issue.values.filter((v): v is string => typeof v === 'string'))) : undefined;
        const message = allowed.length === 1 ? `got ${shown()}; expected ${allowed[0]}` : `got ${shown()}; expected one of ${allowed.join(', ')}`;
        pending.push({ path, message: guess !== undefined ? `${message}; did you mean "${guess}"?` : message, atKey: false });
        break;
      }
      case 'too_small':
      case 'too_big':
        pending.push({ path, message: boundMessage(issue, shown), atKey: false });
        break;
      case 'invalid_format': {
        let expected = issue.message;
        if (expected.startsWith('Invalid')) {
          if (issue.format === 'starts_with') expected = `expected a value starting with "${(issue as { prefix?: string }).prefix ?? ''}"`;
          else if (issue.format === 'url') expected = 'expected a URL';
          else expected = `expected a ${issue.format}`;
        }
        pending.push({ path, message: `got ${shown()}; ${expected}`, atKey: false });
        break;
      }
      default:
        // Refinements: a scalar's message is about its value; an object's (e.g. "give at least one of ...") stands alone.
        pending.push({ path, message: isScalar(value) ? `got ${shown()}; ${issue.message}` : issue.message, atKey: false });
    }
  }

  const seen = new Set<string>();
  for (const p of pending) {
    const full = [...prefix, ...p.path];
    const field = toFieldPath(full);
    if (seen.has(`${field}\u0000${p.message}`)) continue;
    seen.add(`${field}\u0000${p.message}`);
    const at = ctx.locate?.(full, p.atKey);
    issues.push({ file: ctx.file, field, message: p.message, ...(at ? { line: at.line, column: at.column } : {}) });
  }
  return { issues, misplaced };
}

/**
 * findSlip decides whether an unknown field is a known one written at the wrong indentation.
 * Too little: the entry just above it (the previous field's value, the last item of a list,
 * followed down) has that field and lacks it. Too far: an enclosing level has it and lacks it.
 */
function findSlip(schema: z.ZodType, input: unknown, objPath: PropertyKey[], key: string): { path: PropertyKey[]; below: boolean } | null {
  const obj = valueAt(input, objPath);
  if (isRecord(obj)) {
    const keys = Object.keys(obj);
    const before = keys[keys.indexOf(key) - 1];
    if (before !== undefined) {
      let path: PropertyKey[] = [...objPath, before];
      let v: unknown = obj[before];
      for (;;) {
        if (Array.isArray(v) && v.length > 0) {
          path = [...path, v.length - 1];
          v = v[v.length - 1];
        } else if (isRecord(v)) {
          if (!(key in v) && knownFields(schema, path).has(key)) return { path, below: true };
          const last = Object.keys(v).at(-1);
          if (last === undefined) break;
          path = [...path, last];
          v = v[last];
        } else break;
      }
    }
  }
  for (let n = objPath.length - 1; n >= 0; n--) {
    const up = objPath.slice(0, n);
    const holder = valueAt(input, up);
    if (isRecord(holder) && !(key in holder) && knownFields(schema, up).has(key)) return { path: up, below: false };
  }
  return null;
}

interface LooseDef {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  options?: readonly z.ZodType[];
  getter?: () => z.ZodType;
  in?: z.ZodType;
}

/** knownFields lists the field names the schema allows at path (every branch of a union). */
export function knownFields(schema: z.ZodType, path: readonly PropertyKey[]): Set<string> {
  const out = new Set<string>();
  const walk = (s: z.ZodType, rest: readonly PropertyKey[]): void => {
    const def = s._zod.def as unknown as LooseDef;
    switch (def.type) {
      case 'optional':
      case 'nullable':
      case 'default':
      case 'readonly':
        if (def.innerType) walk(def.innerType, rest);
        return;
      case 'lazy':
        if (def.getter) walk(def.getter(), rest);
        return;
      case 'pipe':
        if (def.in) walk(def.in, rest);
        return;
      case 'union':
        for (const o of def.options ?? []) walk(o, rest);
        return;
      case 'array':
        if (def.element && typeof rest[0] === 'number') walk(def.element, rest.slice(1));
        return;
      case 'object':
        if (!def.shape) return;
        if (rest.length === 0) for (const k of Object.keys(def.shape)) out.add(k);
        else if (typeof rest[0] === 'string' && def.shape[rest[0]]) walk(def.shape[rest[0]]!, rest.slice(1));
    }
  };
  walk(schema, path);
  return out;
}

/** closest is the known name nearest to `name`, if near enough to be a slip of the fingers. */
function closest(name: string, known: ReadonlySet<string>): string | undefined {
  const alias = ALIASES[name];
  if (alias !== undefined && known.has(alias)) return alias;
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(name.length / 3)) + 1;
  for (const k of known) {
    const d = editDistance(lower, k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/** editDistance counts insertions, deletions, substitutions and swaps of two neighbours (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}

function boundMessage(issue: z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig, shown: () => string): string {
  const small = issue.code === 'too_small';
  const limit = Number(small ? (issue as z.core.$ZodIssueTooSmall).minimum : (issue as z.core.$ZodIssueTooBig).maximum);
  const bound = `${small ? (issue.inclusive ? 'at least' : 'more than') : issue.inclusive ? 'at most' : 'less than'} ${limit}`;
  switch (issue.origin) {
    case 'string':
      return small && limit === 1 ? 'must not be empty' : `got ${shown()}; expected ${bound} characters`;
    case 'array':
    case 'set':
      return `expected ${bound} entries`;
    default:
      return `got ${shown()}; expected ${bound}`;
  }
}

function typeName(expected: string): string {
  switch (expected) {
    case 'object':
      return 'a mapping of fields';
    case 'array':
      return 'a list';
    case 'boolean':
      return 'true or false';
    case 'int':
      return 'a whole number';
    default:
      return `a ${expected}`;
  }
}

/**
 * show renders a value for a message. Secrets (keys, tokens, values under those fields, whether
 * written or from `${VAR}`) appear as fingerprints; a URL's password is masked; long text is cut.
 */
function show(value: unknown, path: readonly PropertyKey[], envRefs?: ReadonlyMap<string, readonly string[]>): string {
  const secret = path.some(isSecretField);
  let out: string;
  if (value === null) out = 'an empty value';
  else if (Array.isArray(value)) out = 'a list';
  else if (typeof value === 'object') out = 'a mapping';
  else if (secret) out = typeof value === 'string' ? fingerprintKey(value) : `a ${typeof value}`;
  else if (typeof value === 'string') {
    const masked = value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:\s]*):[^/@\s]*@/i, '$1:***@');
    out = JSON.stringify(masked.length > MAX_SHOWN_CHARS ? `${masked.slice(0, MAX_SHOWN_CHARS)}…` : masked);
  } else out = String(value);
  const vars = envRefs?.get(toFieldPath(path));
  return vars !== undefined && vars.length > 0 ? `${out} (from ${vars.map((v) => `\${${v}}`).join(', ')})` : out;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const seg of path) {
    if (Array.isArray(v) && typeof seg === 'number') v = v[seg];
    else if (isRecord(v) && typeof seg === 'string') v = v[seg];
    else return undefined;
  }
  return v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isScalar(v: unknown): boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}
