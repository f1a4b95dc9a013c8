import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TargetState, type HealthPolicy, type PassivePolicy } from '../../src/upstream/index.js';

const passive: PassivePolicy = { isEnabled: true, failures: 3, ejectionMs: 40, maxEjectionMs: 100, statusCodes: new Set([503]) };
const policy: HealthPolicy = { path: '/health', isActive: true, intervalMs: 10, timeoutMs: 10, healthyThreshold: 2, unhealthyThreshold: 3, passive };

const fail = (r: TargetState): void => {
  r.begin();
  r.end('failure', passive, Date.now());
};
const waitHealthy = async (r: TargetState, timeoutMs: number): Promise<number> => {
  const t0 = Date.now();
  while (!r.isHealthy) {
    if (Date.now() - t0 > timeoutMs) throw new Error('still unhealthy');
    await new Promise((res) => setTimeout(res, 2));
  }
  return Date.now() - t0;
};

describe('target health', () => {
  it('ejects after N consecutive failures, and a success in between resets the count', () => {
    const r = new TargetState('http://t');
    fail(r);
    fail(r);
    r.begin();
    r.end('success', passive, Date.now());
    fail(r);
    fail(r);
    assert.equal(r.isHealthy, true);
    fail(r);
    assert.equal(r.isHealthy, false);
    assert.ok(r.ejectedUntilMs > Date.now());
    r.dispose();
  });

  it('lets exactly one half-open trial through after the ejection, then doubles the next ejection on failure', async () => {
    const r = new TargetState('http://t');
    for (let i = 0; i < 3; i++) fail(r);
    await waitHealthy(r, 500);
    r.begin();
    assert.equal(r.isHealthy, false, 'the trial holds the target for itself');
    r.end('failure', passive, Date.now());
    assert.equal(r.isHealthy, false);
    const second = r.ejectedUntilMs - Date.now();
    assert.ok(second > 60 && second <= 80, `second ejection ${second} ms is doubled`);
    await waitHealthy(r, 500);
    r.begin();
    r.end('success', passive, Date.now());
    assert.equal(r.isHealthy, true);
    // The doubling was reset by the successful trial.
    for (let i = 0; i < 3; i++) fail(r);
    assert.ok(r.ejectedUntilMs - Date.now() <= 40);
    r.dispose();
  });

  it('a client that leaves during the trial does not decide it', async () => {
    const r = new TargetState('http://t');
    for (let i = 0; i < 3; i++) fail(r);
    await waitHealthy(r, 500);
    r.begin();
    r.end('neutral', passive, Date.now());
    assert.equal(r.isHealthy, true);
    r.dispose();
  });

  it('active checks: out after the unhealthy threshold, back after the healthy threshold, ending a stale ejection', () => {
    const r = new TargetState('http://t');
    for (let i = 0; i < 3; i++) fail(r);
    r.activeResult(false, policy);
    r.activeResult(false, policy);
    assert.equal(r.isActiveHealthy, true);
    r.activeResult(false, policy);
    assert.equal(r.isActiveHealthy, false);
    r.activeResult(true, policy);
    assert.equal(r.isHealthy, false);
    r.activeResult(true, policy);
    assert.equal(r.isHealthy, true, 'back up: the ejection from before the restart is dropped');
    r.dispose();
  });

  it('passing probes do not end an ejection earned by failing requests', () => {
    const r = new TargetState('http://t');
    for (let i = 0; i < 3; i++) fail(r);
    for (let i = 0; i < 5; i++) r.activeResult(true, policy);
    assert.equal(r.isHealthy, false);
    r.dispose();
  });
});
