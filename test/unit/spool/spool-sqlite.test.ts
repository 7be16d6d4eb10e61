// The shared spool suite against the SQLite store, and what only SQLite has.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { SpoolStorageError, openSpool } from '../../../src/spool/index.ts';
import { Scratch, message } from './helpers.ts';
import { spoolSuite } from './spool-suite.ts';

spoolSuite({ store: 'sqlite' });

describe('spool (sqlite) file', () => {
  const scratch = new Scratch();
  after(() => {
    scratch.removeAll();
  });
  const options = { maxBytes: 1024 * 1024, onFull: 'block', sync: 'always' } as const;

  it('refuses a file written by a newer schema, with SpoolStorageError naming both versions', async () => {
    const dir = scratch.dir();
    const spool = await openSpool({ ...options, dir });
    await spool.append([message('k', 1)]);
    await spool.close();
    const db = new DatabaseSync(path.join(dir, 'spool.db'));
    db.exec('PRAGMA user_version = 99');
    db.close();
    await assert.rejects(
      openSpool({ ...options, dir }),
      (err) =>
        err instanceof SpoolStorageError &&
        err.code === 'EDGEBRIDGE_SPOOL_STORAGE' &&
        /schema version 99; this edgebridge knows 1/.test(err.message),
    );
  });

  it('reports a directory that cannot be made as SpoolStorageError', async () => {
    const file = path.join(scratch.dir(), 'not-a-directory');
    writeFileSync(file, 'x');
    await assert.rejects(
      openSpool({ ...options, dir: file }),
      (err) => err instanceof SpoolStorageError && err.message.includes(file),
    );
  });

  it('keeps stats across a restart from its totals row, without scanning', async () => {
    const dir = scratch.dir();
    const spool = await openSpool({ ...options, dir });
    await spool.append([1, 2, 3].map((n) => message('k', n)));
    await spool.ack(await spool.read(1));
    const before = spool.stats();
    await spool.close();
    const again = await openSpool({ ...options, dir });
    assert.equal(again.stats().depth, before.depth);
    assert.equal(again.stats().bytes, before.bytes);
    await again.close();
  });
});
