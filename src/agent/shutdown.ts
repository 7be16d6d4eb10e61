import type { Logger } from 'pino';

/** How long the agent may take to stop before it exits anyway; --shutdown-timeout. */
export const DEFAULT_SHUTDOWN_TIMEOUT_S = 10;

export interface ShutdownOptions {
  timeoutMs: number;
  log: Logger;
  /** How the process ends when the deadline passes; default terminate() (tests pass their own). */
  exit?: (code: number) => void;
}

/**
 * The agent's stop, bounded in time. begin() logs "stopping", aborts `signal`
 * and arms the deadline; each step of the stop is named while it runs, so that
 * a forced exit says what it abandoned. A second begin() from a signal exits at
 * once. Work that cannot be cancelled (a handler, a stuck file read) is not
 * waited for past the deadline.
 */
export class Shutdown {
  readonly #opts: ShutdownOptions;
  readonly #abort = new AbortController();
  readonly #pending = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #finished = false;

  constructor(opts: ShutdownOptions) {
    this.#opts = opts;
  }

  /** Aborted once the agent is stopping. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Starts the stop; a signal received while stopping ends the process now. */
  begin(reason: string, signal?: NodeJS.Signals): void {
    const { log } = this.#opts;
    if (this.#abort.signal.aborted) {
      if (signal === undefined) return;
      if (this.#finished) this.#exit(exitCode());
      else this.#force(`a second ${signal}`);
      return;
    }
    log.info({ reason, timeoutSeconds: this.#opts.timeoutMs / 1000 }, 'stopping');
    this.#abort.abort(new Error(reason));
    // Unref'd: a stop that finishes and drains the event loop exits without waiting for it.
    this.#timer = setTimeout(() => {
      if (this.#finished) this.#exit(exitCode());
      else this.#force(`the ${this.#opts.timeoutMs / 1000} s shutdown deadline passed`);
    }, this.#opts.timeoutMs).unref();
  }

  /** Awaits one step of the stop, named in the log if the deadline forces the exit meanwhile. */
  async step<T>(name: string, work: Promise<T>): Promise<T> {
    this.#pending.add(name);
    try {
      return await work;
    } finally {
      this.#pending.delete(name);
    }
  }

  /** Everything stopped: logs "agent stopped". The deadline still ends a process kept alive by abandoned work. */
  finished(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#opts.log.info('agent stopped');
    this.#opts.log.flush();
  }

  #force(why: string): void {
    this.#finished = true;
    clearTimeout(this.#timer);
    this.#opts.log.warn({ forced: why, abandoned: [...this.#pending] }, 'agent stopped');
    this.#opts.log.flush();
    this.#exit(1);
  }

  #exit(code: number): void {
    (this.#opts.exit ?? terminate)(code);
  }
}

/** The code the process would exit with had its event loop drained. */
function exitCode(): number {
  return process.exitCode === undefined ? 0 : Number(process.exitCode);
}

/**
 * Ends the process even with threadpool threads stuck in system calls:
 * process.exit() joins those threads and would hang for ever behind them, a
 * signal's default action does not. A process ended so reads as killed by SIGTERM.
 */
function terminate(code: number): void {
  process.exitCode = code;
  process.removeAllListeners('SIGTERM');
  process.kill(process.pid, 'SIGTERM');
  // Were SIGTERM ignored (inherited SIG_IGN), it would not end the process.
  setTimeout(() => process.kill(process.pid, 'SIGKILL'), 1000).unref();
}
