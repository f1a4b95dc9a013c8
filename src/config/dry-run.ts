/**
 * A dry run of a configuration load: what `POST /config` would say about a text, without applying
 * it. It runs the same load (parse, `${VAR}`, schema, blueprints, cross-model rules) and start
 * checks, and compiles nothing into the running gateway: no snapshot, no swap, no history entry.
 * It also renders both the candidate and the running configuration the same way (as loaded, keys
 * and tokens as fingerprints, URL passwords masked), so a line diff of the two shows what would
 * change and never a secret.
 */
import { stringify } from 'yaml';
import { fingerprintKey } from '../auth/index.js';
import { isSecretField, type ConfigIssue } from './config-error.js';
import { loadConfigText, type LoadedConfig, type LoadOptions } from './load.js';
import { checkStart, restartNeededFor } from './start-checks.js';
import type { GatewayConfig } from './schema.js';

/** DryRun is a configuration that would load: its warnings, and both configurations as text to diff. */
export interface DryRun {
  /** warnings are what an apply would warn about: static settings that wait for a restart, weak or plain-text keys. */
  warnings: string[];
  /** config is the candidate, rendered for a diff. */
  config: string;
  /** running is the running configuration rendered the same way; null when it is not known. */
  running: string | null;
}

/** issueText renders an issue as `validate` prints it: file:line:column: field: message. */
function issueText(i: ConfigIssue): string {
  return `${i.file}${i.line !== undefined ? `:${i.line}:${i.column ?? 1}` : ''}: ${i.field || '(root)'}: ${i.message}`;
}

/**
 * dryRunConfig checks configuration text as an apply would (throws ConfigError with every issue,
 * each with its file, line and column) and changes nothing. `running` is the loaded form of the
 * running configuration: the restart warnings compare with it, and it is rendered for the diff.
 */
export function dryRunConfig(text: string, opts: LoadOptions & { file: string; baseDir: string }, running: LoadedConfig | undefined): DryRun {
  const loaded = loadConfigText(text, opts);
  const issues = checkStart(loaded, opts.baseDir);
  const restart = running === undefined ? [] : restartNeededFor(running.config, loaded.config).map((field) => `${field} changed: takes effect after a restart`);
  return {
    warnings: [...restart, ...issues.map(issueText)],
    config: renderConfig(loaded.config),
    running: running === undefined ? null : renderConfig(running.config),
  };
}

/** renderConfig prints a loaded configuration as YAML with every secret as a fingerprint and URL passwords masked. */
export function renderConfig(config: GatewayConfig): string {
  return stringify(redact(config, false), { lineWidth: 0 });
}

const URL_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^/@:\s]*):[^/@\s]*@/i;

/** redact copies a value; under a secret field (api_keys, token, …) strings become fingerprints, and so does an api_keys entry's `key`. */
function redact(value: unknown, isSecret: boolean): unknown {
  if (typeof value === 'string') return isSecret ? fingerprintKey(value) : value.replace(URL_PASSWORD, '$1:***@');
  if (Array.isArray(value)) return value.map((v) => redact(v, isSecret));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = redact(v, isSecretField(k) || (isSecret && k === 'key'));
  return out;
}
