// When queued work is committed: at once under `sync: 'always'` (one fsync per
// call), or under `sync: 'group'` when enough is queued or the interval passes,
// so that many appends share one fsync.
import { SpoolInvalidArgumentError } from './errors.ts';
import type { SyncPolicy } from './spool.ts';

export const DEFAULT_GROUP_INTERVAL_MS = 10;
export const DEFAULT_GROUP_MAX_MESSAGES = 1000;

export class GroupCommit {
  readonly #intervalMs: number;
  readonly #maxMessages: number;
  readonly #commit: () => void;
  #timer: NodeJS.Timeout | undefined;

  constructor(policy: SyncPolicy, commit: () => void) {
    if (policy.sync === 'always') {
      this.#intervalMs = 0;
      this.#maxMessages = 1;
    } else if (policy.sync === 'group') {
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
      this.#timer = undefined;
      this.#commit();
    }, this.#intervalMs);
  }

  /** Drops the timer (after a commit, or on close). */
  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
