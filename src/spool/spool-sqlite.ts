// The spool on SQLite (node:sqlite, built into Node: no native build step).
// Everything runs on the caller's thread: a commit is one synchronous
// transaction ending in fsync, so under group commit the event loop pauses
// for one fsync per interval rather than one per message.
import { EventEmitter } from 'node:events';
import { setImmediate as turn } from 'node:timers/promises';
import { ByteBudget } from './byte-budget.ts';
import {
  SpoolClosedError,
  SpoolDestroyedError,
  SpoolDiskFullError,
  SpoolInvalidArgumentError,
  SpoolMessageTooLargeError,
} from './errors.ts';
import { GroupCommit } from './group-commit.ts';
import { toRecord, type SpoolRecord } from './record.ts';
import type {
  AppendOptions,
  Spool,
  SpoolBatch,
  SpoolEvents,
  SpoolInput,
  SpoolLogger,
  SpoolMessage,
  SpoolOptions,
  SpoolStats,
} from './spool.ts';
import { openStoreRecovering, type DamagedFile } from './damaged-file.ts';
import type { SqliteStore, CommitResult, RemovedRow, StoredRow } from './sqlite-store.ts';
import { LogLimiter } from '../util/log-limiter.ts';

export const DEFAULT_RESERVE_BYTES = 1024 * 1024;
/** Rows fetched per step of a read. */
const READ_CHUNK = 1000;
/** How often expired messages are swept while producers wait for space. */
const SWEEP_INTERVAL_MS = 1000;
/**
 * Acknowledgements need not be durable at once: one lost to a crash only sends
 * its message again (at least once). So they ride with the next commit of
 * appends, or are committed after this long, not one fsync per acked batch,
 * which in a replay blocked the event loop for a tenth of the time.
 */
const ACK_COMMIT_MS = 100;
/** Unless this many wait: the transaction and the list stay bounded. */
const ACK_COMMIT_ROWS = 20_000;
/** How soon removals that could not be stored (disk full) are tried again. */
const REMOVAL_RETRY_MS = 1000;
/** Bytes of rows removed per transaction when the disk is full (small journal). */
const REMOVAL_CHUNK_BYTES = 16 * 1024;

interface PendingAppend {
  records: SpoolRecord[];
  bytes: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** A batch that remembers, privately, which rows it holds and which spool read them. */
class SqliteBatch implements SpoolBatch {
  readonly messages: readonly SpoolMessage[];
  readonly #owner: object;
  #seqs: number[];

  constructor(owner: object, messages: SpoolMessage[], seqs: number[]) {
    this.messages = messages;
    this.#owner = owner;
    this.#seqs = seqs;
  }

