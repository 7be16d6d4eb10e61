// Rate limits for log lines that a peer or a retry loop can repeat: one line
// per kind and peer per interval, the number dropped in between carried on the
// next line that gets through, and optionally a cap per kind so that many
// peers (or one peer under ever-new names) cannot flood the log either.
import type { Logger } from 'pino';

const INTERVAL_MS = 60_000;
/** Peers remembered; beyond this the least recently used is forgotten. */
const MAX_KEYS = 1024;

export interface LogLimiterOptions {
  /** At most one line per kind and peer in this many milliseconds (default a minute). */
  intervalMs?: number;
  /** At most this many lines of one kind, over all peers, per interval (default no cap). */
  perKind?: number;
  /** Kinds × peers remembered at once (default 1024). */
  maxKeys?: number;
  /** Clock, for tests (default Date.now). */
  now?: () => number;
}

/** Whether to log now; if so, how many events like it were not logged since the last line. */
export type LogDecision = { log: true; suppressed: number } | { log: false };

interface Window {
  start: number;
  suppressed: number;
}

interface KindWindow {
  start: number;
  passed: number;
  /** Lines of peers that had no line of their own left in this interval. */
  suppressed: number;
}

type Level = 'warn' | 'error' | 'info' | 'debug';

/** One line per `kind` + peer `key` per interval; see the module comment. */
export class LogLimiter {
  readonly #interval: number;
  readonly #perKind: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  /** `kind\0key` to its window; Map order is the order of last use. */
  readonly #keys = new Map<string, Window>();
  readonly #kinds = new Map<string, KindWindow>();

  constructor(opts: LogLimiterOptions = {}) {
    this.#interval = opts.intervalMs ?? INTERVAL_MS;
    this.#perKind = opts.perKind ?? Infinity;
    this.#maxKeys = opts.maxKeys ?? MAX_KEYS;
    this.#now = opts.now ?? Date.now;
  }

  /** Call once per event of `kind` from `key`; log only when the answer says so, with its `suppressed` count. */
  take(kind: string, key = ''): LogDecision {
    const now = this.#now();
    const id = `${kind}\0${key}`;
    const win = this.#keys.get(id);
    if (win !== undefined && now - win.start < this.#interval) {
      win.suppressed++;
      this.#touch(id, win);
      return { log: false };
    }
    let k = this.#kinds.get(kind);
    if (k === undefined || now - k.start >= this.#interval) {
      const carried = k?.suppressed ?? 0;
      k = { start: now, passed: 0, suppressed: carried };
      this.#kinds.set(kind, k);
    }
    if (k.passed >= this.#perKind) {
      // A known peer's next line says so; an unknown one's goes to the next line of the kind.
      if (win !== undefined) {
        win.suppressed++;
        this.#touch(id, win);
      } else {
        k.suppressed++;
      }
      return { log: false };
    }
    k.passed++;
    const dropped = (win?.suppressed ?? 0) + k.suppressed;
    k.suppressed = 0;
    this.#touch(id, { start: now, suppressed: 0 });
    return { log: true, suppressed: dropped };
  }

  /** Logs `msg` at `level` unless `kind` + `key` has had its line this interval. */
  log(
    logger: Logger,
    level: Level,
    kind: string,
    key: string,
    fields: Record<string, unknown>,
    msg: string,
  ): void {
    const decision = this.take(kind, key);
    if (!decision.log) return;
    const { suppressed } = decision;
    logger[level](suppressed > 0 ? { ...fields, suppressed } : fields, msg);
  }

  #touch(id: string, win: Window): void {
    this.#keys.delete(id);
    this.#keys.set(id, win);
    if (this.#keys.size > this.#maxKeys) {
      // The least recently used; its dropped count is lost, its next line simply passes.
      const oldest = this.#keys.keys().next().value;
      if (oldest !== undefined) this.#keys.delete(oldest);
    }
    // Kinds are a fixed set in the code, but bound them all the same.
    if (this.#kinds.size > this.#maxKeys) {
      const oldest = this.#kinds.keys().next().value;
      if (oldest !== undefined) this.#kinds.delete(oldest);
    }
  }
}
