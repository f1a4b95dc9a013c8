/**
 * HTTPS for the admin API and the status listener (`admin.tls_listen`, `status.tls_listen`, as the
 * Kong setup's 8442 and 8101): real HTTPS requests, the certificate each listener shows, its
 * renewal, and the admin token over TLS.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, it } from 'node:test';
import { Cleanup, startGateway, tempDir } from '../helpers/harness.js';
import { waitFor } from '../helpers/gateway-process.js';
import { makeCertificate } from '../helpers/tls.js';

const TOKEN = 'admin-tls-token-0123456789';
const LOOPBACK_0 = '127.0.0.1:0';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** get sends one HTTPS GET; with `ca` the server's certificate must chain to it (and name 127.0.0.1). */
function get(port: number, path: string, opts: { ca?: Buffer; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path, method: 'GET', agent: false, headers: opts.headers ?? {}, ...(opts.ca ? { ca: opts.ca } : { rejectUnauthorized: false }) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** peer returns the common name and fingerprint of the certificate a TLS port shows. */
function peer(port: number): Promise<{ cn: string; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const c = s.getPeerCertificate();
      s.end();
      resolve({ cn: String(c.subject?.CN), fingerprint: c.fingerprint256 });
    });
    s.on('error', reject);
  });
}

/** install copies a certificate to the fixed file names a config points at (key first, as a renewal would). */
function install(from: { cert: string; key: string }, dir: string, name = 'live'): void {
  copyFileSync(from.key, join(dir, `${name}.key`));
  copyFileSync(from.cert, join(dir, `${name}.crt`));
}

