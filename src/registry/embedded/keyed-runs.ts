// Work per key that only needs to run once more, however often it is asked
// for: a request while a run is waiting joins it; a request while one runs
// gets one run after it (which sees everything done before the request).

export class KeyedRuns {
  /** The run not yet started, per key: later requests join it. */
  readonly #waiting = new Map<string, Promise<void>>();
  /** The last run queued, per key. */
  readonly #tail = new Map<string, Promise<void>>();

  /** Runs fn for `key` after the run under way, or joins the run already waiting. fn must not throw. */
  run(key: string, fn: () => Promise<void>): Promise<void> {
    const waiting = this.#waiting.get(key);
    if (waiting !== undefined) return waiting;
    const previous = this.#tail.get(key) ?? Promise.resolve();
    const next = previous.then(() => {
      this.#waiting.delete(key);
      return fn();
    });
    this.#waiting.set(key, next);
    this.#tail.set(key, next);
    void next.then(() => {
      if (this.#tail.get(key) === next) this.#tail.delete(key);
    });
    return next;
  }
}
