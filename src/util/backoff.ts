const INITIAL_MS = 500;
const MULTIPLIER = 2;
const CAP_MS = 30_000;
const JITTER = 0.2;

export interface BackoffOptions {
  initialMs?: number;
  capMs?: number;
  /** A number in [0, 1) for the jitter (default Math.random; tests pass a fixed one). */
  random?: () => number;
}

/** Capped exponential backoff with jitter, for work that is "unavailable" rather than wrong. */
export class Backoff {
  readonly #initial: number;
  readonly #cap: number;
  readonly #random: () => number;
  #next: number;

  constructor(opts: BackoffOptions = {}) {
    this.#initial = opts.initialMs ?? INITIAL_MS;
    this.#cap = opts.capMs ?? CAP_MS;
    this.#random = opts.random ?? Math.random;
    this.#next = this.#initial;
  }

  /** The delay before the next try; each call grows the one after it, up to the cap. */
  nextDelay(): number {
    const base = this.#next;
    this.#next = Math.min(this.#next * MULTIPLIER, this.#cap);
    const spread = base * JITTER;
    return Math.max(0, Math.round(base - spread + this.#random() * 2 * spread));
  }

  /** After a success: the next failure waits the initial delay again. */
  reset(): void {
    this.#next = this.#initial;
  }
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts; never keeps the process alive. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
