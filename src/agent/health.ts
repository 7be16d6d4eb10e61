import { stat } from 'node:fs';

/** An event-loop stall this long makes the agent unhealthy... */
export const EVENT_LOOP_STALL_MS = 5_000;
/** ...for this long afterwards, so that probes made after the stall see it: shorter than the
 * DaemonSet's liveness window (6 x 10 s), so one stall alone does not restart the agent. */
export const STALL_MEMORY_MS = 30_000;
/** A tiny file operation that has waited this long means the libuv threadpool is starved. */
export const THREADPOOL_STALL_MS = 10_000;
/** A discovery reconcile pass running this long is stuck (its steps have deadlines far below this). */
export const RECONCILE_STALL_MS = 120_000;
const TICK_MS = 1_000;

export interface HealthMonitorOptions {
  /** When the reconcile pass now running started; undefined when none runs. */
  reconcileBusySince: () => number | undefined;
  eventLoopStallMs?: number;
  threadpoolStallMs?: number;
  reconcileStallMs?: number;
}

/**
 * Liveness: what /healthz reports. Each second it measures how late its own
 * timer ran (event-loop stall) and starts a stat() of "/" on the libuv
 * threadpool unless the last one is still pending; a kubelet then restarts an
 * agent that is wedged in any of the three ways.
 */
export class HealthMonitor {
  readonly #opts: HealthMonitorOptions;
  readonly #timer: NodeJS.Timeout;
  #lastTick = performance.now();
  #stall: { at: number; ms: number } | undefined;
  /** When the pending threadpool probe started; undefined when none is pending. */
  #probeSince: number | undefined;

  constructor(opts: HealthMonitorOptions) {
    this.#opts = opts;
    this.#timer = setInterval(() => this.#tick(), TICK_MS).unref();
    this.#probe();
  }

  /** Undefined when healthy, else why not (one line). */
  problem(): string | undefined {
    const now = Date.now();
    const loopMs = this.#opts.eventLoopStallMs ?? EVENT_LOOP_STALL_MS;
    if (this.#stall !== undefined && now - this.#stall.at < STALL_MEMORY_MS)
      return `event loop stalled for ${Math.round(this.#stall.ms)} ms (limit ${loopMs} ms) ${Math.round((now - this.#stall.at) / 1000)} s ago`;
    const poolMs = this.#opts.threadpoolStallMs ?? THREADPOOL_STALL_MS;
    if (this.#probeSince !== undefined && now - this.#probeSince > poolMs)
      return `libuv threadpool starved: a file status check has waited ${Math.round((now - this.#probeSince) / 1000)} s (limit ${poolMs / 1000} s)`;
    const busy = this.#opts.reconcileBusySince();
    const passMs = this.#opts.reconcileStallMs ?? RECONCILE_STALL_MS;
    if (busy !== undefined && now - busy > passMs)
      return `discovery reconcile stuck: a pass has run for ${Math.round((now - busy) / 1000)} s (limit ${passMs / 1000} s)`;
    return undefined;
  }

  /** Stops measuring. Idempotent. */
  close(): void {
    clearInterval(this.#timer);
  }

  #tick(): void {
    const now = performance.now();
    const late = now - this.#lastTick - TICK_MS;
    this.#lastTick = now;
    if (late > (this.#opts.eventLoopStallMs ?? EVENT_LOOP_STALL_MS))
      this.#stall = { at: Date.now(), ms: late };
    if (this.#probeSince === undefined) this.#probe();
  }

  #probe(): void {
    this.#probeSince = Date.now();
    stat('/', () => {
      this.#probeSince = undefined;
    });
  }
}
