/**
 * Loading a configuration: read -> parse (YAML or JSON) -> ${VAR} substitution -> schema check ->
 * blueprint import -> merge defaults -> cross-model rules. Every mistake found on the way is
 * collected; the load fails once, with all of them, each naming its file, line, column and field.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fingerprintKey, toKeyHash } from '../auth/index.js';
import { parseRecipe } from './blueprint.js';
import { ConfigError, toFieldPath, type ConfigIssue } from './config-error.js';
import { substituteEnv } from './env.js';
import { Locator, type Position } from './locator.js';
import { toSchemaIssues } from './schema-issues.js';
import { blueprintEntryConfig, gatewayConfig, modelConfig, modelDefaultsConfig, type ApiKeyConfig, type GatewayConfig, type ModelConfig, type ModelDefaultsConfig } from './schema.js';

/** Source is where a value was written: a file and a field inside it. */
export interface Source {
  file: string;
  field: string;
}

/** ModelSpec is one model after import and merging, before compilation. */
export interface ModelSpec extends ModelDefaultsConfig {
  name: string;
  /** split and sticky are only written on `models` entries (never inherited). */
  split?: ModelConfig['split'];
  sticky?: ModelConfig['sticky'];
  mirror?: ModelConfig['mirror'];
  adapters?: ModelConfig['adapters'];
  source: Source;
  /** sources of the fields the load-time rules talk about. */
  pathSource: Source;
  keySources: Source[];
}

/** LoadedConfig is a checked configuration: static settings plus the merged model list. */
export interface LoadedConfig {
  file: string;
  config: GatewayConfig;
  models: ModelSpec[];
  /** notes are non-fatal remarks (e.g. a recipe without a gateway section). */
  notes: string[];
  /** envFields are the config file's fields whose value came from a `${VAR}` reference. */
  envFields: ReadonlySet<string>;
  /** place gives later issues about this configuration (the start checks) their line and column. */
  place: (issues: readonly ConfigIssue[]) => ConfigIssue[];
}

