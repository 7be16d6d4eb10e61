import { Backoff, type BackoffOptions } from '../util/backoff.ts';

/**
 * A capped, jittered exponential backoff per key: each failure of a key
 * doubles its next delay; forget() (after a success, or when the key is gone)
 * starts it over. Only keys that are failing are remembered.
 */
export class KeyBackoff {
  readonly #opts: BackoffOptions;
  readonly #keys = new Map<string, { backoff: Backoff; failures: number }>();

  constructor(opts: BackoffOptions = {}) {
    this.#opts = opts;
  }

  /** The delay before the key's next try; counts one more failure. */
  next(key: string): number {
    let entry = this.#keys.get(key);
    if (entry === undefined) {
      entry = { backoff: new Backoff(this.#opts), failures: 0 };
      this.#keys.set(key, entry);
    }
    entry.failures++;
    return entry.backoff.nextDelay();
  }

  /** Failures of the key since it last succeeded. */
  failures(key: string): number {
    return this.#keys.get(key)?.failures ?? 0;
  }

  forget(key: string): void {
    this.#keys.delete(key);
  }

  /** Keys now failing. */
  get size(): number {
    return this.#keys.size;
  }
}
