/**
 * The access log as an operator reads it: a real gateway process writing to a pipe on stdout.
 * Lines are batched into large writes, so these check what batching must not break: every
 * request has its line, whole and in order of completion, a quiet gateway's lines still show up
 * within about a second, and the lines of requests answered just before a stop are written
 * before the process exits.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { Cleanup, chat, post, startSim, writeConfig } from '../helpers/harness.js';
import { freePort, startGatewayProcess, waitFor, type GatewayProcess } from '../helpers/gateway-process.js';

const KEY = 'k-access-log-0123456789';

const linesOf = (out: string): Array<Record<string, unknown>> =>
  out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('access log on stdout', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** startLoggingGateway starts a simulator and a gateway process whose stdout (the access log) the test reads. */
  const startLoggingGateway = async (): Promise<{ gw: GatewayProcess; url: string }> => {
    const sim = await startSim(cleanup, { model: 'm' });
    const [proxyPort, statusPort] = [await freePort(), await freePort()];
    const configPath = writeConfig(
      stringify({
        proxy: { listen: `127.0.0.1:${proxyPort}` },
        status: { listen: `127.0.0.1:${statusPort}` },
        admin: { listen: '127.0.0.1:0' },
        log: { access_log: true, format: 'json' },
        models: [{ name: 'm', api_keys: [KEY], targets: [{ url: sim.url }] }],
      }),
    );
    const gw = await startGatewayProcess(cleanup, { configPath, statusPort, stdout: true });
    return { gw, url: `http://127.0.0.1:${proxyPort}/v1/chat/completions` };
  };

  it('writes one whole line per request, soon after a quiet spell, and the last ones before the process exits', async () => {
    const { gw, url } = await startLoggingGateway();

    // 600 requests, 20 at a time: more than one buffer's worth of lines, a 401 in every ten.
    let sent = 0;
    const send = async (): Promise<void> => {
      while (sent < 600) {
        const i = sent++;
        const r = await post(url, chat('m', { user: `u${i}` }), { 'x-model': 'm', apikey: i % 10 === 9 ? 'wrong-key' : KEY });
        await r.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: 20 }, send));

    // Nothing more is sent: the once-a-second flush brings the rest out.
    const lines = await waitFor('600 access log lines', () => {
      const l = linesOf(gw.stdout());
      return l.length >= 600 ? l : undefined;
    });
    assert.equal(lines.length, 600);
    assert.equal(lines.filter((l) => l.status === 200).length, 540);
    assert.equal(lines.filter((l) => l.status === 401).length, 60);
    assert.equal(new Set(lines.map((l) => l.request_id)).size, 600);
    assert.ok(!gw.stdout().includes(KEY) && !gw.stdout().includes('wrong-key'), 'no key in the log');

    // Answered, then stopped at once: its line is out before the exit.
    const last = await post(url, chat('m', { user: 'last' }), { 'x-model': 'm', apikey: KEY });
    const lastId = last.headers.get('x-request-id');
    await last.arrayBuffer();
    await gw.kill('SIGTERM');
    const after = linesOf(gw.stdout());
    assert.equal(after.length, 601);
    assert.equal(after[600]!.request_id, lastId);
  });

  it('counts the lines it cannot write once stdout is closed, and goes on serving', async () => {
    const { gw, url } = await startLoggingGateway();
    const dropped = async (): Promise<number> => {
      const text = await (await fetch(`${gw.statusUrl}/metrics`)).text();
      const m = /^igw_access_log_dropped_total (\d+)$/m.exec(text);
      assert.ok(m !== null, 'igw_access_log_dropped_total is exported');
      return Number(m[1]);
    };
    const send = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const r = await post(url, chat('m'), { 'x-model': 'm', apikey: KEY });
        assert.equal(r.status, 200);
        await r.arrayBuffer();
      }
    };

    await send(5);
    await waitFor('5 access log lines', () => linesOf(gw.stdout()).length >= 5 || undefined);
    assert.equal(await dropped(), 0);

    // The reader goes away: the next write fails with EPIPE, and every line after it is counted.
    gw.child.stdout!.destroy();
    await send(30);
    const n = await waitFor('dropped lines counted', async () => {
      const d = await dropped();
      return d >= 30 ? d : undefined;
    }, 5000);
    assert.ok(n >= 30, `dropped ${n}`);
    await send(3);
    assert.ok(gw.isAlive(), 'the gateway goes on serving');
    assert.ok((await dropped()) >= n + 3);
  });
});
