import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LearnedServedModel, parseModelList, TargetState, toTarget, type Target } from '../../src/upstream/index.js';

/** baseIds is the base-model ids of a `GET /v1/models` answer, or null when it is not a list. */
const baseIds = (text: string): string[] | null => parseModelList(text)?.ids ?? null;

function target(port: number, ids: string[] | null): Target {
  const state = new TargetState(`http://127.0.0.1:${port}`);
  state.servedIds = ids;
  return toTarget(state.url, 1, state);
}

describe('served_model: auto', () => {
  it('reads base-model ids of a /v1/models answer, leaving out adapters', () => {
    const text = JSON.stringify({
      object: 'list',
      data: [
        { id: 'meta/llama-3-8b', object: 'model', root: 'meta/llama-3-8b', parent: null },
        { id: 'sql-lora', object: 'model', root: '/adapters/sql', parent: 'meta/llama-3-8b' },
        { id: 7 },
      ],
    });
    assert.deepEqual(baseIds(text), ['meta/llama-3-8b']);
    assert.equal(baseIds('not json'), null);
    assert.equal(baseIds('{"data":{}}'), null);
    assert.deepEqual(baseIds('{"data":[]}'), []);
  });

  it('takes the id most targets serve and marks the others; the earliest target breaks a tie', () => {
    const odd = target(3, ['other']);
    const targets = [target(1, ['m']), odd, target(2, ['m']), target(4, null)];
    const learned = new LearnedServedModel(targets);
    assert.equal(learned.id, 'm');
    assert.equal(odd.state.isModelMismatch, false, 'constructing only learns');
    const changes = learned.judge(targets);
    assert.deepEqual(changes.map((c) => [c.target.url, c.isMismatched, c.expected]), [[odd.url, true, 'm']]);
    assert.equal(odd.state.isHealthy, false);
    assert.deepEqual(learned.judge(targets), [], 'an unchanged verdict is not reported again');
    odd.state.servedIds = ['m'];
    assert.deepEqual(learned.judge(targets).map((c) => c.isMismatched), [false]);
    assert.equal(odd.state.isHealthy, true);

    const tie = [target(5, ['a']), target(6, ['b'])];
    assert.equal(new LearnedServedModel(tie).id, 'a');
    assert.equal(new LearnedServedModel([target(7, null)]).id, null);
  });
});
