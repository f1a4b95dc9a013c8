/**
 * The Balancer contract, run against every balancer (hono's common.case.test.ts, Kong's
 * each_strategy), then the behaviour that sets each one apart. Randomness is a seeded PRNG and
 * time is a number, so every run sees the same picks.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BALANCER_KINDS,
  ConsistentHashBalancer,
  LeastLoadBalancer,
  LeastRequestBalancer,
  PrefixAwareBalancer,
  PrefixIndex,
  RoundRobinBalancer,
  createBalancer,
  toPromptBlocks,
  toPromptPrefixKey,
} from '../../src/upstream/balancer/index.js';
import type { Balancer, BalancerKind, Target, LoadSample, PickInput } from '../../src/upstream/balancer/index.js';
import { TargetState } from '../../src/upstream/index.js';

/** TestTarget is a Target whose state the test may change. */
interface TestTarget extends Target {
  readonly state: TargetState;
}

function candidate(url: string, weight = 1, state: Partial<Pick<TargetState, 'inflight' | 'isHealthy' | 'load'>> = {}): TestTarget {
  return { url, origin: url, basePath: '', weight, state: Object.assign(new TargetState(url), state) };
}

function sample(waiting: number, running: number, kvCacheUsage = 0, atMs = NOW): LoadSample {
  return { waiting, running, kvCacheUsage, atMs };
}

/** mulberry32 is a tiny seeded PRNG: the injected random of every test. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NOW = 1_000_000;

/** input builds a pick's input; a hash key also becomes a prompt of its own (prefix-aware hashes its blocks, the others ignore them). */
function input(hashKey: string | null = null, excluded: ReadonlySet<Target> | null = null, nowMs = NOW): PickInput {
  return { excluded, hashKey, nowMs, blocks: hashKey === null ? null : toPromptBlocks({ prompt: `${hashKey}|`.repeat(8) }, 8, 64) };
}

function create(kind: BalancerKind, candidates: readonly Target[], seed = 1): Balancer {
  return createBalancer(kind, candidates, { random: mulberry32(seed) });
}

/** freshen gives every candidate a fresh sample that agrees with its in-flight count, as a poller would. */
function freshen(candidates: readonly TestTarget[], nowMs: number): void {
  for (const c of candidates) c.state.load = sample(0, c.state.inflight, Math.min(1, c.state.inflight / (16 * c.weight)), nowMs);
}

/**
 * simulate runs picks through a discrete-time loop: each tick some requests arrive, each pick
 * holds one in-flight slot for a random 1..40 ticks, and every 5 ticks a metrics poll refreshes
 * the load samples. Every pick carries a distinct hash key. Returns the picks per candidate.
 */
function simulate(balancer: Balancer, candidates: readonly TestTarget[], picks: number, seed: number): number[] {
  const random = mulberry32(seed);
  const counts = candidates.map(() => 0);
  const releases = new Map<number, TestTarget[]>();
  let picked = 0;
  for (let tick = 0; picked < picks; tick++) {
    for (const c of releases.get(tick) ?? []) c.state.inflight--;
    releases.delete(tick);
    const nowMs = NOW + tick * 50;
    if (tick % 5 === 0) freshen(candidates, nowMs);
    for (let k = 0; k < 3 && picked < picks; k++) {
      const c = balancer.pick(input(`key-${picked}`, null, nowMs)) as TestTarget | undefined;
      assert.ok(c !== undefined);
      picked++;
      counts[candidates.indexOf(c)]!++;
      c.state.inflight++;
      const at = tick + 1 + Math.floor(random() * 40);
      const list = releases.get(at);
      if (list) list.push(c);
      else releases.set(at, [c]);
    }
  }
  return counts;
}

/** assertShares checks each count's share of the total against its weight's share, within tolerance (absolute). */
function assertShares(counts: readonly number[], weights: readonly number[], tolerance: number): void {
  const total = counts.reduce((s, c) => s + c, 0);
  const weightTotal = weights.reduce((s, w) => s + w, 0);
  counts.forEach((count, i) => {
    const share = count / total;
    const expected = weights[i]! / weightTotal;
    assert.ok(Math.abs(share - expected) <= tolerance, `target ${i}: share ${share.toFixed(4)}, expected ${expected.toFixed(4)} ± ${tolerance}`);
  });
}

