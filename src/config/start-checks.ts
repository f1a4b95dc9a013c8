/**
 * The checks a configuration must pass before a gateway can start with it, beyond the schema and
 * the model rules of loading: the listeners, the admin token, the limits store and the TLS files.
 * `start`, `validate` and every reload run the same function, so `validate` refuses exactly what
 * `start` refuses, and a reload cannot install a file the next restart would refuse. It also
 * returns warnings that do not stop anything (weak or plain-text API keys), and says which
 * settings a reload cannot change.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { fingerprintKey } from '../auth/index.js';
import { ConfigError, type ConfigIssue } from './config-error.js';
import { DEFAULTS } from './defaults.js';
import type { LoadedConfig } from './load.js';
import type { GatewayConfig } from './schema.js';
import { parseListen } from './units.js';

/** MIN_KEY_LENGTH is the shortest API key accepted without a warning (keygen makes 43 characters). */
const MIN_KEY_LENGTH = 16;

const LISTEN = DEFAULTS.listen;

/** isLoopbackHost tells whether a listen host only accepts local connections. */
function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

const isWildcardHost = (host: string): boolean => host === '0.0.0.0' || host === '::' || host === '';

/**
 * checkStart throws a ConfigError listing every reason the gateway would refuse to start with
 * this configuration, and returns the warnings (never holding a key: keys appear as
 * fingerprints). Relative TLS file names are resolved against `baseDir`, the config file's folder.
 */
