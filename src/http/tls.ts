/**
 * The HTTPS listeners. The proxy's: TLS 1.2 or newer with modern AEAD ciphers, ALPN "h2" and
 * "http/1.1" on one port (node:http2 with allowHTTP1), so HTTP/2 clients get the whole feature set
 * (streams and client-abort cancellation included) through the same request pipeline. The admin
 * and status ones: the same TLS settings over HTTP/1.1 (node:https), as their handlers are
 * node:http ones. Certificates are read from PEM files and can be swapped in place
 * (setSecureContext) without dropping connections. Without files, a self-signed development
 * certificate is made with the openssl command.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import type { RequestListener } from 'node:http';
import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { createServer as createHttpsServerNode, type Server as HttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server as TlsServer } from 'node:tls';

// TLS 1.2 suites with forward secrecy and AEAD only (TLS 1.3 suites are always on in Node).
const MODERN_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** TlsFiles are the PEM files of a certificate. */
export interface TlsFiles {
  cert: string;
  key: string;
}

/** readTlsFiles reads both PEM files (throws a clear error naming the file that failed). */
export function readTlsFiles(files: TlsFiles): { cert: Buffer; key: Buffer } {
  const read = (path: string, what: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`cannot read TLS ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  };
  return { cert: read(files.cert, 'certificate'), key: read(files.key, 'key') };
}

/** generateDevCertificate makes a self-signed certificate for localhost in a temporary folder. */
export function generateDevCertificate(): TlsFiles {
  const dir = mkdtempSync(join(tmpdir(), 'igw-dev-cert-'));
  const files = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '30', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', files.key, '-out', files.cert],
      { stdio: 'ignore' },
    );
  } catch (err) {
    throw new Error(`proxy.tls is not set and a development certificate could not be made with openssl (${String(err)}); set proxy.tls.cert and proxy.tls.key`);
  }
  return files;
}

/** TlsServerOptions are the HTTPS listener's limits. */
export interface TlsServerOptions {
  files: TlsFiles;
  maxHeaderBytes: number;
  idleTimeoutMs: number;
  /** maxConcurrentStreams per HTTP/2 connection: without it Node allows 2^32-1, so one connection could open unbounded upstream requests. */
  maxConcurrentStreams: number;
}

/** createTlsServer builds the HTTPS listener around the same request handler as the HTTP one. */
export function createTlsServer(
  opts: TlsServerOptions,
  handler: (req: Http2ServerRequest, res: Http2ServerResponse) => void,
): Http2SecureServer {
  const { cert, key } = readTlsFiles(opts.files);
  const server = createSecureServer(
    {
      cert,
      key,
      allowHTTP1: true,
      minVersion: 'TLSv1.2',
      ciphers: MODERN_CIPHERS,
      honorCipherOrder: true,
      settings: { maxHeaderListSize: opts.maxHeaderBytes, maxConcurrentStreams: opts.maxConcurrentStreams },
    },
    handler,
  );
  server.setTimeout(opts.idleTimeoutMs);
  return server;
}

/** createHttpsServer builds an HTTP/1.1 HTTPS listener (admin, status) with the proxy listener's TLS settings. */
export function createHttpsServer(files: TlsFiles, handler: RequestListener): HttpsServer {
  const { cert, key } = readTlsFiles(files);
  return createHttpsServerNode({ cert, key, minVersion: 'TLSv1.2', ciphers: MODERN_CIPHERS, honorCipherOrder: true }, handler);
}

/** reloadTls swaps the listener's certificate from its files; open connections keep theirs. */
export function reloadTls(server: TlsServer, files: TlsFiles): void {
  const { cert, key } = readTlsFiles(files);
  server.setSecureContext({ cert, key, minVersion: 'TLSv1.2', ciphers: MODERN_CIPHERS, honorCipherOrder: true });
}
