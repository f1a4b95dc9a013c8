/**
 * The config lifecycle: compiling is pure (it reads the live registries and changes none of
 * them), a swap commits the new snapshot to them, and the registries forget targets, pools and
 * semaphores nothing uses any more, once their last request has ended.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileSnapshot, ConfigStore, loadConfigText, type LoadedConfig, type Registries } from '../../src/config/index.js';
import { SemaphoreRegistry } from '../../src/ratelimit/index.js';
import { PoolRegistry, TargetRegistry } from '../../src/upstream/index.js';

const PASSIVE = { isEnabled: true, failures: 3, ejectionMs: 1000, maxEjectionMs: 1000, statusCodes: new Set([503]) };

function load(config: object): LoadedConfig {
  return loadConfigText(JSON.stringify(config), { file: 'gateway.json', baseDir: '/', env: {} });
}

function registries(): Registries & { targets: TargetRegistry; semaphores: SemaphoreRegistry } {
  return { targets: new TargetRegistry(), semaphores: new SemaphoreRegistry() };
}

const modelWith = (urls: string[], extra: object = {}): object => ({ name: 'm', targets: urls.map((url) => ({ url })), health_check: { active: false }, ...extra });
const dnsModel = (name: string): object => ({ name, targets: [{ url: 'http://10.9.9.9:8000' }, { dns: `${name}.svc:8000` }], health_check: { active: false } });

describe('config lifecycle', () => {
  it('compiles without touching the live registries: semaphores resize and targets register only when a swap commits', () => {
    const regs = registries();
    const limited = (max: number, urls: string[]): LoadedConfig => load({ models: [modelWith(urls, { limits: { concurrency: { max, queue: 1 } } })] });
    const store = new ConfigStore(limited(2, ['http://10.0.0.1:8000']), { registries: regs });
    const sem = store.current.models[0]!.limits!.scopes[0]!.semaphore!;
    assert.equal(sem.max, 2);
    assert.equal(regs.targets.size, 1);

    // A compile whose swap is never decided (validate, or a reload refused later) changes nothing live.
    const pending = compileSnapshot(limited(5, ['http://10.0.0.1:8000', 'http://10.0.0.2:8000']), { registry: regs.targets, semaphores: regs.semaphores });
    assert.equal(sem.max, 2);
    assert.equal(regs.targets.size, 1);
    assert.equal(regs.targets.find('http://10.0.0.2:8000'), undefined);
    // It attaches to the live state it found: the same semaphore and the same target record.
    assert.equal(pending.models[0]!.limits!.scopes[0]!.semaphore, sem);
    assert.equal(pending.models[0]!.targets[0]!.state, store.current.models[0]!.targets[0]!.state);

    assert.equal(store.swap(limited(5, ['http://10.0.0.1:8000', 'http://10.0.0.2:8000'])), 'applied');
    assert.equal(sem.max, 5);
    assert.equal(store.current.models[0]!.limits!.scopes[0]!.semaphore, sem);
    assert.equal(regs.targets.size, 2);
  });

  it('keeps the state of targets a reload keeps, and drops a removed target once its request ends', () => {
    const regs = registries();
    const store = new ConfigStore(load({ models: [modelWith(['http://10.0.0.1:8000', 'http://10.0.0.2:8000'])] }), { registries: regs });
    const [kept, removed] = store.current.models[0]!.targets.map((t) => t.state);
    removed!.begin();
    store.swap(load({ models: [modelWith(['http://10.0.0.1:8000'])] }));
    assert.equal(store.current.models[0]!.targets[0]!.state, kept);
    // Still running a request: kept until it ends.
    assert.equal(regs.targets.find('http://10.0.0.2:8000'), removed);
    removed!.end('success', PASSIVE, Date.now());
    assert.equal(regs.targets.find('http://10.0.0.2:8000'), undefined);
    assert.equal(regs.targets.size, 1);
  });

  it('forgets a semaphore whose scope left the configuration once it is idle', () => {
    const regs = registries();
    const store = new ConfigStore(load({ models: [modelWith(['http://10.0.0.1:8000'], { limits: { concurrency: { max: 1 } } })] }), { registries: regs });
    assert.equal(regs.semaphores.size, 1);
    store.swap(load({ models: [modelWith(['http://10.0.0.1:8000'])] }));
    assert.equal(regs.semaphores.size, 0);
  });

  it('keeps the record of a target DNS found across a reload, until the new upstream has looked the name up', () => {
    const regs = registries();
    const store = new ConfigStore(load({ models: [dnsModel('a')] }), { registries: regs });
    store.current.models[0]!.upstream.setDiscovered(0, ['http://10.1.0.1:8000', 'http://10.1.0.2:8000'], 1);
    const record = regs.targets.find('http://10.1.0.1:8000')!;
    assert.ok(record);
    store.swap(load({ models: [dnsModel('a')], limits: { requests: { per_day: 10 } } }));
    assert.equal(regs.targets.find('http://10.1.0.1:8000'), record);
    store.current.models[0]!.upstream.setDiscovered(0, ['http://10.1.0.1:8000'], 1);
    assert.equal(store.current.models[0]!.upstream.targets.find((t) => t.url === 'http://10.1.0.1:8000')!.state, record);
    assert.equal(regs.targets.find('http://10.1.0.2:8000'), undefined);
  });

  it('leaves the registries bounded after 1,000 changes of the targets DNS finds', async () => {
    const regs = registries();
    const pools = new PoolRegistry();
    regs.targets.onOriginUnused = (origin) => void pools.forget(origin);
    const store = new ConfigStore(load({ models: [dnsModel('a'), dnsModel('b')] }), { registries: regs });
    let [a, b] = store.current.models;
    for (let i = 0; i < 1000; i++) {
      // Two models, each seeing two pods of a scaling deployment: every change brings a new address.
      const pod = (n: number): string => `http://10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}:8000`;
      assert.equal(a!.upstream.setDiscovered(0, [pod(2 * i), pod(2 * i + 1)], 1), true);
      b!.upstream.setDiscovered(0, [pod(2 * i + 1), pod(2 * i + 2)], 1);
      // Requests reach the new targets through their pools.
      for (const t of a!.upstream.targets) pools.forwarder(t.origin, 1000, true);
      if (i % 100 === 0) {
        // A reload in the middle: the new upstreams take over what DNS found.
        store.swap(load({ models: [dnsModel('a'), dnsModel('b')], limits: { requests: { per_day: 1_000_000 + i } } }));
        [a, b] = store.current.models;
      }
    }
    // The static target plus each model's two pods (one shared), whatever came before.
    assert.ok(regs.targets.size <= 4, `registry holds ${regs.targets.size} records`);
    assert.ok(pools.size <= 4, `registry holds ${pools.size} pools`);
    await pools.destroy();
  });
});
