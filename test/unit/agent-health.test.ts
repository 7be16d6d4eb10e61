import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { HealthMonitor } from '../../src/agent/health.ts';

describe('HealthMonitor', () => {
  it('is healthy while nothing is stuck', async () => {
    const health = new HealthMonitor({ reconcileBusySince: () => undefined });
    await sleep(1200);
    assert.equal(health.problem(), undefined);
    health.close();
  });

  it('reports an event-loop stall after it ended', async () => {
    const health = new HealthMonitor({
      reconcileBusySince: () => undefined,
      eventLoopStallMs: 300,
    });
    const until = Date.now() + 2500;
    while (Date.now() < until) {
      // A handler that computes instead of yielding.
    }
    await sleep(1200);
    assert.match(health.problem() ?? '', /^event loop stalled/);
    health.close();
  });

  it('reports a reconcile pass that has run too long', () => {
    const started = Date.now() - 5000;
    const health = new HealthMonitor({ reconcileBusySince: () => started, reconcileStallMs: 1000 });
    assert.match(health.problem() ?? '', /^discovery reconcile stuck/);
    health.close();
  });
});
