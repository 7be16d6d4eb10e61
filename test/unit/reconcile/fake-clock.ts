import type { Clock, ClockTimer } from '../../../src/reconcile/clock.ts';

/** A clock that moves only when the test calls advance(); due timers fire in time order. */
export class FakeClock implements Clock {
  #now = 0;
  #timers: { at: number; fn: () => void; cancelled: boolean }[] = [];

  now(): number {
    return this.#now;
  }

  after(ms: number, fn: () => void): ClockTimer {
    const timer = { at: this.#now + Math.max(0, ms), fn, cancelled: false };
    this.#timers.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  }

  /** Moves time on by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      const due = this.#timers
        .filter((t) => !t.cancelled && t.at <= until)
        .sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = due.at;
      due.fn();
    }
    this.#now = until;
  }

  /** Timers not yet fired or cancelled. */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }
}
