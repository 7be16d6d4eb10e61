// Which writes go first: the controller's Device and Discovery writes. Events
// are API writes too, and a burst of new Devices brings a burst of "Created"
// Events; they wait until the burst is over (or at most a while: the caller
// says), so that they never slow down the writes that converge the cluster.
import { sleepOn, systemClock, type Clock } from '../reconcile/clock.ts';

/** How long no write must have been under way for the writes to count as quiet. */
export const DEFAULT_QUIET_MS = 250;

export interface WriteQuietOptions {
  quietMs?: number;
  clock?: Clock;
}

/** contract: counts the writes that come first, and tells lesser writers when they may go. */
export class WriteQuiet {
  readonly #quietMs: number;
  readonly #clock: Clock;
  #active = 0;
  #lastEnd = -Infinity;

  constructor(opts: WriteQuietOptions = {}) {
    this.#quietMs = opts.quietMs ?? DEFAULT_QUIET_MS;
    this.#clock = opts.clock ?? systemClock;
  }

  /** Marks a write under way; the function returned ends it (calling it twice ends it once). */
  begin(): () => void {
    this.#active++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.#active--;
      this.#lastEnd = this.#clock.now();
    };
  }

  /**
   * Resolves once no write has been under way for the quiet period, or after
   * `maxWaitMs`, or (early) when the signal aborts.
   */
  async whenQuiet(signal: AbortSignal, maxWaitMs: number): Promise<void> {
    const deadline = this.#clock.now() + maxWaitMs;
    for (;;) {
      if (signal.aborted) return;
      const now = this.#clock.now();
      const wait = this.#active > 0 ? this.#quietMs : this.#lastEnd + this.#quietMs - now;
      if (wait <= 0 || now >= deadline) return;
      await sleepOn(this.#clock, Math.min(wait, deadline - now), signal);
    }
  }
}