/** LoadOptions are the seams of loading: environment and working directory for relative names. */
export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** loadConfigFile reads and checks a configuration file; throws ConfigError with every issue. */
export function loadConfigFile(path: string, opts: LoadOptions = {}): LoadedConfig {
  const cwd = opts.cwd ?? process.cwd();
  const file = displayName(resolve(cwd, path), cwd);
  let text: string;
  try {
    text = readFileSync(resolve(cwd, path), 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, field: '', message: `cannot read file: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  return loadConfigText(text, { ...opts, cwd, file, baseDir: dirname(resolve(cwd, path)) });
}

/** loadConfigText checks configuration text; `file` names it in errors and `baseDir` resolves relative blueprint paths. */
export function loadConfigText(text: string, opts: LoadOptions & { file: string; baseDir: string }): LoadedConfig {
  const issues: ConfigIssue[] = [];
  const notes: string[] = [];
  const { file, baseDir } = opts;
  const cwd = opts.cwd ?? process.cwd();

  const source = Locator.parse(text, true);
  if (source.doc.errors.length > 0) throw new ConfigError(syntaxIssues(source, text, file));
  // Each file's locator places the errors found in it at the end (recipes add theirs).
  const locators = new Map<string, Locator>([[file, source]]);
  const envRefs = new Map<string, string[]>();
  const raw = substituteEnv(source.doc.toJS() ?? {}, opts.env ?? process.env, file, issues, envRefs);
  const parsed = gatewayConfig.safeParse(raw);
  let config: GatewayConfig;
  let misplaced: ReadonlySet<string> = new Set();
  if (parsed.success) config = parsed.data;
  else {
    // A field whose variable is missing is already reported; its "invalid value" would be noise.
    const unsetVarFields = new Set(issues.map((i) => i.field));
    const explained = toSchemaIssues(parsed.error.issues, { file, schema: gatewayConfig, input: raw, locate: source.at, isFlow: source.isFlow, envRefs });
    misplaced = explained.misplaced;
    for (const i of explained.issues) if (!unsetVarFields.has(i.field)) issues.push(i);
    // Keep going with the entries that are valid on their own, so cross-model mistakes
    // (duplicate names, reused keys) are reported in the same run, not one fix later.
    config = salvage(raw);
  }
  const defaults = config.defaults ?? {};
  const models: ModelSpec[] = [];

  (config.models ?? []).forEach((m, i) => {
    const field = `models[${i}]`;
    const merged = { ...defaults, ...m };
    if (m.split !== undefined) {
      // A split entry has no upstream of its own: upstream fields from `defaults` are its models' business.
      for (const f of UPSTREAM_FIELDS) {
        if (m[f] !== undefined) issues.push({ file, field: `${field}.${f}`, message: `model "${m.name}" has a split: "${f}" belongs to the models it splits to, not to the split` });
        delete merged[f];
      }
      if (m.adapters !== undefined) issues.push({ file, field: `${field}.adapters`, message: `model "${m.name}" has a split: "adapters" belongs to the models it splits to, not to the split` });
    } else if (m.sticky !== undefined) issues.push({ file, field: `${field}.sticky`, message: `model "${m.name}": sticky applies only to a model with a split` });
    models.push({
      ...merged,
      source: { file, field: `${field}.name` },
      pathSource: { file, field: m.path !== undefined ? `${field}.path` : 'defaults.path' },
      keySources: keySourcesOf(merged.api_keys, file, m.api_keys !== undefined ? `${field}.api_keys` : 'defaults.api_keys'),
    });
  });

  (config.blueprints ?? []).forEach((entry, i) => {
    const { file: entryFile, dir, target_template: targetTemplate, ...overrides } = entry;
    const entryField = `blueprints[${i}]`;
    const recipeFiles = listRecipes(baseDir, entryFile, dir, file, `${entryField}.${entryFile ? 'file' : 'dir'}`, issues);
    for (const recipePath of recipeFiles) {
      const recipeName = displayName(recipePath, cwd);
      let recipeText: string;
      try {
        recipeText = readFileSync(recipePath, 'utf8');
      } catch (err) {
        issues.push({ file: recipeName, field: '', message: `cannot read recipe: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
        continue;
      }
      // JSON.parse decides what the recipe holds (as the platform reads it); the YAML parse only gives positions.
      const recipeSource = Locator.parse(recipeText, false);
      locators.set(recipeName, recipeSource);
      let recipeDoc: unknown;
      try {
        recipeDoc = JSON.parse(recipeText);
      } catch (err) {
        issues.push(jsonSyntaxIssue(err, recipeSource, recipeName));
        continue;
      }
      const recipe = parseRecipe(recipeDoc, recipeName, issues, targetTemplate, recipeSource.at);
      if (recipe === null) continue;
      if ('skipped' in recipe) {
        notes.push(recipe.skipped);
        continue;
      }
      const merged = { ...defaults, ...recipe.fields, ...overrides };
      const fromEntry = (k: keyof typeof overrides): boolean => overrides[k] !== undefined;
      models.push({
        ...merged,
        name: recipe.name,
        source: { file: recipeName, field: recipe.fieldSources.name ?? '' },
        pathSource: fromEntry('path') ? { file, field: `${entryField}.path` } : { file: recipeName, field: recipe.fieldSources.path ?? '' },
        keySources: fromEntry('api_keys')
          ? keySourcesOf(merged.api_keys, file, `${entryField}.api_keys`)
          : keySourcesOf(merged.api_keys, recipeName, recipe.fieldSources.api_keys ?? 'defaults.api_keys'),
      });
    }
  });

  checkModels(models, issues, misplaced);
  if (issues.length > 0) throw new ConfigError(placeIssues(issues, locators));
  return { file, config, models, notes, envFields: new Set(envRefs.keys()), place: (later) => placeIssues(later, locators) };
}

/**
 * syntaxIssues reports a file the parser could not read. One indentation slip often yields several
 * parser errors over the same text; those are one issue, at the first written character of the
 * slip, naming the entry it is in. A line indented deeper than the field above it makes YAML read it
 * as a continuation of that field's value ("implicit keys need to be on a single line"): the issue
 * points at that line, not at the value it was glued to.
 */
function syntaxIssues(source: Locator, text: string, file: string): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const errors = [...source.doc.errors].sort((a, b) => a.pos[0] - b.pos[0]);
  for (let i = 0; i < errors.length; i++) {
    const first = errors[i]!;
    const group = [first];
    let end = first.pos[1];
    while (i + 1 < errors.length && errors[i + 1]!.pos[0] <= end) {
      const next = errors[++i]!;
      group.push(next);
      end = Math.max(end, next.pos[1]);
    }
    const glued = group.find((e) => e.code === 'MULTILINE_IMPLICIT_KEY');
    let offset = glued ? text.lastIndexOf('\n', glued.pos[1] - 1) + 1 : first.pos[0];
    while (text[offset] === ' ') offset++;
    const at = source.positionOf(offset);
    if (out.some((o) => o.line === at.line)) continue;
    const reason = (first.message.split('\n')[0] ?? first.message).replace(/ at line \d+, column \d+:?$/, '');
    const message = glued
      ? `YAML syntax error: this line is indented deeper than the field above it, so it reads as part of that field's value on line ${source.positionOf(glued.pos[0]).line}; line it up with its neighbours`
      : `YAML syntax error: ${reason}`;
    out.push({ file, field: toFieldPath(source.fieldAt(offset)), message, line: at.line, column: at.column });
  }
  return out;
}

