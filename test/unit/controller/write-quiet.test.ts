import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WriteQuiet } from '../../../src/controller/write-quiet.ts';
import { FakeClock } from '../reconcile/fake-clock.ts';

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Starts whenQuiet() and reports whether it has resolved. */
function watch(quiet: WriteQuiet, maxWaitMs: number, signal = new AbortController().signal) {
  let resolved = false;
  void quiet.whenQuiet(signal, maxWaitMs).then(() => (resolved = true));
  return { resolved: () => resolved };
}

describe('WriteQuiet', () => {
  it('lets a lesser write go at once when no write has been under way', async () => {
    const quiet = new WriteQuiet({ quietMs: 250, clock: new FakeClock() });
    const w = watch(quiet, 30_000);
    await settle();
    assert.equal(w.resolved(), true);
  });

  it('holds it while writes are under way, and until they have paused for the quiet period', async () => {
    const clock = new FakeClock();
    const quiet = new WriteQuiet({ quietMs: 250, clock });
    const end = quiet.begin();
    const w = watch(quiet, 30_000);
    clock.advance(5_000);
    await settle();
    assert.equal(w.resolved(), false, 'a write is under way');
    end();
    end(); // ends it once: the count does not go below zero
    clock.advance(200);
    await settle();
    assert.equal(w.resolved(), false, 'not quiet for 250 ms yet');
    const again = quiet.begin();
    clock.advance(100);
    again();
    clock.advance(200);
    await settle();
    assert.equal(w.resolved(), false, 'a new write started the quiet period again');
    clock.advance(100);
    await settle();
    assert.equal(w.resolved(), true);
  });

  it('lets it go after the longest wait under endless writes', async () => {
    const clock = new FakeClock();
    const quiet = new WriteQuiet({ quietMs: 250, clock });
    quiet.begin();
    const w = watch(quiet, 10_000);
    clock.advance(9_999);
    await settle();
    assert.equal(w.resolved(), false);
    clock.advance(1);
    await settle();
    assert.equal(w.resolved(), true);
  });

  it('resolves early when the signal aborts', async () => {
    const clock = new FakeClock();
    const quiet = new WriteQuiet({ clock });
    quiet.begin();
    const stop = new AbortController();
    const w = watch(quiet, 30_000, stop.signal);
    await settle();
    stop.abort();
    await settle();
    assert.equal(w.resolved(), true);
    assert.equal(clock.pending, 0, 'its timer is cancelled');
  });
});
