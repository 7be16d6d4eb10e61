// The spool's file: a thin, synchronous wrapper over node:sqlite that knows the
// schema, turns rows into records (checking each one's checksum), runs one
// commit as one transaction, and maps SQLite failures to the spool's errors.
//
// Rollback journal (PERSIST), not WAL: when the disk fills, a WAL cannot be
// checkpointed into a database file that must grow, so even deletes fail and
// the spool wedges. A persisted rollback journal keeps its space between
// transactions, deletes free pages inside the file, and later inserts reuse
// them without needing the disk to grow. A small reserve file (released on the
// first disk-full delete) covers the journal's first growth.
import { mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  DatabaseSync,
  type SQLInputValue,
  type SQLOutputValue,
  type StatementSync,
} from 'node:sqlite';
import {
  SpoolDiskFullError,
  SpoolError,
  SpoolFileCorruptError,
  SpoolLockedError,
  SpoolStorageError,
} from './errors.ts';
import { checksum, decodeProperties, type SpoolRecord } from './record.ts';
import type { SpoolMessage } from './spool.ts';

export const DB_FILE = 'spool.db';
export const RESERVE_FILE = 'spool.reserve';
/** 2: messages.properties (MQTT 5 user properties and content type); files of version 1 are migrated on open. */
const SCHEMA_VERSION = 2;
/** Rows per multi-row INSERT (one call into SQLite instead of eight: ~30% less CPU per row). */
const INSERT_ROWS = 8;
/** Columns of one inserted row. */
const COLUMNS = 11;
/** Rows fetched per step when dropping or sweeping. */
const CHUNK = 256;
/** Most expired rows one commit sweeps, so a commit stays short. */
const SWEEP_LIMIT = 10_000;
/** Least time between attempts to take the reserve back after a disk-full. */
const RESERVE_RETRY_MS = 1000;

const SCHEMA = `
CREATE TABLE messages (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  key TEXT NOT NULL,
  topic TEXT NOT NULL,
  payload BLOB NOT NULL,
  timestamp INTEGER NOT NULL,
  expires_at INTEGER,
  priority INTEGER NOT NULL,
  size INTEGER NOT NULL,
  crc INTEGER NOT NULL,
  properties TEXT
);
-- Only messages with a priority other than the default pay for this index.
CREATE INDEX messages_priority ON messages (priority, seq) WHERE priority <> 0;
CREATE INDEX messages_expiry ON messages (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE totals (one INTEGER PRIMARY KEY CHECK (one = 1), depth INTEGER NOT NULL, bytes INTEGER NOT NULL,
  last_seq INTEGER NOT NULL DEFAULT 0);
INSERT INTO totals (one, depth, bytes) VALUES (1, 0, 0);
PRAGMA user_version = ${SCHEMA_VERSION};
`;

/** A row handed to a reader: a sound message, or what is known of a corrupt one. */
export type StoredRow =
  | { seq: number; size: number; message: SpoolMessage }
  | { seq: number; size: number; corrupt: string; id: string | undefined };

/** One transaction's work, applied in this order. */
export interface CommitWork {
  /** Rows acknowledged, expired or corrupt (each one still stored). */
  deletes: readonly RemovedRow[];
  /** Records to append, oldest first. */
  inserts: readonly SpoolRecord[];
  /** Time for expiry. */
  now: number;
  /** Remove expired rows (also done whenever room must be made). */
  sweep: boolean;
  /** Drop-oldest: make the stored bytes fit this bound, lowest priority and oldest first. */
  maxBytes?: number;
}

export interface RemovedRow {
  seq: number;
  size: number;
}

export interface CommitResult {
  /** Bytes freed by `deletes` (rows that were still there). */
  deletedBytes: number;
  expired: RemovedRow[];
  dropped: RemovedRow[];
  /** How many of `inserts`, from the first, were dropped instead of stored. */
  insertsDropped: number;
  insertsDroppedBytes: number;
}

function isInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

function sizeOf(v: unknown): number {
  return isInteger(v) && v >= 0 ? v : 0;
}

function errcode(err: unknown): number | undefined {
  const code = (err as { errcode?: unknown } | null)?.errcode;
  return typeof code === 'number' ? code & 0xff : undefined;
}

/** What went wrong, without anything the file holds (SQLite and fs messages name codes and paths only). */
export function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Whether a spool error came from SQLite failing to open, read or write the file itself. */
export function isFileAccessFailure(err: unknown): boolean {
  const code = errcode((err as { cause?: unknown } | null)?.cause);
  // SQLITE_PERM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN
  return code === 3 || code === 8 || code === 10 || code === 14;
}

