import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfigText } from '../../src/config/index.js';
import { LearnedAdapters, parseModelList, parseVllmMetrics, pickForAdapter, TargetState, toTarget, type Target } from '../../src/upstream/index.js';

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

  it('passes over a replica with the adapter only when it has more than twice its share in flight and its engine queues', () => {
    const hot = target(1, ['sql', 'code'], 7);
    const other = target(2, ['legal', 'de'], 1);
    const idle = target(3, ['fr', 'it'], 0);
    // 8 in flight over 3 equal targets: the bound is ceil(2 * 9 / 3) = 6.
    assert.equal(pickForAdapter([hot, other, idle], 'sql', null), hot, 'nothing waits in its engine: it keeps its adapter');
    hot.state.load!.waiting = 2;
    assert.equal(pickForAdapter([hot, other, idle], 'sql', null), idle, 'queueing: the least loaded replica within the bound loads it');
    assert.ok(idle.state.load!.loras!.adapters.has('sql'));
    // Both now count as having it: the next request goes to the less loaded of the two.
    idle.state.inflight = 1;
    assert.equal(pickForAdapter([other, hot, idle], 'sql', null), idle);
    hot.state.inflight = 5;
    assert.equal(pickForAdapter([hot, other], 'sql', null), hot, 'within the bound again');
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

  it('reports adapters: auto without targets, an unknown adapters value and a doubled or self-named adapter, with file and field', () => {
    const issues = (text: string): readonly { file: string; field: string; message: string }[] => {
      try {
        loadConfigText(text, { file: 'gateway.yaml', baseDir: '.' });
      } catch (err) {
        if (err instanceof ConfigError) return err.issues;
        throw err;
      }
      return [];
    };
    const noTargets = issues('models:\n  - { name: base, adapters: auto }\n');
    const auto = noTargets.find((i) => i.field === 'models[0].adapters');
    assert.ok(auto, JSON.stringify(noTargets));
    assert.equal(auto.file, 'gateway.yaml');
    assert.match(auto.message, /"adapters: auto" learns the adapters from the targets' GET \/v1\/models, and the model has no targets/);
    const word = issues('models:\n  - { name: base, adapters: sometimes, targets: [{ url: "http://127.0.0.1:9" }] }\n');
    assert.ok(word.some((i) => i.field === 'models[0].adapters' && /expected "auto" or a list of adapter names/.test(i.message)), JSON.stringify(word));
    const named = issues('models:\n  - { name: base, served_model: org/base, adapters: [sql, sql, org/base, base], targets: [{ url: "http://127.0.0.1:9" }] }\n');
    assert.deepEqual(named.map((i) => i.field), ['models[0].adapters[1]', 'models[0].adapters[2]', 'models[0].adapters[3]']);
    assert.match(named[0]!.message, /listed twice/);
    assert.match(named[1]!.message, /served_model/);
    const split = issues('models:\n  - { name: base, targets: [{ url: "http://127.0.0.1:9" }] }\n  - { name: chat, split: [{ model: base, weight: 1 }], adapters: auto }\n');
    assert.ok(split.some((i) => i.field === 'models[1].adapters' && /has a split/.test(i.message)), JSON.stringify(split));
    assert.deepEqual(issues('models:\n  - { name: base, adapters: auto, targets: [{ url: "http://127.0.0.1:9" }] }\n'), []);
  });
});

describe('adapters: auto', () => {
  function listed(port: number, ids: string[], adapters: { id: string; parent: string }[] | null): Target {
    const state = new TargetState(`http://127.0.0.1:${port}`);
    state.servedIds = ids;
    state.servedAdapters = adapters;
    return toTarget(state.url, 1, state);
  }

  it('reads adapters, entries with a parent, apart from base models', () => {
    const text = JSON.stringify({
      object: 'list',
      data: [
        { id: 'org/base', parent: null },
        { id: 'sql', root: '/adapters/sql', parent: 'org/base' },
        { id: 'sql', parent: 'org/base' },
        { id: 'odd', parent: 7 },
        { id: 'other' },
      ],
    });
    assert.deepEqual(parseModelList(text), { ids: ['org/base', 'other'], adapters: [{ id: 'sql', parent: 'org/base' }] });
    assert.equal(parseModelList('[]'), null);
  });

  it('learns the adapters whose parent is the served model, per target, skipping mismatched targets', () => {
    const a = listed(1, ['org/base'], [{ id: 'sql', parent: 'org/base' }, { id: 'x', parent: 'org/other' }]);
    const b = listed(2, ['org/base'], [{ id: 'code', parent: 'org/base' }]);
    const odd = listed(3, ['org/other'], [{ id: 'poems', parent: 'org/other' }]);
    const unread = listed(4, [], null);
    const learned = new LearnedAdapters([a, b, odd, unread], 'org/base');
    assert.deepEqual([...learned.ids].sort(), ['code', 'sql']);
    assert.ok(learned.isServedBy(a, 'sql') && !learned.isServedBy(b, 'sql') && !learned.isServedBy(unread, 'sql'));
    // Without a served model, a target's adapters of the base model it lists itself.
    assert.deepEqual([...new LearnedAdapters([a, odd], null).ids].sort(), ['poems', 'sql']);
    odd.state.setModelMismatch(true);
    assert.deepEqual([...new LearnedAdapters([a, odd], null).ids], ['sql']);
    b.state.servedAdapters = [];
    assert.deepEqual(learned.learn([a, b, odd, unread], 'org/base'), { added: [], removed: ['code'] });
    // Only the targets that list an adapter are picked for it.
    assert.equal(pickForAdapter([b, a], 'sql', null, learned), a);
    assert.equal(pickForAdapter([b], 'sql', null, learned), undefined);
  });
});
