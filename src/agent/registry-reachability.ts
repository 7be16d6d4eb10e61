// Whether the registry answers, told by the outcome of each request the agent
// makes (the registry's onRequest hook). A link that comes back is noticed by
// whichever request gets through first; the slice syncs then retry at once
// rather than waiting out backoffs grown during the cut.

/** contract: learns from request outcomes whether the registry answers; listeners hear when it answers again. */
export class RegistryReachability {
  #down = false;
  readonly #listeners = new Set<() => void>();

  /**
   * Takes one request's outcome: "2xx", an HTTP status ("404"), or "error"
   * when no answer came. A 429 or 5xx is an answer from a server that cannot
   * take the work: it is not taken as the registry being back.
   */
  observe(code: string): void {
    if (code === 'error') {
      this.#down = true;
      return;
    }
    if (code === '429' || code.startsWith('5') || !this.#down) return;
    this.#down = false;
    // Never synchronously with the request's caller.
    queueMicrotask(() => {
      for (const fn of this.#listeners) fn();
    });
  }

  /** Calls `fn` each time the registry answers after a request got no answer; returns the unsubscribe. */
  onReturn(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }
}
