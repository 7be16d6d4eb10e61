import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AdaptiveLimit } from '../../src/util/adaptive-limit.ts';

/** Runs `count` requests of `ms` each through the limit, recording the most in flight at once. */
async function load(
  limit: AdaptiveLimit,
  count: number,
  request: () => Promise<void>,
  classify: () => 'overloaded' | 'failed' = () => 'overloaded',
): Promise<number> {
  let inFlight = 0;
  let most = 0;
  await Promise.all(
    Array.from({ length: count }, () =>
      limit
        .run(async () => {
          inFlight++;
          most = Math.max(most, inFlight);
          try {
            await request();
          } finally {
            inFlight--;
          }
        }, classify)
        .catch(() => undefined),
    ),
  );
  return most;
}

describe('AdaptiveLimit', () => {
  it('never lets more than the limit run at once', async () => {
    const limit = new AdaptiveLimit({ initial: 3, max: 3 });
    const most = await load(limit, 30, () => sleep(2));
    assert.equal(most, 3);
  });

  it('grows while requests succeed quickly, up to its maximum', async () => {
    const limit = new AdaptiveLimit({ initial: 1, max: 6, latencyFloorMs: 1000 });
    await load(limit, 200, () => sleep(1));
    assert.equal(limit.limit, 6);
  });

  it('halves on overload errors, down to its minimum', async () => {
    const limit = new AdaptiveLimit({ initial: 8, max: 8, min: 2 });
    await load(limit, 40, async () => {
      await sleep(1);
      throw new Error('503');
    });
    assert.equal(limit.limit, 2);
  });

  it('does not shrink on errors that are not overload', async () => {
    const limit = new AdaptiveLimit({ initial: 4, max: 4 });
    await load(
      limit,
      20,
      async () => {
        await sleep(1);
        throw new Error('404');
      },
      () => 'failed',
    );
    assert.equal(limit.limit, 4);
  });

  it('shrinks when latency climbs far above the fastest seen', async () => {
    const limit = new AdaptiveLimit({ initial: 4, max: 4, latencyFloorMs: 100, latencyFactor: 4 });
    await load(limit, 8, () => sleep(1));
    assert.equal(limit.limit, 4);
    await load(limit, 8, () => sleep(500));
    assert.ok(limit.limit < 4, `limit ${limit.limit} should have shrunk`);
  });

  it('runs every request even after shrinking', async () => {
    const limit = new AdaptiveLimit({ initial: 8, max: 8 });
    let done = 0;
    await load(limit, 50, async () => {
      await sleep(1);
      done++;
      if (done % 3 === 0) throw new Error('429');
    });
    assert.equal(done, 50);
  });
});
