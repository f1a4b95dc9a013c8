import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { compileSnapshot, loadConfigText } from '../../src/config/index.js';
import { GatewayMetrics } from '../../src/metrics/index.js';

/** normalized sorts each sample's labels: Prometheus does not order them (prom-client puts `le` first, we put it last). */
function normalized(lines: string[]): string[] {
  return lines.map((l) => l.replace(/\{([^}]*)\}/, (_m, body: string) => `{${body.split(',').sort().join(',')}}`));
}

/** rows compiles a real snapshot (two models named "a" on two paths, one named "b") and returns their metrics rows. */
function rows(m: GatewayMetrics): number[] {
  const text = 'models:\n  - { name: a, targets: [{ url: "http://h:1" }] }\n  - { name: a, path: /p, targets: [{ url: "http://h:1" }] }\n  - { name: b, targets: [{ url: "http://h:1" }] }\n';
  return compileSnapshot(loadConfigText(text, { file: 'gateway.yaml', baseDir: '/' }), { rowOf: m.rowOf }).models.map((x) => x.statsRow);
}

describe('per-request metrics', () => {
  it('expose what prom-client would: cumulative buckets (a value on a bound counts in it), sum, count', async () => {
    const m = new GatewayMetrics();
    const first = rows(m);
    assert.equal(new Set(first).size, 3, 'a row per (name, path)');
    assert.deepEqual(rows(m), first, 'a recompile keeps each (name, path) on its row');
    const a = first[0];
    const values = [0.005, 0.1, 0.3, 2, 400];
    for (const v of values) m.observeDuration(a!, v);
    // prom-client's own histogram with the same buckets, as the reference.
    const ref = new Registry();
    const h = new Histogram({ name: 'igw_request_duration_seconds', help: 'x', labelNames: ['model', 'served_model'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300], registers: [ref] });
    for (const v of values) h.labels('a', 'a').observe(v);
    const ours = (await m.registry.getSingleMetricAsString('igw_request_duration_seconds')).split('\n').filter((l) => !l.startsWith('#'));
    const theirs = (await ref.getSingleMetricAsString('igw_request_duration_seconds')).split('\n').filter((l) => !l.startsWith('#'));
    // Ours lists every record's series (model "b" included); model "a"'s lines must equal prom-client's.
    assert.deepEqual(normalized(ours.filter((l) => l.includes('model="a"'))), normalized(theirs));
  });

  it('sum the records of one model name, keep names apart, and count requests per path and status', async () => {
    const m = new GatewayMetrics();
    const [a1, a2, b] = rows(m) as [number, number, number];
    m.dispatched(a1);
    m.dispatched(a1);
    m.dispatched(a2);
    for (let i = 0; i < 5; i++) m.dispatched(b);
    m.settled(b);
    m.addTokens(a1, 10, 0);
    m.addTokens(a2, 5, 7);
    m.observeTtfb(a1, 0.02);
    m.observeTtfb(a2, 0.2);
    for (let i = 0; i < 3; i++) m.countRequest(a1, 200);
    m.countRequest(a2, 429);
    const text = await m.registry.metrics();
    for (const line of [
      'igw_inflight_requests{model="a",served_model="a"} 3',
      'igw_inflight_requests{model="b",served_model="b"} 4',
      'igw_tokens_total{model="a",served_model="a",kind="prompt"} 15',
      'igw_tokens_total{model="a",served_model="a",kind="completion"} 7',
      'igw_tokens_total{model="b",served_model="b",kind="prompt"} 0',
      'igw_upstream_ttfb_seconds_bucket{model="a",served_model="a",le="0.025"} 1',
      'igw_upstream_ttfb_seconds_bucket{model="a",served_model="a",le="0.25"} 2',
      'igw_upstream_ttfb_seconds_count{model="a",served_model="a"} 2',
      'igw_requests_total{model="a",served_model="a",path="/",status="200"} 3',
      'igw_requests_total{model="a",served_model="a",path="/p",status="429"} 1',
    ]) assert.ok(text.includes(`${line}\n`), `missing: ${line}\n${text}`);
    assert.equal(text.split('\n').filter((l) => l.startsWith('igw_inflight_requests{')).length, 2, 'one series per model name');
  });
});

describe('metrics rows', () => {
  it('keep their counts when the store grows past its first size', async () => {
    const m = new GatewayMetrics();
    const rowsMade = Array.from({ length: 40 }, (_, i) => m.rowOf(`m${i}`, i % 2 === 0 ? '' : '/p'));
    rowsMade.forEach((row, i) => {
      for (let k = 0; k <= i; k++) m.countRequest(row, 200);
      m.countRequest(row, 503);
    });
    m.dispatched(rowsMade[0]!);
    m.dispatched(rowsMade[39]!);
    m.dispatched(rowsMade[39]!);
    assert.equal(m.rowOf('m39', '/p'), rowsMade[39], 'the same pair, the same row');
    const text = await m.registry.metrics();
    assert.ok(text.includes('igw_requests_total{model="m0",served_model="m0",path="/",status="200"} 1\n'));
    assert.ok(text.includes('igw_requests_total{model="m39",served_model="m39",path="/p",status="200"} 40\n'));
    assert.ok(text.includes('igw_requests_total{model="m39",served_model="m39",path="/p",status="503"} 1\n'));
    assert.equal(text.split('\n').filter((l) => l.startsWith('igw_requests_total{')).length, 80);
    assert.ok(text.includes('igw_inflight_requests{model="m0",served_model="m0"} 1\n'));
    assert.ok(text.includes('igw_inflight_requests{model="m39",served_model="m39"} 2\n'));
  });
});
