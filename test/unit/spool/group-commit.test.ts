import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GroupCommit } from '../../../src/spool/group-commit.ts';
import { SpoolInvalidArgumentError } from '../../../src/spool/errors.ts';
import { sleep } from './helpers.ts';

describe('GroupCommit', () => {
  it('sync always commits on every call, synchronously', () => {
    let commits = 0;
    const group = new GroupCommit({ sync: 'always' }, () => commits++);
    group.queued(1);
    group.queued(1);
    assert.equal(commits, 2);
  });

  it('group commits once maxMessages are queued, without waiting', () => {
    let commits = 0;
    const group = new GroupCommit(
      { sync: 'group', intervalMs: 60_000, maxMessages: 10 },
      () => commits++,
    );
    group.queued(4);
    group.queued(9);
    assert.equal(commits, 0);
    group.queued(10);
    assert.equal(commits, 1);
    group.cancel();
  });

  it('group commits what is queued after the interval, once', async () => {
    let commits = 0;
    const group = new GroupCommit(
      { sync: 'group', intervalMs: 5, maxMessages: 1000 },
      () => commits++,
    );
    group.queued(1);
    group.queued(2);
    group.queued(3);
    await sleep(30);
    assert.equal(commits, 1);
  });

  it('commits after a turn of the event loop that queues nothing more, once', async () => {
    let commits = 0;
    const group = new GroupCommit(
      { sync: 'group', intervalMs: 60_000, maxMessages: 1000 },
      () => commits++,
    );
    group.queued(1);
    // A producer still queuing turn after turn holds the commit back...
    for (let n = 2; n <= 5; n++) {
      await new Promise((resolve) => setImmediate(resolve));
      group.queued(n);
    }
    assert.equal(commits, 0);
    // ...until a turn passes without any.
    await sleep(5);
    assert.equal(commits, 1);
    group.cancel();
  });

  it('with whenIdle false, waits out the interval', async () => {
    let commits = 0;
    const group = new GroupCommit(
      { sync: 'group', intervalMs: 40, maxMessages: 1000, whenIdle: false },
      () => commits++,
    );
    group.queued(1);
    await sleep(10);
    assert.equal(commits, 0);
    await sleep(60);
    assert.equal(commits, 1);
  });

  it('cancel drops a pending timer', async () => {
    let commits = 0;
    const group = new GroupCommit(
      { sync: 'group', intervalMs: 5, maxMessages: 1000 },
      () => commits++,
    );
    group.queued(1);
    group.cancel();
    await sleep(20);
    assert.equal(commits, 0);
  });

  it('rejects bad policies as invalid arguments', () => {
    const commit = (): void => undefined;
    assert.throws(
      () => new GroupCommit({ sync: 'group', intervalMs: -1 }, commit),
      SpoolInvalidArgumentError,
    );
    assert.throws(
      () => new GroupCommit({ sync: 'group', maxMessages: 0.5 }, commit),
      SpoolInvalidArgumentError,
    );
    assert.throws(
      () => new GroupCommit({ sync: 'group', whenIdle: 'yes' as unknown as boolean }, commit),
      SpoolInvalidArgumentError,
    );
    assert.throws(
      () => new GroupCommit({ sync: 'never' } as unknown as { sync: 'always' }, commit),
      SpoolInvalidArgumentError,
    );
  });
});
