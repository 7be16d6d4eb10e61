// The spool's contract: a durable store-and-forward queue between the node and
// the cloud broker. Implementations live beside this file (spool-sqlite.ts) and
// are opened by name through openSpool() in index.ts.
import type { EventEmitter } from 'node:events';

/** One message on its way to the cloud. */
export interface SpoolMessage {
  /** Unique; the cloud side de-duplicates re-deliveries on it. */
  id: string;
  /** The device: messages with the same key are delivered in append order. */
  key: string;
  topic: string;
  payload: Buffer;
  /** When the message was made, ms since the epoch (kept as given). */
  timestamp: number;
  /** Not delivered at or after this time (ms since the epoch); counted as expired. */
  expiresAt?: number;
  /** Under `onFull: 'drop-oldest'`, lower priorities are dropped first (default 0). */
  priority?: number;
  /** MQTT 5 user properties of the original publish, in order (a name may repeat). */
  userProperties?: [string, string][];
  /** MQTT 5 content type of the original publish. */
  contentType?: string;
}

/** What a producer appends: a message, its id generated when missing. */
export type SpoolInput = Omit<SpoolMessage, 'id'> & { id?: string };

/** Messages handed out by one `read()`, to be passed back to `ack()` once the cloud has them. */
export interface SpoolBatch {
  readonly messages: readonly SpoolMessage[];
}

/** Gauges (depth, bytes, blockedProducers) and counters since open. */
export interface SpoolStats {
  /** Durable messages not yet acknowledged (in flight included). */
  depth: number;
  /** Their accounted size (payload + metadata), the figure bounded by `maxBytes`. */
  bytes: number;
  /** Messages made durable. */
  appended: number;
  /** Messages acknowledged (sent to the cloud). */
  sent: number;
  /** Messages dropped to make room under `onFull: 'drop-oldest'`. */
  dropped: number;
  /** Messages removed undelivered because their time-to-live passed. */
  expired: number;
  /** Records whose checksum failed; skipped and removed. */
  corrupt: number;
  /** Append calls waiting for space under `onFull: 'block'`. */
  blockedProducers: number;
  /** Damaged spool files moved aside on open (then a fresh file was started). */
  damagedFiles: number;
  /** Records copied from a damaged file into the fresh one (they verified). */
  salvaged: number;
  /** Records of a damaged file known to be lost (failed to verify, or could not be stored). */
  lost: number;
}

/** When an append resolves: after an fsync of its own, or at the next group commit. */
export type SyncPolicy =
  | { sync: 'always' }
  | {
      sync: 'group';
      /** Longest wait for a commit once something is queued (default 10). */
      intervalMs?: number;
      /** Commit at once when this many messages are queued (default 1000). */
      maxMessages?: number;
      /**
       * Commit as soon as a turn of the event loop queues nothing more, that is
       * when every producer waits for this commit (default true). false waits
       * out the interval: fewer, larger writes (flash wear) at low rates.
       */
      whenIdle?: boolean;
    };

/** A pino-compatible logger: `warn` for drops, corrupt records, disk full; `error` for a damaged file. */
export interface SpoolLogger {
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export type SpoolOptions = SyncPolicy & {
  /** Directory the spool owns (created if missing). */
  dir: string;
  /**
   * Bound on `stats().bytes`. The files on disk hold that plus the store's own
   * overhead (about 5% for SQLite), its journal and `reserveBytes`.
   */
  maxBytes: number;
  /** When full: make `append` wait for space, or drop the oldest messages (counted). */
  onFull: 'block' | 'drop-oldest';
  /** Bytes kept aside on disk so that acknowledgements can still be stored when the disk fills (default 1 MiB). */
  reserveBytes?: number;
  log?: SpoolLogger;
  /** Clock for time-to-live (default Date.now). */
  now?: () => number;
};

export interface AppendOptions {
  /** Abandons a wait for space (`onFull: 'block'`); the append rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Events, emitted asynchronously, beside the counters in stats(). */
export interface SpoolEvents {
  /** Messages became durable (a reader may have something new). */
  appended: [info: { count: number }];
  /** Oldest messages were dropped to make room. */
  dropped: [info: { count: number; bytes: number }];
  /** Messages expired undelivered. */
  expired: [info: { count: number }];
  /** A record failed its checksum and was skipped. */
  corrupt: [info: { id: string | undefined; reason: string }];
}

export interface Spool extends EventEmitter<SpoolEvents> {
  /** Resolves once every message is durable under the sync policy, never before. */
  append(messages: readonly SpoolInput[], options?: AppendOptions): Promise<void>;
  /**
   * Up to `max` of the oldest messages not yet handed out since open, in append
   * order (so FIFO per key), skipping expired and corrupt ones. Unacknowledged
   * messages are handed out again after a restart (at-least-once).
   */
  read(max: number): Promise<SpoolBatch>;
  /**
   * Removes the batch's messages at once (their space is free for producers);
   * resolves once the removal is committed (with the next appends, or within
   * 100 ms: a removal need not be durable at once), or recorded for a later commit when
   * the disk is full or the spool is destroyed (a crash before that commit
   * delivers them again). Acking twice is a no-op.
   */
  ack(batch: SpoolBatch): Promise<void>;
  /**
   * Forgets what was handed out and not acknowledged, so that the next reads
   * hand it out again, oldest first, before anything newer: what a consumer
   * calls when it lost track of its batches (a dropped connection) and must
   * resend them in order. Acknowledging a batch read before the rewind still
   * works.
   */
  rewind(): void;
  stats(): SpoolStats;
  /** Stops new work, commits what is queued, releases the files. Idempotent. */
  close(): Promise<void>;
  /** Stops now: queued appends reject with `err` (or SpoolDestroyedError). Idempotent. */
  destroy(err?: Error): void;
}
