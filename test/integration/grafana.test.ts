/**
 * deploy/grafana/inference-gateway.json: a dashboard Grafana can import (panels with PromQL
 * targets, a Prometheus datasource variable), and every metric and label it queries exists in a
 * real gateway's /metrics after traffic (the vllm: ones in the simulator's, as vLLM serves them;
 * the process_ and nodejs_ ones are Node's, as prom-client exports them).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Cleanup, chat, deadUrl, post, startGateway, startSim } from '../helpers/harness.js';
import { parsePrometheus, type Sample } from '../helpers/prometheus.js';

const FILE = 'deploy/grafana/inference-gateway.json';
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

interface Target {
  refId: string;
  expr: string;
  datasource: unknown;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: unknown;
  targets?: Target[];
}
interface Dashboard {
  title: string;
  uid: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: unknown; datasource?: unknown }> };
}

const dashboard = JSON.parse(readFileSync(FILE, 'utf8')) as Dashboard;
const queries = (): string[] => [
  ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
  ...dashboard.templating.list.filter((v) => v.type === 'query').map((v) => (v.query as { query: string }).query),
];

/** NAME is a metric name a query reads: the gateway's own (igw_), its process's (process_, nodejs_) and vLLM's (vllm:). */
const NAME = String.raw`\b(igw_[a-z0-9_]+|process_[a-z0-9_]+|nodejs_[a-z0-9_]+|vllm:[a-z0-9_:]+)`;
const METRIC = new RegExp(NAME, 'g');
/** SELECTOR is a metric with label matchers: `name{label="…", …}`. */
const SELECTOR = new RegExp(String.raw`${NAME}\{([^}]*)\}`, 'g');
const BY = /\bby \(([^)]*)\)/g;

describe('Grafana dashboard (deploy/grafana)', () => {
  it('is a dashboard Grafana imports: a Prometheus datasource variable, and panels with PromQL targets laid out on the 24-column grid', () => {
    assert.equal(typeof dashboard.title, 'string');
    assert.match(dashboard.uid, /^[a-zA-Z0-9_-]{1,40}$/);
    assert.equal(typeof dashboard.schemaVersion, 'number');
    const ds = dashboard.templating.list.find((v) => v.type === 'datasource');
    assert.deepEqual(ds && { name: ds.name, query: ds.query }, { name: 'datasource', query: 'prometheus' });
    assert.equal(new Set(dashboard.panels.map((p) => p.id)).size, dashboard.panels.length, 'panel ids are unique');
    const graphs = dashboard.panels.filter((p) => p.type !== 'row');
    assert.ok(graphs.length >= 10);
    for (const p of graphs) {
      assert.ok(p.title.length > 0, `panel ${p.id} has a title`);
      assert.deepEqual(p.datasource, DATASOURCE, `${p.title}: uses the datasource variable`);
      assert.ok((p.targets ?? []).length > 0, `${p.title}: has targets`);
      for (const t of p.targets!) {
        assert.equal(typeof t.expr, 'string', `${p.title}: a target with expr`);
        assert.match(t.refId, /^[A-Z]$/);
        assert.deepEqual(t.datasource, DATASOURCE);
      }
    }
    // No two panels overlap, and each fits in 24 columns.
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      const g = p.gridPos;
      assert.ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0, `${p.title}: fits the grid`);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          assert.ok(!cells.has(`${x},${y}`), `${p.title}: overlaps another panel`);
          cells.add(`${x},${y}`);
        }
      }
    }
    // Every Prometheus client exports process_ metrics (the engines too): the panels keep the gateway's own.
    for (const q of queries()) {
      if (/\b(process|nodejs)_/.test(q)) assert.match(q, /\band on \(instance\) igw_/, `${q}: limited to gateway processes`);
    }
    // The overview and fleet panels of the dashboard page.
    const titles = graphs.map((p) => p.title.toLowerCase()).join('\n');
    for (const t of ['requests/s', 'status class', 'latency', 'tokens/s', 'in flight', '429', 'targets', 'upstream errors', 'kv-cache', 'running and waiting', 'cpu', 'event-loop delay', 'gc pauses', 'memory']) assert.ok(titles.includes(t), `a panel about ${t}`);
  });

  describe('every metric it queries exists', () => {
    const cleanup = new Cleanup();
    let gatewayMetrics: Sample[] = [];
    let gatewayText = '';
    let engineMetrics: Sample[] = [];
    after(() => cleanup.run());

    before(async () => {
      const sim = await startSim(cleanup, { model: 'm' });
      const gw = await startGateway(cleanup, {
        models: [
          { name: 'm', limits: { requests: { per_minute: 3 } }, targets: [{ url: sim.url }] },
          { name: 'down', targets: [{ url: await deadUrl() }] },
        ],
      });
      // Answers, a 429, an upstream error and a reload: every series the panels draw.
      for (let i = 0; i < 4; i++) await (await post(`${gw.url}/v1/chat/completions`, chat('m'))).arrayBuffer();
      await (await post(`${gw.url}/v1/chat/completions`, chat('down'))).arrayBuffer();
      gw.gateway.reload();
      // A collection the GC panel can show (prom-client records pauses as they are reported).
      (globalThis as { gc?: () => void }).gc?.();
      await new Promise((r) => setTimeout(r, 20));
      gatewayText = await (await fetch(`${gw.statusUrl}/metrics`)).text();
      gatewayMetrics = parsePrometheus(gatewayText);
      engineMetrics = parsePrometheus(await (await fetch(`${sim.url}/metrics`)).text());
    });

    it('in the gateway\'s /metrics (the igw_ ones) and the engine\'s (the vllm: ones), with the labels the queries select and group by', () => {
      const samplesOf = (name: string): Sample[] => (name.startsWith('vllm:') ? engineMetrics : gatewayMetrics).filter((s) => s.name === name);
      const used = new Set(queries().flatMap((q) => [...q.matchAll(METRIC)].map((m) => m[1]!)));
      assert.ok(used.size >= 12, `the panels read ${[...used].join(', ')}`);
      for (const name of used) {
        // Counted only when the Redis limit store fails: declared, with no series until then.
        if (name === 'igw_ratelimit_store_errors_total') {
          assert.match(gatewayText, /^# TYPE igw_ratelimit_store_errors_total counter$/m);
          continue;
        }
        assert.ok(samplesOf(name).length > 0, `${name} is in /metrics`);
      }
      for (const q of queries()) {
        const names = [...q.matchAll(METRIC)].map((m) => m[1]!);
        const labels = new Set(names.flatMap((n) => samplesOf(n).flatMap((s) => Object.keys(s.labels))));
        // Prometheus adds `instance` to every scraped series.
        labels.add('instance');
        for (const [, name, matchers] of q.matchAll(SELECTOR)) {
          for (const m of matchers!.matchAll(/([a-z_]+)\s*=~?/g)) {
            if (name === 'igw_ratelimit_store_errors_total') continue;
            assert.ok(samplesOf(name!).some((s) => m[1]! in s.labels), `${name} has the label ${m[1]} (${q})`);
          }
        }
        for (const [, list] of q.matchAll(BY)) {
          for (const l of list!.split(',').map((x) => x.trim())) {
            if (names.every((n) => n === 'igw_ratelimit_store_errors_total')) continue;
            assert.ok(labels.has(l), `grouped by ${l}, a label of ${names.join(', ')} (${q})`);
          }
        }
      }
      // The model variable lists the gateway's models.
      assert.ok(samplesOf('igw_requests_total').some((s) => s.labels.model === 'm'));
    });
  });
});
