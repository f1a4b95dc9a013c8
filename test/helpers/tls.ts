import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { tempDir } from './harness.js';

/** makeCertificate writes a self-signed localhost certificate (openssl) and returns its files. */
export function makeCertificate(dir: string = tempDir(), name = 'test'): { cert: string; key: string; dir: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key, dir };
}
