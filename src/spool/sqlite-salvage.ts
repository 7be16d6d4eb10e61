// Reads the records out of a damaged spool file page by page, as SQLite lays
// them out (https://sqlite.org/fileformat2.html), without SQLite: a zeroed
// header, a torn file or a broken b-tree stops SQLite at the first bad page,
// but every table leaf page that is still whole holds rows whose checksums
// say whether they are sound. Only rows that verify are handed on.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { SQLOutputValue } from 'node:sqlite';
import { decode, type StoredRow } from './sqlite-store.ts';

const MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
/** What this spool's files use (SQLite's default); tried when the header is unreadable. */
const DEFAULT_PAGE_SIZE = 4096;
const LEAF_TABLE = 13;
const INTERIOR_TABLE = 5;
/**
 * Columns of the messages table (seq, id, key, topic, payload, timestamp,
 * expires_at, priority, size, crc, and properties unless written before it was added).
 */
const MESSAGE_COLUMNS = [10, 11];
/** Columns of the totals table (one, depth, bytes, and last_seq unless written before it was added). */
const TOTALS_COLUMNS = [3, 4];

export interface SalvageResult {
  /** Rows that verified, handed to `onRow`. */
  recovered: number;
  /**
   * Rows known to be lost: message cells that failed to decode or verify, or,
   * when the file's totals row could be read, what it counted beyond those found.
   */
  lost: number;
}

type Value = SQLOutputValue;

/** A read position in a buffer; throws RangeError past its end (caught per cell). */
class Cursor {
  readonly buf: Buffer;
  at: number;
  readonly end: number;

  constructor(buf: Buffer, at: number, end: number) {
    this.buf = buf;
    this.at = at;
    this.end = end;
  }

  byte(): number {
    if (this.at >= this.end) throw new RangeError('past the end of the page');
    return this.buf[this.at++] ?? 0;
  }

  /** SQLite's varint: 1 to 9 bytes, big-endian, 7 bits each (8 in the ninth). */
  varint(): number {
    let v = 0n;
    for (let i = 0; i < 8; i++) {
      const b = this.byte();
      v = (v << 7n) | BigInt(b & 0x7f);
      if ((b & 0x80) === 0) return toNumber(v);
    }
    v = (v << 8n) | BigInt(this.byte());
    return toNumber(BigInt.asIntN(64, v));
  }
}

function toNumber(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new RangeError('integer out of range');
  }
  return Number(v);
}

/** One value of a record body by its serial type. */
function readValue(buf: Buffer, at: number, type: number): { value: Value; length: number } {
  const int = (n: number): Value => {
    if (at + n > buf.length) throw new RangeError('value past the end of the record');
    return n <= 6 ? buf.readIntBE(at, n) : toNumber(buf.readBigInt64BE(at));
  };
  switch (type) {
    case 0:
      return { value: null, length: 0 };
    case 1:
    case 2:
    case 3:
    case 4:
      return { value: int(type), length: type };
    case 5:
      return { value: int(6), length: 6 };
    case 6:
      return { value: int(8), length: 8 };
    case 7:
      if (at + 8 > buf.length) throw new RangeError('value past the end of the record');
      return { value: buf.readDoubleBE(at), length: 8 };
    case 8:
      return { value: 0, length: 0 };
    case 9:
      return { value: 1, length: 0 };
  }
  if (type < 12) throw new RangeError(`reserved serial type ${type}`);
  const length = Math.floor((type - 12) / 2);
  if (at + length > buf.length) throw new RangeError('value past the end of the record');
  const bytes = buf.subarray(at, at + length);
  return {
    value: type % 2 === 0 ? new Uint8Array(bytes) : bytes.toString('utf8'),
    length,
  };
}

/** A record's values. */
function readRecord(payload: Buffer): Value[] {
  const header = new Cursor(payload, 0, payload.length);
  const headerSize = header.varint();
  if (headerSize > payload.length) throw new RangeError('record header past its end');
  const types: number[] = [];
  while (header.at < headerSize) types.push(header.varint());
  const values: Value[] = [];
  let at = headerSize;
  for (const type of types) {
    const { value, length } = readValue(payload, at, type);
    values.push(value);
    at += length;
  }
  return values;
}