for (const kind of BALANCER_KINDS) {
  describe(`balancer contract: ${kind}`, () => {
    it('never picks an unhealthy or excluded candidate', () => {
      const [a, b, c, d] = [candidate('http://a'), candidate('http://b', 1, { isHealthy: false }), candidate('http://c'), candidate('http://d')];
      const all = [a!, b!, c!, d!];
      freshen(all, NOW);
      const balancer = create(kind, all);
      const excluded = new Set<Target>([c!]);
      const seen = new Set<Target>();
      for (let i = 0; i < 2000; i++) {
        const picked = balancer.pick(input(`key-${i}`, excluded));
        assert.ok(picked === a || picked === d, `picked ${picked?.url}`);
        seen.add(picked);
      }
      assert.equal(seen.size, 2, 'both eligible candidates get picks');
    });

    it('never picks an unhealthy candidate without load samples or hash keys either', () => {
      const all = [candidate('http://a', 1, { isHealthy: false }), candidate('http://b'), candidate('http://c', 5, { isHealthy: false })];
      const balancer = create(kind, all);
      for (let i = 0; i < 500; i++) assert.equal(balancer.pick(input()), all[1]);
    });

    it('returns undefined when no candidate is eligible', () => {
      const all = [candidate('http://a', 1, { isHealthy: false }), candidate('http://b'), candidate('http://c', 2)];
      freshen(all, NOW);
      const balancer = create(kind, all);
      assert.equal(balancer.pick(input('k', new Set([all[1]!, all[2]!]))), undefined);
      all[1]!.state.isHealthy = false;
      all[2]!.state.isHealthy = false;
      assert.equal(balancer.pick(input('k')), undefined);
      assert.equal(balancer.pick(input(null)), undefined);
      assert.equal(create(kind, []).pick(input('k')), undefined);
    });

    it('always returns a single eligible candidate, and undefined once it is not', () => {
      const only = candidate('http://only', 3, { inflight: 7 });
      const balancer = create(kind, [only]);
      for (let i = 0; i < 10; i++) assert.equal(balancer.pick(input(`key-${i}`)), only);
      assert.equal(balancer.pick(input('k', new Set([only]))), undefined);
      only.state.isHealthy = false;
      assert.equal(balancer.pick(input('k')), undefined);
    });

    it('shares 60,000 requests by weights 1/2/3 within 3 percentage points', () => {
      const all = [candidate('http://10.0.0.1:8000', 1), candidate('http://10.0.0.2:8000', 2), candidate('http://10.0.0.3:8000', 3)];
      const counts = simulate(create(kind, all, 7), all, 60_000, 42);
      assertShares(counts, [1, 2, 3], 0.03);
    });
  });
}

describe('RoundRobinBalancer', () => {
  const sequence = (weights: number[], n: number, excludedAt: (i: number) => number | null = () => null): string => {
    const all = weights.map((w, i) => candidate(String.fromCharCode(97 + i), w));
    const rr = new RoundRobinBalancer(all);
    let out = '';
    for (let i = 0; i < n; i++) {
      const x = excludedAt(i);
      out += rr.pick(input(null, x === null ? null : new Set([all[x]!])))!.url;
    }
    return out;
  };

  it('spreads a heavy target instead of bursting it (nginx order for 5,1,1)', () => assert.equal(sequence([5, 1, 1], 7), 'aabacaa'));
  it('alternates equal weights', () => assert.equal(sequence([1, 1, 1], 6), 'abcabc'));
  it('repeats one weighted cycle per total weight (3,2,1)', () => assert.equal(sequence([3, 2, 1], 12), 'abacba'.repeat(2)));
  it('runs over the eligible candidates only while one sits out', () => assert.equal(sequence([1, 1, 1], 4, () => 1), 'acac'));
  it('leaves a skipped candidate its place in the order', () => {
    // b sits out pick 2 only; its score is untouched, so it comes next instead of losing its turn.
    assert.equal(sequence([1, 1, 1], 6, (i) => (i === 1 ? 1 : null)), 'acbcab');
  });
  it('does not let a candidate bank credit while it sits out, so it returns without a burst', () => {
    // Were b's score still to grow while excluded, it would come back with "bb".
    assert.equal(sequence([1, 1, 1], 15, (i) => (i < 6 ? 1 : null)), 'acacac' + 'abcabcabc');
  });
});