  /** The rows of `batch` if `owner` read it, once (then none); undefined if not its batch. */
  static take(batch: SpoolBatch, owner: object): number[] | undefined {
    if (!(batch instanceof SqliteBatch) || batch.#owner !== owner) return undefined;
    const seqs = batch.#seqs;
    batch.#seqs = [];
    return seqs;
  }
}

function validateOptions(o: SpoolOptions): void {
  const fail = (what: string): never => {
    throw new SpoolInvalidArgumentError(`spool options: ${what}`);
  };
  if (typeof o.dir !== 'string' || o.dir === '') fail('dir must be a non-empty path');
  if (!Number.isSafeInteger(o.maxBytes) || o.maxBytes <= 0) {
    fail('maxBytes must be a positive integer');
  }
  if (o.onFull !== 'block' && o.onFull !== 'drop-oldest') {
    fail(`onFull must be 'block' or 'drop-oldest'`);
  }
  const reserve = o.reserveBytes;
  if (reserve !== undefined && (!Number.isSafeInteger(reserve) || reserve < 0)) {
    fail('reserveBytes must be an integer >= 0');
  }
}

/**
 * Opens (creating if needed) the SQLite spool in `options.dir`. A damaged file
 * is moved aside and what verifies in it salvaged (logged once, counted in
 * stats); a directory that cannot be written rejects with SpoolDirUnwritableError.
 */
export function openSqliteSpool(options: SpoolOptions): Promise<Spool> {
  try {
    validateOptions(options);
    const { store, damaged } = openStoreRecovering(
      options.dir,
      options.reserveBytes ?? DEFAULT_RESERVE_BYTES,
      options.now ?? Date.now,
    );
    try {
      return Promise.resolve(new SqliteSpool(store, options, damaged));
    } catch (err) {
      store.close();
      throw err;
    }
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

class SqliteSpool extends EventEmitter<SpoolEvents> implements Spool {
  readonly #store: SqliteStore;
  readonly #maxBytes: number;
  readonly #dropOldest: boolean;
  readonly #log: SpoolLogger | undefined;
  /** A damaged file can hold thousands of bad records; a disk can fill and free again and again. */
  readonly #limiter = new LogLimiter();
  readonly #now: () => number;
  readonly #budget: ByteBudget;
  readonly #groupCommit: GroupCommit;
  #state: 'open' | 'closing' | 'closed' = 'open';
  #closed: Promise<void> | undefined;

  /** Appends waiting for the next commit, and how many messages they hold. */
  #appends: PendingAppend[] = [];
  #queuedMessages = 0;
  /** Rows removed (acknowledged, expired, corrupt) but not yet committed, and their totals. */
  #removals: RemovedRow[] = [];
  #removing = { depth: 0, bytes: 0 };
  #ackWaiters: (() => void)[] = [];
  #sweepWanted = false;
  #sweepTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #ackTimer: NodeJS.Timeout | undefined;
  #diskFull = false;
  /** Dropping oldest messages to make room: logged when it starts, not at every commit. */
  #dropping = false;

  /** Reads: the last row handed out, rows handed out and not acknowledged (seq -> size). */
  #cursor = 0;
  readonly #inFlight = new Map<number, number>();
  /**
   * After rewind(): the rows that were in flight (seq -> size) and the cursor
   * then. Rows up to `end` not in `rows` were acknowledged or removed meanwhile
   * and, their deletion perhaps not yet committed, must not be handed out again.
   */
  #replay: { rows: Map<number, number>; end: number } | undefined;
  #reads: Promise<unknown> = Promise.resolve();

  readonly #counts = {
    appended: 0,
    sent: 0,
    dropped: 0,
    expired: 0,
    corrupt: 0,
    damagedFiles: 0,
    salvaged: 0,
    lost: 0,
  };

  /** `damaged`: the file open moved aside, if it did (reported and counted here). */
  constructor(store: SqliteStore, options: SpoolOptions, damaged?: DamagedFile) {
    super();
    this.#store = store;
    this.#maxBytes = options.maxBytes;
    this.#dropOldest = options.onFull === 'drop-oldest';
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.#budget = new ByteBudget(options.maxBytes, store.bytes);
    this.#groupCommit = new GroupCommit(options, () => {
      this.#commit();
    });
    if (damaged !== undefined) this.#damaged(damaged);
  }

