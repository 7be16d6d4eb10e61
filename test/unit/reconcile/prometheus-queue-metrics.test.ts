import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AgentMetrics } from '../../../src/metrics.ts';

describe('the agent’s discovery queue metrics', () => {
  it('expose depth, adds, retries, reconcile durations and outcomes labelled with the queue', async () => {
    const metrics = new AgentMetrics({ processMetrics: false });
    const q = metrics.discoveryQueue;
    q.added();
    q.added();
    q.depth(2);
    q.retried();
    q.reconciled('error', 0.2);
    q.reconciled('done', 0.01);
    const text = await metrics.registry.metrics();
    for (const line of [
      'edgebridge_workqueue_depth{name="discovery"} 2',
      'edgebridge_workqueue_adds_total{name="discovery"} 2',
      'edgebridge_workqueue_retries_total{name="discovery"} 1',
      'edgebridge_reconcile_duration_seconds_count{name="discovery"} 2',
      'edgebridge_reconcile_total{name="discovery",outcome="error"} 1',
      'edgebridge_reconcile_total{name="discovery",outcome="done"} 1',
    ])
      assert.ok(text.split('\n').includes(line), `${line} in:\n${text}`);
  });
});
