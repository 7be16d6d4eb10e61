// Repeated warnings of one kind from one peer (a client reconnecting at once,
// a flood of refused connections) must not flood the log: one line per kind
// and peer per interval, and that line says how many were left out before it.

export interface LogLimiterOptions {
  /** At most one line per kind and peer in this many milliseconds. */
  intervalMs: number;
  /** Kinds × peers remembered at once; the least recently logged is forgotten first (default 1024). */
  maxKeys?: number;
  /** Clock, for tests (default Date.now). */
  now?: () => number;
}

/** Whether to log now; if so, how many events of this kind and peer were not logged since the last line. */
export type LogDecision = { log: true; suppressed: number } | { log: false };

interface Slot {
  loggedAt: number;
  suppressed: number;
}

/** Decides which repeated warnings are logged; bounded in memory whatever the peers do. */
export class LogLimiter {
  readonly #intervalMs: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  /** In order of the last line logged: the first is the one to forget. */
  readonly #slots = new Map<string, Slot>();

  constructor(opts: LogLimiterOptions) {
    this.#intervalMs = opts.intervalMs;
    this.#maxKeys = opts.maxKeys ?? 1024;
    this.#now = opts.now ?? Date.now;
  }

  /** Call once per event; log only when the answer says so, with its `suppressed` count. */
  take(kind: string, peer: string): LogDecision {
    const key = `${kind}\u0000${peer}`;
    const now = this.#now();
    const slot = this.#slots.get(key);
    if (slot !== undefined && now - slot.loggedAt < this.#intervalMs) {
      slot.suppressed += 1;
      return { log: false };
    }
    const suppressed = slot?.suppressed ?? 0;
    this.#slots.delete(key);
    this.#slots.set(key, { loggedAt: now, suppressed: 0 });
    this.#forgetOverflow();
    return { log: true, suppressed };
  }

  /** Entries past the bound go; a forgotten peer's next event is logged again (with no count). */
  #forgetOverflow(): void {
    while (this.#slots.size > this.#maxKeys) {
      const oldest = this.#slots.keys().next();
      if (oldest.done === true) return;
      this.#slots.delete(oldest.value);
    }
  }
}
