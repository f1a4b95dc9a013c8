import { randomBytes } from 'node:crypto';
import { hashKey } from '../auth/index.js';

/** generateKey returns a strong random API key (192 bits, URL-safe) and its "sha256:" config form. */
export function generateKey(): { key: string; hashed: string } {
  const key = `igw-${randomBytes(24).toString('base64url')}`;
  return { key, hashed: `sha256:${hashKey(key)}` };
}
