import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { NodeSlices } from '../../../src/agent/node-slices.ts';
import { SliceSync } from '../../../src/agent/slice-sync.ts';
import type { Discovery } from '../../../src/api/types.ts';
import type { DeviceSlice } from '../../../src/api/types.ts';
import { AdaptiveLimit } from '../../../src/util/adaptive-limit.ts';
import { MemoryRegistry } from '../memory-registry.ts';

const discovery: Discovery = {
  apiVersion: 'edgebridge.io/v1alpha1',
  kind: 'Discovery',
  metadata: { name: 'cams', namespace: 'default', uid: 'uid-cams' },
  spec: { handler: { name: 'simulated' } },
};

/** A MemoryRegistry whose slice writes are counted, and a sync of node n1 on it. */
async function syncOn(graceSeconds = 60) {
  const registry = new MemoryRegistry();
  let puts = 0;
  const put = registry.putSlice.bind(registry);
  registry.putSlice = (slice: DeviceSlice) => {
    puts++;
    return put(slice);
  };
  const log = pino({ level: 'silent' });
  const slices = new NodeSlices(registry, 'n1', log);
  const abort = new AbortController();
  const watching = slices.run(abort.signal);
  await slices.synced(abort.signal);
  const sync = new SliceSync({
    discovery,
    shared: true,
    node: 'n1',
    store: registry,
    slices,
    nodeUid: () => undefined,
    writeLimit: new AdaptiveLimit(),
    graceSeconds,
    log,
    onError: () => undefined,
    onCount: () => undefined,
  });
  return {
    registry,
    sync,
    puts: () => puts,
    stop: async () => {
      await sync.close();
      abort.abort();
      await watching;
    },
  };
}

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; !check(); i++) {
    assert.ok(i < 500, `timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('SliceSync', () => {
  it('writes lists that come close together as one write, and an unchanged list not at all', async () => {
    const { registry, sync, puts, stop } = await syncOn();
    try {
      sync.observe([{ id: 'a', properties: {} }]);
      sync.observe([
        { id: 'a', properties: {} },
        { id: 'b', properties: {} },
      ]);
      await until('both devices stored', () => registry.devicesOf('cams').length === 2);
      assert.equal(puts(), 1);
      sync.observe([
        { id: 'a', properties: {} },
        { id: 'b', properties: {} },
      ]);
      sync.reconcile();
      await sleep(400);
      assert.equal(puts(), 1, 'nothing changed: nothing written');
    } finally {
      await stop();
    }
  });

  it('keeps a device that left the list within its grace period, and puts back a slice deleted behind its back', async () => {
    const { registry, sync, stop } = await syncOn(3600);
    try {
      sync.observe([
        { id: 'a', properties: {} },
        { id: 'b', properties: {} },
      ]);
      await until('both devices stored', () => registry.devicesOf('cams').length === 2);
      sync.observe([
        { id: 'a', properties: {} },
        { id: 'c', properties: {} },
      ]);
      await until('c stored', () => registry.devicesOf('cams').includes('c'));
      assert.deepEqual(registry.devicesOf('cams'), ['a', 'b', 'c'], 'b is within its grace period');
      await registry.deleteSlice('default', 'cams-n1-0');
      await until('the slice put back', () => registry.devicesOf('cams').length === 3);
    } finally {
      await stop();
    }
  });
});