export function checkStart(loaded: LoadedConfig, baseDir: string): ConfigIssue[] {
  const { file, config } = loaded;
  const errors: ConfigIssue[] = [];

  const listeners: Array<{ field: string; value: string }> = [
    { field: 'proxy.listen', value: config.proxy?.listen ?? LISTEN.proxy },
    ...(config.proxy?.tls_listen !== undefined ? [{ field: 'proxy.tls_listen', value: config.proxy.tls_listen }] : []),
    { field: 'status.listen', value: config.status?.listen ?? LISTEN.status },
    ...(config.status?.tls_listen !== undefined ? [{ field: 'status.tls_listen', value: config.status.tls_listen }] : []),
    { field: 'admin.listen', value: config.admin?.listen ?? LISTEN.admin },
    ...(config.admin?.tls_listen !== undefined ? [{ field: 'admin.tls_listen', value: config.admin.tls_listen }] : []),
  ];
  const bound: Array<{ field: string; host: string; port: number }> = [];
  for (const { field, value } of listeners) {
    const { host, port } = parseListen(value);
    if (port > 65535) {
      errors.push({ file, field, message: `port ${port} is out of range (0-65535)` });
      continue;
    }
    // Port 0 asks the system for a free port, so it never collides.
    const clash = port === 0 ? undefined : bound.find((b) => b.port === port && (b.host === host || isWildcardHost(b.host) || isWildcardHost(host)));
    if (clash !== undefined) errors.push({ file, field, message: `${value} is also where ${clash.field} listens; each listener needs its own port` });
    bound.push({ field, host, port });
  }

  for (const field of ['listen', 'tls_listen'] as const) {
    const value = field === 'listen' ? (config.admin?.listen ?? LISTEN.admin) : config.admin?.tls_listen;
    if (value === undefined) continue;
    const { host, port } = parseListen(value);
    if (!isLoopbackHost(host) && config.admin?.token === undefined) {
      errors.push({ file, field: 'admin.token', message: `admin.${field} ${host}:${port} is not a loopback address and admin.token is not set: refusing to expose the admin API without a token` });
    }
  }

  if (config.limits_store?.policy === 'redis' && config.limits_store.redis_url === undefined) {
    errors.push({ file, field: 'limits_store.redis_url', message: 'limits_store.policy is "redis" but limits_store.redis_url is not set' });
  }

  // Each TLS listener serves its own tls files, else proxy.tls (none: a development certificate).
  const tlsSets: Array<{ field: string; tls: { cert: string; key: string } }> = [];
  const proxyTls = config.proxy?.tls;
  if (config.proxy?.tls_listen !== undefined && proxyTls !== undefined) tlsSets.push({ field: 'proxy.tls', tls: proxyTls });
  for (const section of ['admin', 'status'] as const) {
    const own = config[section]?.tls;
    if (config[section]?.tls_listen === undefined) continue;
    if (own !== undefined) tlsSets.push({ field: `${section}.tls`, tls: own });
    else if (proxyTls !== undefined && config.proxy?.tls_listen === undefined) tlsSets.push({ field: 'proxy.tls', tls: proxyTls });
  }
  for (const { field, tls } of tlsSets) {
    const read = (name: string, fileName: string): Buffer | null => {
      try {
        return readFileSync(resolve(baseDir, fileName));
      } catch (err) {
        errors.push({ file, field: `${field}.${name}`, message: `cannot read ${resolve(baseDir, fileName)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
        return null;
      }
    };
    const cert = read('cert', tls.cert);
    const key = read('key', tls.key);
    if (cert !== null && key !== null) {
      try {
        createSecureContext({ cert, key });
      } catch (err) {
        // OpenSSL's reason ("key values mismatch", "no start line"), never the PEM content.
        errors.push({ file, field, message: `the certificate and key cannot serve TLS: ${err instanceof Error ? err.message : String(err)}` });
      }
    }
  }
  if (errors.length > 0) throw new ConfigError(loaded.place(errors));
  return loaded.place(keyWarnings(loaded));
}

/** keyWarnings: plain keys shorter than MIN_KEY_LENGTH, and plain keys written in the config itself, where a "sha256:" entry would do. */
function keyWarnings(loaded: LoadedConfig): ConfigIssue[] {
  const warnings: ConfigIssue[] = [];
  // A defaults key is shared by many models but written once: warn once per place.
  const seen = new Set<string>();
  for (const m of loaded.models) {
    (m.api_keys ?? []).forEach((entry, i) => {
      const key = typeof entry === 'string' ? entry : entry.key;
      const src = m.keySources[i] ?? m.source;
      const where = `${src.file}\0${src.field}`;
      if (key.startsWith('sha256:') || seen.has(where)) return;
      seen.add(where);
      if (key.length < MIN_KEY_LENGTH) {
        warnings.push({ ...src, message: `API key ${fingerprintKey(key)} is shorter than ${MIN_KEY_LENGTH} characters and easy to guess; \`inference-gateway keygen\` makes a strong one` });
      }
      // Keys from ${VAR} and from recipes (a format other tools read too) are left alone.
      if (src.file === loaded.file && !loaded.envFields.has(src.field)) {
        warnings.push({ ...src, message: `API key ${fingerprintKey(key)} is written in plain text; its "sha256:" form works the same and keeps the key out of the file (\`inference-gateway keygen\` prints both)` });
      }
    });
  }
  return warnings;
}

/** StaticSettings are the sections a reload cannot change: listeners, TLS, admin token, logging, limits store. */
export type StaticSettings = Pick<GatewayConfig, 'proxy' | 'admin' | 'status' | 'log' | 'limits_store'>;

/** Proxy fields that are compiled into each snapshot and so do change with a reload. */
const DYNAMIC_PROXY_FIELDS: ReadonlySet<string> = new Set(['max_body_size', 'max_url_length']);

/**
 * restartNeededFor names each static setting that differs between two configurations (e.g.
 * "proxy.listen", "admin.token"): a reload keeps the running value, a restart takes the new one.
 */
export function restartNeededFor(running: StaticSettings, next: StaticSettings): string[] {
  const changed: string[] = [];
  for (const section of ['proxy', 'admin', 'status', 'log', 'limits_store'] as const) {
    const a: Record<string, unknown> = running[section] ?? {};
    const b: Record<string, unknown> = next[section] ?? {};
    for (const field of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (section === 'proxy' && DYNAMIC_PROXY_FIELDS.has(field)) continue;
      if (JSON.stringify(a[field]) !== JSON.stringify(b[field])) changed.push(`${section}.${field}`);
    }
  }
  return changed;
}
