import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { compileSnapshot, loadConfigText } from '../../src/config/index.js';
import { GatewayMetrics } from '../../src/metrics/index.js';

/** normalized sorts each sample's labels: Prometheus does not order them (prom-client puts `le` first, we put it last). */
function normalized(lines: string[]): string[] {
  return lines.map((l) => l.replace(/\{([^}]*)\}/, (_m, body: string) => `{${body.split(',').sort().join(',')}}`));
}

/** models compiles a real snapshot: two models named "a" (on two paths) and one named "b". */
function models() {
  const text = 'models:\n  - { name: a, targets: [{ url: "http://h:1" }] }\n  - { name: a, path: /p, targets: [{ url: "http://h:1" }] }\n  - { name: b, targets: [{ url: "http://h:1" }] }\n';
  return compileSnapshot(loadConfigText(text, { file: 'gateway.yaml', baseDir: '/' })).models;
}

describe('per-request metrics', () => {
  it('expose what prom-client would: cumulative buckets (a value on a bound counts in it), sum, count', async () => {
    const m = new GatewayMetrics();
    const [a] = models();
    const mm = m.of(a!);
    assert.equal(m.of(a!), mm, 'one record per model');
    const values = [0.005, 0.1, 0.3, 2, 400];
    for (const v of values) mm.observeDuration(v);
    // prom-client's own histogram with the same buckets, as the reference.
    const ref = new Registry();
    const h = new Histogram({ name: 'igw_request_duration_seconds', help: 'x', labelNames: ['model'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300], registers: [ref] });
    for (const v of values) h.labels('a').observe(v);
    const ours = (await m.registry.getSingleMetricAsString('igw_request_duration_seconds')).split('\n').filter((l) => !l.startsWith('#'));
    const theirs = (await ref.getSingleMetricAsString('igw_request_duration_seconds')).split('\n').filter((l) => !l.startsWith('#'));
    // Ours lists every record's series (model "b" included); model "a"'s lines must equal prom-client's.
    assert.deepEqual(normalized(ours.filter((l) => l.includes('model="a"'))), normalized(theirs));
  });

  it('sum the records of one model name, keep names apart, and count requests per path and status', async () => {
    const m = new GatewayMetrics();
    const [a1, a2, b] = models();
    m.of(a1!).inflight += 2;
    m.of(a2!).inflight += 1;
    m.of(b!).inflight += 5;
    m.of(b!).inflight--;
    m.of(a1!).promptTokens += 10;
    m.of(a2!).promptTokens += 5;
    m.of(a2!).completionTokens += 7;
    m.of(a1!).observeTtfb(0.02);
    m.of(a2!).observeTtfb(0.2);
    m.of(a1!).requests(200).inc();
    m.of(a1!).requests(200).inc(2);
    m.of(a2!).requests(429).inc();
    const text = await m.registry.metrics();
    for (const line of [
      'igw_inflight_requests{model="a"} 3',
      'igw_inflight_requests{model="b"} 4',
      'igw_tokens_total{model="a",kind="prompt"} 15',
      'igw_tokens_total{model="a",kind="completion"} 7',
      'igw_tokens_total{model="b",kind="prompt"} 0',
      'igw_upstream_ttfb_seconds_bucket{model="a",le="0.025"} 1',
      'igw_upstream_ttfb_seconds_bucket{model="a",le="0.25"} 2',
      'igw_upstream_ttfb_seconds_count{model="a"} 2',
      'igw_requests_total{model="a",path="/",status="200"} 3',
      'igw_requests_total{model="a",path="/p",status="429"} 1',
    ]) assert.ok(text.includes(`${line}\n`), `missing: ${line}\n${text}`);
    assert.equal(text.split('\n').filter((l) => l.startsWith('igw_inflight_requests{')).length, 2, 'one series per model name');
  });
});
