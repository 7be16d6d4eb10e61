import type { Logger } from 'pino';
import type { BackoffOptions } from '../util/backoff.ts';
import { LogLimiter } from '../util/log-limiter.ts';
import { systemClock, type Clock } from './clock.ts';
import { TerminalError } from './errors.ts';
import { noQueueMetrics, type QueueMetrics } from './metrics.ts';
import type { Outcome, Result } from './result.ts';
import { WorkQueue } from './work-queue.ts';

/** Brings one key's object to what is wanted. */
export interface Reconciler {
  /**
   * Reads the key's current state (a deletion shows as nothing found) and acts
   * on it. Throws a TerminalError for what only a change can fix; any other
   * error is retried with the key's backoff. The signal aborts at shutdown.
   */
  reconcile(key: string, signal: AbortSignal): Promise<Result>;
}

export interface ReconcileQueueOptions {
  /** The queue's name in logs and metrics, e.g. "discovery". */
  name: string;
  reconciler: Reconciler;
  log: Logger;
  /** Keys reconciled at once (each key by one worker at a time); default 4. */
  workers?: number;
  metrics?: QueueMetrics;
  clock?: Clock;
  /** The per-key backoff after a failed reconcile (default: 0.5 s doubling to 30 s, ±20 %). */
  backoff?: BackoffOptions;
  /** After the signal aborts, how long reconciles under way may take before they are abandoned; default 10 s. */
  drainMs?: number;
}

const WORKERS = 4;
const DRAIN_MS = 10_000;

/** The queue was already started once. */
export class QueueStartedError extends Error {
  readonly code = 'EDGEBRIDGE_QUEUE_STARTED';
  constructor(name: string) {
    super(`reconcile queue ${name} was already started`);
    this.name = 'QueueStartedError';
  }
}

/**
 * A keyed reconcile queue: add() a key whenever something about it may have
 * changed, and a pool of workers calls the reconciler for it, never for one
 * key twice at once, requeueing it as its result or error says. The public
 * surface is add/addAfter/run; the queue, backoff and metrics are inside.
 */
export class ReconcileQueue {
  readonly #opts: ReconcileQueueOptions;
  readonly #clock: Clock;
  readonly #metrics: QueueMetrics;
  readonly #queue: WorkQueue;
  readonly #limiter = new LogLimiter();
  /** Keys being reconciled, with when each started (clock time). */
  readonly #busy = new Map<string, number>();
  #started = false;

  constructor(opts: ReconcileQueueOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#metrics = opts.metrics ?? noQueueMetrics;
    this.#queue = new WorkQueue({
      clock: this.#clock,
      ...(opts.backoff !== undefined ? { backoff: opts.backoff } : {}),
      onDepth: (n) => this.#metrics.depth(n),
      onAdd: () => this.#metrics.added(),
    });
  }

  /** Queues the key for a reconcile (once, however often it is added before its turn). */
  add(key: string): void {
    this.#queue.add(key);
  }

  /** Queues the key after `ms`. */
  addAfter(key: string, ms: number): void {
    this.#queue.addAfter(key, ms);
  }

  /** How long the longest reconcile under way has run (ms); undefined when none runs. */
  busyForMs(): number | undefined {
    let oldest: number | undefined;
    for (const since of this.#busy.values())
      if (oldest === undefined || since < oldest) oldest = since;
    return oldest === undefined ? undefined : this.#clock.now() - oldest;
  }

  /**
   * Reconciles until the signal aborts; then hands out no more keys, waits up
   * to drainMs for the reconciles under way (their signal has aborted too) and
   * abandons the rest: their late results are ignored.
   */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#started) throw new QueueStartedError(this.#opts.name);
    this.#started = true;
    const workers = Array.from({ length: Math.max(1, this.#opts.workers ?? WORKERS) }, () =>
      this.#work(signal),
    );
    await abortOf(signal);
    this.#queue.shutDown();
    let deadline: { cancel(): void } | undefined;
    const drained = await Promise.race([
      Promise.all(workers).then(() => true),
      new Promise<false>((resolve) => {
        deadline = this.#clock.after(this.#opts.drainMs ?? DRAIN_MS, () => resolve(false));
      }),
    ]);
    deadline?.cancel();
    if (!drained)
      this.#opts.log.warn(
        { queue: this.#opts.name, abandoned: [...this.#busy.keys()] },
        'reconciles still under way at the shutdown deadline; abandoned',
      );
  }

  async #work(signal: AbortSignal): Promise<void> {
    for (;;) {
      const key = await this.#queue.get();
      if (key === undefined) return;
      await this.#process(key, signal);
    }
  }

  async #process(key: string, signal: AbortSignal): Promise<void> {
    const started = this.#clock.now();
    this.#busy.set(key, started);
    let outcome: Outcome;
    try {
      outcome = this.#settle(key, await this.#opts.reconciler.reconcile(key, signal));
    } catch (err) {
      outcome = this.#failed(key, err, signal);
    } finally {
      this.#busy.delete(key);
      this.#queue.done(key);
    }
    this.#metrics.reconciled(outcome, (this.#clock.now() - started) / 1000);
  }

  #settle(key: string, result: Result): Outcome {
    switch (result.outcome) {
      case 'done':
        this.#queue.forget(key);
        return 'done';
      case 'requeue-after':
        this.#queue.forget(key);
        this.#queue.addAfter(key, Number.isFinite(result.ms) ? result.ms : 0);
        return 'requeue_after';
      case 'requeue':
        this.#metrics.retried();
        this.#queue.addRateLimited(key);
        return 'requeue';
    }
  }

  #failed(key: string, err: unknown, signal: AbortSignal): Outcome {
    const { log, name } = this.#opts;
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof TerminalError) {
      // Nothing a retry could change: the key waits for its next add (a change, or the resync).
      this.#queue.forget(key);
      log.error(
        { queue: name, key, err: message, code: err.code },
        'reconcile failed; not retried until the key changes',
      );
      return 'terminal';
    }
    // A reconcile cut short by shutdown is not worth a line; the queue no longer requeues.
    if (signal.aborted) return 'error';
    this.#metrics.retried();
    const retryInMs = this.#queue.addRateLimited(key);
    this.#limiter.log(
      log,
      'warn',
      'reconcile-failed',
      key,
      { queue: name, key, err: message, retryInMs, failures: this.#queue.failures(key) },
      'reconcile failed; retrying with backoff',
    );
    return 'error';
  }
}

/** Resolves when the signal aborts, removing its listener then. */
function abortOf(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener('abort', () => resolve(), { once: true }),
  );
}