/**
 * jsonSyntaxIssue reports a recipe JSON.parse refused, at the offset it names. Newer Node versions
 * quote the text around the mistake in the message; that quote is dropped, as it may hold a key.
 */
function jsonSyntaxIssue(err: unknown, source: Locator, file: string): ConfigIssue {
  const message = err instanceof Error ? err.message : String(err);
  const reason = message
    .replace(/, ".*" is not valid JSON$/s, '')
    .replace(/ in JSON at position \d+.*$/s, '');
  const offset = /at position (\d+)/.exec(message)?.[1] ?? source.doc.errors[0]?.pos[0];
  if (offset === undefined) return { file, field: '', message: `not valid JSON: ${reason}` };
  const at: Position = source.positionOf(Number(offset));
  return { file, field: toFieldPath(source.fieldAt(Number(offset))), message: `not valid JSON: ${reason}`, line: at.line, column: at.column };
}

/** placeIssues adds the line and column of each issue's field in its file, and drops exact repeats. */
function placeIssues(issues: readonly ConfigIssue[], locators: ReadonlyMap<string, Locator>): ConfigIssue[] {
  const seen = new Set<string>();
  const out: ConfigIssue[] = [];
  for (const i of issues) {
    const id = `${i.file}\u0000${i.field}\u0000${i.message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const at = i.line === undefined ? locators.get(i.file)?.atField(i.field) : undefined;
    out.push(at ? { ...i, line: at.line, column: at.column } : i);
  }
  // In reading order: files as first met, then line and column (issues with no position first).
  const fileOrder = [...new Set(out.map((i) => i.file))];
  return out.sort((a, b) => fileOrder.indexOf(a.file) - fileOrder.indexOf(b.file) || (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

/**
 * salvage keeps the models, blueprint entries and defaults that pass the schema one by one. The
 * lists stay sparse, so a kept entry keeps its index (forEach skips the holes) and later errors
 * name the entry as written, not its place among the survivors.
 */
function salvage(raw: unknown): GatewayConfig {
  const doc = (raw !== null && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  const each = <T>(list: unknown, schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }): T[] => {
    const kept: T[] = [];
    if (Array.isArray(list)) {
      list.forEach((v, i) => {
        const r = schema.safeParse(v);
        if (r.success) kept[i] = r.data;
      });
    }
    return kept;
  };
  const defaults = modelDefaultsConfig.safeParse(doc.defaults);
  return {
    models: each(doc.models, modelConfig),
    blueprints: each(doc.blueprints, blueprintEntryConfig),
    ...(defaults.success && defaults.data !== undefined ? { defaults: defaults.data } : {}),
  };
}

function keySourcesOf(keys: ApiKeyConfig[] | undefined, file: string, field: string): Source[] {
  return (keys ?? []).map((k, i) => ({
    file,
    field: keys!.length === 1 && !field.endsWith('api_keys') ? field : typeof k === 'string' ? `${field}[${i}]` : `${field}[${i}].key`,
  }));
}

function listRecipes(baseDir: string, file: string | undefined, dir: string | undefined, cfgFile: string, field: string, issues: ConfigIssue[]): string[] {
  const target = resolve(baseDir, (file ?? dir)!);
  try {
    if (file !== undefined) {
      statSync(target);
      return [target];
    }
    return readdirSync(target)
      .filter((n) => n.endsWith('.json'))
      .sort()
      .map((n) => join(target, n));
  } catch (err) {
    issues.push({ file: cfgFile, field, message: `cannot read ${file !== undefined ? 'file' : 'folder'} ${target}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
    return [];
  }
}

/**
 * toRoutePrefix maps the accepted root spellings of a configured prefix ("", "/", absent) to "".
 * It is not routing's normalizePath: that one cleans request paths (dot segments, encoded
 * separators) on every request, while a configured prefix is only checked by the rules below.
 */
function toRoutePrefix(p: string | undefined): string {
  return p === undefined || p === '/' ? '' : p;
}

