import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { NodeSlices } from '../../../src/agent/node-slices.ts';
import { COALESCE_MS, RETURN_JITTER_MS, SliceSync } from '../../../src/agent/slice-sync.ts';
import type { Discovery } from '../../../src/api/types.ts';
import type { DeviceSlice } from '../../../src/api/types.ts';
import type { Clock } from '../../../src/reconcile/clock.ts';
import { RegistryUnavailableError } from '../../../src/registry/errors.ts';
import { AdaptiveLimit } from '../../../src/util/adaptive-limit.ts';
import { MemoryRegistry } from '../memory-registry.ts';
import { FakeClock } from '../reconcile/fake-clock.ts';

const discovery: Discovery = {
  apiVersion: 'edgebridge.io/v1alpha1',
  kind: 'Discovery',
  metadata: { name: 'cams', namespace: 'default', uid: 'uid-cams' },
  spec: { handler: { name: 'simulated' } },
};

/**
 * A MemoryRegistry whose slice writes are counted (failing while `down` is
 * set), and a sync of node n1 on it.
 */
async function syncOn(graceSeconds = 60, time: { clock?: Clock; random?: () => number } = {}) {
  const registry = new MemoryRegistry();
  let puts = 0;
  const link = { down: false };
  const put = registry.putSlice.bind(registry);
  registry.putSlice = (slice: DeviceSlice) => {
    puts++;
    if (link.down) return Promise.reject(new RegistryUnavailableError('link cut'));
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
    ...time,
  });
  return {
    registry,
    sync,
    link,
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

/** Lets the sync's pass (promises on the memory registry) run to its end. */
const settle = (): Promise<void> => sleep(50);

const listed = (...ids: string[]) => ids.map((id) => ({ id, properties: {} }));

describe('SliceSync', () => {
  it('writes the first list after a quiet spell at once, and what follows at most once per COALESCE_MS', async () => {
    const clock = new FakeClock();
    const { registry, sync, puts, stop } = await syncOn(60, { clock });
    try {
      sync.observe(listed('a'));
      clock.advance(0);
      await until('a stored', () => registry.devicesOf('cams').length === 1);
      assert.equal(puts(), 1);

      // A burst right after that pass: held until COALESCE_MS after it began, then one write.
      sync.observe(listed('a', 'b'));
      sync.observe(listed('a', 'b', 'c'));
      clock.advance(COALESCE_MS - 1);
      await settle();
      assert.equal(puts(), 1, 'the burst waits for the rest of the coalescing delay');
      clock.advance(1);
      await until('b and c stored', () => registry.devicesOf('cams').length === 3);
      assert.equal(puts(), 2, 'the burst made one write');

      // Quiet again: the next change goes at once.
      clock.advance(10 * COALESCE_MS);
      sync.observe(listed('a', 'b', 'c', 'd'));
      clock.advance(0);
      await until('d stored', () => registry.devicesOf('cams').length === 4);
      assert.equal(puts(), 3);
    } finally {
      await stop();
    }
  });

  it("writes a condition set before the handler's first list with that list, or alone after COALESCE_MS", async () => {
    const clock = new FakeClock();
    const { registry, sync, puts, stop } = await syncOn(60, { clock });
    const valid = { type: 'DetailsValid', status: 'True', reason: 'Valid', message: 'ok' } as const;
    const conditions = () => registry.slices.get('default/cams-n1-0')?.spec.conditions ?? [];
    try {
      sync.setCondition(valid);
      clock.advance(COALESCE_MS / 2);
      await settle();
      assert.equal(puts(), 0, 'the condition waits for the first list');
      sync.observe(listed('a'));
      clock.advance(0);
      await until('a stored', () => registry.devicesOf('cams').length === 1);
      assert.equal(puts(), 1, 'condition and devices in one write');
      assert.equal(conditions()[0]?.type, 'DetailsValid');
    } finally {
      await stop();
    }
    const alone = await syncOn(60, { clock });
    try {
      alone.sync.setCondition({ ...valid, status: 'False', reason: 'InvalidDetails' });
      clock.advance(COALESCE_MS - 1);
      await settle();
      assert.equal(alone.puts(), 0);
      clock.advance(1);
      await until('the condition stored', () => alone.puts() === 1);
    } finally {
      await alone.stop();
    }
  });

  it('retries writes that failed while the registry was unreachable within RETURN_JITTER_MS once it answers, not at the end of their backoff', async () => {
    const clock = new FakeClock();
    // The midpoint: backoffs without jitter, and half of RETURN_JITTER_MS.
    const { registry, sync, link, puts, stop } = await syncOn(60, {
      clock,
      random: () => 0.5,
    });
    try {
      link.down = true;
      sync.observe(listed('a'));
      clock.advance(0);
      await until('the first write tried', () => puts() === 1);
      // Retries after 0.5, 1, 2, 4 and 8 s; the next waits 16 s.
      for (const ms of [500, 1000, 2000, 4000, 8000]) {
        await settle();
        clock.advance(ms);
        await until(
          `the retry after ${ms} ms`,
          () => puts() === [500, 1000, 2000, 4000, 8000].indexOf(ms) + 2,
        );
      }
      await settle();
      link.down = false;
      clock.advance(RETURN_JITTER_MS);
      await settle();
      assert.equal(puts(), 6, 'still waiting out the 16 s backoff');

      sync.retrySoon();
      clock.advance(RETURN_JITTER_MS / 2 - 1);
      await settle();
      assert.equal(puts(), 6, 'the retry is jittered');
      clock.advance(1);
      await until('a stored', () => registry.devicesOf('cams').length === 1);
      assert.equal(puts(), 7);

      // Nothing pending: the next return writes nothing.
      sync.retrySoon();
      clock.advance(60_000);
      await settle();
      assert.equal(puts(), 7);
    } finally {
      await stop();
    }
  });

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
