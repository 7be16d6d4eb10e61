import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { durationFlag } from '../../../src/cli/duration-flag.ts';
import { UsageError } from '../../../src/cli/errors.ts';

describe('durationFlag', () => {
  it('reads kubectl-style durations and bare seconds', () => {
    assert.equal(durationFlag('x', '5m', 0, 1e9), 300_000);
    assert.equal(durationFlag('x', '1h30m', 0, 1e9), 5_400_000);
    assert.equal(durationFlag('x', '300ms', 0, 1e9), 300);
    assert.equal(durationFlag('x', '90', 0, 1e9), 90_000);
  });

  it('refuses what is not a duration, or out of bounds, naming the flag', () => {
    assert.throws(
      () => durationFlag('node-grace-period', '5 minutes', 0, 1e9),
      (err: unknown) => {
        assert.ok(err instanceof UsageError);
        assert.match(err.message, /--node-grace-period/);
        return true;
      },
    );
    assert.throws(() => durationFlag('resync-period', '0s', 1000, 1e9), UsageError);
  });
});
