import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkQueue } from '../../../src/reconcile/work-queue.ts';
import { FakeClock } from './fake-clock.ts';

/** A queue on a fake clock whose backoff has no jitter: 100 ms doubling to 1 s. */
function queue(clock = new FakeClock()) {
  const depths: number[] = [];
  let adds = 0;
  const q = new WorkQueue({
    clock,
    backoff: { initialMs: 100, capMs: 1000, random: () => 0.5 },
    onDepth: (n) => depths.push(n),
    onAdd: () => adds++,
  });
  return { q, clock, depths, adds: () => adds };
}

describe('a work queue', () => {
  it('holds a key added three times before its turn once, and counts one add', async () => {
    const { q, adds } = queue();
    q.add('a');
    q.add('b');
    q.add('a');
    q.add('a');
    assert.equal(q.depth, 2);
    assert.equal(adds(), 2);
    assert.equal(await q.get(), 'a');
    assert.equal(await q.get(), 'b');
    assert.equal(q.depth, 0);
  });

  it('hands a key added while it is processed out again only after done()', async () => {
    const { q } = queue();
    q.add('a');
    assert.equal(await q.get(), 'a');
    q.add('a');
    q.add('b');
    assert.equal(await q.get(), 'b', 'a is not handed out while it is processed');
    let next: string | undefined;
    void q.get().then((k) => (next = k));
    await Promise.resolve();
    assert.equal(next, undefined);
    q.done('a');
    await Promise.resolve();
    assert.equal(next, 'a');
  });

  it('adds a delayed key when the clock reaches it, and keeps the earlier of two delays', async () => {
    const { q, clock } = queue();
    q.addAfter('a', 500);
    q.addAfter('a', 900);
    q.addAfter('a', 200);
    clock.advance(199);
    assert.equal(q.depth, 0);
    clock.advance(1);
    assert.equal(q.depth, 1);
    assert.equal(await q.get(), 'a');
    assert.equal(clock.pending, 0, 'the replaced delays were cancelled');
  });

  it('grows a key’s backoff to its cap, per key, and starts it over after forget()', () => {
    const { q } = queue();
    const delays = Array.from({ length: 6 }, () => q.addRateLimited('a'));
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
    assert.equal(q.failures('a'), 6);
    assert.equal(q.addRateLimited('b'), 100, 'another key has its own backoff');
    q.forget('a');
    assert.equal(q.failures('a'), 0);
    assert.equal(q.addRateLimited('a'), 100);
  });

  it('jitters a backoff delay by at most a fifth either way', () => {
    const low = new WorkQueue({
      clock: new FakeClock(),
      backoff: { initialMs: 1000, random: () => 0 },
    });
    const high = new WorkQueue({
      clock: new FakeClock(),
      backoff: { initialMs: 1000, random: () => 0.999999 },
    });
    assert.equal(low.addRateLimited('a'), 800);
    assert.equal(high.addRateLimited('a'), 1200);
  });

  it('after shutDown, drops waiting and delayed keys, answers get() with undefined and ignores adds', async () => {
    const { q, clock, depths } = queue();
    q.add('a');
    assert.equal(await q.get(), 'a');
    const waiting = q.get();
    q.addAfter('b', 100);
    q.shutDown();
    q.shutDown();
    assert.equal(await waiting, undefined);
    q.add('c');
    clock.advance(1000);
    assert.equal(q.depth, 0);
    assert.equal(await q.get(), undefined);
    assert.equal(clock.pending, 0);
    assert.equal(depths.at(-1), 0);
  });
});