describe('LeastRequestBalancer', () => {
  it('prefers the candidate with fewer requests in flight', () => {
    const [a, b] = [candidate('a', 1, { inflight: 5 }), candidate('b', 1, { inflight: 0 })];
    const lr = new LeastRequestBalancer([a, b], { random: mulberry32(3) });
    for (let i = 0; i < 100; i++) assert.equal(lr.pick(input()), b);
  });

  it('compares in-flight requests per unit of weight', () => {
    // (1 + 1) / 1 = 2 against (2 + 1) / 3 = 1: the heavier target takes it despite more in flight.
    const [a, b] = [candidate('a', 1, { inflight: 1 }), candidate('b', 3, { inflight: 2 })];
    const lr = new LeastRequestBalancer([a, b], { random: mulberry32(3) });
    for (let i = 0; i < 100; i++) assert.equal(lr.pick(input()), b);
  });

  it('gives an idle heavy target precedence over an idle light one', () => {
    const [a, b] = [candidate('a', 1), candidate('b', 2)];
    const lr = new LeastRequestBalancer([a, b], { random: mulberry32(3) });
    assert.equal(lr.pick(input()), b);
  });

  it('breaks a tie in favour of the first candidate drawn', () => {
    const all = [candidate('a'), candidate('b')];
    assert.equal(new LeastRequestBalancer(all, { random: () => 0 }).pick(input()), all[0]);
    assert.equal(new LeastRequestBalancer(all, { random: () => 0.99 }).pick(input()), all[1]);
  });

  it('compares only the two candidates drawn, not the global minimum', () => {
    // random() = 0 draws a then b; the idle c is not looked at. This is what keeps gateways from herding.
    const all = [candidate('a', 1, { inflight: 3 }), candidate('b', 1, { inflight: 5 }), candidate('c')];
    assert.equal(new LeastRequestBalancer(all, { random: () => 0 }).pick(input()), all[0]);
  });

  it('never draws the same candidate twice', () => {
    // With three eligible and random() = 0.5 both times, the second draw shifts past the first.
    const all = [candidate('a'), candidate('b', 1, { inflight: 9 }), candidate('c', 1, { inflight: 4 })];
    assert.equal(new LeastRequestBalancer(all, { random: () => 0.5 }).pick(input()), all[2]);
  });

  it('survives a random source that returns 1 or NaN', () => {
    const all = [candidate('a'), candidate('b'), candidate('c')];
    assert.ok(all.includes(new LeastRequestBalancer(all, { random: () => 1 }).pick(input()) as TestTarget));
    assert.ok(all.includes(new LeastRequestBalancer(all, { random: () => Number.NaN }).pick(input()) as TestTarget));
  });
});

