// When queued work is committed: at once under `sync: 'always'` (one fsync per
// call), or under `sync: 'group'` when enough is queued, when the interval
// passes, or when a turn of the event loop queues nothing more, so that many
// appends share one fsync. The last is what keeps throughput: a producer that
// waits for its acknowledgements (a broker client's window, aedes reading the
// next chunk of a socket only once the last is done) sends nothing more until
// this commit, and waiting out the interval would only idle.
import { SpoolInvalidArgumentError } from './errors.ts';
import type { SyncPolicy } from './spool.ts';

export const DEFAULT_GROUP_INTERVAL_MS = 10;
export const DEFAULT_GROUP_MAX_MESSAGES = 1000;

export class GroupCommit {
  readonly #intervalMs: number;
  readonly #maxMessages: number;
  readonly #whenIdle: boolean;
  readonly #commit: () => void;
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  /** Messages queued at the last call, and at the last look after a turn of the loop. */
  #latest = 0;
  #seen = -1;

  constructor(policy: SyncPolicy, commit: () => void) {
    if (policy.sync === 'always') {
      this.#intervalMs = 0;
      this.#maxMessages = 1;
      this.#whenIdle = false;
    } else if (policy.sync === 'group') {
      this.#whenIdle = policy.whenIdle ?? true;
      if (typeof this.#whenIdle !== 'boolean') {
        throw new SpoolInvalidArgumentError('whenIdle must be a boolean');
      }
      this.#intervalMs = policy.intervalMs ?? DEFAULT_GROUP_INTERVAL_MS;
      this.#maxMessages = policy.maxMessages ?? DEFAULT_GROUP_MAX_MESSAGES;
      if (!Number.isFinite(this.#intervalMs) || this.#intervalMs < 0) {
        throw new SpoolInvalidArgumentError('intervalMs must be a number >= 0');
      }
      if (!Number.isSafeInteger(this.#maxMessages) || this.#maxMessages < 1) {
        throw new SpoolInvalidArgumentError('maxMessages must be an integer >= 1');
      }
    } else {
      throw new SpoolInvalidArgumentError(
        `sync must be 'always' or 'group', not ${JSON.stringify((policy as { sync: unknown }).sync)}`,
      );
    }
    this.#commit = commit;
  }

  /** Work was queued; `queued` messages now wait. Commits now, or arms the timer. */
  queued(queued: number): void {
    if (queued >= this.#maxMessages) {
      this.cancel();
      this.#commit();
      return;
    }
    // Referenced on purpose: queued appends are work in progress that a
    // producer awaits, so the process must not exit before they commit.
    this.#timer ??= setTimeout(() => {
      this.cancel();
      this.#commit();
    }, this.#intervalMs);
    if (!this.#whenIdle) return;
    this.#latest = queued;
    this.#immediate ??= setImmediate(this.#lookAfterTurn);
  }

  /** After I/O of a loop turn: commits if nothing was queued since the last look. */
  readonly #lookAfterTurn = (): void => {
    this.#immediate = undefined;
    if (this.#latest === this.#seen) {
      this.cancel();
      this.#commit();
      return;
    }
    this.#seen = this.#latest;
    this.#immediate = setImmediate(this.#lookAfterTurn);
  };

  /** Drops the timers (after a commit, or on close). */
  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    this.#immediate = undefined;
    this.#seen = -1;
  }
}
