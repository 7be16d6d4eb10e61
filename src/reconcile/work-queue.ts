import type { Clock, ClockTimer } from './clock.ts';
import { KeyBackoff } from './key-backoff.ts';
import type { BackoffOptions } from '../util/backoff.ts';

export interface WorkQueueOptions {
  clock: Clock;
  backoff?: BackoffOptions;
  /** Told the number of keys waiting whenever it changes, and of each key added. */
  onDepth?: (depth: number) => void;
  onAdd?: () => void;
}

/**
 * Keys waiting to be reconciled, with the rules of client-go's workqueue: a
 * key is queued at most once however often it is added; a key added while it
 * is being processed is handed out again once done() is called for it, never
 * to two workers at once; delayed and rate-limited adds wait on the clock.
 */
export class WorkQueue {
  readonly #opts: WorkQueueOptions;
  readonly #backoff: KeyBackoff;
  /** Keys ready to hand out, in the order they were added. */
  readonly #queued = new Set<string>();
  readonly #processing = new Set<string>();
  /** Keys added while being processed: queued again by done(). */
  readonly #again = new Set<string>();
  /** Delayed adds: the earliest one per key wins. */
  readonly #delayed = new Map<string, { at: number; timer: ClockTimer }>();
  readonly #waiters: ((key: string | undefined) => void)[] = [];
  #closed = false;

  constructor(opts: WorkQueueOptions) {
    this.#opts = opts;
    this.#backoff = new KeyBackoff(opts.backoff);
  }

  /** Queues the key unless it is queued already; ignored once shut down (a late event is no error). */
  add(key: string): void {
    if (this.#closed || this.#queued.has(key) || this.#again.has(key)) return;
    this.#opts.onAdd?.();
    if (this.#processing.has(key)) this.#again.add(key);
    else this.#queued.add(key);
    this.#depthChanged();
    this.#wake();
  }

  /** Adds the key after `ms`; an earlier pending add of the same key stands. */
  addAfter(key: string, ms: number): void {
    if (this.#closed) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = this.#opts.clock.now() + ms;
    const pending = this.#delayed.get(key);
    if (pending !== undefined) {
      if (pending.at <= at) return;
      pending.timer.cancel();
    }
    const timer = this.#opts.clock.after(ms, () => {
      this.#delayed.delete(key);
      this.add(key);
    });
    this.#delayed.set(key, { at, timer });
  }

  /** Adds the key after its own backoff delay, which grows with each call until forget(). Returns the delay. */
  addRateLimited(key: string): number {
    const ms = this.#backoff.next(key);
    this.addAfter(key, ms);
    return ms;
  }

  /** The key succeeded (or is gone): its next failure waits the initial delay again. */
  forget(key: string): void {
    this.#backoff.forget(key);
  }

  /** Rate-limited adds of the key since it was last forgotten. */
  failures(key: string): number {
    return this.#backoff.failures(key);
  }

  /**
   * The next key to process, marked as processing until done(key); waits for
   * one. Undefined once the queue is shut down.
   */
  get(): Promise<string | undefined> {
    if (this.#closed) return Promise.resolve(undefined);
    const key = this.#take();
    if (key !== undefined) return Promise.resolve(key);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Processing of the key ended; if it was added meanwhile, it is queued again. */
  done(key: string): void {
    this.#processing.delete(key);
    if (this.#again.delete(key) && !this.#closed) {
      this.#queued.add(key);
      this.#wake();
    }
  }

  /** Keys waiting to be handed out (not those being processed or delayed). */
  get depth(): number {
    return this.#queued.size + this.#again.size;
  }

  /** Keys being processed now. */
  get processing(): number {
    return this.#processing.size;
  }

  /** Stops handing out keys: waiting and delayed keys are dropped, waiting get() calls resolve undefined. Idempotent. */
  shutDown(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const { timer } of this.#delayed.values()) timer.cancel();
    this.#delayed.clear();
    this.#queued.clear();
    this.#again.clear();
    this.#depthChanged();
    for (const resolve of this.#waiters.splice(0)) resolve(undefined);
  }

  #take(): string | undefined {
    const key = this.#queued.values().next().value;
    if (key === undefined) return undefined;
    this.#queued.delete(key);
    this.#processing.add(key);
    this.#depthChanged();
    return key;
  }

  #wake(): void {
    while (this.#waiters.length > 0) {
      const key = this.#take();
      if (key === undefined) return;
      this.#waiters.shift()?.(key);
    }
  }

  #depthChanged(): void {
    this.#opts.onDepth?.(this.depth);
  }
}
