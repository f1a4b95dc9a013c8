/** ConfigIssue is one configuration mistake: where it is (file and field) and why it is wrong. */
export interface ConfigIssue {
  file: string;
  field: string;
  message: string;
  /** line is the 1-based line the field is written on, when the file could be parsed that far. */
  line?: number;
  /** column is the 1-based column on that line. */
  column?: number;
}

/** ConfigError carries every issue found in one load; it never reaches a request. */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super(`configuration has ${issues.length} error${issues.length === 1 ? '' : 's'}:\n${formatIssues(issues)}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** formatIssues renders issues one per line as "file:line:column: field: message", the form editors and terminals link. */
export function formatIssues(issues: readonly ConfigIssue[]): string {
  return issues.map((i) => `  ${i.file}${i.line !== undefined ? `:${i.line}:${i.column ?? 1}` : ''}: ${i.field || '(root)'}: ${i.message}`).join('\n');
}

const SECRET_FIELDS = new Set(['api_keys', 'api_key', 'upstream_api_key', 'token']);

/** isSecretField tells whether values under a field of this name are secrets, shown only as fingerprints. */
export function isSecretField(name: PropertyKey): boolean {
  return typeof name === 'string' && SECRET_FIELDS.has(name);
}

/** toFieldPath renders a schema path such as ["models", 2, "name"] as "models[2].name". */
export function toFieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}