describe('ConsistentHashBalancer', () => {
  const fleet = (n: number): TestTarget[] => Array.from({ length: n }, (_, i) => candidate(`http://10.0.1.${i + 1}:8000`));

  it('sends the same key to the same target, across rebuilt balancers and candidate orders', () => {
    const all = fleet(5);
    const first = new ConsistentHashBalancer(all);
    const rebuilt = new ConsistentHashBalancer([...all].reverse());
    for (let i = 0; i < 2000; i++) {
      const key = `user-${i}`;
      const target = first.pick(input(key));
      assert.equal(first.pick(input(key)), target);
      assert.equal(rebuilt.pick(input(key)), target);
    }
  });

  it('remaps only the keys of a target that becomes unhealthy (about 1/N of them)', () => {
    const all = fleet(4);
    const ch = new ConsistentHashBalancer(all);
    const keys = Array.from({ length: 20_000 }, (_, i) => `conversation-${i}`);
    const before = keys.map((k) => ch.pick(input(k)));
    const gone = all[2]!;
    gone.state.isHealthy = false;
    let moved = 0;
    keys.forEach((k, i) => {
      const after = ch.pick(input(k));
      assert.notEqual(after, gone);
      if (after !== before[i]) {
        assert.equal(before[i], gone, `key ${k} moved though its target stayed healthy`);
        moved++;
      }
    });
    assert.ok(Math.abs(moved / keys.length - 1 / 4) <= 0.03, `moved ${moved} of ${keys.length}`);
    gone.state.isHealthy = true;
    keys.forEach((k, i) => assert.equal(ch.pick(input(k)), before[i]));
  });

  it('sends a retry that excludes the first target to the same next target every time', () => {
    const all = fleet(4);
    const ch = new ConsistentHashBalancer(all);
    const first = ch.pick(input('retry-me'))!;
    const second = ch.pick(input('retry-me', new Set([first])));
    assert.ok(second !== undefined && second !== first);
    for (let i = 0; i < 10; i++) assert.equal(ch.pick(input('retry-me', new Set([first]))), second);
  });

  it('spills a hot key over to other targets once its home exceeds the load bound', () => {
    const all = fleet(3);
    const ch = new ConsistentHashBalancer(all, { loadFactor: 1.25 });
    const home = ch.pick(input('hot'))!;
    const counts = new Map<Target, number>();
    for (let total = 0; total < 30; total++) {
      const c = ch.pick(input('hot')) as TestTarget;
      // The bound the paper gives: no target above ceil(c * (total + 1) / n) once this one is placed.
      assert.ok(c.state.inflight + 1 <= Math.ceil((1.25 * (total + 1)) / 3), `pick ${total} went over the bound`);
      c.state.inflight++;
      counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    assert.equal(counts.size, 3, 'every target took part of the hot key');
    assert.equal(counts.get(home), Math.ceil((1.25 * 30) / 3), 'the home target stays the most loaded, right at its bound');
  });

  it('keeps a hot key home while the load factor allows it', () => {
    const all = fleet(3);
    const ch = new ConsistentHashBalancer(all, { loadFactor: 10 });
    const home = ch.pick(input('hot')) as TestTarget;
    for (let i = 0; i < 30; i++) {
      assert.equal(ch.pick(input('hot')), home);
      home.state.inflight++;
    }
  });

  it('scales the load bound with weight', () => {
    const all = [candidate('http://light', 1), candidate('http://heavy', 3)];
    const ch = new ConsistentHashBalancer(all, { loadFactor: 1.25 });
    // Over 40 picks of many keys in flight at once the heavy target holds about 3/4 of them.
    for (let i = 0; i < 40; i++) (ch.pick(input(`k${i}`)) as TestTarget).state.inflight++;
    assert.ok(all[1]!.state.inflight >= 25, `heavy holds ${all[1]!.state.inflight} of 40`);
    assert.ok(all[0]!.state.inflight <= Math.ceil((1.25 * 40) / 4), `light holds ${all[0]!.state.inflight} of 40`);
  });

  it('spreads requests without a hash key by load', () => {
    const all = [candidate('a', 1, { inflight: 10 }), candidate('b')];
    const ch = new ConsistentHashBalancer(all, { random: mulberry32(5) });
    for (let i = 0; i < 50; i++) assert.equal(ch.pick(input(null)), all[1]);
  });

  it('rejects a load factor below 1', () => {
    assert.throws(() => new ConsistentHashBalancer(fleet(2), { loadFactor: 0.5 }), RangeError);
    assert.throws(() => createBalancer('consistent-hash', fleet(2), { loadFactor: Number.NaN }), RangeError);
  });
});

describe('toPromptPrefixKey', () => {
  const chat = (...messages: unknown[]): unknown => ({ model: 'm', messages });

  it('joins the system prompt and the first user message of a chat', () => {
    assert.equal(toPromptPrefixKey(chat({ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Hi' }), 100), 'You are terse.\nHi');
  });

  it('ignores the turns after the first user message, so a conversation keeps its key', () => {
    const turn1 = chat({ role: 'system', content: 'S' }, { role: 'user', content: 'Q1' });
    const turn3 = chat({ role: 'system', content: 'S' }, { role: 'user', content: 'Q1' }, { role: 'assistant', content: 'A1' }, { role: 'user', content: 'Q2' });
    assert.equal(toPromptPrefixKey(turn3, 100), toPromptPrefixKey(turn1, 100));
  });

  it('takes every system and developer message before the first user message', () => {
    const body = chat({ role: 'system', content: 'one' }, { role: 'developer', content: 'two' }, { role: 'user', content: 'three' });
    assert.equal(toPromptPrefixKey(body, 100), 'one\ntwo\nthree');
  });

  it('uses the text parts of array contents and skips images', () => {
    const body = chat({
      role: 'user',
      content: [{ type: 'text', text: 'Describe' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }, { type: 'text', text: 'briefly' }],
    });
    assert.equal(toPromptPrefixKey(body, 100), 'Describe\nbriefly');
  });

  it('cuts the key to the given number of characters', () => {
    const body = chat({ role: 'system', content: 'x'.repeat(500) }, { role: 'user', content: 'tail' });
    assert.equal(toPromptPrefixKey(body, 256), 'x'.repeat(256));
    assert.equal(toPromptPrefixKey({ prompt: 'abcdef' }, 3), 'abc');
  });

  it('uses the prompt of a completion, or its first element', () => {
    assert.equal(toPromptPrefixKey({ model: 'm', prompt: 'Once upon a time' }, 100), 'Once upon a time');
    assert.equal(toPromptPrefixKey({ model: 'm', prompt: ['first', 'second'] }, 100), 'first');
  });

  it('returns null when the body has nothing to hash', () => {
    for (const body of [null, undefined, 'text', 42, {}, { messages: [] }, chat({ role: 'assistant', content: 'hi' }), chat({ role: 'user', content: '' }), chat({ role: 'user', content: null }), chat('junk', 7), { prompt: [1, 2, 3] }, { prompt: '' }]) {
      assert.equal(toPromptPrefixKey(body, 100), null, JSON.stringify(body));
    }
    assert.equal(toPromptPrefixKey({ prompt: 'abc' }, 0), null);
  });
});

describe('LeastLoadBalancer', () => {
  const ll = (all: readonly Target[], opts: { staleMs?: number } = {}): LeastLoadBalancer => new LeastLoadBalancer(all, { random: mulberry32(9), ...opts });

  it('prefers the candidate whose sample shows the shorter queue', () => {
    const all = [candidate('a', 1, { load: sample(10, 5) }), candidate('b', 1, { load: sample(1, 5) }), candidate('c', 1, { load: sample(4, 0) })];
    const balancer = ll(all);
    for (let i = 0; i < 20; i++) assert.equal(balancer.pick(input()), all[1]);
  });

  it('counts waiting requests more than running ones', () => {
    // a: 3 waiting; b: 5 running at half weight = 2.5.
    const all = [candidate('a', 1, { load: sample(3, 0) }), candidate('b', 1, { load: sample(0, 5) })];
    assert.equal(ll(all).pick(input()), all[1]);
  });

  it('divides the queue by weight', () => {
    const all = [candidate('a', 2, { load: sample(6, 0) }), candidate('b', 1, { load: sample(4, 0) })];
    assert.equal(ll(all).pick(input()), all[0]);
  });

  it('breaks a tie in queue by KV-cache usage', () => {
    const all = [candidate('a', 1, { load: sample(2, 2, 0.7) }), candidate('b', 1, { load: sample(2, 2, 0.2) })];
    assert.equal(ll(all).pick(input()), all[1]);
  });

  it('lets the queue outweigh KV-cache usage below 80%', () => {
    const all = [candidate('a', 1, { load: sample(2, 0, 0.75) }), candidate('b', 1, { load: sample(3, 0, 0.1) })];
    assert.equal(ll(all).pick(input()), all[0]);
  });

  it('passes over a saturated target (more than 5 waiting per unit of weight, or KV cache above 80%) while another is not', () => {
    const kvFull = [candidate('a', 1, { load: sample(0, 1, 0.85) }), candidate('b', 1, { load: sample(4, 4, 0.1) })];
    assert.equal(ll(kvFull).pick(input()), kvFull[1]);
    const queued = [candidate('a', 1, { load: sample(6, 0) }), candidate('b', 1, { load: sample(4, 30) })];
    assert.equal(ll(queued).pick(input()), queued[1]);
    // When every target is saturated, the score decides among them.
    const all = [candidate('a', 1, { load: sample(9, 0) }), candidate('b', 1, { load: sample(7, 0) })];
    assert.equal(ll(all).pick(input()), all[1]);
  });

  it('sends a large request where the KV cache has room, a small one by queue', () => {
    // a: shorter queue, cache 60 % full with 2 running; b: two more running, cache 10 % full.
    const all = [candidate('a', 1, { load: sample(0, 2, 0.6) }), candidate('b', 1, { load: sample(0, 4, 0.1) })];
    const balancer = ll(all);
    // Small requests (1000 bytes) go by queue: a.
    for (let i = 0; i < 5; i++) assert.equal(balancer.pick({ ...input(), size: 1000 }), all[0]);
    // A request 20 times larger would not fit beside a's 60 %: b.
    assert.equal(balancer.pick({ ...input(), size: 20_000 }), all[1]);
  });

  it('counts the size of the requests it sent since the sample against the KV cache', () => {
    // Equal fleet; the first large request goes to one of them, the next large one must go to the other.
    const all = [candidate('a', 1, { load: sample(0, 2, 0.1) }), candidate('b', 1, { load: sample(0, 2, 0.1) })];
    const balancer = ll(all);
    for (let i = 0; i < 20; i++) (balancer.pick({ ...input(), size: 1000 }) as TestTarget).state.inflight++;
    const first = balancer.pick({ ...input(), size: 8000 }) as TestTarget;
    first.state.inflight++;
    const second = balancer.pick({ ...input(), size: 8000 });
    assert.notEqual(second, first);
  });

  it('weighs a queue by how long a request takes on each target, measured from vllm:request_success_total', () => {
    // Both run 4 and have 2 waiting; a finishes 40 requests a second, b (three times slower) 13.3.
    const a = candidate('a', 1, { load: { ...sample(2, 4, 0, NOW - 1000), requestsDone: 100 } });
    const b = candidate('b', 1, { load: { ...sample(1, 4, 0, NOW - 1000), requestsDone: 100 } });
    const balancer = ll([a, b]);
    assert.equal(balancer.pick(input(null, null, NOW - 1000)), b); // no measurement yet: the shorter queue
    a.state.load = { ...sample(2, 4), requestsDone: 140 };
    b.state.load = { ...sample(1, 4), requestsDone: 113 };
    // a: 2 + 0.5 x 4 = 4 at 100 ms a request; b: 1 + 2 = 3 at 300 ms: a is sooner.
    assert.equal(balancer.pick(input()), a);
  });

  it('avoids a nearly full KV cache even with a shorter queue', () => {
    const all = [candidate('a', 1, { load: sample(2, 0, 0.99) }), candidate('b', 1, { load: sample(4, 0, 0.3) })];
    assert.equal(ll(all).pick(input()), all[1]);
  });

  it('counts the requests it sent since the sample, so a burst between polls does not herd', () => {
    const all = [candidate('a', 1, { load: sample(2, 0) }), candidate('b', 1, { load: sample(2, 0) })];
    const balancer = ll(all);
    for (let i = 0; i < 10; i++) (balancer.pick(input()) as TestTarget).state.inflight++;
    assert.equal(all[0]!.state.inflight, 5);
    assert.equal(all[1]!.state.inflight, 5);
  });

  it('does not count again the requests its sample already shows', () => {
    // a's 8 in-flight requests are the 8 running in its sample; b's sample shows 6 waiting it did not send.
    const all = [candidate('a', 1, { inflight: 8, load: sample(0, 8) }), candidate('b', 1, { load: sample(6, 0) })];
    assert.equal(ll(all).pick(input()), all[0]);
  });

  it('falls back to least-request when a sample is stale', () => {
    // Least-load would take a (empty queue, were its sample fresh); least-request takes b (nothing in flight).
    const all = [candidate('a', 1, { inflight: 5, load: sample(0, 0, 0, NOW - 2001) }), candidate('b', 1, { load: sample(100, 0) })];
    const balancer = ll(all);
    for (let i = 0; i < 20; i++) assert.equal(balancer.pick(input()), all[1]);
  });

  it('falls back to least-request when a sample is missing', () => {
    const all = [candidate('a', 1, { inflight: 5, load: null }), candidate('b', 1, { load: sample(100, 0) })];
    assert.equal(ll(all).pick(input()), all[1]);
  });

  it('honours staleMs', () => {
    const all = [candidate('a', 1, { inflight: 5, load: sample(0, 0, 0, NOW - 3000) }), candidate('b', 1, { load: sample(100, 0) })];
    assert.equal(ll(all, { staleMs: 5000 }).pick(input()), all[0]);
  });

  it('ignores the missing samples of candidates it may not pick', () => {
    const all = [candidate('a', 1, { isHealthy: false }), candidate('b', 1, { inflight: 3, load: sample(0, 3) }), candidate('c', 1, { load: sample(9, 0) })];
    assert.equal(ll(all).pick(input()), all[1]);
  });

  it('still picks when a sample holds garbage numbers', () => {
    const all = [candidate('a', 1, { load: sample(Number.NaN, 0) }), candidate('b', 1, { load: sample(50, 0) })];
    assert.equal(ll(all).pick(input()), all[1]);
    const allGarbage = [candidate('a', 1, { load: sample(Number.NaN, 0) }), candidate('b', 1, { load: sample(0, Number.NaN) })];
    assert.ok(ll(allGarbage).pick(input()) !== undefined);
  });
});

describe('PrefixAwareBalancer', () => {
  const BLOCK = 16;
  const fleet = (n: number): TestTarget[] => Array.from({ length: n }, (_, i) => candidate(`http://10.0.2.${i + 1}:8000`));
  const blocksOf = (body: unknown): Uint32Array => toPromptBlocks(body, BLOCK, 1000)!;
  const pickFor = (b: PrefixAwareBalancer, body: unknown, excluded: ReadonlySet<Target> | null = null): Target | undefined =>
    b.pick({ excluded, hashKey: null, nowMs: NOW, blocks: blocksOf(body) });
  const text = (seed: string, chars: number): string => `${seed} `.repeat(Math.ceil(chars / (seed.length + 1))).slice(0, chars);
  /** conversation returns turn t's body: a system prompt, then t user/assistant exchanges and the next user message. */
  const conversation = (system: string, id: string, turn: number): unknown => {
    const messages: Array<{ role: string; content: string }> = [{ role: 'system', content: system }];
    for (let t = 0; t < turn; t++) messages.push({ role: 'user', content: text(`${id} question ${t}`, 100) }, { role: 'assistant', content: text(`${id} answer ${t}`, 150) });
    messages.push({ role: 'user', content: text(`${id} question ${turn}`, 100) });
    return { model: 'm', messages };
  };

  it('hashes blocks chained: equal blocks after different text hash differently, a shared start hashes alike', () => {
    const a = blocksOf({ prompt: 'A'.repeat(16) + 'same block here!' + 'tail' });
    const b = blocksOf({ prompt: 'B'.repeat(16) + 'same block here!' });
    const c = blocksOf({ prompt: 'A'.repeat(16) + 'same block here!' + 'another ending, long enough' });
    assert.equal(a.length, 2, 'a last partial block is not hashed');
    assert.notEqual(a[1], b[1]);
    assert.deepEqual([...c.slice(0, 2)], [...a]);
    assert.equal(toPromptBlocks({ prompt: 'short' }, BLOCK, 1000), null);
  });

  it('hashes chat messages in order, with their roles, and stops at maxBlocks', () => {
    const user = blocksOf({ messages: [{ role: 'user', content: 'x'.repeat(64) }] });
    const system = blocksOf({ messages: [{ role: 'system', content: 'x'.repeat(64) }] });
    assert.notEqual(user[0], system[0]);
    const parts = blocksOf({ messages: [{ role: 'user', content: [{ type: 'text', text: 'x'.repeat(32) }, { type: 'image_url', image_url: { url: 'data:,' } }, { type: 'text', text: 'x'.repeat(32) }] }] });
    assert.deepEqual([...parts], [...user]);
    assert.equal(toPromptBlocks({ prompt: 'y'.repeat(1000) }, BLOCK, 5)!.length, 5);
    for (const body of [null, 'text', {}, { messages: 'no' }, { prompt: [1, 2, 3] }]) assert.equal(toPromptBlocks(body, BLOCK, 10), null, JSON.stringify(body));
  });

  it('keeps at most its capacity of blocks, evicting the tails of the oldest prompts first', () => {
    const index = new PrefixIndex(10);
    const first = blocksOf({ prompt: text('first', 8 * BLOCK) });
    const second = blocksOf({ prompt: text('second', 6 * BLOCK) });
    index.record(first);
    assert.equal(index.matched(first), 8);
    index.record(second);
    assert.equal(index.size, 10);
    assert.equal(index.matched(second), 6);
    // Four of first's eight blocks are left, and they are its first four: a prefix still matches.
    assert.equal(index.matched(first), 4);
  });

  it('sends every turn of a conversation to the replica that served the turn before', () => {
    const all = fleet(3);
    const b = new PrefixAwareBalancer(all, { cacheBlocks: 4096 });
    const home = new Map<string, Target>();
    for (let turn = 0; turn < 8; turn++) {
      for (let conv = 0; conv < 12; conv++) {
        const id = `conversation ${conv}`;
        const picked = pickFor(b, conversation(text(`${conv}: system prompt`, 300), id, turn))!;
        if (turn === 0) home.set(id, picked);
        else assert.equal(picked, home.get(id), `${id} turn ${turn}`);
      }
    }
    assert.equal(new Set(home.values()).size, 3, 'first turns spread over the fleet');
  });

  it('hits on a shared system prompt, then follows each conversation', () => {
    const all = fleet(3);
    const b = new PrefixAwareBalancer(all);
    const system = text('You are a helpful assistant of the shared tenant', 1000);
    const index = (t: Target): PrefixIndex => t.state.prefixIndex!;
    const first = pickFor(b, conversation(system, 'c0', 0))!;
    const systemBlocks = blocksOf({ messages: [{ role: 'system', content: system }] });
    // A new conversation under the same system prompt goes where that prompt is cached.
    assert.equal(pickFor(b, conversation(system, 'c1', 0)), first);
    assert.equal(index(first).matched(systemBlocks), systemBlocks.length);
    // Under load, the other replicas learn the prompt too; then each conversation keeps to its own.
    first.state.inflight = 3;
    const second = pickFor(b, conversation(system, 'c2', 0))!;
    assert.notEqual(second, first);
    assert.equal(index(second).matched(systemBlocks), systemBlocks.length);
    first.state.inflight = 0;
    assert.equal(pickFor(b, conversation(system, 'c2', 1)), second);
    assert.equal(pickFor(b, conversation(system, 'c0', 1)), first);
  });

  it('skips the longest match when its load exceeds the bound, for the next best match', () => {
    const [a, b, c] = fleet(3) as [TestTarget, TestTarget, TestTarget];
    const bal = new PrefixAwareBalancer([a, b, c]);
    const long = { prompt: text('long shared document', 20 * BLOCK) };
    const short = { prompt: text('long shared document', 8 * BLOCK) + text('other', 4 * BLOCK) };
    a.state.prefixIndex!.record(blocksOf(long));
    b.state.prefixIndex!.record(blocksOf(short));
    assert.equal(pickFor(bal, long), a);
    a.state.inflight = 6;
    b.state.inflight = 2;
    c.state.inflight = 2;
    // At hash_load_factor 2 the bound is ceil(2 x 11 / 3) = 8: a (7 with this one) keeps it.
    assert.equal(pickFor(new PrefixAwareBalancer([a, b, c], { loadFactor: 2 }), long), a);
    // At 1.25 it is ceil(1.25 x 11 / 3) = 5, 6 for a as the prompt's home (see below): a is skipped for b, the next longest match, not for the idler c.
    assert.equal(pickFor(bal, long), b);
  });

  it("lets a conversation's home take one request over the bound, but not a replica that only shares its start", () => {
    const [a, b, c] = fleet(3) as [TestTarget, TestTarget, TestTarget];
    const bal = new PrefixAwareBalancer([a, b, c]);
    const system = text('You are the assistant of the shared tenant', 10 * BLOCK);
    const turn = conversation(system, 'own', 3);
    a.state.prefixIndex!.record(blocksOf(turn));
    b.state.prefixIndex!.record(blocksOf(conversation(system, 'other', 0)));
    // a holds the whole history, b only the system prompt (less than half of a's match): a is the conversation's home.
    a.state.inflight = 4;
    b.state.inflight = 2;
    c.state.inflight = 2;
    // The bound is ceil(1.25 x 9 / 3) = 4; a's fifth request is within its one request of slack.
    assert.equal(pickFor(bal, turn), a);
    a.state.inflight = 6;
    assert.equal(pickFor(bal, turn), b, 'beyond the slack it spills to the next longest match');
    // A prompt whose start several replicas hold (a shared system prompt) gets no slack: the load bound decides.
    const fresh = conversation(system, 'new', 0);
    c.state.prefixIndex!.record(blocksOf(fresh));
    a.state.prefixIndex!.record(blocksOf(fresh));
    a.state.inflight = 4;
    b.state.inflight = 2;
    c.state.inflight = 2;
    assert.equal(pickFor(bal, fresh), c, 'a ties with c on the whole prompt, and a is over the bound');
  });

  it('sends a prompt no replica holds to the least loaded one, and records it there', () => {
    const [a, b, c] = fleet(3) as [TestTarget, TestTarget, TestTarget];
    a.state.inflight = 2;
    b.state.inflight = 1;
    c.state.inflight = 3;
    const bal = new PrefixAwareBalancer([a, b, c]);
    const body = { prompt: text('fresh', 5 * BLOCK) };
    assert.equal(pickFor(bal, body), b);
    assert.equal(b.state.prefixIndex!.matched(blocksOf(body)), 5);
    assert.equal(a.state.prefixIndex!.size, 0);
  });

  it('never picks an excluded replica even when it holds the prompt', () => {
    const [a, b] = fleet(2) as [TestTarget, TestTarget];
    const bal = new PrefixAwareBalancer([a, b]);
    const body = { prompt: text('retry me', 4 * BLOCK) };
    assert.equal(pickFor(bal, body), a);
    assert.equal(pickFor(bal, body, new Set([a])), b);
  });

  it('keeps the index on the target state, so a rebuilt balancer (reload, DNS change) still hits', () => {
    const all = fleet(3);
    const body = conversation('system', 'kept', 2);
    const picked = pickFor(new PrefixAwareBalancer(all), body);
    for (let i = 0; i < 5; i++) assert.equal(pickFor(new PrefixAwareBalancer([...all].reverse()), body), picked);
  });

  it('rejects bad options', () => {
    assert.throws(() => new PrefixAwareBalancer(fleet(2), { loadFactor: 0.5 }), RangeError);
    assert.throws(() => new PrefixAwareBalancer(fleet(2), { cacheBlocks: 0 }), RangeError);
  });
});