/** Maps a failure of SQLite or the file system to the spool's error classes. */
export function mapError(err: unknown, dir: string, doing: string): Error {
  switch (errcode(err)) {
    case 13: // SQLITE_FULL
      return new SpoolDiskFullError(dir, { cause: err });
    case 11: // SQLITE_CORRUPT
    case 26: // SQLITE_NOTADB
      return new SpoolFileCorruptError(path.join(dir, DB_FILE), reasonOf(err), { cause: err });
    case 5: // SQLITE_BUSY
    case 6: // SQLITE_LOCKED
      return new SpoolLockedError(dir, { cause: err });
  }
  if ((err as { code?: unknown } | null)?.code === 'ENOSPC') {
    return new SpoolDiskFullError(dir, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new SpoolStorageError(`spool in ${dir}: ${doing}: ${message}`, { cause: err });
}

export class SqliteStore {
  readonly dir: string;
  /** Rows and accounted bytes stored (committed). */
  depth: number;
  bytes: number;
  readonly #db: DatabaseSync;
  readonly #reservePath: string;
  readonly #reserveBytes: number;
  #reserveHeld = false;
  #reserveTriedAt = 0;
  #lastSeq: number;
  readonly #read: StatementSync;
  readonly #insert: StatementSync;
  readonly #insertMany: StatementSync;
  readonly #insertArgs: SQLInputValue[] = [];
  readonly #delete: StatementSync;
  readonly #deleteRange: StatementSync;
  readonly #recount: StatementSync;
  readonly #dropBelowDefault: StatementSync;
  readonly #dropDefault: StatementSync;
  readonly #dropAboveDefault: StatementSync;
  /** No priority-0 row has a seq at or below this (so the scan for them starts after it). */
  #defaultDroppedTo = 0;
  readonly #expiredRows: StatementSync;
  readonly #setTotals: StatementSync;

  /** Opens (creating if needed) and locks the spool in `dir`. Throws spool errors. */
  static open(dir: string, reserveBytes: number): SqliteStore {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw mapError(err, dir, 'creating the directory');
    }
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path.join(dir, DB_FILE), { timeout: 0 });
    } catch (err) {
      throw mapError(err, dir, 'opening');
    }
    try {
      return new SqliteStore(dir, db, reserveBytes);
    } catch (err) {
      try {
        db.close();
      } catch {
        // Already failing; the first error is the one to report.
      }
      throw err instanceof SpoolError ? err : mapError(err, dir, 'opening');
    }
  }

  private constructor(dir: string, db: DatabaseSync, reserveBytes: number) {
    this.dir = dir;
    this.#db = db;
    this.#reservePath = path.join(dir, RESERVE_FILE);
    this.#reserveBytes = reserveBytes;
    // Exclusive: one process owns the spool, and the lock taken by the first
    // write below is held until close (a second opener gets SQLITE_BUSY).
    db.exec(`PRAGMA locking_mode = EXCLUSIVE;
      PRAGMA journal_mode = PERSIST;
      PRAGMA journal_size_limit = ${16 * 1024 * 1024};
      PRAGMA synchronous = FULL;
      PRAGMA cache_size = -4096;`);
    db.exec('BEGIN IMMEDIATE');
    try {
      const version = db.prepare('PRAGMA user_version').get()?.user_version;
      if (version === 0) db.exec(SCHEMA);
      else if (version === 1) {
        // Rows written before keep their ten columns (NULL properties) and their checksums.
        db.exec(`ALTER TABLE messages ADD COLUMN properties TEXT;
          PRAGMA user_version = ${SCHEMA_VERSION};`);
      } else if (version !== SCHEMA_VERSION) {
        throw new SpoolStorageError(
          `spool in ${dir} has schema version ${String(version)}; this edgebridge knows ${SCHEMA_VERSION}`,
        );
      }
      // Files from before last_seq get it (older versions read such a file as before).
      const columns = db.prepare('SELECT name FROM pragma_table_info(?)').all('totals');
      if (!columns.some((c) => c.name === 'last_seq')) {
        db.exec('ALTER TABLE totals ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0');
      }
      const totals = db.prepare('SELECT depth, bytes, last_seq FROM totals WHERE one = 1').get();
      this.depth = sizeOf(totals?.depth);
      this.bytes = sizeOf(totals?.bytes);
      // Seqs never start again, not even once every row is gone: rows deleted
      // long ago stay in free pages, and a salvage must not take one of them
      // for a live row of the same seq.
      this.#lastSeq = Math.max(
        sizeOf(totals?.last_seq),
        sizeOf(db.prepare('SELECT max(seq) AS seq FROM messages').get()?.seq),
      );
      // Every page once: a torn or overwritten file is found now, while it can
      // be moved aside, not by the first read that reaches the damage.
      const check = db.prepare('PRAGMA quick_check(1)').get()?.quick_check;
      if (check !== 'ok') {
        throw new SpoolFileCorruptError(path.join(dir, DB_FILE), String(check).slice(0, 200));
      }
      db.exec('COMMIT');
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw err;
    }
    this.#read = db.prepare(
      `SELECT seq, id, key, topic, payload, timestamp, expires_at, priority, size, crc, properties
       FROM messages WHERE seq > ? ORDER BY seq LIMIT ?`,
    );
    this.#read.setReturnArrays(true);
    const insert = (rows: number): StatementSync =>
      db.prepare(
        `INSERT INTO messages (seq, id, key, topic, payload, timestamp, expires_at, priority, size, crc, properties)
         VALUES ${Array<string>(rows).fill('(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      );
    this.#insert = insert(1);
    this.#insertMany = insert(INSERT_ROWS);
    this.#delete = db.prepare('DELETE FROM messages WHERE seq = ?');
    this.#deleteRange = db.prepare('DELETE FROM messages WHERE seq BETWEEN ? AND ?');
    this.#recount = db.prepare('SELECT count(*) AS depth, total(size) AS bytes FROM messages');
    this.#dropBelowDefault = db.prepare(
      `SELECT seq, size FROM messages WHERE priority <> 0 AND priority < 0
       ORDER BY priority, seq LIMIT ?`,
    );
    this.#dropDefault = db.prepare(
      'SELECT seq, size FROM messages WHERE seq > ? AND priority = 0 ORDER BY seq LIMIT ?',
    );
    this.#dropAboveDefault = db.prepare(
      `SELECT seq, size FROM messages WHERE priority <> 0 AND priority > 0
       ORDER BY priority, seq LIMIT ?`,
    );
    this.#expiredRows = db.prepare(
      `SELECT seq, size FROM messages WHERE expires_at IS NOT NULL AND expires_at <= ?
       ORDER BY expires_at LIMIT ?`,
    );
    this.#setTotals = db.prepare(
      'UPDATE totals SET depth = ?, bytes = ?, last_seq = ? WHERE one = 1',
    );
    this.#takeReserve();
  }

  /** Up to `limit` rows after `seq`, in append order. Throws spool errors. */
  readAfter(seq: number, limit: number): StoredRow[] {
    let rows: SQLOutputValue[][];
    try {
      // Arrays, not objects: a read builds many rows.
      rows = this.#read.all(seq, limit) as unknown as SQLOutputValue[][];
    } catch (err) {
      throw mapError(err, this.dir, 'reading');
    }
    return rows.map(decode);
  }

  /** Runs `work` as one durable transaction; on failure nothing changed. Throws spool errors. */
  commit(work: CommitWork): CommitResult {
    const result: CommitResult = {
      deletedBytes: 0,
      expired: [],
      dropped: [],
      insertsDropped: 0,
      insertsDroppedBytes: 0,
    };
    let depth = this.depth;
    let bytes = this.bytes;
    // Rows chosen by a query inside this transaction: certainly there.
    const remove = (seq: number, size: number): void => {
      this.#delete.run(seq);
      depth -= 1;
      bytes -= size;
    };
    const sweep = (): void => {
      while (result.expired.length < SWEEP_LIMIT) {
        const rows = this.#expiredRows.all(work.now, CHUNK);
        for (const row of rows) {
          const seq = row.seq as number;
          const size = sizeOf(row.size);
          remove(seq, size);
          result.expired.push({ seq, size });
        }
        if (rows.length < CHUNK) return;
      }
    };
    try {
      this.#db.exec('BEGIN IMMEDIATE');
      if (work.deletes.length > 0) {
        const removed = this.#deleteRuns(work.deletes);
        depth -= removed.depth;
        bytes -= removed.bytes;
        result.deletedBytes = removed.bytes;
      }
      let swept = false;
      if (work.sweep) {
        sweep();
        swept = true;
      }
      let first = 0;
      let dropTo = this.#defaultDroppedTo;
      if (work.maxBytes !== undefined) {
        let need = bytes - work.maxBytes;
        for (const r of work.inserts) need += r.size;
        if (need > 0 && !swept) {
          const before = bytes;
          sweep();
          need -= before - bytes;
        }
        // Lowest priority first, oldest first within a priority.
        let defaultTo = this.#defaultDroppedTo;
        while (need > 0) {
          let rows = this.#dropBelowDefault.all(CHUNK);
          let isDefault = false;
          if (rows.length === 0) {
            rows = this.#dropDefault.all(defaultTo, CHUNK);
            isDefault = true;
            if (rows.length === 0) {
              defaultTo = this.#lastSeq;
              rows = this.#dropAboveDefault.all(CHUNK);
              isDefault = false;
            }
          }
          if (rows.length === 0) break;
          for (const row of rows) {
            if (need <= 0) break;
            const seq = row.seq as number;
            const size = sizeOf(row.size);
            remove(seq, size);
            result.dropped.push({ seq, size });
            if (isDefault) defaultTo = seq;
            need -= size;
          }
        }
        dropTo = defaultTo;
        // Still too much: what is queued alone exceeds the bound; drop its oldest.
        while (need > 0 && first < work.inserts.length) {
          const size = work.inserts[first]?.size ?? 0;
          need -= size;
          result.insertsDroppedBytes += size;
          first += 1;
        }
        result.insertsDropped = first;
      }
      let seq = this.#lastSeq;
      const args = this.#insertArgs;
      args.length = 0;
      for (let i = first; i < work.inserts.length; i++) {
        const r = work.inserts[i];
        if (r === undefined) continue;
        seq += 1;
        pushRow(args, seq, r);
        depth += 1;
        bytes += r.size;
        if (args.length === INSERT_ROWS * COLUMNS) {
          this.#insertMany.run(...args);
          args.length = 0;
        }
      }
      for (let at = 0; at < args.length; at += COLUMNS) {
        this.#insert.run(...args.slice(at, at + COLUMNS));
      }
      args.length = 0;
      this.#setTotals.run(depth, bytes, seq);
      this.#db.exec('COMMIT');
      this.#lastSeq = seq;
      this.#defaultDroppedTo = dropTo;
    } catch (err) {
      this.#rollback();
      throw mapError(err, this.dir, 'committing');
    }
    this.depth = depth;
    this.bytes = bytes;
    if (!this.#reserveHeld) this.#takeReserve();
    return result;
  }

  /**
   * Stores rows salvaged from a damaged file under their own seqs, so that they
   * keep their append order; a seq found twice is one row (a leftover copy).
   * One transaction per call; `recount()` then sets the totals. Throws spool errors.
   */
  insertSalvaged(rows: readonly { seq: number; record: SpoolRecord }[]): void {
    try {
      this.#db.exec('BEGIN IMMEDIATE');
      const insert = this.#db.prepare(
        `INSERT OR IGNORE INTO messages (seq, id, key, topic, payload, timestamp, expires_at, priority, size, crc, properties)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const { seq, record: r } of rows) {
        const values: SQLInputValue[] = [];
        pushRow(values, seq, r);
        insert.run(...values);
      }
      this.#db.exec('COMMIT');
    } catch (err) {
      this.#rollback();
      throw mapError(err, this.dir, 'storing salvaged records');
    }
  }

  /** Counts what is stored and sets the totals from it (once, after a salvage); returns the depth. Throws spool errors. */
  recount(): number {
    try {
      const totals = this.#recount.get();
      const depth = sizeOf(totals?.depth);
      const bytes = sizeOf(totals?.bytes);
      this.#lastSeq = sizeOf(this.#db.prepare('SELECT max(seq) AS seq FROM messages').get()?.seq);
      this.#setTotals.run(depth, bytes, this.#lastSeq);
      this.depth = depth;
      this.bytes = bytes;
      return depth;
    } catch (err) {
      throw mapError(err, this.dir, 'counting salvaged records');
    }
  }

  /**
   * Deletes rows by runs of consecutive seqs (an acknowledged batch is usually
   * one run): one statement per run instead of one per row.
   */
  #deleteRuns(rows: readonly RemovedRow[]): { depth: number; bytes: number } {
    const sorted = [...rows].sort((a, b) => a.seq - b.seq);
    let depth = 0;
    let bytes = 0;
    let exact = true;
    for (let i = 0; i < sorted.length;) {
      const first = sorted[i];
      if (first === undefined) break;
      let j = i + 1;
      let runBytes = first.size;
      for (; j < sorted.length; j++) {
        const next = sorted[j];
        if (next === undefined || next.seq !== first.seq + (j - i)) break;
        runBytes += next.size;
      }
      const { changes } = this.#deleteRange.run(first.seq, first.seq + (j - i) - 1);
      if (changes !== j - i) exact = false;
      depth += j - i;
      bytes += runBytes;
      i = j;
    }
    if (exact) return { depth, bytes };
    // Some row was not there (never expected): count what is left instead.
    const left = this.#recount.get();
    return { depth: this.depth - sizeOf(left?.depth), bytes: this.bytes - sizeOf(left?.bytes) };
  }

  /** Frees the reserve file so that a delete can be stored on a full disk; false if none was held. */
  releaseReserve(): boolean {
    if (!this.#reserveHeld) return false;
    this.#reserveHeld = false;
    this.#reserveTriedAt = Date.now();
    try {
      truncateSync(this.#reservePath, 0);
    } catch {
      // Nothing more can be freed here.
    }
    return true;
  }

  /** Closes the file and releases the lock. Throws spool errors. */
  close(): void {
    try {
      this.#rollback();
      this.#db.close();
    } catch (err) {
      throw mapError(err, this.dir, 'closing');
    }
  }

  #rollback(): void {
    try {
      if (this.#db.isOpen && this.#db.isTransaction) this.#db.exec('ROLLBACK');
    } catch {
      // SQLite may already have rolled back (e.g. on SQLITE_FULL).
    }
  }

  #takeReserve(): void {
    if (this.#reserveBytes === 0) return;
    const now = Date.now();
    if (this.#reserveTriedAt !== 0 && now - this.#reserveTriedAt < RESERVE_RETRY_MS) return;
    this.#reserveTriedAt = now;
    try {
      writeFileSync(this.#reservePath, Buffer.alloc(this.#reserveBytes));
      this.#reserveHeld = true;
    } catch {
      // Disk full (or read-only): leave what little was written as nothing.
      try {
        truncateSync(this.#reservePath, 0);
      } catch {
        // Nothing to undo.
      }
    }
  }
}

/**
 * A row as the messages table holds it, checked field by field and against its
 * checksum; a row written before version 2 has no properties column.
 */
export function decode(row: SQLOutputValue[]): StoredRow {
  const [seqValue, id, key, topic, payload, timestamp, expiresAt, priority, sizeValue, crc] = row;
  const properties = row[10] ?? null;
  const seq = seqValue as number;
  const size = sizeOf(sizeValue);
  if (
    typeof id !== 'string' ||
    typeof key !== 'string' ||
    typeof topic !== 'string' ||
    !(payload instanceof Uint8Array) ||
    !isInteger(timestamp) ||
    (expiresAt !== null && !isInteger(expiresAt)) ||
    !isInteger(priority) ||
    !isInteger(crc) ||
    (properties !== null && typeof properties !== 'string')
  ) {
    return {
      seq,
      size,
      corrupt: 'unreadable fields',
      id: typeof id === 'string' ? id : undefined,
    };
  }
  const message: SpoolMessage = {
    id,
    key,
    topic,
    payload: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
    timestamp,
  };
  if (expiresAt !== null) message.expiresAt = expiresAt;
  if (priority !== 0) message.priority = priority;
  const sum = checksum({
    id,
    key,
    topic,
    payload,
    timestamp,
    expiresAt: expiresAt ?? undefined,
    priority,
    properties: properties ?? undefined,
  });
  if (sum !== crc) return { seq, size, corrupt: 'checksum mismatch', id };
  if (properties !== null) {
    const decoded = decodeProperties(properties);
    if (decoded === undefined) return { seq, size, corrupt: 'unreadable properties', id };
    if (decoded.userProperties !== undefined) message.userProperties = decoded.userProperties;
    if (decoded.contentType !== undefined) message.contentType = decoded.contentType;
  }
  return { seq, size, message };
}

/** A row's values in the column order of the messages table (COLUMNS of them). */
function pushRow(args: SQLInputValue[], seq: number, r: SpoolRecord): void {
  args.push(
    seq,
    r.id,
    r.key,
    r.topic,
    r.payload,
    r.timestamp,
    r.expiresAt ?? null,
    r.priority,
    r.size,
    r.crc,
    r.properties ?? null,
  );
}
