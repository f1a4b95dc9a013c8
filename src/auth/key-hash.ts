import { hash } from 'node:crypto';

const SHA256_FORM = /^sha256:([0-9a-fA-F]{64})$/;

/** hashKey is the lowercase hex SHA-256 of a key's UTF-8 bytes: how keys are stored and looked up. */
export function hashKey(key: string): string {
  // One-shot hash: a third of createHash().update().digest()'s cost, on every keyed request.
  return hash('sha256', key, 'hex');
}

/**
 * toKeyHash turns a configured key into its hash: a "sha256:<hex>" entry is already one, anything
 * else is a plaintext key. Returns null for a malformed "sha256:" entry.
 */
export function toKeyHash(configured: string): string | null {
  if (!configured.startsWith('sha256:')) return hashKey(configured);
  const m = SHA256_FORM.exec(configured);
  return m ? m[1]!.toLowerCase() : null;
}

/** fingerprintKey is a short, safe-to-print name for a configured key (first 8 hex digits of its hash). */
export function fingerprintKey(configured: string): string {
  const h = toKeyHash(configured);
  return h === null ? 'key#malformed' : `key#${h.slice(0, 8)}`;
}
