/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core (no browser is
 * downloaded). Screenshots of each page go to test/artifacts/ (not committed); with
 * IGW_DOCS_SCREENSHOTS=1 a demo-like fleet takes traffic for half a minute and the overview and
 * fleet pictures of the README are written to docs/.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { after, afterEach, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { hashKey } from '../../src/auth/index.js';
import { Cleanup, chat, post, startGateway, startSim, type RunningGateway } from '../helpers/harness.js';
import type { Simulator, SimulatorOptions } from '../../src/sim/index.js';

/** The page's own getComputedStyle, for functions run in the browser (this file is compiled without the DOM library). */
declare const getComputedStyle: (e: unknown) => { borderColor: string; backgroundColor: string };

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ADMIN_TOKEN = 'dashboard-token-0123456789';
const XSS = '<img src=x onerror=alert(1)>';
const ARTIFACTS = 'test/artifacts';

/** hashShown selects the Config page's hash once it shows this one (selectors, not page functions: the CSP forbids eval). */
const hashShown = (hash: string): string => `#cfg-hash:text-is("${hash}")`;

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('dashboard in chromium', () => {
  let browser: Browser;
  const cleanup = new Cleanup();
  const errors: string[] = [];

  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is not installed: apt-get install -y chromium (.ci/run does this)`);
    // Test the current sources: build the bundle first.
    execFileSync(process.execPath, ['--import', 'tsx', 'scripts/build-ui.ts'], { stdio: 'ignore' });
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });
  after(() => browser?.close());
  afterEach(() => cleanup.run());

  async function open(gw: RunningGateway, path = '/', colorScheme: 'light' | 'dark' = 'dark'): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme });
    cleanup.add(() => context.close());
    const page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('dialog', (d) => {
      errors.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    await page.goto(`${gw.adminUrl}${path}`);
    return page;
  }

  async function signIn(page: Page, token: string): Promise<void> {
    await page.fill('#token', token);
    await page.click('button[type=submit]');
  }

  it('asks for the token, refuses a wrong one, shows live traffic, and sends the strict headers', async () => {
    errors.length = 0;
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { admin: { token: ADMIN_TOKEN }, models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    const ui = await fetch(`${gw.adminUrl}/ui/`);
    assert.equal(ui.status, 200);
    assert.match(ui.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.equal(ui.headers.get('x-frame-options'), 'DENY');
    assert.equal(ui.headers.get('referrer-policy'), 'no-referrer');
    assert.equal((await fetch(`${gw.adminUrl}/`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).headers.get('content-type')?.startsWith('application/json'), true, 'JSON clients keep the index');

    const page = await open(gw);
    assert.ok(page.url().endsWith('/ui/'), 'GET / redirects a browser to /ui/');
    await page.waitForSelector('#token');
    await signIn(page, 'wrong-token');
    await page.waitForSelector('#login-error');
    await signIn(page, ADMIN_TOKEN);
    await page.waitForSelector('#c-rps-now');
    assert.ok(!page.url().includes(ADMIN_TOKEN), 'never in a URL');
    // Traffic: the rate shows > 0 within 3 s.
    let isFlowing = true;
    const traffic = (async () => {
      while (isFlowing) await (await post(`${gw.url}/v1/chat/completions`, chat('m'))).arrayBuffer();
    })();
    try {
      await page.waitForSelector('#c-rps-now:text-matches("^[1-9][0-9]* req/s$")', { timeout: 3000 });
    } finally {
      isFlowing = false;
      await traffic;
    }
    await page.screenshot({ path: `${ARTIFACTS}/overview.png` });
    await page.click('a[href="#requests"]');
    await page.waitForSelector('#t-requests tr:nth-child(2)');
    // One entry opens its timing: queue (none here), TTFB, total and trace id.
    await page.click('#t-requests tr:nth-child(2)');
    await page.waitForSelector('#detail pre:text-matches("trace id +[0-9a-f]{32}")');
    assert.match(await page.locator('#detail pre').innerText(), /queue +0 ms[^]*TTFB +[0-9.]+ ms[^]*total +[0-9.]+ ms/);
    await page.screenshot({ path: `${ARTIFACTS}/requests.png` });
    // The browser reports each refused token check (401) itself; nothing else may appear.
    assert.deepEqual(errors.filter((e) => !e.includes('status of 401')), [], 'no console errors');
  });

  it('fleet: a killed simulator turns red, drain from the page stops new requests while the in-flight one finishes, a hostile model name is text', async () => {
    errors.length = 0;
    const a = await startSim(cleanup, { model: 'm', id: 'a' });
    const b = await startSim(cleanup, { model: 'm', id: 'b' });
    const victim: Simulator = await startSim(cleanup, { model: XSS });
    const victimUrl = victim.url;
    const gw = await startGateway(cleanup, {
      models: [
        { name: 'm', balancer: 'round-robin', health_check: { path: '/health', interval: '200ms', unhealthy_threshold: 1 }, targets: [{ url: a.url }, { url: b.url }] },
        { name: XSS, health_check: { path: '/health', interval: '200ms', unhealthy_threshold: 1 }, targets: [{ url: victimUrl }] },
      ],
    });
    const page = await open(gw, '/ui/#fleet');
    await page.waitForSelector(`tr[data-url="${a.url}"]`);
    // The hostile name is shown as text, never parsed.
    assert.equal(await page.locator('img').count(), 0);
    assert.equal(await page.getByText(XSS, { exact: false }).count() > 0, true);
    // Kill a replica: its row turns red.
    await victim.close();
    await page.waitForSelector(`tr.down[data-url="${victimUrl}"]`, { timeout: 3000 });
    // Drain a from the page while a slow request is on it.
    const slow = [0, 1].map(() => post(`${gw.url}/v1/chat/completions`, chat('m'), { 'x-sim-latency-ms': '1500' }));
    await until('a slow request on a', () => a.stats.requests - a.stats.completed > 0);
    await page.click(`tr[data-url="${a.url}"] button[data-action=drain]`);
    await page.waitForSelector(`tr[data-url="${a.url}"] .state-drained`);
    const before = a.stats.requests;
    for (let i = 0; i < 4; i++) await (await post(`${gw.url}/v1/chat/completions`, chat('m'))).arrayBuffer();
    assert.equal(a.stats.requests, before, 'no new request on the drained target');
    for (const r of await Promise.all(slow)) assert.equal(r.status, 200, 'the in-flight ones finish');
    await page.screenshot({ path: `${ARTIFACTS}/fleet.png` });
    assert.deepEqual(errors, [], 'no console errors and no dialog');
  });

  it('fleet: the engine prefix-cache hit rate from the load poller, with the sample age', async () => {
    errors.length = 0;
    const sim = await startSim(cleanup, { model: 'm', prefixCache: { capacity: 16, prefixChars: 64, hitTtftFactor: 0.2 } });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', balancer: 'least-load', load_metrics: { interval: '100ms' }, targets: [{ url: sim.url }] }] });
    const page = await open(gw, '/ui/#fleet');
    const row = `tr[data-url="${sim.url}"]`;
    await page.waitForSelector(row);
    // The same prompt again and again: after the first, every lookup hits. The rate shows once its first window (5 s) closes.
    let isFlowing = true;
    const traffic = (async () => {
      while (isFlowing) await (await post(`${gw.url}/v1/chat/completions`, chat('m'))).arrayBuffer();
    })();
    try {
      await page.waitForSelector(`${row} td.prefix-hits:text-matches("^(9[0-9](\\.[0-9])?|100)%$")`, { timeout: 15_000 });
    } finally {
      isFlowing = false;
      await traffic;
    }
    assert.match(await page.locator(`${row} td.sample-age`).innerText(), /^[0-9]+\.[0-9] s$/);
    assert.deepEqual(errors, [], 'no console errors');
  });

  it('follows the light and the dark colour scheme, charts included, and switches when the scheme does', async () => {
    errors.length = 0;
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    let isFlowing = true;
    const traffic = (async () => {
      while (isFlowing) await (await post(`${gw.url}/v1/chat/completions`, chat('m'))).arrayBuffer();
    })();
    // The first series' colour (the legend marker is drawn with it) and the page background, per scheme.
    const expected = { light: { series: 'rgb(31, 111, 235)', bg: 'rgb(255, 255, 255)' }, dark: { series: 'rgb(88, 166, 255)', bg: 'rgb(15, 18, 22)' } };
    const marker = (page: Page): Promise<string> => page.locator('#c-rps .u-series:nth-child(2) .u-marker').evaluate((m) => getComputedStyle(m).borderColor);
    const background = (page: Page): Promise<string> => page.locator('body').evaluate((b) => getComputedStyle(b).backgroundColor);
    try {
      for (const scheme of ['light', 'dark'] as const) {
        const page = await open(gw, '/ui/#overview', scheme);
        await page.waitForSelector('#c-rps-now:text-matches("^[1-9][0-9]* req/s$")', { timeout: 5000 });
        assert.equal(await background(page), expected[scheme].bg, scheme);
        await until(`the ${scheme} chart colours`, async () => (await marker(page)) === expected[scheme].series);
        await page.screenshot({ path: `${ARTIFACTS}/overview-${scheme}.png` });
        if (scheme === 'light') {
          // The laptop goes dark while the page is open: the page and its charts follow.
          await page.emulateMedia({ colorScheme: 'dark' });
          await until('the page to turn dark', async () => (await background(page)) === expected.dark.bg);
          await until('the charts to turn dark', async () => (await marker(page)) === expected.dark.series);
        }
      }
    } finally {
      isFlowing = false;
      await traffic;
    }
    assert.deepEqual(errors, [], 'no console errors');
  });

  it('docs screenshots: overview and fleet of a demo-like fleet after half a minute of traffic', { skip: process.env.IGW_DOCS_SCREENSHOTS !== '1' && 'set IGW_DOCS_SCREENSHOTS=1 to write docs/dashboard-*.png' }, async () => {
    errors.length = 0;
    const sim = (model: string, id: string, extra: Partial<SimulatorOptions> = {}): Promise<Simulator> => startSim(cleanup, { model, id, ttftMs: 120, itlMs: 6, maxConcurrency: 8, ...extra });
    const gpt = await sim('gpt-oss-120b', 'gpt-0');
    const scout = [await sim('scout', 'scout-0', { prefixCache: { capacity: 64, prefixChars: 200, hitTtftFactor: 0.2 } }), await sim('scout', 'scout-1', { prefixCache: { capacity: 64, prefixChars: 200, hitTtftFactor: 0.2 } })];
    const maverick = await Promise.all([0, 1, 2].map((i) => sim('maverick', `maverick-${i}`, { ttftMs: 250, prefixCache: { capacity: 16, prefixChars: 200, hitTtftFactor: 0.2 } })));
    const keys = { gpt: 'docs-key-gpt-0123456789', scout: 'docs-key-scout-0123456789', maverick: 'docs-key-maverick-0123456789', batch: 'docs-key-batch-0123456789' };
    const health = { path: '/health', interval: '1s' };
    const gw = await startGateway(cleanup, {
      models: [
        { name: 'gpt-oss-120b', balancer: 'least-load', api_keys: [{ key: keys.gpt, name: 'chat-app' }, { key: keys.batch, name: 'batch-jobs', limits: { requests: { per_second: 4 } } }], health_check: health, targets: [{ url: gpt.url }] },
        { name: 'scout', balancer: 'least-load', api_keys: [{ key: keys.scout, name: 'rag-service' }], health_check: health, targets: scout.map((s) => ({ url: s.url })) },
        { name: 'maverick', balancer: 'least-load', api_keys: [{ key: keys.maverick, name: 'agents' }], health_check: health, targets: maverick.map((s) => ({ url: s.url })) },
      ],
    });
    const systems = ['You are a support assistant for a cloud provider. Answer briefly and cite the documentation page.', 'You summarize retrieved passages for an internal search tool. Quote the passage ids you used.'];
    const ask = async (model: string, key: string, isStream: boolean, i: number): Promise<void> => {
      const messages = [{ role: 'system', content: systems[i % systems.length] }, { role: 'user', content: i % 10 < 7 ? `question ${i % 5}` : `question ${i}` }];
      const body = JSON.stringify({ model, messages, max_tokens: 16 + ((i * 37) % 96), stream: isStream, ...(isStream ? { stream_options: { include_usage: true } } : {}) });
      await (await post(`${gw.url}/v1/chat/completions`, body, { authorization: `Bearer ${key}` })).arrayBuffer();
    };
    // Each client sends its next request when the previous one ends; the mix varies over the run.
    // Seven questions in ten are asked again (their prompt prefix is cached), three are new.
    const until30s = Date.now() + 30_000;
    const client = async (model: string, key: string, n: number, isStream: boolean): Promise<void> => {
      for (let i = n; Date.now() < until30s; i += 7) {
        // Fewer clients on maverick during the second third: its line dips and comes back.
        const t = until30s - Date.now();
        if (model === 'maverick' && n % 2 === 1 && t > 10_000 && t < 20_000) await new Promise((r) => setTimeout(r, 200));
        else await ask(model, key, isStream, i);
        // The batch key runs into its limit of 4/s: a steady trickle of 429s, not a flood.
        if (key === keys.batch) await new Promise((r) => setTimeout(r, 100));
      }
    };
    const clients = [
      ...[0, 1, 2, 3].map((n) => client('gpt-oss-120b', keys.gpt, n, n % 2 === 0)),
      ...[0, 1, 2, 3, 4, 5].map((n) => client('scout', keys.scout, n, true)),
      ...[0, 1, 2, 3].map((n) => client('maverick', keys.maverick, n, n !== 0)),
      ...[0, 1].map((n) => client('gpt-oss-120b', keys.batch, n, false)),
    ];
    const page = await open(gw, '/ui/#overview');
    await page.waitForSelector('#conn:text-is("live")');
    // One maverick replica drained for maintenance: the fleet picture shows the state.
    assert.equal((await fetch(`${gw.adminUrl}/models/maverick/targets/2/drain`, { method: 'POST' })).status, 200);
    // Both pictures while the traffic still flows (the fleet's engine numbers are live ones).
    await until('25 s of traffic', () => Date.now() > until30s - 5000, 40_000);
    await page.screenshot({ path: 'docs/dashboard-overview.png' });
    await page.click('a[href="#fleet"]');
    await page.waitForSelector(`tr[data-url="${scout[0]!.url}"] td.prefix-hits:text-matches("%$")`);
    await page.screenshot({ path: 'docs/dashboard-fleet.png' });
    await Promise.all(clients);
    assert.deepEqual(errors, [], 'no console errors');
  });

  it('keys: each key by name or fingerprint with its requests, tokens, 429s and headroom; the raw key never in the page', async () => {
    errors.length = 0;
    const named = 'browser-key-team-a-0123456789';
    const anonymous = 'browser-key-anonymous-0123456789';
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, {
      models: [{ name: 'm', limits: { requests: { per_day: 1000 } }, api_keys: [{ key: named, name: 'team-a', limits: { requests: { per_day: 3 } } }, anonymous], targets: [{ url: sim.url }] }],
    });
    const page = await open(gw, '/ui/#keys');
    await page.waitForSelector('#conn:text-is("live")');
    await page.waitForSelector('#t-keys');
    // Counted since the page opened: 3 answered and one 429 for team-a, one for the unnamed key.
    for (let i = 0; i < 4; i++) await (await post(`${gw.url}/v1/chat/completions`, chat('m'), { authorization: `Bearer ${named}` })).arrayBuffer();
    await (await post(`${gw.url}/v1/chat/completions`, chat('m'), { authorization: `Bearer ${anonymous}` })).arrayBuffer();
    const row = 'tr[data-key="team-a"]';
    await page.waitForSelector(`${row} td.requests:text-is("4")`, { timeout: 3000 });
    assert.equal(await page.locator(`${row} td:nth-child(5)`).textContent(), '1', 'one 429');
    assert.match((await page.locator(`${row} td.headroom`).textContent()) ?? '', /key:team-a:requests_per_day: 0 of 3 left/);
    assert.match((await page.locator(`${row} td.headroom`).textContent()) ?? '', /model:requests_per_day: \d+ of 1000 left/);
    const fingerprint = `key#${hashKey(anonymous).slice(0, 8)}`;
    await page.waitForSelector(`tr[data-key="${fingerprint}"] td.requests:text-is("1")`);
    const html = await page.content();
    assert.ok(!html.includes(named) && !html.includes(anonymous), 'never a key');
    await page.screenshot({ path: `${ARTIFACTS}/keys.png` });
    assert.deepEqual(errors, [], 'no console errors');
  });

  it('config: an invalid edit shows its line on validate and changes nothing; a valid one shows its diff, then applies; rollback restores the old hash', async () => {
    errors.length = 0;
    const sim = await startSim(cleanup, { model: 'm' });
    const gw = await startGateway(cleanup, { models: [{ name: 'm', targets: [{ url: sim.url }] }] });
    const first = gw.gateway.snapshot.hash;
    const history = async (): Promise<number> => ((await (await fetch(`${gw.adminUrl}/config/history`)).json()) as { data: unknown[] }).data.length;
    const loads = await history();
    const page = await open(gw, '/ui/#config');
    await page.waitForSelector(hashShown(first));
    await page.fill('#cfg-text', `models:\n  - name: m\n    targets: [{ url: ${sim.url} }]\n  - name: x\n    targets: nope\n`);
    await page.click('#cfg-validate');
    const invalid = await page.waitForSelector('#cfg-errors');
    assert.match((await invalid.textContent()) ?? '', /POST \/config:5:\d+/, 'validate names the line and column');
    assert.equal(gw.gateway.snapshot.hash, first, 'nothing changed');
    assert.equal(await history(), loads, 'a validation is not a load');
    await page.click('#cfg-apply');
    const err = await page.waitForSelector('#cfg-errors');
    assert.match((await err.textContent()) ?? '', /POST \/config:5:\d+/, 'the error names its line');
    assert.equal(gw.gateway.snapshot.hash, first, 'nothing changed');
    await page.fill('#cfg-text', `models:\n  - name: m\n    targets: [{ url: ${sim.url} }]\n  - name: m2\n    targets: [{ url: ${sim.url} }]\n`);
    await page.click('#cfg-validate');
    await page.waitForSelector('#cfg-diff .diff-add:text-matches("name: m2")');
    assert.equal(gw.gateway.snapshot.hash, first, 'validating applies nothing');
    await page.click('#cfg-apply');
    await until('the new config', () => gw.gateway.snapshot.hash !== first);
    const second = gw.gateway.snapshot.hash;
    await page.waitForSelector(hashShown(second));
    await page.click(`button[data-hash="${first}"]`);
    await until('the rollback', () => gw.gateway.snapshot.hash === first);
    await page.waitForSelector(hashShown(first));
    await page.screenshot({ path: `${ARTIFACTS}/config.png` });
    assert.deepEqual(errors.filter((e) => !e.includes('400')), [], 'no console errors but the refused validate and apply');
  });
});
