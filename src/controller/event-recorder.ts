// Kubernetes Events about Devices and Discoveries, so that `kubectl describe`
// tells an object's story. Recording never blocks and never fails the caller:
// record() only updates memory and a bounded queue that one writer drains.
// Repeats of the same (object, type, reason, action, message) within six
// minutes become one Event whose series count grows (one patch per flush
// interval, however many repeats); new Events are rate-limited per object
// (client-go's spam filter: burst 25, then one per 5 minutes) and every write
// globally. Before each write the recorder waits its turn (waitTurn: the
// controller's Device writes come first), for at most 30 s from the record()
// that queued it. What is dropped is counted, never silent.
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import { sleepOn, systemClock, type Clock, type ClockTimer } from '../reconcile/clock.ts';
import { KubeApiError } from '../registry/kubernetes/client/errors.ts';
import { microTime } from '../registry/kubernetes/client/micro-time.ts';
import { LogLimiter } from '../util/log-limiter.ts';
import { Counter } from '../util/prom-classes.ts';
import type { EventWriter, KubeEvent, ObjectRef } from './event-writer.ts';
import { TokenBucket } from './token-bucket.ts';

export type { ObjectRef } from './event-writer.ts';

export const REPORTING_CONTROLLER = 'edgebridge.io/controller';
const PER_OBJECT_BURST = 25;
const PER_OBJECT_REFILL_MS = 5 * 60_000;
const GLOBAL_BURST = 100;
const GLOBAL_REFILL_MS = 100;
const QUEUE_SIZE = 1000;
/** Repeats gathered before one series patch. */
const SERIES_FLUSH_MS = 5_000;
/** client-go's: a repeat later than this starts a new Event. */
const SERIES_WINDOW_MS = 6 * 60_000;
/** Series and per-object buckets remembered; the least recently used go first. */
const MAX_REMEMBERED = 4096;
/** The API server's limits on an Event's note and reason. */
const MAX_NOTE = 1024;
const MAX_REASON = 128;
const CLOSE_TIMEOUT_MS = 2_000;
/** The longest an Event waits for its turn: under endless churn, Events are late, not lost. */
const TURN_MAX_WAIT_MS = 30_000;

export type EventType = 'Normal' | 'Warning';
export type DropReason = 'rate_limited' | 'queue_full' | 'write_failed' | 'closed';

/** Where the recorder counts its writes and drops. */
export interface EventMetrics {
  written(verb: 'create' | 'patch'): void;
  dropped(reason: DropReason): void;
}