  /** Books and reports, once, the damaged file that open moved aside. */
  #damaged(d: DamagedFile): void {
    this.#counts.damagedFiles += 1;
    this.#counts.salvaged += d.salvaged;
    this.#counts.lost += d.lost;
    this.#log?.error(
      {
        file: d.file,
        movedTo: d.movedTo,
        reason: d.reason,
        salvaged: d.salvaged,
        lost: d.lost,
        ...(d.unreadable !== undefined ? { unreadable: d.unreadable } : {}),
      },
      'spool file damaged: moved aside, the records that verify copied into a fresh spool',
    );
  }

  append(messages: readonly SpoolInput[], options: AppendOptions = {}): Promise<void> {
    if (this.#state !== 'open') return Promise.reject(new SpoolClosedError());
    const list: readonly SpoolInput[] = messages;
    if (!Array.isArray(messages)) {
      return Promise.reject(new SpoolInvalidArgumentError('append takes an array'));
    }
    const records: SpoolRecord[] = [];
    let bytes = 0;
    try {
      for (const input of list) {
        const record = toRecord(input, records.length);
        records.push(record);
        bytes += record.size;
      }
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    if (records.length === 0) return Promise.resolve();
    if (bytes > this.#maxBytes) {
      return Promise.reject(new SpoolMessageTooLargeError(bytes, this.#maxBytes));
    }
    const { signal } = options;
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    if (this.#dropOldest) this.#budget.force(bytes);
    else if (!this.#budget.tryTake(bytes)) return this.#appendWhenRoom(records, bytes, signal);
    return this.#queue(records, bytes);
  }

  async #appendWhenRoom(
    records: SpoolRecord[],
    bytes: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const granted = this.#budget.take(bytes, signal);
    this.#waitingForSpace();
    await granted;
    if (this.#isClosed()) {
      this.#budget.give(bytes);
      throw new SpoolClosedError();
    }
    return this.#queue(records, bytes);
  }

  /** Queues records (their bytes already counted) for the next commit. */
  #queue(records: SpoolRecord[], bytes: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#appends.push({ records, bytes, resolve, reject });
      this.#queuedMessages += records.length;
      this.#groupCommit.queued(this.#queuedMessages + this.#removals.length);
    });
  }

  read(max: number): Promise<SpoolBatch> {
    if (this.#state !== 'open') return Promise.reject(new SpoolClosedError());
    if (!Number.isSafeInteger(max) || max < 1) {
      return Promise.reject(new SpoolInvalidArgumentError('read: max must be a positive integer'));
    }
    // One read at a time, so that batches are contiguous runs of the queue.
    const batch = this.#reads.then(() => this.#read(max));
    this.#reads = batch.catch(() => undefined);
    return batch;
  }

  ack(batch: SpoolBatch): Promise<void> {
    if (this.#state !== 'open') return Promise.reject(new SpoolClosedError());
    const seqs = SqliteBatch.take(batch, this);
    if (seqs === undefined) {
      return Promise.reject(
        new SpoolInvalidArgumentError('ack: batch was not read from this spool'),
      );
    }
    let acked = 0;
    for (const seq of seqs) {
      // Read again since a rewind, or read before it and not yet read again.
      const size = this.#inFlight.get(seq) ?? this.#replay?.rows.get(seq);
      // Gone already: dropped or expired while in flight.
      if (size === undefined) continue;
      this.#inFlight.delete(seq);
      this.#replay?.rows.delete(seq);
      this.#remove(seq, size);
      acked += 1;
    }
    this.#counts.sent += acked;
    if (acked === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#ackWaiters.push(resolve);
      if (this.#removals.length >= ACK_COMMIT_ROWS) {
        this.#commit();
        return;
      }
      this.#ackTimer ??= setTimeout(() => {
        this.#ackTimer = undefined;
        this.#commit();
      }, ACK_COMMIT_MS);
    });
  }

  rewind(): void {
    if (this.#state !== 'open') return;
    // After the reads already asked for, so that no batch mixes the two.
    this.#reads = this.#reads.then(() => {
      if (this.#inFlight.size === 0) return;
      const rows = this.#replay?.rows ?? new Map<number, number>();
      let first = this.#cursor;
      for (const [seq, size] of this.#inFlight) {
        rows.set(seq, size);
        if (seq < first) first = seq;
      }
      for (const seq of rows.keys()) if (seq < first) first = seq;
      this.#inFlight.clear();
      this.#replay = { rows, end: Math.max(this.#cursor, this.#replay?.end ?? 0) };
      this.#cursor = first - 1;
    });
  }

  stats(): SpoolStats {
    return {
      depth: this.#store.depth - this.#removing.depth,
      bytes: this.#store.bytes - this.#removing.bytes,
      ...this.#counts,
      blockedProducers: this.#budget.waiting,
    };
  }

  close(): Promise<void> {
    this.#closed ??= this.#shutdown();
    return this.#closed;
  }

  destroy(err?: Error): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#stopTimers();
    const reason = err ?? new SpoolDestroyedError();
    this.#budget.failAll(reason);
    for (const a of this.#appends.splice(0)) a.reject(reason);
    // Acknowledged but not committed: re-delivered after a restart.
    for (const resolve of this.#ackWaiters.splice(0)) resolve();
    try {
      this.#store.close();
    } catch {
      // Destroying: nothing more to do with the file.
    }
    this.#closed ??= Promise.resolve();
  }

  async #shutdown(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'closing';
    this.#budget.failAll(new SpoolClosedError());
    await this.#reads;
    if (this.#state !== 'closing') return; // destroyed meanwhile
    this.#commit();
    this.#state = 'closed';
    this.#stopTimers();
    this.#store.close();
  }

  async #read(max: number): Promise<SpoolBatch> {
    // Each read lets the event loop turn first: a consumer draining a backlog in
    // a tight loop would otherwise starve timers (group commits of producers)
    // and I/O, and V8's own memory-freeing tasks (RSS grew 3x without this).
    await turn();
    const messages: SpoolMessage[] = [];
    const seqs: number[] = [];
    while (messages.length < max) {
      if (this.#state === 'closed') throw new SpoolClosedError();
      const want = Math.min(max - messages.length, READ_CHUNK);
      const rows = this.#store.readAfter(this.#cursor, want);
      const now = this.#now();
      let expired = 0;
      let corrupt = 0;
      for (const row of rows) {
        this.#cursor = row.seq;
        const replay = this.#replay;
        if (replay !== undefined) {
          if (row.seq >= replay.end) this.#replay = undefined;
          if (row.seq <= replay.end && !replay.rows.delete(row.seq)) continue;
        }
        if ('corrupt' in row) {
          corrupt += 1;
          this.#corrupt(row);
        } else if (row.message.expiresAt !== undefined && row.message.expiresAt <= now) {
          expired += 1;
          this.#remove(row.seq, row.size);
        } else {
          messages.push(row.message);
          seqs.push(row.seq);
          this.#inFlight.set(row.seq, row.size);
        }
      }
      if (expired + corrupt > 0) {
        this.#counts.expired += expired;
        if (expired > 0) this.#emit('expired', { count: expired });
        this.#groupCommit.queued(this.#queuedMessages + this.#removals.length);
      }
      if (rows.length < want) break;
      // A long run of skipped rows: let other work in between chunks.
      if (expired + corrupt > 0) await turn();
    }
    return new SqliteBatch(this, messages, seqs);
  }

  #corrupt(row: Extract<StoredRow, { corrupt: string }>): void {
    this.#counts.corrupt += 1;
    this.#remove(row.seq, row.size);
    const limited = this.#limiter.take('corrupt', '');
    if (limited.log) {
      this.#log?.warn(
        { dir: this.#store.dir, id: row.id, reason: row.corrupt, ...counted(limited.suppressed) },
        'spool record is corrupt; skipped',
      );
    }
    this.#emit('corrupt', { id: row.id, reason: row.corrupt });
  }

  /** Counts a row as gone now; its deletion is stored with the next commit. */
  #remove(seq: number, size: number): void {
    this.#removals.push({ seq, size });
    this.#removing.depth += 1;
    this.#removing.bytes += size;
    this.#budget.give(size);
  }

  /** A producer waits for space: expired messages are swept now and then while any wait. */
  #waitingForSpace(): void {
    this.#sweepWanted = true;
    this.#groupCommit.queued(this.#queuedMessages + this.#removals.length);
    this.#sweepTimer ??= setInterval(() => {
      if (this.#budget.waiting === 0) {
        clearInterval(this.#sweepTimer);
        this.#sweepTimer = undefined;
        return;
      }
      this.#sweepWanted = true;
      this.#commit();
    }, SWEEP_INTERVAL_MS).unref();
  }

  /** Commits everything queued as one transaction, then settles its waiters. */
  #commit(): void {
    this.#cancelCommitTimers();
    if (this.#state === 'closed') return;
    const appends = this.#appends;
    const removals = this.#removals;
    const ackWaiters = this.#ackWaiters;
    const sweep = this.#sweepWanted;
    if (appends.length === 0 && removals.length === 0 && !sweep) return;
    this.#appends = [];
    this.#queuedMessages = 0;
    this.#removals = [];
    this.#removing = { depth: 0, bytes: 0 };
    this.#ackWaiters = [];
    this.#sweepWanted = false;
    let inserts: SpoolRecord[] = appends[0]?.records ?? [];
    if (appends.length > 1) {
      inserts = [];
      for (const a of appends) for (const r of a.records) inserts.push(r);
    }
    const now = this.#now();
    try {
      const result = this.#store.commit({
        deletes: removals,
        inserts,
        now,
        sweep,
        ...(this.#dropOldest ? { maxBytes: this.#maxBytes } : {}),
      });
      this.#committed(result, inserts.length);
      if (this.#diskFull) this.#diskFull = false;
      for (const a of appends) a.resolve();
    } catch (err) {
      if (err instanceof SpoolDiskFullError && !this.#diskFull) {
        this.#diskFull = true;
        const limited = this.#limiter.take('disk-full', '');
        if (limited.log) {
          this.#log?.warn(
            { dir: this.#store.dir, depth: this.#store.depth, ...counted(limited.suppressed) },
            'spool disk full: appends are rejected until space is freed; reading and acking go on',
          );
        }
      }
      // Removals on their own, so that acknowledging keeps working on a full disk.
      if (removals.length > 0) this.#commitRemovals(removals, sweep, now);
      else if (sweep) this.#sweepWanted = true;
      for (const a of appends) {
        this.#budget.give(a.bytes);
        a.reject(err);
      }
    }
    for (const resolve of ackWaiters) resolve();
  }

  /**
   * Stores removals without the appends whose commit failed. On a full disk the
   * rollback journal needs room for every page a delete touches, so removals go
   * in small transactions, the reserve file is given up if even that fails, and
   * what still cannot be stored is kept for a later commit: it stays removed for
   * readers, and if the process dies first it is delivered again (at-least-once).
   */
  #commitRemovals(removals: RemovedRow[], sweep: boolean, now: number): void {
    let rest = removals;
    let chunked = false;
    let reserveGiven = false;
    while (rest.length > 0) {
      let end = rest.length;
      if (chunked) {
        let bytes = 0;
        for (end = 0; end < rest.length && (end === 0 || bytes < REMOVAL_CHUNK_BYTES); end++) {
          bytes += rest[end]?.size ?? 0;
        }
      }
      const part = rest.slice(0, end);
      try {
        this.#committed(
          this.#store.commit({ deletes: part, inserts: [], now, sweep: sweep && !chunked }),
          0,
        );
        rest = rest.slice(end);
      } catch (err) {
        if (err instanceof SpoolDiskFullError && !chunked) {
          chunked = true;
          continue;
        }
        if (err instanceof SpoolDiskFullError && !reserveGiven && this.#store.releaseReserve()) {
          reserveGiven = true;
          continue;
        }
        break;
      }
    }
    if (chunked && sweep) this.#sweepWanted = true;
    if (rest.length === 0) return;
    for (const row of rest) {
      this.#removing.depth += 1;
      this.#removing.bytes += row.size;
    }
    this.#removals = rest.concat(this.#removals);
    this.#retryTimer ??= setTimeout(() => {
      this.#retryTimer = undefined;
      this.#commit();
    }, REMOVAL_RETRY_MS).unref();
  }

  /** Books a successful commit: counters, space for waiting producers, events. */
  #committed(result: CommitResult, inserted: number): void {
    const gone = (rows: RemovedRow[]): number => {
      let bytes = 0;
      for (const { seq, size } of rows) {
        // Rows read but not acknowledged are no longer there to acknowledge.
        this.#inFlight.delete(seq);
        bytes += size;
      }
      this.#budget.give(bytes);
      return bytes;
    };
    if (result.expired.length > 0) {
      gone(result.expired);
      this.#counts.expired += result.expired.length;
      this.#emit('expired', { count: result.expired.length });
    }
    const dropped = result.dropped.length + result.insertsDropped;
    if (dropped > 0) {
      const bytes = gone(result.dropped) + result.insertsDroppedBytes;
      this.#budget.give(result.insertsDroppedBytes);
      this.#counts.dropped += dropped;
      // Once per run of dropping commits: a spool kept full would log every commit.
      if (!this.#dropping) {
        this.#dropping = true;
        this.#log?.warn(
          { dir: this.#store.dir, count: dropped, bytes },
          'spool full: dropping the oldest messages (counted in stats().dropped) until there is room',
        );
      }
      this.#emit('dropped', { count: dropped, bytes });
    } else if (inserted > 0) {
      this.#dropping = false;
    }
    if (inserted > 0) {
      this.#counts.appended += inserted;
      const stored = inserted - result.insertsDropped;
      if (stored > 0) this.#emit('appended', { count: stored });
    }
  }

  #emit<K extends keyof SpoolEvents>(event: K, ...args: SpoolEvents[K]): void {
    // Never call a listener from inside a spool call.
    queueMicrotask(() => {
      (this.emit as (e: K, ...a: SpoolEvents[K]) => boolean)(event, ...args);
    });
  }

  /** State can change while a call awaits; this reads it afresh. */
  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  /** Drops the group-commit and ack timers: a commit is under way, or the spool stops. */
  #cancelCommitTimers(): void {
    this.#groupCommit.cancel();
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
  }

  #stopTimers(): void {
    this.#cancelCommitTimers();
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }
}

/** The `suppressed` field of a rate-limited line, when some were left out. */
function counted(suppressed: number): { suppressed?: number } {
  return suppressed > 0 ? { suppressed } : {};
}
