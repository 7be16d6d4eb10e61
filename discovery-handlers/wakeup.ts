/**
 * Lets a polling loop sleep until its next poll, an outside nudge (a file
 * changed), or an abort, whichever comes first. A nudge while the loop is busy
 * is remembered, so none is lost.
 */
export class Wakeup {
  #pending = false;
  #wake: (() => void) | undefined;

  notify(): void {
    this.#pending = true;
    this.#wake?.();
  }

  /** Resolves (never rejects) after `ms`, on notify(), or when the signal aborts. */
  wait(ms: number, signal: AbortSignal): Promise<void> {
    if (this.#pending || signal.aborted) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#wake = undefined;
        this.#pending = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      signal.addEventListener('abort', done, { once: true });
      this.#wake = done;
    });
  }
}