/** The file's layout as far as its header tells (defaults when it cannot). */
interface Layout {
  pageSize: number;
  usable: number;
  pages: number;
  /** Pages on the freelist: they hold rows deleted long ago. */
  free: Set<number>;
}

/**
 * Scans `file` and calls `onRow` with every row of the messages table that
 * verifies (in file order; `seq` gives the append order). Reading the file is
 * the caller's risk: I/O errors are thrown.
 */
export function salvageRecords(
  file: string,
  onRow: (row: Extract<StoredRow, { message: unknown }>) => void,
): SalvageResult {
  const fd = openSync(file, 'r');
  try {
    return scan(fd, onRow);
  } finally {
    closeSync(fd);
  }
}

function scan(
  fd: number,
  onRow: (row: Extract<StoredRow, { message: unknown }>) => void,
): SalvageResult {
  const fileSize = fstatSync(fd).size;
  const layout = readLayout(fd, fileSize);
  const { pageSize, usable } = layout;
  const page = Buffer.alloc(pageSize);
  const readPage = (n: number, into: Buffer): boolean =>
    n >= 1 && n <= layout.pages && readSync(fd, into, 0, pageSize, (n - 1) * pageSize) === pageSize;
  const overflowPage = Buffer.alloc(pageSize);
  let recovered = 0;
  let bad = 0;
  let totalsDepth: number | undefined;

  /** A cell's whole payload, following its overflow chain. */
  const cellPayload = (c: Cursor, length: number): Buffer => {
    const maxLocal = usable - 35;
    if (length <= maxLocal) {
      if (c.at + length > c.end) throw new RangeError('cell past the end of the page');
      return c.buf.subarray(c.at, c.at + length);
    }
    const minLocal = Math.floor(((usable - 12) * 32) / 255) - 23;
    const k = minLocal + ((length - minLocal) % (usable - 4));
    const local = k <= maxLocal ? k : minLocal;
    if (c.at + local + 4 > c.end) throw new RangeError('cell past the end of the page');
    const out = Buffer.alloc(length);
    c.buf.copy(out, 0, c.at, c.at + local);
    let filled = local;
    let next = c.buf.readUInt32BE(c.at + local);
    const seen = new Set<number>();
    while (filled < length) {
      if (seen.has(next) || !readPage(next, overflowPage)) {
        throw new RangeError('overflow chain broken');
      }
      seen.add(next);
      const take = Math.min(usable - 4, length - filled);
      overflowPage.copy(out, filled, 4, 4 + take);
      filled += take;
      next = overflowPage.readUInt32BE(0);
    }
    return out;
  };

  /** Calls `each` with the values of every cell of a table leaf page, `onBad` for one that cannot be read. */
  const cellsOf = (
    buf: Buffer,
    n: number,
    each: (rowid: number, values: Value[]) => void,
    onBad: () => void,
  ): void => {
    const base = n === 1 ? 100 : 0;
    const cells = buf.readUInt16BE(base + 3);
    if (base + 8 + 2 * cells > usable) return;
    for (let i = 0; i < cells; i++) {
      const pointer = buf.readUInt16BE(base + 8 + 2 * i);
      let values: Value[];
      let rowid: number;
      try {
        if (pointer < base + 8 || pointer >= usable) {
          throw new RangeError('cell pointer out of the page');
        }
        const c = new Cursor(buf, pointer, usable);
        const length = c.varint();
        rowid = c.varint();
        if (length < 0 || length > 0x7fffffff) throw new RangeError('cell length out of range');
        values = readRecord(cellPayload(c, length));
      } catch {
        onBad();
        continue;
      }
      each(rowid, values);
    }
  };

  /** The leaf pages under `root`, or undefined when the tree cannot be followed whole. */
  const leavesOf = (root: number): number[] | undefined => {
    const buf = Buffer.alloc(pageSize);
    const leaves: number[] = [];
    const seen = new Set<number>();
    const stack = [root];
    for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
      if (seen.has(n) || !readPage(n, buf)) return undefined;
      seen.add(n);
      const base = n === 1 ? 100 : 0;
      if (buf[base] === LEAF_TABLE) {
        leaves.push(n);
        continue;
      }
      if (buf[base] !== INTERIOR_TABLE) return undefined;
      const cells = buf.readUInt16BE(base + 3);
      if (base + 12 + 2 * cells > usable) return undefined;
      stack.push(buf.readUInt32BE(base + 8));
      for (let i = 0; i < cells; i++) {
        const pointer = buf.readUInt16BE(base + 12 + 2 * i);
        if (pointer + 4 > usable) return undefined;
        stack.push(buf.readUInt32BE(pointer));
      }
    }
    return leaves;
  };

  /**
   * The leaf pages of the spool's two tables when the schema on page 1 and
   * both trees can be followed whole (a zeroed header leaves them so): then
   * pages that hold long-deleted rows are never read, whatever the freelist.
   */
  const tableLeaves = (): Set<number> | undefined => {
    const schema = leavesOf(1);
    if (schema === undefined) return undefined;
    const roots = new Map<string, number>();
    const buf = Buffer.alloc(pageSize);
    for (const n of schema) {
      if (!readPage(n, buf)) return undefined;
      cellsOf(
        buf,
        n,
        (_, [type, name, , root]) => {
          if (type === 'table' && typeof name === 'string' && typeof root === 'number') {
            roots.set(name, root);
          }
        },
        () => undefined,
      );
    }
    const leaves = new Set<number>();
    for (const table of ['messages', 'totals']) {
      const root = roots.get(table);
      const found = root === undefined ? undefined : leavesOf(root);
      if (found === undefined) return undefined;
      for (const n of found) leaves.add(n);
    }
    return leaves;
  };

  const tables = tableLeaves();
  for (let n = 1; n <= layout.pages; n++) {
    if (tables !== undefined ? !tables.has(n) : layout.free.has(n)) continue;
    if (!readPage(n, page) || page[n === 1 ? 100 : 0] !== LEAF_TABLE) continue;
    cellsOf(
      page,
      n,
      (rowid, values) => {
        if (TOTALS_COLUMNS.includes(values.length)) {
          // The totals row: (one = 1 as the rowid, depth, bytes).
          const depth = values[1];
          if (rowid === 1 && typeof depth === 'number') totalsDepth ??= depth;
          return;
        }
        if (!MESSAGE_COLUMNS.includes(values.length)) return;
        const row = decode([rowid, ...values.slice(1)]);
        if ('message' in row) {
          recovered += 1;
          onRow(row);
        } else {
          bad += 1;
        }
      },
      () => (bad += 1),
    );
  }
  const counted = totalsDepth === undefined ? 0 : totalsDepth - recovered;
  return { recovered, lost: Math.max(bad, counted) };
}