describe('TLS for the admin API and the status listener', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('serves status and the admin API over HTTPS on their own ports, with the proxy certificate when they set none', async () => {
    const dir = tempDir();
    install(makeCertificate(dir, 'shared'), dir);
    const gw = await startGateway(
      cleanup,
      {
        proxy: { tls: { cert: 'live.crt', key: 'live.key' } },
        admin: { tls_listen: LOOPBACK_0 },
        status: { tls_listen: LOOPBACK_0 },
        models: [{ name: 'm', targets: [{ url: 'http://127.0.0.1:9' }] }],
      },
      { dir },
    );
    const ports = gw.gateway.ports;
    assert.ok(ports.statusTls > 0 && ports.adminTls > 0);
    assert.equal(new Set([ports.status, ports.statusTls, ports.admin, ports.adminTls]).size, 4, 'four distinct listeners');
    // Verified against the proxy's certificate: the same files serve all TLS listeners.
    const ca = readFileSync(join(dir, 'live.crt'));

    const ready = await get(ports.statusTls, '/status/ready', { ca });
    assert.equal(ready.status, 200);
    assert.equal((JSON.parse(ready.body) as { status: string }).status, 'ready');
    const status = await get(ports.statusTls, '/status', { ca });
    assert.equal(status.status, 200);
    assert.equal(typeof (JSON.parse(status.body) as { configuration_hash: unknown }).configuration_hash, 'string');
    const metrics = await get(ports.statusTls, '/metrics', { ca });
    assert.equal(metrics.status, 200);
    assert.match(String(metrics.headers['content-type']), /^text\/plain/);
    assert.match(metrics.body, /^igw_/m);

    const models = await get(ports.adminTls, '/models', { ca });
    assert.equal(models.status, 200);
    assert.deepEqual((JSON.parse(models.body) as { data: Array<{ name: string }> }).data.map((x) => x.name), ['m']);
    // The plain listeners keep serving beside them.
    assert.equal((await fetch(`${gw.statusUrl}/status/ready`)).status, 200);
    assert.equal((await fetch(`${gw.adminUrl}/models`)).status, 200);
  });

  it('is off by default: both TLS ports report 0', async () => {
    const gw = await startGateway(cleanup, { models: [] });
    assert.equal(gw.gateway.ports.adminTls, 0);
    assert.equal(gw.gateway.ports.statusTls, 0);
    assert.equal(gw.gateway.ports.tls, 0);
  });

  it('the admin TLS listener requires admin.token like the plain one', async () => {
    const gw = await startGateway(cleanup, { admin: { token: TOKEN, tls_listen: LOOPBACK_0 }, models: [] });
    const port = gw.gateway.ports.adminTls;
    const none = await get(port, '/models');
    assert.equal(none.status, 401);
    assert.match(String(none.headers['www-authenticate']), /^Bearer /);
    assert.equal((await get(port, '/config', { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status, 401);
    assert.equal((await get(port, '/models', { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
  });

  it('refuses to start with admin.tls_listen beyond loopback and no admin.token', async () => {
    await assert.rejects(startGateway(cleanup, { admin: { tls_listen: '0.0.0.0:0' }, models: [] }), (err: Error) => {
      assert.match(err.message, /admin\.tls_listen/);
      assert.match(err.message, /admin\.token/);
      return true;
    });
  });

  it('a renewed certificate is served by the proxy, admin and status TLS listeners without a restart', async () => {
    const dir = tempDir();
    install(makeCertificate(dir, 'first'), dir);
    const gw = await startGateway(
      cleanup,
      {
        proxy: { tls_listen: LOOPBACK_0, tls: { cert: 'live.crt', key: 'live.key' } },
        admin: { tls_listen: LOOPBACK_0 },
        status: { tls_listen: LOOPBACK_0 },
        models: [],
      },
      { dir },
    );
    const { tls, adminTls, statusTls } = gw.gateway.ports;
    for (const port of [tls, adminTls, statusTls]) assert.equal((await peer(port)).cn, 'first');
    const renewed = makeCertificate(dir, 'renewed');
    install(renewed, dir);
    for (const port of [tls, adminTls, statusTls]) await waitFor(`port ${port} to serve the renewed certificate`, async () => (await peer(port)).cn === 'renewed');
    // Requests verify against the new certificate.
    const ca = readFileSync(renewed.cert);
    assert.equal((await get(statusTls, '/status/ready', { ca })).status, 200);
    assert.equal((await get(adminTls, '/status', { ca })).status, 200);
  });

  it('admin.tls and status.tls serve their own certificates, each renewed from its own folder', async () => {
    const dir = tempDir();
    const adminDir = join(dir, 'admin-cert');
    mkdirSync(adminDir);
    install(makeCertificate(dir, 'proxy-cert'), dir);
    install(makeCertificate(adminDir, 'admin-cert'), adminDir);
    install(makeCertificate(dir, 'status-cert'), dir, 'status');
    const gw = await startGateway(
      cleanup,
      {
        proxy: { tls_listen: LOOPBACK_0, tls: { cert: 'live.crt', key: 'live.key' } },
        admin: { token: TOKEN, tls_listen: LOOPBACK_0, tls: { cert: 'admin-cert/live.crt', key: 'admin-cert/live.key' } },
        status: { tls_listen: LOOPBACK_0, tls: { cert: 'status.crt', key: 'status.key' } },
        models: [],
      },
      { dir },
    );
    const { tls, adminTls, statusTls } = gw.gateway.ports;
    assert.equal((await peer(tls)).cn, 'proxy-cert');
    assert.equal((await peer(adminTls)).cn, 'admin-cert');
    assert.equal((await peer(statusTls)).cn, 'status-cert');
    const adminCa = readFileSync(join(adminDir, 'live.crt'));
    assert.equal((await get(adminTls, '/models', { ca: adminCa, headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);

    install(makeCertificate(adminDir, 'admin-renewed'), adminDir);
    await waitFor('the admin listener to serve its renewed certificate', async () => (await peer(adminTls)).cn === 'admin-renewed');
    assert.equal((await peer(tls)).cn, 'proxy-cert');
    assert.equal((await peer(statusTls)).cn, 'status-cert');
  });

  it('without any certificate, the TLS listeners share one self-signed development certificate, with a warning', async () => {
    const gw = await startGateway(cleanup, { admin: { tls_listen: LOOPBACK_0 }, status: { tls_listen: LOOPBACK_0 }, models: [] });
    const [admin, status] = [await peer(gw.gateway.ports.adminTls), await peer(gw.gateway.ports.statusTls)];
    assert.equal(admin.cn, 'localhost');
    assert.equal(admin.fingerprint, status.fingerprint);
    assert.equal(gw.log.lines.filter((l) => /SELF-SIGNED DEVELOPMENT CERTIFICATE/.test(l)).length, 1);
    assert.equal((await get(gw.gateway.ports.statusTls, '/status/ready')).status, 200);
  });
});
