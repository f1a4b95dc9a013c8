/**
 * The prefix-aware balancer through the real gateway and three real simulators: every turn of a
 * conversation (its history resent and growing) lands on the replica that served the turn before,
 * also when all conversations share one system prompt.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Cleanup, post, startGateway, startSim } from '../helpers/harness.js';

const filler = (seed: string, chars: number): string => `${seed} `.repeat(Math.ceil(chars / (seed.length + 1))).slice(0, chars);

describe('prefix-aware balancer', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('keeps each multi-turn conversation on one replica, with and without a shared system prompt', async () => {
    const sims = await Promise.all(['a', 'b', 'c'].map((id) => startSim(cleanup, { model: 'm', id })));
    const gw = await startGateway(cleanup, {
      models: [{ name: 'm', balancer: 'prefix-aware', prefix_block_chars: 32, prefix_cache_blocks: 4096, targets: sims.map((s) => ({ url: s.url })) }],
    });
    const shared = filler('You answer questions about the shared product manual', 2000);
    for (const [label, systemOf] of [
      ['shared system prompt', (): string => shared],
      ['own system prompts', (c: number): string => filler(`${c} is the number of this assistant`, 400)],
    ] as const) {
      const history = new Map<number, Array<{ role: string; content: string }>>();
      const home = new Map<number, string>();
      for (let turn = 0; turn < 4; turn++) {
        for (let c = 0; c < 6; c++) {
          const messages = history.get(c) ?? [{ role: 'system', content: systemOf(c) }];
          messages.push({ role: 'user', content: filler(`${label} conversation ${c} question ${turn}`, 120) });
          const res = await post(`${gw.url}/v1/chat/completions`, JSON.stringify({ model: 'm', messages, max_tokens: 4 }));
          const body = (await res.json()) as { choices: Array<{ message: { content: string } }> };
          assert.equal(res.status, 200);
          const replica = res.headers.get('x-simulator-id')!;
          if (turn === 0) home.set(c, replica);
          else assert.equal(replica, home.get(c), `${label}: conversation ${c} turn ${turn}`);
          messages.push({ role: 'assistant', content: body.choices[0]!.message.content });
          history.set(c, messages);
        }
      }
      // Sent one at a time, nothing is in flight: a shared system prompt keeps every conversation where it is cached;
      // prompts that match nowhere go to the least loaded replica, in turn.
      if (label === 'own system prompts') assert.equal(new Set(home.values()).size, 3, `conversations spread over the replicas (${[...home.values()].join(', ')})`);
      else assert.equal(new Set(home.values()).size, 1, 'conversations share the replica that holds the system prompt');
    }
  });
});
