/**
 * The multi-turn chat workload of the balancer benchmarks (bench/balance.ts live, bench/balance-model.ts
 * as a model): conversations that each resend their whole history, so every turn's prompt extends
 * the one before, under a few system prompts that many conversations share (one per application).
 * Everything comes from a seeded source, so every balancer gets the same requests at the same times.
 */
import { promptBlocks } from '../../src/sim/index.js';
import { mulberry32 } from './openloop.js';

/** MultiTurnShape is the workload's size and pace. */
export interface MultiTurnShape {
  conversations: number;
  turns: number;
  /** systemPrompts distinct system prompts of systemChars characters; each conversation uses one at random. */
  systemPrompts: number;
  systemChars: number;
  /** Conversations start uniformly over startSpreadMs. */
  startSpreadMs: number;
  /** A turn follows the one before after thinkMs (uniform between half and one and a half times it). */
  thinkMs: number;
  seed: number;
}

/** Turn is one request of the workload. */
export interface Turn {
  atMs: number;
  conversation: number;
  turn: number;
  messages: Array<{ role: string; content: string }>;
}

const WORDS = 'the of and to in is that for it as with was on be by this are from or at an which have not but had they you were their one all we can her has there been if more when will would who so no'.split(' ');

function prose(random: () => number, chars: number): string {
  let s = '';
  while (s.length < chars) s += `${WORDS[Math.floor(random() * WORDS.length)]!} `;
  return s.slice(0, chars);
}

/** multiTurnWorkload returns every turn of every conversation, sorted by send time. */
export function multiTurnWorkload(o: MultiTurnShape): Turn[] {
  const random = mulberry32(o.seed);
  const systems = Array.from({ length: o.systemPrompts }, (_, k) => `Application ${k + 1}. ${prose(random, o.systemChars)}`);
  const out: Turn[] = [];
  for (let c = 0; c < o.conversations; c++) {
    const messages: Array<{ role: string; content: string }> = [{ role: 'system', content: systems[Math.floor(random() * systems.length)]! }];
    let at = random() * o.startSpreadMs;
    for (let t = 0; t < o.turns; t++) {
      if (t > 0) {
        messages.push({ role: 'assistant', content: prose(random, 300 + Math.floor(random() * 600)) });
        at += o.thinkMs * (0.5 + random());
      }
      messages.push({ role: 'user', content: `${c}/${t}: ${prose(random, 150 + Math.floor(random() * 300))}` });
      out.push({ atMs: at, conversation: c, turn: t, messages: messages.slice() });
    }
  }
  return out.sort((a, b) => a.atMs - b.atMs);
}

/** chatText is the prompt text the simulator's block-mode prefix cache hashes: every message, role-tagged. */
export function chatText(messages: ReadonlyArray<{ role: string; content: string }>): string {
  let p = '';
  for (const m of messages) p += `${m.role}:${m.content}\n`;
  return p;
}

/** blockKeys are the simulator's chained block keys of a prompt (the simulator's own function, so the model hashes as it does). */
export const blockKeys = promptBlocks;