/** Counters `edgebridge_controller_events_written_total{verb}` and `..._dropped_total{reason}` on `registry`. */
export function eventMetrics(registry: Registry): EventMetrics {
  const written = new Counter({
    name: 'edgebridge_controller_events_written_total',
    help: 'Kubernetes Events written: create (a new Event) or patch (a series count)',
    labelNames: ['verb'] as const,
    registers: [registry],
  });
  const dropped = new Counter({
    name: 'edgebridge_controller_events_dropped_total',
    help: 'Kubernetes Events (or series updates) not written, by reason (rate_limited, queue_full, write_failed, closed)',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  return {
    written: (verb) => written.inc({ verb }),
    dropped: (reason) => dropped.inc({ reason }),
  };
}

/** contract: what the controller records Events with. Never blocks, never throws. */
export interface EventRecorder {
  /** Records that something happened to `object`; `action` defaults to the reason. */
  record(
    object: ObjectRef,
    type: EventType,
    reason: string,
    message: string,
    action?: string,
  ): void;
  /** Writes what is pending (series counts included) for up to 2 s, then stops. Idempotent. */
  close(): Promise<void>;
}

export interface EventRecorderOptions {
  writer: EventWriter;
  log: Logger;
  /** reportingInstance: this replica (e.g. its leader election identity). */
  instance: string;
  metrics?: EventMetrics;
  perObjectBurst?: number;
  perObjectRefillMs?: number;
  globalBurst?: number;
  globalRefillMs?: number;
  /** Writes waiting at most; beyond, new Events are dropped (default 1000). */
  queueSize?: number;
  seriesFlushMs?: number;
  closeTimeoutMs?: number;
  /** Monotonic time for rate limits and timers (tests pass a fake). */
  clock?: Clock;
  /** Wall-clock time written into Events (default Date.now). */
  wallClock?: () => number;
  /**
   * Resolves when the next write may go (e.g. once a burst of more important
   * writes is over), at the latest after `maxWaitMs`; early when the signal aborts.
   */
  waitTurn?: (signal: AbortSignal, maxWaitMs: number) => Promise<void>;
  /** How long a write waits for its turn at most, from when it was queued (default 30 s). */
  turnMaxWaitMs?: number;
}

/** One Event and its repeats. */
interface Series {
  event: KubeEvent;
  /** Occurrences recorded. */
  count: number;
  /** The count the API server has: 0 before the create succeeded. */
  written: number;
  lastObserved: number;
  /** A create that failed: the next repeat starts a new Event. */
  failed: boolean;
  queued: boolean;
  /** When it was last queued (clock time): its turn comes at the latest TURN_MAX_WAIT_MS later. */
  queuedAt: number;
  flush: ClockTimer | undefined;
}

/** Records Events through an EventWriter; see the module comment. */
export class KubeEventRecorder implements EventRecorder {
  readonly #writer: EventWriter;
  readonly #log: Logger;
  readonly #instance: string;
  readonly #metrics: EventMetrics | undefined;
  readonly #clock: Clock;
  readonly #wallClock: () => number;
  readonly #perObjectBurst: number;
  readonly #perObjectRefillMs: number;
  readonly #global: TokenBucket;
  readonly #queueSize: number;
  readonly #flushMs: number;
  readonly #closeTimeoutMs: number;
  readonly #waitTurn: ((signal: AbortSignal, maxWaitMs: number) => Promise<void>) | undefined;
  readonly #turnMaxWaitMs: number;
  /** By series key, in least-recently-used order. */
  readonly #series = new Map<string, Series>();
  /** By object key, in least-recently-used order. */
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #queue: Series[] = [];
  readonly #stop = new AbortController();
  readonly #limiter = new LogLimiter();
  #draining: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #closed = false;
  #seq = 0;

  constructor(opts: EventRecorderOptions) {
    this.#writer = opts.writer;
    this.#log = opts.log;
    this.#instance = opts.instance;
    this.#metrics = opts.metrics;
    this.#clock = opts.clock ?? systemClock;
    this.#wallClock = opts.wallClock ?? Date.now;
    this.#perObjectBurst = opts.perObjectBurst ?? PER_OBJECT_BURST;
    this.#perObjectRefillMs = opts.perObjectRefillMs ?? PER_OBJECT_REFILL_MS;
    this.#global = new TokenBucket(
      opts.globalBurst ?? GLOBAL_BURST,
      opts.globalRefillMs ?? GLOBAL_REFILL_MS,
      this.#clock.now(),
    );
    this.#queueSize = opts.queueSize ?? QUEUE_SIZE;
    this.#flushMs = opts.seriesFlushMs ?? SERIES_FLUSH_MS;
    this.#closeTimeoutMs = opts.closeTimeoutMs ?? CLOSE_TIMEOUT_MS;
    this.#waitTurn = opts.waitTurn;
    this.#turnMaxWaitMs = opts.turnMaxWaitMs ?? TURN_MAX_WAIT_MS;
  }

  record(
    object: ObjectRef,
    type: EventType,
    reason: string,
    message: string,
    action?: string,
  ): void {
    if (this.#closed) {
      this.#metrics?.dropped('closed');
      return;
    }
    const wall = this.#wallClock();
    const note = message.length > MAX_NOTE ? `${message.slice(0, MAX_NOTE - 3)}...` : message;
    const why = reason.slice(0, MAX_REASON);
    const act = (action ?? why).slice(0, MAX_REASON);
    const objectKey = `${object.namespace}/${object.kind}/${object.name}/${object.uid ?? ''}`;
    const key = JSON.stringify([objectKey, type, why, act, note]);
    const known = this.#series.get(key);
    if (known !== undefined && !known.failed && wall - known.lastObserved <= SERIES_WINDOW_MS) {
      known.count++;
      known.lastObserved = wall;
      touch(this.#series, key, known);
      this.#scheduleFlush(known);
      return;
    }
    if (!this.#bucket(objectKey).tryTake(this.#clock.now())) {
      this.#metrics?.dropped('rate_limited');
      return;
    }
    if (this.#queue.length >= this.#queueSize) {
      this.#metrics?.dropped('queue_full');
      return;
    }
    const series: Series = {
      event: {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: {
          name: this.#eventName(object.name, wall),
          // client-go's choice for a cluster-scoped object's Events.
          namespace: object.namespace === '' ? 'default' : object.namespace,
        },
        eventTime: microTime(wall),
        reportingController: REPORTING_CONTROLLER,
        reportingInstance: this.#instance,
        action: act,
        reason: why,
        note,
        type,
        regarding: { ...object },
      },
      count: 1,
      written: 0,
      lastObserved: wall,
      failed: false,
      queued: false,
      queuedAt: 0,
      flush: undefined,
    };
    touch(this.#series, key, series);
    evict(this.#series);
    this.#enqueue(series);
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    // Repeats waiting for their flush are written now.
    for (const s of this.#series.values()) {
      if (s.flush === undefined) continue;
      s.flush.cancel();
      s.flush = undefined;
      this.#enqueue(s);
    }
    const timer = this.#clock.after(this.#closeTimeoutMs, () =>
      this.#stop.abort(new Error('event recorder closed')),
    );
    await this.#draining;
    timer.cancel();
    this.#stop.abort(new Error('event recorder closed'));
    for (const s of this.#queue.splice(0)) {
      s.queued = false;
      this.#metrics?.dropped('closed');
    }
  }

  /** client-go's name: the object's, then the time in hex; a sequence keeps names of one millisecond apart. */
  #eventName(object: string, wall: number): string {
    this.#seq = (this.#seq + 1) % 1_000_000;
    const stamp = (BigInt(wall) * 1_000_000n + BigInt(this.#seq)).toString(16);
    return `${object}.${stamp}`;
  }

  #bucket(objectKey: string): TokenBucket {
    const bucket =
      this.#buckets.get(objectKey) ??
      new TokenBucket(this.#perObjectBurst, this.#perObjectRefillMs, this.#clock.now());
    touch(this.#buckets, objectKey, bucket);
    evict(this.#buckets);
    return bucket;
  }

  #scheduleFlush(s: Series): void {
    if (s.flush !== undefined || s.queued || s.written === 0) return;
    s.flush = this.#clock.after(this.#flushMs, () => {
      s.flush = undefined;
      this.#enqueue(s);
    });
  }

  #enqueue(s: Series): void {
    if (s.queued) return;
    if (this.#queue.length >= this.#queueSize) {
      // A series update waits for the next flush; its count is kept.
      this.#metrics?.dropped('queue_full');
      if (!this.#closed) this.#scheduleFlush(s);
      return;
    }
    s.queued = true;
    s.queuedAt = this.#clock.now();
    this.#queue.push(s);
    this.#draining ??= this.#drain().finally(() => (this.#draining = undefined));
  }

  async #drain(): Promise<void> {
    const stop = this.#stop.signal;
    for (;;) {
      const head = this.#queue[0];
      if (head === undefined || stop.aborted) return;
      const waited = this.#clock.now() - head.queuedAt;
      if (this.#waitTurn !== undefined && waited < this.#turnMaxWaitMs)
        await this.#waitTurn(stop, this.#turnMaxWaitMs - waited);
      const s = this.#queue[0];
      if (s === undefined || stop.aborted) return;
      const wait = this.#global.waitMs(this.#clock.now());
      if (wait > 0) {
        await this.#sleep(wait);
        continue;
      }
      this.#global.tryTake(this.#clock.now());
      this.#queue.shift();
      s.queued = false;
      await this.#write(s, stop);
    }
  }

  async #write(s: Series, stop: AbortSignal): Promise<void> {
    const count = s.count;
    const lastObservedTime = microTime(s.lastObserved);
    const verb = s.written === 0 ? 'create' : 'patch';
    if (verb === 'patch' && count <= s.written) return;
    try {
      if (verb === 'create') {
        await this.#writer.create(
          count > 1 ? { ...s.event, series: { count, lastObservedTime } } : s.event,
          stop,
        );
      } else {
        const { namespace, name } = s.event.metadata;
        await this.#writer.patchSeries(namespace, name, { count, lastObservedTime }, stop);
      }
      s.written = count;
      this.#metrics?.written(verb);
      if (s.count > s.written && !this.#closed) this.#scheduleFlush(s);
      else if (s.count > s.written) this.#enqueue(s);
    } catch (err) {
      if (stop.aborted) {
        this.#metrics?.dropped('closed');
        return;
      }
      this.#metrics?.dropped('write_failed');
      if (verb === 'create') s.failed = true;
      else if (err instanceof KubeApiError && err.status === 404) {
        // The Event expired (its TTL) or was deleted: the next repeat starts a new one.
        s.failed = true;
      } else if (!this.#closed) {
        this.#scheduleFlush(s);
      }
      const d = this.#limiter.take('write', verb);
      if (d.log)
        this.#log.warn(
          {
            verb,
            object: `${s.event.regarding.namespace}/${s.event.regarding.name}`,
            reason: s.event.reason,
            err: (err as Error).message,
            suppressed: d.suppressed,
          },
          'could not write a Kubernetes Event',
        );
    }
  }

  #sleep(ms: number): Promise<void> {
    return sleepOn(this.#clock, ms, this.#stop.signal);
  }
}

/** Moves `key` to the most recently used end of `map`. */
function touch<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
}

/** Forgets the least recently used entries beyond the cap. */
function evict<V>(map: Map<string, V>): void {
  while (map.size > MAX_REMEMBERED) {
    const oldest = map.keys().next().value;
    if (oldest === undefined) return;
    map.delete(oldest);
  }
}
