import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfigText } from '../../src/config/index.js';
import { parseVllmMetrics, pickForAdapter, TargetState, toTarget, type Target } from '../../src/upstream/index.js';

const PAGE = [
  'vllm:num_requests_running{model_name="m"} 1',
  'vllm:num_requests_waiting{model_name="m"} 0',
  '# vLLM keeps one series per label set; the newest sample (highest value) is the current one.',
  'vllm:lora_requests_info{max_lora="2",running_lora_adapters="old",waiting_lora_adapters=""} 1.7e9',
  'vllm:lora_requests_info{max_lora="2",running_lora_adapters="sql,code",waiting_lora_adapters="de\\"x"} 1.8e9',
].join('\n');

function target(port: number, adapters: string[] | null, inflight = 0): Target {
  const state = new TargetState(`http://127.0.0.1:${port}`);
  state.inflight = inflight;
  state.load = { waiting: 0, running: 0, kvCacheUsage: 0, atMs: 0, loras: adapters === null ? null : { adapters: new Set(adapters), maxLora: 2 } };
  return toTarget(state.url, 1, state);
}

describe('LoRA adapter state', () => {
  it('reads the newest vllm:lora_requests_info: running and waiting adapters and max_lora', () => {
    const s = parseVllmMetrics(PAGE, 5)!;
    assert.deepEqual([...s.loras!.adapters], ['sql', 'code', 'de"x']);
    assert.equal(s.loras!.maxLora, 2);
    assert.equal(parseVllmMetrics('vllm:num_requests_running 0\n', 5)!.loras, undefined);
    assert.equal(parseVllmMetrics('vllm:num_requests_running 0\nvllm:lora_requests_info{running_lora_adapters="a"} 1\n', 5)!.loras, null, 'no max_lora');
  });

  it('prefers a replica with the adapter, then a free slot, then the fewest in flight', () => {
    const has = target(1, ['sql', 'code'], 5);
    const free = target(2, ['legal'], 3);
    const full = target(3, ['a', 'b'], 0);
    assert.equal(pickForAdapter([full, free, has], 'sql', null), has);
    assert.equal(pickForAdapter([full, free, has], 'de', null), free);
    assert.ok(free.state.load!.loras!.adapters.has('de'), 'counted there until the next sample');
    assert.equal(pickForAdapter([full, free, has], 'fr', null), full, 'every slot taken: fewest in flight');
    assert.equal(pickForAdapter([has], 'sql', new Set([has])), undefined);
  });
});

describe('adapters in the configuration', () => {
  it('refuses adapters on a split model', () => {
    const text = [
      'models:',
      '  - { name: base, adapters: [sql], targets: [{ url: "http://127.0.0.1:9" }] }',
      '  - { name: chat, split: [{ model: base, weight: 1 }], adapters: [sql] }',
    ].join('\n');
    assert.throws(
      () => loadConfigText(text, { file: 'gateway.yaml', baseDir: '.' }),
      (err: unknown) => err instanceof ConfigError && err.issues.some((i) => i.field.endsWith('.adapters')),
    );
    assert.doesNotThrow(() => loadConfigText(text.split('\n').slice(0, 2).join('\n'), { file: 'gateway.yaml', baseDir: '.' }));
  });
});
