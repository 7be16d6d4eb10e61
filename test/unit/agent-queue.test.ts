import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Agent } from '../../src/agent/agent.ts';
import { discardingPublisher } from '../../src/agent/discarding-publisher.ts';
import type { Discovery } from '../../src/api/types.ts';
import { AgentMetrics } from '../../src/metrics.ts';
import { RegistryRejectedError, RegistryUnavailableError } from '../../src/registry/errors.ts';
import { MemoryRegistry } from './memory-registry.ts';

/** A simulated Discovery listing `count` devices. */
function discovery(name: string, count: number, extra: Partial<Discovery['spec']> = {}): Discovery {
  const devices = Array.from({ length: count }, (_, i) => ({ id: `${name}-${i}`, properties: {} }));
  return {
    apiVersion: 'edgebridge.io/v1alpha1',
    kind: 'Discovery',
    metadata: { name, namespace: 'default', uid: `uid-${name}` },
    spec: { handler: { name: 'simulated', details: { devices } }, gracePeriodSeconds: 0, ...extra },
  };
}

/** Polls `check` until it holds; fails naming `what` after `timeoutMs`. */
async function until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function startAgent(registry: MemoryRegistry, workers?: number, resyncMs?: number) {
  const metrics = new AgentMetrics({ processMetrics: false });
  const agent = new Agent({
    node: 'n1',
    registry,
    log: pino({ level: 'silent' }),
    metrics,
    publishers: () => discardingPublisher(metrics.publishDropped),
    ...(workers !== undefined ? { workers } : {}),
    ...(resyncMs !== undefined ? { resyncMs } : {}),
  });
  const abort = new AbortController();
  const running = agent.run(abort.signal);
  return {
    agent,
    metrics,
    stop: async () => {
      abort.abort();
      await running;
    },
  };
}

describe('the agent on its reconcile queue', () => {
  it('starts a new Discovery while a large one’s slices are still being deleted', async () => {
    const registry = new MemoryRegistry();
    registry.setDiscoveries([discovery('large', 300)]);
    const { stop } = startAgent(registry);
    // Each deletion waits until the test lets it through.
    const held: (() => void)[] = [];
    try {
      await until(
        'the large discovery’s devices',
        () => registry.devicesOf('large').length === 300,
      );
      registry.onRemove = () => new Promise<void>((resolve) => held.push(resolve));
      registry.setDiscoveries([]);
      await until('the deletion to start', () => held.length > 0);
      registry.setDiscoveries([discovery('small', 1)]);
      await until('the small discovery’s device', () => registry.devicesOf('small').length === 1);
      assert.equal(registry.devicesOf('large').length, 300, 'the large one’s slices were all held');
      for (const release of held.splice(0)) release();
      await until(
        'the large discovery’s slices to go',
        () => registry.devicesOf('large').length === 0,
      );
    } finally {
      registry.onRemove = undefined;
      for (const release of held.splice(0)) release();
      await stop();
    }
  });

  it('retries a removal that failed until every device has left', async () => {
    const registry = new MemoryRegistry();
    registry.setDiscoveries([discovery('gone', 5)]);
    const { stop, metrics } = startAgent(registry);
    try {
      await until('the devices', () => registry.devicesOf('gone').length === 5);
      let failures = 3;
      registry.onRemove = () =>
        failures-- > 0
          ? Promise.reject(new RegistryUnavailableError('connection refused'))
          : Promise.resolve();
      registry.setDiscoveries([]);
      await until('the devices to go', () => registry.devicesOf('gone').length === 0);
      const retries = (
        await metrics.registry.getSingleMetric('edgebridge_workqueue_retries_total')?.get()
      )?.values[0]?.value;
      assert.ok((retries ?? 0) >= 1, 'the key was requeued');
    } finally {
      await stop();
    }
  });

  it('requeues a Discovery whose node labels could not be read, and runs it once they can', async () => {
    const registry = new MemoryRegistry();
    let reads = 0;
    registry.nodeLabelsHook = () =>
      ++reads === 1
        ? Promise.reject(new RegistryUnavailableError('connection refused'))
        : Promise.resolve({ zone: 'a' });
    registry.setDiscoveries([
      discovery('zoned', 2, { nodeSelector: { matchLabels: { zone: 'a' } } }),
    ]);
    const { agent, stop } = startAgent(registry);
    try {
      // Well inside the agent's 60 s resync: only a requeue with backoff is this quick.
      await until(
        'the zoned discovery’s devices',
        () => registry.devicesOf('zoned').length === 2,
        30_000,
      );
      assert.ok(reads >= 2);
      assert.equal(agent.ready, true);
    } finally {
      await stop();
    }
  });

  it('does not retry a refused node-label read with backoff, but tries again at the resync', async () => {
    const registry = new MemoryRegistry();
    let reads = 0;
    registry.nodeLabelsHook = () =>
      ++reads === 1
        ? Promise.reject(new RegistryRejectedError('nodes is forbidden', 403))
        : Promise.resolve({ zone: 'a' });
    registry.setDiscoveries([
      discovery('zoned', 1, { nodeSelector: { matchLabels: { zone: 'a' } } }),
    ]);
    const { stop, metrics } = startAgent(registry, undefined, 1000);
    try {
      await until('the zoned discovery’s device', () => registry.devicesOf('zoned').length === 1);
      const outcomes = (await metrics.registry.getSingleMetric('edgebridge_reconcile_total')?.get())
        ?.values;
      const count = (outcome: string): number =>
        outcomes?.find((v) => v.labels.outcome === outcome)?.value ?? 0;
      assert.equal(count('terminal'), 1);
      assert.equal(count('error'), 0, 'never requeued with backoff');
    } finally {
      await stop();
    }
  });
});
