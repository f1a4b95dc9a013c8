import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PathRoute } from '../../src/config/index.js';
import { matchPath } from '../../src/routing/index.js';

function routes(...paths: string[]): { map: Map<string, PathRoute>; maxDepth: number } {
  const map = new Map<string, PathRoute>();
  let maxDepth = 0;
  for (const p of paths) {
    map.set(p, { path: p, byName: new Map(), byServedModel: new Map(), learning: [], byAdapter: new Map(), learningAdapters: [], models: [] });
    maxDepth = Math.max(maxDepth, p === '' ? 0 : p.split('/').length - 1);
  }
  return { map, maxDepth };
}

describe('matchPath', () => {
  const { map, maxDepth } = routes('', '/ai', '/ai/models', '/ai/models/deep');
  const cases: Array<[string, string | null, string]> = [
    ['/ai/models/v1/chat/completions', '/ai/models', '/v1/chat/completions'],
    ['/ai/models', '/ai/models', '/'],
    ['/ai/models/', '/ai/models', '/'],
    ['/ai/models/deep/v1/models', '/ai/models/deep', '/v1/models'],
    ['/ai/modelsX/v1', '/ai', '/modelsX/v1'],
    ['/ai', '/ai', '/'],
    ['/aix', '', '/aix'],
    ['/v1/models', '', '/v1/models'],
    ['/', '', '/'],
  ];
  for (const [path, prefix, rest] of cases) {
    it(`matches ${path} to "${prefix}" leaving ${rest}`, () => {
      const m = matchPath(map, maxDepth, path);
      assert.equal(m?.route.path, prefix);
      assert.equal(m?.rest, rest);
    });
  }

  it('returns null when nothing matches and there is no root route', () => {
    const r = routes('/ai/models');
    assert.equal(matchPath(r.map, r.maxDepth, '/other/v1'), null);
    assert.equal(matchPath(r.map, r.maxDepth, '/ai/modelsX'), null);
    assert.equal(matchPath(r.map, r.maxDepth, '/ai'), null);
  });

  it('costs the same with 10,000 routes: only segment cuts are looked up', () => {
    const paths = Array.from({ length: 10_000 }, (_, i) => `/team${i}/models`);
    const r = routes(...paths);
    let lookups = 0;
    const counting = new Proxy(r.map, {
      get(target, prop, recv) {
        if (prop === 'get') return (k: string) => (lookups++, target.get(k));
        const v = Reflect.get(target, prop, recv) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    assert.equal(matchPath(counting, r.maxDepth, '/team9999/models/v1/chat/completions')?.route.path, '/team9999/models');
    assert.equal(lookups, 1);
  });
});
