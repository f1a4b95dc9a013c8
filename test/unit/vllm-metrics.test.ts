/**
 * parseVllmMetrics against /metrics pages shaped like real vLLM ones (V1 engine with several
 * engines and models, the V0 gpu_cache name) and against garbage it must shrug off.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PREFIX_WINDOW_MS, parseVllmMetrics } from '../../src/upstream/vllm-metrics.js';

const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
const NOW = 1_700_000_000_000;

/** A vLLM V1 /metrics page (trimmed: the real one has dozens more histogram buckets). */
const V1_PAGE = `# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 11234.0
python_gc_objects_collected_total{generation="1"} 2051.0
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 2.147483648e+09
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="${MODEL}"} 3.0
vllm:num_requests_running{engine="1",model_name="${MODEL}"} 4.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="${MODEL}"} 2.0
vllm:num_requests_waiting{engine="1",model_name="${MODEL}"} 5.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="${MODEL}"} 0.4215
vllm:kv_cache_usage_perc{engine="1",model_name="${MODEL}"} 0.6875
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="${MODEL}"} 183424.0
# HELP vllm:num_preemptions_total Cumulative number of preemption from the engine.
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="${MODEL}"} 0.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="${MODEL}"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.005",model_name="${MODEL}"} 3.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="${MODEL}"} 120.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="${MODEL}"} 120.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="${MODEL}"} 5.316
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="${MODEL}"} 117.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="${MODEL}"} 3.0
`;

/** A vLLM V0 page: no engine label, the older KV-cache gauge name, and a CPU cache gauge to ignore. */
const V0_PAGE = `# HELP vllm:num_requests_running Number of requests currently running on GPU.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="${MODEL}"} 8.0
# HELP vllm:num_requests_swapped Number of requests swapped to CPU.
# TYPE vllm:num_requests_swapped gauge
vllm:num_requests_swapped{model_name="${MODEL}"} 1.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="${MODEL}"} 0.0
# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="${MODEL}"} 0.93
# HELP vllm:cpu_cache_usage_perc CPU KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:cpu_cache_usage_perc gauge
vllm:cpu_cache_usage_perc{model_name="${MODEL}"} 0.5
`;

