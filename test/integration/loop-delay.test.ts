/**
 * The gateway's Node.js process metrics tell how late its event loop ran since the last scrape.
 * bench:tokens reads them as each measured window opens and closes; this reads a real gateway's
 * /metrics the same way, around a stall made on purpose.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { scrapeLoopDelay } from '../../bench/lib/loop-delay.js';
import { Cleanup, startGateway } from '../helpers/harness.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a scrape after a blocked loop shows the stall, and the next one starts afresh', async () => {
  const gw = await startGateway(cleanup, { models: [{ name: 'm', path: '/m', targets: [{ url: 'http://127.0.0.1:9' }] }] });
  const url = `${gw.statusUrl}/metrics`;
  assert.ok((await scrapeLoopDelay(url)) !== null, 'the metrics were read');
  // Let the loop-delay sampler (every 10 ms) run, then hold the loop for 150 ms.
  await sleep(50);
  const until = performance.now() + 150;
  while (performance.now() < until) {
    // busy: the loop cannot turn
  }
  await sleep(30);
  const stalled = await scrapeLoopDelay(url);
  assert.ok(stalled !== null);
  assert.ok(stalled.maxMs >= 120 && stalled.maxMs < 1000, `the 150 ms stall is the loop's longest delay (${stalled.maxMs} ms)`);
  assert.ok(stalled.p99Ms <= stalled.maxMs);
  await sleep(100);
  const calm = await scrapeLoopDelay(url);
  assert.ok(calm !== null);
  assert.ok(calm.maxMs < 100, `a scrape restarts the figures (${calm.maxMs} ms)`);
});

test('an unreadable metrics endpoint gives null, not a throw', async () => {
  assert.equal(await scrapeLoopDelay('http://127.0.0.1:9/metrics'), null);
});
