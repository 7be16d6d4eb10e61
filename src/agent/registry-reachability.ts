// Whether the registry answers, told by the outcome of each request the agent
// makes (the registry's onRequest hook). While it does not, a cheap probe
// every few seconds notices its return, which the watches' and slice writes'
// backoffs (grown to 30 s over a long cut) would notice only at their next
// try; the slice syncs then retry at once.
import { systemClock, type Clock, type ClockTimer } from '../reconcile/clock.ts';

/** How often the registry is probed while it does not answer. */
export const PROBE_MS = 5_000;
/** Each probe's delay varies this much either way, so a fleet's probes spread out. */
const PROBE_JITTER = 0.2;

export interface ReachabilityOptions {
  /** Default the system's; tests pass a fake one. */
  clock?: Clock;
  /** A number in [0, 1) for the jitter (default Math.random). */
  random?: () => number;
}

/** contract: learns from request outcomes whether the registry answers; listeners hear when it answers again. */
export class RegistryReachability {
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #listeners = new Set<() => void>();
  #down = false;
  #probe: (() => Promise<unknown>) | undefined;
  #timer: ClockTimer | undefined;

  constructor(opts: ReachabilityOptions = {}) {
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? Math.random;
  }

  /**
   * Takes one request's outcome: "2xx", an HTTP status ("404"), or "error"
   * when no answer came. A 429 or 5xx is an answer from a server that cannot
   * take the work: it is not taken as the registry being back.
   */
  observe(code: string): void {
    if (code === 'error') {
      this.#down = true;
      this.#scheduleProbe();
      return;
    }
    if (code === '429' || code.startsWith('5') || !this.#down) return;
    this.#down = false;
    this.#timer?.cancel();
    this.#timer = undefined;
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

  /**
   * Until the signal aborts: while the registry does not answer, calls `probe`
   * (a cheap request whose outcome reaches observe()) every PROBE_MS, jittered.
   */
  probeWhileDown(probe: () => Promise<unknown>, signal: AbortSignal): void {
    if (signal.aborted) return;
    this.#probe = probe;
    signal.addEventListener(
      'abort',
      () => {
        this.#probe = undefined;
        this.#timer?.cancel();
        this.#timer = undefined;
      },
      { once: true },
    );
    if (this.#down) this.#scheduleProbe();
  }

  #scheduleProbe(): void {
    if (this.#probe === undefined || this.#timer !== undefined) return;
    const spread = 1 - PROBE_JITTER + 2 * PROBE_JITTER * this.#random();
    this.#timer = this.#clock.after(PROBE_MS * spread, () => {
      this.#timer = undefined;
      const probe = this.#probe;
      if (probe === undefined || !this.#down) return;
      // A failure reaches observe() too, which schedules the next probe.
      probe()
        .catch(() => undefined)
        .finally(() => {
          if (this.#down) this.#scheduleProbe();
        });
    });
  }
}