describe('parseVllmMetrics', () => {
  it('sums waiting and running over engines and takes the fullest KV cache', () => {
    assert.deepEqual(parseVllmMetrics(V1_PAGE, NOW), { waiting: 7, running: 7, kvCacheUsage: 0.6875, prefixCacheQueries: -1, prefixCacheHits: -1, prefixCacheHitRate: null, prefixWindowQueries: -1, prefixWindowHits: -1, prefixWindowAtMs: 0, requestsDone: 120, atMs: NOW });
  });

  it('sums over every model a server serves', () => {
    const page = `vllm:num_requests_waiting{model_name="base"} 1\nvllm:num_requests_waiting{model_name="base-lora-sql"} 2\nvllm:num_requests_running{model_name="base"} 3\n`;
    assert.deepEqual(parseVllmMetrics(page, NOW), { waiting: 3, running: 3, kvCacheUsage: 0, prefixCacheQueries: -1, prefixCacheHits: -1, prefixCacheHitRate: null, prefixWindowQueries: -1, prefixWindowHits: -1, prefixWindowAtMs: 0, requestsDone: -1, atMs: NOW });
  });

  it('reads the older gpu_cache_usage_perc name of V0 servers', () => {
    assert.deepEqual(parseVllmMetrics(V0_PAGE, NOW), { waiting: 0, running: 8, kvCacheUsage: 0.93, prefixCacheQueries: -1, prefixCacheHits: -1, prefixCacheHitRate: null, prefixWindowQueries: -1, prefixWindowHits: -1, prefixWindowAtMs: 0, requestsDone: -1, atMs: NOW });
  });

  it('prefers kv_cache_usage_perc when a page has both names', () => {
    const page = `vllm:gpu_cache_usage_perc{model_name="m"} 0.9\nvllm:kv_cache_usage_perc{model_name="m"} 0.2\nvllm:num_requests_running{model_name="m"} 1\n`;
    assert.equal(parseVllmMetrics(page, NOW)?.kvCacheUsage, 0.2);
  });

  it('counts a missing gauge as zero when the other is present', () => {
    assert.deepEqual(parseVllmMetrics('vllm:num_requests_running 4\n', NOW), { waiting: 0, running: 4, kvCacheUsage: 0, prefixCacheQueries: -1, prefixCacheHits: -1, prefixCacheHitRate: null, prefixWindowQueries: -1, prefixWindowHits: -1, prefixWindowAtMs: 0, requestsDone: -1, atMs: NOW });
  });

  it('reads lines without labels, with timestamps, CRLF endings, tabs and leading blanks', () => {
    const page = '# TYPE vllm:num_requests_waiting gauge\r\nvllm:num_requests_waiting 2 1712345678000\r\n  vllm:num_requests_running{model_name="m"}\t6e0\r\n';
    assert.deepEqual(parseVllmMetrics(page, NOW), { waiting: 2, running: 6, kvCacheUsage: 0, prefixCacheQueries: -1, prefixCacheHits: -1, prefixCacheHitRate: null, prefixWindowQueries: -1, prefixWindowHits: -1, prefixWindowAtMs: 0, requestsDone: -1, atMs: NOW });
  });

  it('reads label values holding braces, spaces and escaped quotes', () => {
    const page = 'vllm:num_requests_waiting{model_name="we\\"ird} name {x}",engine="0"} 3\n';
    assert.equal(parseVllmMetrics(page, NOW)?.waiting, 3);
  });

  it('does not mistake longer metric names for the gauges', () => {
    const page = 'vllm:num_requests_waiting_total 50\nvllm:num_requests_waitingx{a="b"} 50\nvllm:num_requests_running_by_state{state="x"} 50\nvllm:num_requests_running 1\n';
    assert.deepEqual(parseVllmMetrics(page, NOW), { waiting: 0, running: 1, kvCacheUsage: 0, prefixCacheQueries: -1, prefixCacheHits: -1, prefixCacheHitRate: null, prefixWindowQueries: -1, prefixWindowHits: -1, prefixWindowAtMs: 0, requestsDone: -1, atMs: NOW });
  });

  it('skips garbage lines and unusable values but keeps the good lines', () => {
    const page = [
      'not a metric at all',
      '{}{}{ "json": true }',
      'vllm:num_requests_waiting',
      'vllm:num_requests_waiting ',
      'vllm:num_requests_waiting{model_name="unclosed 9',
      'vllm:num_requests_waiting{model_name="m"}9',
      'vllm:num_requests_waiting{model_name="m"} abc',
      'vllm:num_requests_waiting{model_name="m"} NaN',
      'vllm:num_requests_waiting{model_name="m"} +Inf',
      'vllm:num_requests_waiting{model_name="m"} -3',
      'vllm:kv_cache_usage_perc{model_name="m"} NaN',
      '\u0000\u0001\ufffd',
      'vllm:num_requests_waiting{model_name="m"} 2',
      'vllm:num_requests_running{model_name="m"} 1.5e1',
      '# EOF',
    ].join('\n');
    assert.deepEqual(parseVllmMetrics(page, NOW), { waiting: 2, running: 15, kvCacheUsage: 0, prefixCacheQueries: -1, prefixCacheHits: -1, prefixCacheHitRate: null, prefixWindowQueries: -1, prefixWindowHits: -1, prefixWindowAtMs: 0, requestsDone: -1, atMs: NOW });
  });

  it('turns the prefix-cache counters into the hit rate of the last completed window', () => {
    const page = (queries: number, hits: number): string =>
      `vllm:num_requests_running{engine="0"} 1\n` +
      `# TYPE vllm:prefix_cache_queries_total counter\nvllm:prefix_cache_queries_total{engine="0",model_name="${MODEL}"} ${queries / 2}\nvllm:prefix_cache_queries_total{engine="1",model_name="${MODEL}"} ${queries / 2}\n` +
      `# TYPE vllm:prefix_cache_hits_total counter\nvllm:prefix_cache_hits_total{engine="0",model_name="${MODEL}"} ${hits}\nvllm:prefix_cache_hits_total{engine="1",model_name="${MODEL}"} 0\n`;
    const first = parseVllmMetrics(page(1000, 200), NOW);
    assert.deepEqual(
      first,
      { waiting: 0, running: 1, kvCacheUsage: 0, prefixCacheQueries: 1000, prefixCacheHits: 200, prefixCacheHitRate: null, prefixWindowQueries: 1000, prefixWindowHits: 200, prefixWindowAtMs: NOW, requestsDone: -1, atMs: NOW },
      'the first sample opens a window and has no rate',
    );
    // Within the window: counters read, the window kept, no rate yet.
    const inside = parseVllmMetrics(page(3000, 1200), NOW + PREFIX_WINDOW_MS - 1, first);
    assert.equal(inside?.prefixCacheHitRate, null);
    assert.equal(inside?.prefixWindowQueries, 1000);
    // The window closes: 4000 tokens queried since it opened, 3000 of them cached: 0.75, not the lifetime 3200/5000.
    const closed = parseVllmMetrics(page(5000, 3200), NOW + PREFIX_WINDOW_MS, inside);
    assert.equal(closed?.prefixCacheHitRate, 0.75);
    assert.equal(closed?.prefixWindowQueries, 5000);
    // The rate stays while the next window fills, and is replaced when it closes.
    const next = parseVllmMetrics(page(6000, 3200), NOW + PREFIX_WINDOW_MS + 1000, closed);
    assert.equal(next?.prefixCacheHitRate, 0.75);
    assert.equal(parseVllmMetrics(page(7000, 3700), NOW + 2 * PREFIX_WINDOW_MS, next)?.prefixCacheHitRate, 0.25);
    assert.equal(parseVllmMetrics(page(5000, 3200), NOW + 2 * PREFIX_WINDOW_MS, closed)?.prefixCacheHitRate, null, 'no queries in the window');
    const restarted = parseVllmMetrics(page(100, 10), NOW + 2 * PREFIX_WINDOW_MS, next);
    assert.equal(restarted?.prefixCacheHitRate, null, 'a restarted engine reset its counters');
    assert.equal(restarted?.prefixWindowQueries, 100, 'and a new window opens');
  });

  it('reads the deprecated gpu_prefix_cache counters of older servers, and uses a pair only whole', () => {
    const old = (q: number, h: number): string => `vllm:num_requests_running 0\nvllm:gpu_prefix_cache_queries_total{model_name="m"} ${q}\nvllm:gpu_prefix_cache_hits_total{model_name="m"} ${h}\n`;
    const first = parseVllmMetrics(old(10, 0), NOW);
    assert.equal(parseVllmMetrics(old(20, 5), NOW + PREFIX_WINDOW_MS, first)?.prefixCacheHitRate, 0.5);
    const onlyQueries = parseVllmMetrics('vllm:num_requests_running 0\nvllm:prefix_cache_queries_total 10\n', NOW);
    assert.equal(onlyQueries?.prefixCacheQueries, -1);
    assert.equal(parseVllmMetrics('vllm:num_requests_running 0\nvllm:prefix_cache_queries_total 20\nvllm:prefix_cache_hits_total 20\n', NOW + PREFIX_WINDOW_MS, onlyQueries)?.prefixCacheHitRate, null);
  });

  it('caps KV-cache usage at 1', () => {
    assert.equal(parseVllmMetrics('vllm:num_requests_running 1\nvllm:kv_cache_usage_perc 1.7\n', NOW)?.kvCacheUsage, 1);
  });

  it('returns null when the page has neither request gauge', () => {
    const onlyHistograms = V1_PAGE.split('\n').filter((l) => !l.startsWith('vllm:num_requests')).join('\n');
    for (const page of ['', '\n\n', onlyHistograms, '<html><body>404 Not Found</body></html>', 'vllm:kv_cache_usage_perc 0.5\n', 'vllm:num_requests_waiting NaN\n']) {
      assert.equal(parseVllmMetrics(page, NOW), null, JSON.stringify(page.slice(0, 60)));
    }
  });

  it('never throws, whatever the input', () => {
    let seed = 12345;
    const random = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
    const alphabet = 'vllm:num_requests_waiting{}="\\ \t\r\n0123456789.eE+-#NaInf';
    for (let i = 0; i < 2000; i++) {
      let text = random() < 0.5 ? 'vllm:num_requests_waiting' : '';
      const len = Math.floor(random() * 80);
      for (let j = 0; j < len; j++) text += alphabet[Math.floor(random() * alphabet.length)];
      const result = parseVllmMetrics(text, NOW);
      if (result !== null) assert.ok(Number.isFinite(result.waiting) && Number.isFinite(result.running) && result.kvCacheUsage >= 0 && result.kvCacheUsage <= 1);
    }
    assert.equal(parseVllmMetrics(undefined as unknown as string, NOW), null);
    assert.equal(parseVllmMetrics(42 as unknown as string, NOW), null);
  });
});

it('parseVllmMetrics sums vllm:request_success_total over its finished_reason lines, -1 without it', () => {
  const page = 'vllm:num_requests_running 1\nvllm:request_success_total{finished_reason="stop"} 5\nvllm:request_success_total{finished_reason="abort"} 2\nvllm:request_success_total_created 1.7e9\n';
  assert.equal(parseVllmMetrics(page, 0)?.requestsDone, 7);
  assert.equal(parseVllmMetrics('vllm:num_requests_running 1\n', 0)?.requestsDone, -1);
});
