// The shared spool suite against the SQLite store, and what only SQLite has.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
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
        /schema version 99; this edgebridge knows 2/.test(err.message),
    );
  });

  it('opens a version 1 file (no properties column) and sends its records as before', async () => {
    const dir = scratch.dir();
    // The schema and rows as edgebridge wrote them before version 2; the
    // checksums are the ones that version computed.
    const db = new DatabaseSync(path.join(dir, 'spool.db'));
    db.exec(`CREATE TABLE messages (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, key TEXT NOT NULL,
        topic TEXT NOT NULL, payload BLOB NOT NULL, timestamp INTEGER NOT NULL, expires_at INTEGER,
        priority INTEGER NOT NULL, size INTEGER NOT NULL, crc INTEGER NOT NULL);
      CREATE INDEX messages_priority ON messages (priority, seq) WHERE priority <> 0;
      CREATE INDEX messages_expiry ON messages (expires_at) WHERE expires_at IS NOT NULL;
      CREATE TABLE totals (one INTEGER PRIMARY KEY CHECK (one = 1), depth INTEGER NOT NULL,
        bytes INTEGER NOT NULL, last_seq INTEGER NOT NULL DEFAULT 0);
      INSERT INTO totals (one, depth, bytes, last_seq) VALUES (1, 2, 194, 2);
      PRAGMA user_version = 1;`);
    const insert = db.prepare('INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    const topic = 'edgebridge/v1/default/cam/data';
    const ts = 1_700_000_000_000;
    insert.run(1, 'old-1', 'cam', topic, Buffer.from('frame old-1'), ts, null, 0, 97, 3022922954);
    insert.run(
      2,
      'old-2',
      'cam',
      topic,
      Buffer.from('frame old-2'),
      ts,
      1_900_000_000_000,
      3,
      97,
      1751444060,
    );
    db.close();

    const spool = await openSpool({ ...options, dir });
    assert.equal(spool.stats().depth, 2);
    await spool.append([
      {
        key: 'cam',
        topic,
        payload: Buffer.from('new'),
        timestamp: ts,
        userProperties: [
          ['unit', 'C'],
          ['unit', 'F'],
        ],
        contentType: 'application/json',
      },
    ]);
    const batch = await spool.read(10);
    assert.deepEqual(
      batch.messages.map((m) => ({ ...m, id: m.id.startsWith('old-') ? m.id : 'new' })),
      [
        { id: 'old-1', key: 'cam', topic, payload: Buffer.from('frame old-1'), timestamp: ts },
        {
          id: 'old-2',
          key: 'cam',
          topic,
          payload: Buffer.from('frame old-2'),
          timestamp: ts,
          expiresAt: 1_900_000_000_000,
          priority: 3,
        },
        {
          id: 'new',
          key: 'cam',
          topic,
          payload: Buffer.from('new'),
          timestamp: ts,
          userProperties: [
            ['unit', 'C'],
            ['unit', 'F'],
          ],
          contentType: 'application/json',
        },
      ],
    );
    assert.equal(spool.stats().corrupt, 0);
    await spool.close();
    const check = new DatabaseSync(path.join(dir, 'spool.db'));
    assert.equal(check.prepare('PRAGMA user_version').get()?.user_version, 2);
    check.close();
    // Migrated once: the file opens again with all three.
    const again = await openSpool({ ...options, dir });
    assert.equal((await again.read(10)).messages.length, 3);
    await again.close();
    // Damaged: the salvage reads old rows (ten columns) and new ones (eleven) alike.
    const fd = openSync(path.join(dir, 'spool.db'), 'r+');
    writeSync(fd, Buffer.alloc(100), 0, 100, 0);
    closeSync(fd);
    const salvaged = await openSpool({ ...options, dir });
    assert.equal(salvaged.stats().salvaged, 3);
    const rows = (await salvaged.read(10)).messages;
    assert.deepEqual(
      rows.map((m) => [m.id.startsWith('old-') ? m.id : 'new', m.contentType]),
      [
        ['old-1', undefined],
        ['old-2', undefined],
        ['new', 'application/json'],
      ],
    );
    await salvaged.close();
  });

  it('finds a record whose properties were altered by its checksum', async () => {
    const dir = scratch.dir();
    const spool = await openSpool({ ...options, dir });
    await spool.append([
      { ...message('k', 1), userProperties: [['a', 'b']] },
      { ...message('k', 2), contentType: 'text/plain' },
    ]);
    await spool.close();
    const db = new DatabaseSync(path.join(dir, 'spool.db'));
    db.exec(`UPDATE messages SET properties = replace(properties, '"b"', '"c"')`);
    db.close();
    const again = await openSpool({ ...options, dir });
    const batch = await again.read(10);
    assert.deepEqual(
      batch.messages.map((m) => m.contentType),
      ['text/plain'],
    );
    assert.equal(again.stats().corrupt, 1);
    await again.close();
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
