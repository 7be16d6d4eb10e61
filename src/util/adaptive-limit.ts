export interface AdaptiveLimitOptions {
  /** Concurrency at start and after a long quiet spell's worth of successes (default 2). */
  initial?: number;
  /** Never fewer in flight than this (default 1). */
  min?: number;
  /** Never more in flight than this (default 8). */
  max?: number;
  /**
   * A request slower than this many times the fastest one seen recently is a
   * sign of queueing at the server (default 4).
   */
  latencyFactor?: number;
  /** Latencies under this are never taken as queueing (default 50 ms). */
  latencyFloorMs?: number;
}

/** How a request that held a slot went. */
export type Outcome = 'ok' | 'overloaded' | 'failed';

/**
 * A concurrency limit that adapts like TCP congestion control (additive
 * increase, multiplicative decrease), for requests to a shared server: a
 * whole fleet of agents starting at once must not push the API server into
 * timeouts and write conflicts, while a lone agent should still register its
 * devices quickly. Overload is a retryable error (429, 5xx, timeout) or a
 * latency far above the fastest seen recently.
 */
export class AdaptiveLimit {
  readonly #min: number;
  readonly #max: number;
  readonly #factor: number;
  readonly #floorMs: number;
  #limit: number;
  #inFlight = 0;
  readonly #waiting: (() => void)[] = [];
  /** The fastest latency seen recently; drifts up slowly so that a server that got slower for good is not read as overloaded forever. */
  #baseMs = Infinity;
  /** Decrease at most once per round of in-flight requests, as one overload episode hits them all. */
  #lastDecrease = 0;

  constructor(opts: AdaptiveLimitOptions = {}) {
    this.#min = opts.min ?? 1;
    this.#max = opts.max ?? 8;
    this.#factor = opts.latencyFactor ?? 4;
    this.#floorMs = opts.latencyFloorMs ?? 50;
    this.#limit = Math.min(this.#max, Math.max(this.#min, opts.initial ?? 2));
  }

  /** The current limit (whole slots). */
  get limit(): number {
    return Math.floor(this.#limit);
  }

  /** Runs `fn` when a slot is free; `classify` says whether its error means the server is overloaded. */
  async run<T>(fn: () => Promise<T>, classify: (err: unknown) => Outcome): Promise<T> {
    await this.#acquire();
    const started = performance.now();
    let outcome: Outcome = 'ok';
    try {
      return await fn();
    } catch (err) {
      outcome = classify(err);
      throw err;
    } finally {
      this.#release(outcome, performance.now() - started);
    }
  }

  async #acquire(): Promise<void> {
    if (this.#inFlight < this.limit && this.#waiting.length === 0) {
      this.#inFlight++;
      return;
    }
    // The releaser counts the slot for us before it wakes us.
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  #release(outcome: Outcome, ms: number): void {
    this.#inFlight--;
    this.#adapt(outcome, ms);
    while (this.#inFlight < this.limit) {
      const next = this.#waiting.shift();
      if (next === undefined) break;
      this.#inFlight++;
      next();
    }
  }

  #adapt(outcome: Outcome, ms: number): void {
    if (outcome === 'failed') return;
    const now = performance.now();
    if (outcome === 'ok') this.#baseMs = Math.min(this.#baseMs * 1.01, ms);
    const queueing = ms > Math.max(this.#floorMs, this.#baseMs * this.#factor);
    if (outcome === 'overloaded' || queueing) {
      if (now - this.#lastDecrease < ms) return;
      this.#lastDecrease = now;
      this.#limit = Math.max(this.#min, this.#limit / 2);
      return;
    }
    this.#limit = Math.min(this.#max, this.#limit + 1 / this.#limit);
  }
}
