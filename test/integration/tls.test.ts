import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as h2connect, constants as h2 } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, it } from 'node:test';
import { Cleanup, chat, startGateway, startSim, tempDir } from '../helpers/harness.js';
import { makeCertificate } from '../helpers/tls.js';

const KEY = 'tls-test-key-abcdef';

/** peerFingerprint connects with TLS and returns the server certificate's fingerprint and ALPN choice. */
function handshake(port: number, opts: { alpn?: string[]; maxVersion?: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'; minVersion?: 'TLSv1' | 'TLSv1.1' } = {}): Promise<{ fingerprint: string; alpn: string | false | null; version: string | null }> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: opts.alpn ?? ['h2', 'http/1.1'], ...(opts.maxVersion ? { maxVersion: opts.maxVersion } : {}), ...(opts.minVersion ? { minVersion: opts.minVersion } : {}) }, () => {
      const out = { fingerprint: s.getPeerCertificate().fingerprint256, alpn: s.alpnProtocol, version: s.getProtocol() };
      s.end();
      resolve(out);
    });
    s.on('error', reject);
  });
}

describe('TLS and HTTP/2', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  const setup = async (extra: Record<string, unknown> = {}) => {
    const sim = await startSim(cleanup, { model: 'm' });
    const dir = tempDir();
    const files = makeCertificate(dir, 'a');
    copyFileSync(files.cert, `${dir}/live.crt`);
    copyFileSync(files.key, `${dir}/live.key`);
    const gw = await startGateway(cleanup, { proxy: { tls_listen: '127.0.0.1:0', tls: { cert: 'live.crt', key: 'live.key' }, ...extra }, models: [{ name: 'm', api_keys: [KEY], targets: [{ url: sim.url }] }] }, { dir });
    return { sim, gw, dir, port: gw.gateway.ports.tls };
  };

  it('negotiates h2 or http/1.1 by ALPN and refuses TLS older than 1.2', async () => {
    const { port } = await setup();
    assert.equal((await handshake(port, { alpn: ['h2'] })).alpn, 'h2');
    assert.equal((await handshake(port, { alpn: ['http/1.1'] })).alpn, 'http/1.1');
    await assert.rejects(handshake(port, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }));
  });

  it('serves HTTP/1.1 over TLS', async () => {
    const { port } = await setup();
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions', rejectUnauthorized: false, headers: { 'x-model': 'm', apikey: KEY, 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(chat('m'));
    });
    assert.equal(status, 200);
  });

  it('serves HTTP/2: JSON, SSE streaming chunk by chunk, and client cancellation aborts the upstream', async () => {
    const { port, sim } = await setup();
    const session = h2connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    cleanup.add(() => void session.destroy());
    const json = await new Promise<{ status: number; body: string; forwarded: string | undefined }>((resolve, reject) => {
      const s = session.request({ ':method': 'POST', ':path': '/v1/chat/completions', 'x-model': 'm', apikey: KEY, 'content-type': 'application/json' });
      let status = 0;
      let body = '';
      s.on('response', (h) => (status = Number(h[':status'])));
      s.on('data', (c: Buffer) => (body += c.toString()));
      s.on('end', () => resolve({ status, body, forwarded: sim.received.at(-1)?.headers['x-forwarded-proto'] as string | undefined }));
      s.on('error', reject);
      s.end(chat('m', { max_tokens: 3 }));
    });
    assert.equal(json.status, 200);
    assert.equal((JSON.parse(json.body) as { usage: { completion_tokens: number } }).usage.completion_tokens, 3);
    assert.equal(json.forwarded, 'https');
    const seen = sim.received.at(-1)!.headers;
    assert.ok(Object.keys(seen).every((k) => !k.startsWith(':')), 'no pseudo-header reaches the upstream');
    assert.equal(seen.apikey, undefined);

    // A stream over HTTP/2, cancelled by the client after its first chunk.
    const s = session.request({ ':method': 'POST', ':path': '/v1/chat/completions', 'x-model': 'm', apikey: KEY, 'x-sim-itl-ms': '50', 'content-type': 'application/json' });
    s.end(chat('m', { stream: true, max_tokens: 100 }));
    const headers = await new Promise<Record<string, unknown>>((r) => s.once('response', r));
    assert.equal(headers['content-type'], 'text/event-stream');
    assert.equal(headers['x-accel-buffering'], 'no');
    const first = await new Promise<Buffer>((r) => s.once('data', r));
    assert.match(first.toString(), /^data: /);
    assert.equal(sim.stats.completed, 1);
    s.close(h2.NGHTTP2_CANCEL);
    await sim.waitFor((st) => st.aborted === 1, 200);
  });

  it('bounds the streams of one HTTP/2 connection (default 128, configurable)', async () => {
    const settingsOf = async (port: number): Promise<number | undefined> => {
      const session = h2connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
      cleanup.add(() => void session.destroy());
      await new Promise((r) => session.once('remoteSettings', r));
      return session.remoteSettings.maxConcurrentStreams;
    };
    assert.equal(await settingsOf((await setup()).port), 128);
    assert.equal(await settingsOf((await setup({ http2_max_concurrent_streams: 3 })).port), 3);
  });

  it('reloads the certificate when its files change, without dropping open connections', async () => {
    const { port, dir } = await setup();
    const session = h2connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    cleanup.add(() => void session.destroy());
    const ask = () =>
      new Promise<number>((resolve, reject) => {
        const s = session.request({ ':method': 'GET', ':path': '/v1/models', 'x-model': 'm', apikey: KEY });
        s.on('response', (h) => resolve(Number(h[':status'])));
        s.on('error', reject);
        s.resume();
        s.end();
      });
    assert.equal(await ask(), 200);
    const before = (await handshake(port)).fingerprint;
    const next = makeCertificate(dir, 'b');
    copyFileSync(next.key, `${dir}/live.key`);
    copyFileSync(next.cert, `${dir}/live.crt`);
    const deadline = Date.now() + 3000;
    let after = before;
    while (after === before && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      after = (await handshake(port)).fingerprint;
    }
    assert.notEqual(after, before, 'new connections get the new certificate');
    assert.equal(await ask(), 200, 'the connection opened before the reload still works');
  });

  it('generates a self-signed development certificate, loudly, when no files are configured', async () => {
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { proxy: { tls_listen: '127.0.0.1:0' }, models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    const hs = await handshake(gw.gateway.ports.tls);
    assert.equal(hs.alpn, 'h2');
    assert.ok(gw.log.lines.some((l) => /SELF-SIGNED DEVELOPMENT CERTIFICATE/.test(l)));
  });
});