/** UPSTREAM_FIELDS describe a model's own upstream; a split model has none, so they cannot be written on it. */
const UPSTREAM_FIELDS = [
  'targets', 'served_model', 'upstream_api_key', 'timeouts', 'health_check', 'balancer', 'hash_on', 'hash_prompt_chars', 'hash_load_factor', 'load_metrics', 'retries', 'retry_timeout', 'fallback', 'track_stream_usage',
] as const satisfies readonly (keyof ModelDefaultsConfig)[];

const PATH_CHARS = /^(\/[A-Za-z0-9._~!$&'()*+,;=:@-]+)+$/;

/**
 * checkModels applies the load-time rules (README, "Load-time rules") across all models, reporting each violation
 * with both sources. A field in `misplaced` is written elsewhere by an indentation slip, already
 * reported; its absence here is not reported again.
 */
function checkModels(models: ModelSpec[], issues: ConfigIssue[], misplaced: ReadonlySet<string>): void {
  const byPathName = new Map<string, ModelSpec>();
  const keyOwner = new Map<string, { model: ModelSpec; source: Source }>();
  const keyNames = new Map<string, Source>();
  for (const m of models) {
    const path = toRoutePrefix(m.path);
    m.path = path;
    if (path !== '') {
      const segs = path.split('/');
      if (!path.startsWith('/')) issues.push({ ...m.pathSource, message: `path "${path}" must start with "/"` });
      else if (path.endsWith('/')) issues.push({ ...m.pathSource, message: `path "${path}" must not end with "/"` });
      else if (path.includes('//')) issues.push({ ...m.pathSource, message: `path "${path}" must not contain "//"` });
      else if (segs.includes('..') || segs.includes('.')) issues.push({ ...m.pathSource, message: `path "${path}" must not contain "." or ".." segments` });
      else if (!PATH_CHARS.test(path)) issues.push({ ...m.pathSource, message: `path "${path}" holds characters that are not allowed in a URL path prefix` });
    }
    const slot = `${path}\u0000${m.name}`;
    const prev = byPathName.get(slot);
    if (prev) {
      issues.push({
        ...m.source,
        message: `model "${m.name}" on path "${path || '/'}" is already defined in ${prev.source.file} (${prev.source.field}); a name must be unique per path`,
      });
    } else byPathName.set(slot, m);

    (m.api_keys ?? []).forEach((entry, i) => {
      const src = m.keySources[i] ?? m.source;
      const key = typeof entry === 'string' ? entry : entry.key;
      if (typeof entry !== 'string' && entry.name !== undefined) {
        const other = keyNames.get(entry.name);
        if (other) issues.push({ ...src, message: `key name "${entry.name}" is already used in ${other.file} (${other.field}); names must be unique` });
        else keyNames.set(entry.name, src);
      }
      const hash = toKeyHash(key);
      if (hash === null) {
        issues.push({ ...src, message: 'malformed "sha256:" key: expected "sha256:" and 64 hex digits' });
        return;
      }
      const owner = keyOwner.get(hash);
      if (owner) {
        issues.push({
          ...src,
          message: `API key ${fingerprintKey(key)} of model "${m.name}" is already used by model "${owner.model.name}" in ${owner.source.file} (${owner.source.field}); keys must be unique`,
        });
      } else keyOwner.set(hash, { model: m, source: src });
    });

    const flow = m.flow_control;
    if (flow?.headroom !== undefined && flow.headroom > 0 && (flow.saturation?.max_inflight ?? null) === null) {
      issues.push({ file: m.source.file, field: m.source.field.replace(/name$/, 'flow_control.headroom'), message: 'headroom counts free places under saturation.max_inflight: set max_inflight as well' });
    }
    if (m.split === undefined && (!m.targets || m.targets.length === 0) && !misplaced.has(m.source.field.replace(/name$/, 'targets'))) {
      issues.push({ ...m.source, message: `model "${m.name}" has no targets` });
      if (m.adapters === 'auto') issues.push({ ...m.source, field: m.source.field.replace(/name$/, 'adapters'), message: `model "${m.name}": "adapters: auto" learns the adapters from the targets' GET /v1/models, and the model has no targets` });
    }
    if (Array.isArray(m.adapters)) checkAdapterNames(m, issues);
  }
  checkFallbacks(models, issues);
  checkSplits(models, byPathName, issues);
  checkMirrors(models, byPathName, issues);
}

/** checkAdapterNames: each listed adapter once, and none named like the model itself (a body naming it would be ambiguous). */
function checkAdapterNames(m: ModelSpec, issues: ConfigIssue[]): void {
  const seen = new Set<string>();
  (m.adapters as string[]).forEach((a, i) => {
    const where = { file: m.source.file, field: m.source.field.replace(/name$/, `adapters[${i}]`) };
    if (seen.has(a)) issues.push({ ...where, message: `adapter "${a}" is listed twice` });
    else if (a === m.name || a === m.served_model) issues.push({ ...where, message: `adapter "${a}" has the name of its model "${m.name}"${a === m.name ? '' : "'s served_model"}; an adapter needs its own id` });
    seen.add(a);
  });
}

/** checkMirrors: a mirror names another model of the same path that has targets of its own. */
function checkMirrors(models: ModelSpec[], byPathName: ReadonlyMap<string, ModelSpec>, issues: ConfigIssue[]): void {
  for (const m of models) {
    if (m.mirror === undefined) continue;
    const where = { file: m.source.file, field: m.source.field.replace(/name$/, 'mirror.model') };
    const target = byPathName.get(`${m.path}\u0000${m.mirror.model}`);
    if (target === undefined) issues.push({ ...where, message: `mirror model "${m.mirror.model}" is not defined on path "${m.path || '/'}"` });
    else if (target === m) issues.push({ ...where, message: 'a model cannot mirror to itself' });
    else if (target.split !== undefined) issues.push({ ...where, message: `mirror model "${m.mirror.model}" has a split; name a model with targets` });
  }
}

/**
 * checkSplits: every split entry names another model of the same path, once; following splits
 * from model to model never comes back to where it started (an alias of a split is fine).
 */
function checkSplits(models: ModelSpec[], byPathName: ReadonlyMap<string, ModelSpec>, issues: ConfigIssue[]): void {
  const splitOf = (m: ModelSpec): ModelSpec[] => (m.split ?? []).flatMap((e) => byPathName.get(`${m.path}\u0000${e.model}`) ?? []);
  for (const m of models) {
    if (m.split === undefined) continue;
    const seen = new Set<string>();
    m.split.forEach((e, i) => {
      const where = { file: m.source.file, field: m.source.field.replace(/name$/, `split[${i}].model`) };
      if (!byPathName.has(`${m.path}\u0000${e.model}`)) issues.push({ ...where, message: `split model "${e.model}" is not defined on path "${m.path || '/'}"` });
      else if (e.model === m.name) issues.push({ ...where, message: 'a model cannot split to itself' });
      else if (seen.has(e.model)) issues.push({ ...where, message: `split model "${e.model}" is listed twice; give it one entry with the sum of the weights` });
      seen.add(e.model);
    });
  }
  // A cycle through two or more models: walk each split model's reach, depth first.
  const state = new Map<ModelSpec, 'open' | 'done'>();
  const visit = (m: ModelSpec, trail: ModelSpec[]): void => {
    if (state.get(m) === 'done') return;
    if (state.get(m) === 'open') {
      const loop = trail.slice(trail.indexOf(m));
      if (loop.length > 1) issues.push({ file: m.source.file, field: m.source.field.replace(/name$/, 'split'), message: `splits form a cycle: ${[...loop, m].map((x) => `"${x.name}"`).join(' -> ')}` });
      return;
    }
    state.set(m, 'open');
    for (const next of splitOf(m)) visit(next, [...trail, m]);
    state.set(m, 'done');
  };
  for (const m of models) if (m.split !== undefined) visit(m, []);
}

/** checkFallbacks: every fallback names exactly one other model ("name" must then be unique across paths). */
function checkFallbacks(models: ModelSpec[], issues: ConfigIssue[]): void {
  models.forEach((m, self) => {
    (m.fallback ?? []).forEach((ref, i) => {
      const name = typeof ref === 'string' ? ref : ref.name;
      const path = typeof ref === 'string' ? undefined : toRoutePrefix(ref.path);
      const matches = models.flatMap((o, j) => (o.name === name && (path === undefined || o.path === path) ? [j] : []));
      const where = { file: m.source.file, field: m.source.field.replace(/name$/, `fallback[${i}]`) };
      if (matches.length === 0) issues.push({ ...where, message: `fallback model "${name}"${path !== undefined ? ` on path "${path || '/'}"` : ''} is not defined` });
      else if (matches.length > 1) issues.push({ ...where, message: `fallback "${name}" is served on several paths; give {name, path}` });
      else if (matches[0] === self) issues.push({ ...where, message: 'a model cannot be its own fallback' });
    });
  });
}

function displayName(abs: string, cwd: string): string {
  const rel = relative(cwd, abs);
  return rel.startsWith('..') ? abs : rel;
}
