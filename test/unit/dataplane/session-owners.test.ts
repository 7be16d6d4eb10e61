import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionOwners } from '../../../src/dataplane/session-owners.ts';

const KEPT = Infinity;
const CLEAN = 0;

function owners(maxStored = 10, now = () => 0) {
  const forgotten: string[] = [];
  const table = new SessionOwners({
    maxStored,
    now,
    forget: (id) => {
      forgotten.push(id);
      return Promise.resolve();
    },
  });
  return { table, forgotten };
}

describe('SessionOwners', () => {
  it('refuses a connected client id to another principal, and gives it to the same one', async () => {
    const { table } = owners();
    assert.deepEqual(await table.claim('cam', 'user:alice'), { ok: true });
    assert.deepEqual(await table.claim('cam', 'user:mallory'), { ok: false, heldBy: 'connection' });
    // Alice takes her own connection over: both hold it until the old one has gone.
    assert.deepEqual(await table.claim('cam', 'user:alice'), { ok: true });
    table.release('cam', KEPT);
    assert.deepEqual(await table.claim('cam', 'user:mallory'), { ok: false, heldBy: 'connection' });
  });

  it('keeps a persistent session for its principal after the connection ends', async () => {
    const { table } = owners();
    await table.claim('cam', 'user:alice');
    table.release('cam', KEPT);
    assert.deepEqual(await table.claim('cam', 'user:mallory'), { ok: false, heldBy: 'session' });
    assert.deepEqual(await table.claim('cam', 'user:alice'), { ok: true });
  });

  it('frees the id of a clean session when its connection ends', async () => {
    const { table } = owners();
    await table.claim('cam', 'user:alice');
    table.release('cam', CLEAN);
    assert.equal(table.size, 0);
    assert.deepEqual(await table.claim('cam', 'user:mallory'), { ok: true });
  });

  it('the connection that took over decides whether the session is kept', async () => {
    const { table } = owners();
    await table.claim('cam', 'user:alice'); // persistent
    await table.claim('cam', 'user:alice'); // clean, takes over
    table.release('cam', KEPT); // the old connection closes
    table.release('cam', CLEAN); // the clean one ends: nothing is kept
    assert.deepEqual(await table.claim('cam', 'user:mallory'), { ok: true });
  });

  it('a release without a claim changes nothing', async () => {
    const { table } = owners();
    table.release('cam', KEPT);
    assert.equal(table.size, 0);
    await table.claim('cam', 'user:alice');
    table.release('cam', KEPT);
    table.release('cam', CLEAN);
    assert.deepEqual(await table.claim('cam', 'user:mallory'), { ok: false, heldBy: 'session' });
  });

  it('keeps at most maxStored sessions, ending the least recently used in the broker first', async () => {
    const { table, forgotten } = owners(3);
    for (const id of ['a', 'b', 'c', 'a', 'd', 'e']) {
      await table.claim(id, 'user:alice');
      table.release(id, KEPT);
    }
    // 'a' was used again before 'd' came, so 'b' and then 'c' were the least recently used.
    assert.deepEqual(forgotten, ['b', 'c']);
    for (let i = 0; i < 10_000; i++) {
      await table.claim(`id-${i}`, 'user:mallory');
      table.release(`id-${i}`, KEPT);
    }
    await new Promise((r) => setImmediate(r)); // the last ones ended settle
    assert.equal(table.size, 3);
  });

  it("a principal's flood of stored sessions ends its own, not others'", async () => {
    const { table, forgotten } = owners(4);
    for (const id of ['alice-1', 'alice-2']) {
      await table.claim(id, 'user:alice');
      table.release(id, KEPT);
    }
    for (let i = 0; i < 100; i++) {
      await table.claim(`flood-${i}`, 'user:mallory');
      table.release(`flood-${i}`, KEPT);
    }
    assert.ok(!forgotten.includes('alice-1') && !forgotten.includes('alice-2'));
    assert.deepEqual(await table.claim('alice-1', 'user:mallory'), {
      ok: false,
      heldBy: 'session',
    });
    assert.equal(forgotten.length, 98);
  });

  it('on a tie, the principal whose session overflows the bound loses its own oldest', async () => {
    const { table, forgotten } = owners(3);
    for (const [id, principal] of [
      ['alice-1', 'user:alice'],
      ['alice-2', 'user:alice'],
      ['bob-1', 'user:bob'],
      ['bob-2', 'user:bob'],
    ] as const) {
      await table.claim(id, principal);
      table.release(id, KEPT);
    }
    assert.deepEqual(forgotten, ['bob-1']);
  });

  it('connected clients are never ended to make room', async () => {
    const { table, forgotten } = owners(1);
    await table.claim('live', 'user:alice');
    await table.claim('x', 'user:bob');
    table.release('x', KEPT);
    await table.claim('y', 'user:bob');
    table.release('y', KEPT);
    assert.deepEqual(forgotten, ['x']);
    assert.deepEqual(await table.claim('live', 'user:bob'), { ok: false, heldBy: 'connection' });
  });

  it('holds an id until the broker has ended its session', async () => {
    let finish = (): void => undefined;
    const ended = new Promise<void>((resolve) => (finish = resolve));
    const table = new SessionOwners({ maxStored: 0, forget: () => ended });
    await table.claim('cam', 'user:alice');
    table.release('cam', KEPT);
    let claimed = false;
    const claim = table.claim('cam', 'user:mallory').then((c) => {
      claimed = true;
      return c;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(claimed, false, 'the id was given away while its session was still there');
    finish();
    assert.deepEqual(await claim, { ok: true });
  });

  it('a session that expired is ended before its id is given to anyone', async () => {
    let now = 0;
    const { table, forgotten } = owners(10, () => now);
    await table.claim('cam', 'user:alice');
    table.release('cam', 60_000);
    now = 59_999;
    assert.deepEqual(await table.claim('cam', 'user:mallory'), { ok: false, heldBy: 'session' });
    now = 60_000;
    assert.deepEqual(await table.claim('cam', 'user:mallory'), { ok: true });
    assert.deepEqual(forgotten, ['cam']);
  });
});
