// Bytes in use against a limit, with producers waiting their turn for space.
// Waiters are served strictly in arrival order, so a large append is not
// starved by small ones and producers' appends keep their order.

interface Waiter {
  bytes: number;
  grant: () => void;
  fail: (err: Error) => void;
}

export class ByteBudget {
  readonly limit: number;
  #used: number;
  readonly #waiters: Waiter[] = [];

  constructor(limit: number, used: number) {
    this.limit = limit;
    this.#used = used;
  }

  get used(): number {
    return this.#used;
  }

  /** Producers waiting for space. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** Counts `bytes` as used without waiting (the caller makes room some other way). */
  force(bytes: number): void {
    this.#used += bytes;
  }

  /** Counts `bytes` if they fit now and nobody waits before them; false otherwise. */
  tryTake(bytes: number): boolean {
    if (this.#waiters.length > 0 || this.#used + bytes > this.limit) return false;
    this.#used += bytes;
    return true;
  }

  /**
   * Resolves once `bytes` fit and every earlier waiter has been served; the bytes
   * are counted from that moment. Rejects with the signal's reason on abort.
   */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    if (this.#waiters.length === 0 && this.#used + bytes <= this.limit) {
      this.#used += bytes;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(signal?.reason as Error);
        // The head may have been what held the others back.
        this.#serve();
      };
      const waiter: Waiter = {
        bytes,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        fail: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Returns `bytes` and serves waiters that now fit. */
  give(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
    this.#serve();
  }

  /** Rejects every waiter (close, destroy). */
  failAll(err: Error): void {
    for (const w of this.#waiters.splice(0)) w.fail(err);
  }

  #serve(): void {
    for (;;) {
      const head = this.#waiters[0];
      if (head === undefined || this.#used + head.bytes > this.limit) return;
      this.#waiters.shift();
      this.#used += head.bytes;
      head.grant();
    }
  }
}
