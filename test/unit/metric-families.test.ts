import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry, type Metric } from 'prom-client';
import { CounterFamily, GaugeFamily, HistogramFamily } from '../../src/metrics/families.js';

describe('metric families', () => {
  it('expose what prom-client would: cumulative buckets (a value on a bound counts in it), sum, count; shared children per label set', async () => {
    const registry = new Registry();
    const h = new HistogramFamily('t_seconds', 'help h', ['model'], [0.5, 0.1, 1]);
    const c = new CounterFamily('t_total', 'help c', ['model', 'status']);
    const g = new GaugeFamily('t_inflight', 'help g', ['model']);
    for (const f of [h, c, g]) registry.registerMetric(f as unknown as Metric);
    const a = h.child('a');
    for (const v of [0.05, 0.1, 0.3, 2]) a.observe(v);
    assert.equal(h.child('a'), a, 'one child per label set');
    c.child('a', '200').inc();
    c.child('a', '200').inc(2);
    g.child('a').inc();
    g.child('a').inc();
    g.child('a').dec();
    const text = await registry.metrics();
    for (const line of [
      '# TYPE t_seconds histogram',
      't_seconds_bucket{model="a",le="0.1"} 2',
      't_seconds_bucket{model="a",le="0.5"} 3',
      't_seconds_bucket{model="a",le="1"} 3',
      't_seconds_bucket{model="a",le="+Inf"} 4',
      't_seconds_sum{model="a"} 2.45',
      't_seconds_count{model="a"} 4',
      '# TYPE t_total counter',
      't_total{model="a",status="200"} 3',
      't_inflight{model="a"} 1',
    ]) assert.ok(text.includes(`${line}\n`), `missing: ${line}\n${text}`);
  });
});
