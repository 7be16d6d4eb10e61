import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LogLimiter } from '../../src/util/log-limiter.ts';

describe('LogLimiter', () => {
  it('logs the first event of a kind and peer, then none until the interval has passed', () => {
    let now = 0;
    const limiter = new LogLimiter({ intervalMs: 1000, now: () => now });
    assert.deepEqual(limiter.take('refused', '10.0.0.1'), { log: true, suppressed: 0 });
    for (let i = 0; i < 5; i++)
      assert.deepEqual(limiter.take('refused', '10.0.0.1'), { log: false });
    now = 999;
    assert.deepEqual(limiter.take('refused', '10.0.0.1'), { log: false });
    now = 1000;
    assert.deepEqual(limiter.take('refused', '10.0.0.1'), { log: true, suppressed: 6 });
    now = 2500;
    assert.deepEqual(limiter.take('refused', '10.0.0.1'), { log: true, suppressed: 0 });
  });

  it('counts kinds and peers apart', () => {
    const limiter = new LogLimiter({ intervalMs: 1000, now: () => 0 });
    assert.equal(limiter.take('refused', 'a').log, true);
    assert.equal(limiter.take('refused', 'b').log, true);
    assert.equal(limiter.take('timeout', 'a').log, true);
    assert.equal(limiter.take('refused', 'a').log, false);
  });

  it('a kind and peer that only look alike when joined are still apart', () => {
    const limiter = new LogLimiter({ intervalMs: 1000, now: () => 0 });
    assert.equal(limiter.take('a b', 'c').log, true);
    assert.equal(limiter.take('a', 'b c').log, true);
  });

  it('remembers at most maxKeys kinds and peers, forgetting the least recently logged', () => {
    let now = 0;
    const limiter = new LogLimiter({ intervalMs: 1000, maxKeys: 3, now: () => now });
    for (let i = 0; i < 10_000; i++) limiter.take('refused', `peer-${i}`);
    // Only the last three are remembered: they stay quiet, an older one logs again.
    now = 1;
    assert.equal(limiter.take('refused', 'peer-9999').log, false);
    assert.equal(limiter.take('refused', 'peer-9997').log, false);
    assert.deepEqual(limiter.take('refused', 'peer-0'), { log: true, suppressed: 0 });
  });
});
