// Opening the spool's file when it may be damaged: a file that SQLite cannot
// use (garbage, torn, overwritten, not a regular file, unreadable) is moved
// aside next to it under a name with the time, the records in it that still
// verify are copied into a fresh file, and the spool goes on from there. Only a
// directory that cannot be written at all leaves no way to go on.
import { closeSync, lstatSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import {
  SpoolDirUnwritableError,
  SpoolDiskFullError,
  SpoolError,
  SpoolFileCorruptError,
  SpoolLockedError,
} from './errors.ts';
import { toRecord, type SpoolRecord } from './record.ts';
import { salvageRecords } from './sqlite-salvage.ts';
import { DB_FILE, isFileAccessFailure, mapError, reasonOf, SqliteStore } from './sqlite-store.ts';

/** Files SQLite keeps beside the database; they go aside with it. */
const COMPANIONS = ['-journal', '-wal', '-shm'];
/** Salvaged rows stored per transaction. */
const SALVAGE_CHUNK = 1000;

/** What was found and done when the spool's file was damaged. */
export interface DamagedFile {
  file: string;
  /** Where the damaged file (and its companions, with their suffixes) now is. */
  movedTo: string;
  reason: string;
  /** Records that verified and were stored in the fresh file. */
  salvaged: number;
  /** Records known to be lost (see SalvageResult.lost); unknown ones are not counted. */
  lost: number;
  /** Why nothing could be read from it, when nothing could. */
  unreadable?: string;
}

/** Opens the store in `dir`, moving a damaged file aside and salvaging it first. Throws spool errors. */
export function openStoreRecovering(
  dir: string,
  reserveBytes: number,
  now: () => number,
): { store: SqliteStore; damaged?: DamagedFile } {
  makeDir(dir);
  // A read-only directory would let SQLite open the file read-only and fail
  // only at the first append.
  const unwritable = writeFailure(dir);
  if (unwritable !== undefined) throw new SpoolDirUnwritableError(dir, { cause: unwritable });
  const file = path.join(dir, DB_FILE);
  let reason = notRegular([file, ...COMPANIONS.map((s) => file + s)]);
  if (reason === undefined) {
    try {
      return { store: SqliteStore.open(dir, reserveBytes) };
    } catch (err) {
      reason = damageOf(err, dir);
    }
  }
  const movedTo = moveAside(dir, file, now());
  const store = SqliteStore.open(dir, reserveBytes);
  try {
    return { store, damaged: { file, movedTo, reason, ...salvageInto(store, movedTo) } };
  } catch (err) {
    store.close();
    throw err;
  }
}

function makeDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    if (isUnwritable(err)) throw new SpoolDirUnwritableError(dir, { cause: err });
    // A recursive mkdir on a read-only file system says ENOENT: ask the nearest
    // directory that exists.
    let parent = path.dirname(dir);
    while (!exists(parent) && parent !== path.dirname(parent)) parent = path.dirname(parent);
    const unwritable = writeFailure(parent);
    if (unwritable !== undefined) throw new SpoolDirUnwritableError(dir, { cause: unwritable });
    throw mapError(err, dir, 'creating the directory');
  }
}

/** Why one of `files` is not something SQLite should open, if one is not. */
function notRegular(files: readonly string[]): string | undefined {
  for (const name of files) {
    let kind: string | undefined;
    try {
      const st = lstatSync(name);
      if (st.isFile()) continue;
      kind = st.isDirectory() ? 'a directory' : st.isSymbolicLink() ? 'a symbolic link' : 'special';
    } catch {
      continue; // Missing (SQLite makes it), or unreadable: SQLite says which.
    }
    return `${path.basename(name)} is ${kind}, not a regular file`;
  }
  return undefined;
}

/** The damage an open failure reveals; rethrows what is not the file's fault. */
function damageOf(err: unknown, dir: string): string {
  if (err instanceof SpoolFileCorruptError) return err.reason;
  if (err instanceof SpoolLockedError || !(err instanceof SpoolError)) throw err;
  const unwritable = writeFailure(dir);
  if (unwritable !== undefined) throw new SpoolDirUnwritableError(dir, { cause: unwritable });
  // The directory is fine but the file cannot be opened, read or written.
  if (isFileAccessFailure(err)) return reasonOf(err.cause ?? err);
  throw err;
}

/** Why a file cannot be made in `dir`, or undefined when one can. */
function writeFailure(dir: string): unknown {
  const probe = path.join(dir, `.write-probe-${process.pid}`);
  try {
    closeSync(openSync(probe, 'w'));
    rmSync(probe, { force: true });
    return undefined;
  } catch (err) {
    return err;
  }
}

function isUnwritable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'EACCES' || code === 'EPERM' || code === 'EROFS';
}

/** `spool.db.damaged-20261203T101500Z` (a count added if that is taken). */
function asideName(file: string, at: number): string {
  const stamp = new Date(at).toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
  for (let n = 0; ; n++) {
    const name = `${file}.damaged-${stamp}${n === 0 ? '' : `-${n}`}`;
    if (![name, ...COMPANIONS.map((s) => name + s)].some(exists)) return name;
  }
}

function exists(name: string): boolean {
  try {
    lstatSync(name);
    return true;
  } catch {
    return false;
  }
}

/** Renames the file and its companions; the companions keep SQLite's suffixes so the copy opens as it was. */
function moveAside(dir: string, file: string, at: number): string {
  const movedTo = asideName(file, at);
  for (const suffix of ['', ...COMPANIONS]) {
    if (!exists(file + suffix)) continue;
    try {
      renameSync(file + suffix, movedTo + suffix);
    } catch (err) {
      if (isUnwritable(err)) throw new SpoolDirUnwritableError(dir, { cause: err });
      throw mapError(err, dir, 'moving the damaged file aside');
    }
  }
  return movedTo;
}

/** Copies the records of `from` that verify into `store`; a full disk ends the copy (the rest counted lost). */
function salvageInto(
  store: SqliteStore,
  from: string,
): Pick<DamagedFile, 'salvaged' | 'lost' | 'unreadable'> {
  if (notRegular([from]) !== undefined) {
    return { salvaged: 0, lost: 0, unreadable: 'not a regular file' };
  }
  let unstored = 0;
  let full = false;
  let rows: { seq: number; record: SpoolRecord }[] = [];
  const flush = (): void => {
    if (full) unstored += rows.length;
    else {
      try {
        store.insertSalvaged(rows);
      } catch (err) {
        if (!(err instanceof SpoolDiskFullError)) throw err;
        full = true;
        unstored += rows.length;
      }
    }
    rows = [];
  };
  let lost: number;
  let unreadable: string | undefined;
  try {
    lost = salvageRecords(from, ({ seq, message }) => {
      let record: SpoolRecord;
      try {
        record = toRecord(message, 0);
      } catch {
        // Verified, yet not a message this spool would take (a crafted file).
        unstored += 1;
        return;
      }
      rows.push({ seq, record });
      if (rows.length >= SALVAGE_CHUNK) flush();
    }).lost;
  } catch (err) {
    if (err instanceof SpoolError) throw err;
    // Could not be read (EACCES, EIO): what was found so far is kept; the rest is unknown.
    lost = 0;
    unreadable = reasonOf(err);
  }
  flush();
  // Rows found twice under one seq (a deleted row's leftover) count once, not as lost.
  return {
    salvaged: store.recount(),
    lost: lost + unstored,
    ...(unreadable !== undefined ? { unreadable } : {}),
  };
}
