/** A timer a Clock started; cancel() is idempotent. */
export interface ClockTimer {
  cancel(): void;
}

/** Time for the queue: the system's in the agent, a fake one that tests advance by hand. */
export interface Clock {
  /** Milliseconds, monotonic enough to measure durations. */
  now(): number;
  /** Calls `fn` after `ms`; the timer never keeps the process alive. */
  after(ms: number, fn: () => void): ClockTimer;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, Math.max(0, ms)).unref();
    return { cancel: () => clearTimeout(timer) };
  },
};

/** Waits `ms` on `clock`; resolves early (not rejecting) when `signal` aborts. */
export function sleepOn(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const onStop = (): void => {
      timer.cancel();
      resolve();
    };
    const timer = clock.after(ms, () => {
      signal.removeEventListener('abort', onStop);
      resolve();
    });
    signal.addEventListener('abort', onStop, { once: true });
  });
}