function readLayout(fd: number, fileSize: number): Layout {
  const header = Buffer.alloc(100);
  const got = readSync(fd, header, 0, 100, 0);
  let pageSize = DEFAULT_PAGE_SIZE;
  let reserved = 0;
  let trunk = 0;
  if (got === 100 && header.subarray(0, 16).equals(MAGIC)) {
    const raw = header.readUInt16BE(16);
    const size = raw === 1 ? 65536 : raw;
    // A power of two from 512 to 65536, as SQLite allows.
    if (size >= 512 && size <= 65536 && (size & (size - 1)) === 0) {
      pageSize = size;
      reserved = header[20] ?? 0;
      trunk = header.readUInt32BE(32);
    }
  }
  const layout: Layout = {
    pageSize,
    usable: pageSize - reserved,
    pages: Math.floor(fileSize / pageSize),
    free: new Set<number>(),
  };
  readFreelist(fd, layout, trunk);
  return layout;
}

/** Pages on the freelist (trunks and leaves), as far as the chain can be followed. */
function readFreelist(fd: number, layout: Layout, first: number): void {
  const page = Buffer.alloc(layout.pageSize);
  const perTrunk = Math.floor(layout.usable / 4) - 2;
  for (let trunk = first; trunk >= 1 && trunk <= layout.pages && !layout.free.has(trunk);) {
    if (readSync(fd, page, 0, layout.pageSize, (trunk - 1) * layout.pageSize) !== layout.pageSize) {
      return;
    }
    layout.free.add(trunk);
    const count = Math.min(page.readUInt32BE(4), perTrunk);
    for (let i = 0; i < count; i++) layout.free.add(page.readUInt32BE(8 + 4 * i));
    trunk = page.readUInt32BE(0);
  }
}
