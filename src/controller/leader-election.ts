// Lease leader election with client-go's semantics: a candidate takes the
// Lease only when it is free or expired (judged on its own clock), the leader
// renews it every retry period, and stops leading as soon as a renewal has not
// succeeded within the renew deadline, which is shorter than the lease
// duration that the others wait: the old leader has stopped before a new one
// can start. close() ends the term, waits for the leader's work to stop and
// releases the Lease, so that a rolling update hands over at once.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { sleepOn, systemClock, type Clock } from '../reconcile/clock.ts';
import { KubeApiError } from '../registry/kubernetes/client/errors.ts';
import { Backoff } from '../util/backoff.ts';
import type { Registry } from 'prom-client';
import { Gauge } from '../util/prom-classes.ts';
import { nextStep, observe, releasedSpec, type Lease, type Observed } from './lease-record.ts';
import type { LeaseStore } from './lease-store.ts';

export const DEFAULT_LEASE_DURATION_MS = 15_000;
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;
export const DEFAULT_RETRY_PERIOD_MS = 2_000;
/** A candidate's tries are spread over retryPeriod × (1 + up to this), so replicas do not try in step. */
const RETRY_JITTER = 0.2;
/** An unavailable API server is retried from the retry period up to this many times it. */
const BACKOFF_CAP_FACTOR = 4;

/** The options are inconsistent (e.g. a renew deadline not shorter than the lease duration). */
export class LeaderElectionConfigError extends Error {
  readonly code = 'EDGEBRIDGE_LEADER_ELECTION_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'LeaderElectionConfigError';
  }
}

/** The API server refuses this identity the Lease (HTTP 403): RBAC is missing. */
export class LeaseForbiddenError extends Error {
  readonly code = 'EDGEBRIDGE_LEASE_FORBIDDEN';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'LeaseForbiddenError';
  }
}

/** Where the elector reports whether it leads (1) or not (0). */
export interface LeaderMetrics {
  setLeader(leading: boolean): void;
}

/** The is-leader gauge, `edgebridge_controller_is_leader{lease}`, on `registry`. */
export function leaderMetrics(registry: Registry, lease: string): LeaderMetrics {
  const gauge = new Gauge({
    name: 'edgebridge_controller_is_leader',
    help: 'Whether this replica holds the leader election Lease (1) or not (0)',
    labelNames: ['lease'] as const,
    registers: [registry],
  });
  gauge.set({ lease }, 0);
  return { setLeader: (leading) => gauge.set({ lease }, leading ? 1 : 0) };
}

/** client-go's default identity: the pod's name (or the host's), and a random suffix for restarts. */
export function defaultIdentity(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.POD_NAME !== undefined && env.POD_NAME !== '' ? env.POD_NAME : hostname();
  return `${base}_${randomBytes(4).toString('hex')}`;
}

export interface LeaderElectorOptions {
  store: LeaseStore;
  log: Logger;
  /** Default defaultIdentity(). */
  identity?: string;
  /** How long others wait after the holder's last renewal before taking the Lease (default 15 s). */
  leaseDurationMs?: number;
  /** The leader stops leading when renewing has not succeeded for this long (default 10 s). */
  renewDeadlineMs?: number;
  /** Time between tries, for the leader and the candidates (default 2 s). */
  retryPeriodMs?: number;
  metrics?: LeaderMetrics;
  /** Monotonic time for expiry and deadlines (default the system's; tests pass a fake). */
  clock?: Clock;
  /** Wall-clock time written into the Lease (default Date.now). */
  wallClock?: () => number;
  random?: () => number;
}

/**
 * contract: the work of one leadership term. Called (never synchronously) when
 * this replica starts leading; `term` aborts the moment it stops leading, and
 * the work must stop then. The promise it returns, if any, settles once the
 * work has stopped: close() waits for it before it releases the Lease.
 */
export type LeaderWork = (term: AbortSignal) => Promise<void> | void;

type Outcome = 'held' | 'waiting' | 'failed';

/** Campaigns for one Lease; see the module comment. */
export class LeaderElector {
  readonly identity: string;
  readonly #store: LeaseStore;
  readonly #log: Logger;
  readonly #leaseMs: number;
  readonly #renewDeadlineMs: number;
  readonly #retryMs: number;
  readonly #metrics: LeaderMetrics | undefined;
  readonly #clock: Clock;
  readonly #wallClock: () => number;
  readonly #random: () => number;
  readonly #stop = new AbortController();
  #observed: Observed | undefined;
  /** The holder last logged, so that a change of leader is one line. */
  #lastHolder: string | undefined;
  /** Set while leading. */
  #term: { controller: AbortController; work: Promise<void> } | undefined;
  #deadline: { cancel(): void } | undefined;
  /** When the last successful write was sent (monotonic ms). */
  #lastRenewAt = 0;
  #running: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  /** Any request has succeeded: a 403 after that is an authorizer warming up, not missing RBAC. */
  #everAnswered = false;
  #failing = false;

  constructor(opts: LeaderElectorOptions) {
    this.identity = opts.identity ?? defaultIdentity();
    this.#store = opts.store;
    this.#log = opts.log;
    this.#leaseMs = opts.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS;
    this.#renewDeadlineMs = opts.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS;
    this.#retryMs = opts.retryPeriodMs ?? DEFAULT_RETRY_PERIOD_MS;
    this.#metrics = opts.metrics;
    this.#clock = opts.clock ?? systemClock;
    this.#wallClock = opts.wallClock ?? Date.now;
    this.#random = opts.random ?? Math.random;
    // client-go's checks: the old leader must have stopped before anyone may take over.
    if (this.#leaseMs % 1000 !== 0 || this.#leaseMs <= 0)
      throw new LeaderElectionConfigError(
        `the lease duration must be a whole number of seconds, not ${this.#leaseMs} ms`,
      );
    if (this.#renewDeadlineMs >= this.#leaseMs)
      throw new LeaderElectionConfigError(
        `the renew deadline (${this.#renewDeadlineMs} ms) must be shorter than the lease duration (${this.#leaseMs} ms)`,
      );
    if (this.#retryMs <= 0 || this.#retryMs * (1 + RETRY_JITTER) >= this.#renewDeadlineMs)
      throw new LeaderElectionConfigError(
        `the retry period (${this.#retryMs} ms) must be positive and well within the renew deadline (${this.#renewDeadlineMs} ms)`,
      );
    this.#metrics?.setLeader(false);
  }

  /** Whether this replica leads now. */
  get isLeader(): boolean {
    return this.#term !== undefined;
  }

  /**
   * Campaigns until close(), calling `work` at the start of each term. Resolves
   * after close(); rejects with LeaseForbiddenError when the Lease is refused
   * before any request succeeded (missing RBAC: a configuration error).
   */
  run(work: LeaderWork): Promise<void> {
    if (this.#running !== undefined) throw new Error('LeaderElector.run() called twice');
    this.#running = this.#campaign(work);
    return this.#running;
  }

  /** Stops campaigning, ends the term, waits for its work to stop, then releases the Lease. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#stop.abort(new Error('leader elector closed'));
    await this.#running?.catch(() => undefined);
    const term = this.#term;
    if (term === undefined) return;
    this.#endTerm('closed');
    await term.work;
    await this.#release();
  }

  async #campaign(work: LeaderWork): Promise<void> {
    const backoff = new Backoff({
      initialMs: this.#retryMs,
      capMs: this.#retryMs * BACKOFF_CAP_FACTOR,
      random: this.#random,
    });
    const stop = this.#stop.signal;
    while (!stop.aborted) {
      const started = this.#clock.now();
      let outcome: Outcome;
      try {
        outcome = await this.#tryAcquireOrRenew(started);
        backoff.reset();
        if (this.#failing)
          this.#log.info({ lease: this.#store.description }, 'lease requests succeed again');
        this.#failing = false;
      } catch (err) {
        if (stop.aborted) break;
        if (err instanceof KubeApiError && err.status === 403 && !this.#everAnswered) {
          throw new LeaseForbiddenError(
            `the API server refuses Lease ${this.#store.description} to this identity (HTTP 403: ${err.message}): grant it get, create and update on leases.coordination.k8s.io in that namespace (manifests/rbac/controller-leader-election-role.yaml)`,
            { cause: err },
          );
        }
        outcome = 'failed';
        if (err instanceof KubeApiError && err.status === 409) {
          // Someone wrote the Lease between our read and our write: read it again.
          this.#observed = undefined;
        } else if (!this.#failing) {
          this.#failing = true;
          this.#log.warn(
            { lease: this.#store.description, err: (err as Error).message },
            'lease request failed; retrying',
          );
        }
      }
      if (outcome === 'held') {
        // Deadlines run from when the successful request was sent: the Lease
        // others read carries a renewal no older than that.
        if (started + this.#renewDeadlineMs > this.#clock.now()) {
          this.#armDeadline(started);
          if (this.#term === undefined) this.#startTerm(work);
        }
      }
      const wait =
        this.#term !== undefined
          ? this.#retryMs
          : outcome === 'failed'
            ? backoff.nextDelay()
            : this.#retryMs * (1 + this.#random() * RETRY_JITTER);
      await this.#sleep(wait);
    }
  }

  /** One read (unless the leader's cached Lease is current) and at most one write. */
  async #tryAcquireOrRenew(started: number): Promise<Outcome> {
    const leading = this.#term !== undefined;
    const req = {
      signal: this.#stop.signal,
      // A leader's request may not outlive its term; a candidate's is as patient.
      timeoutMs: leading ? Math.max(1, this.#deadlineAt() - started) : this.#renewDeadlineMs,
    };
    if (!leading || this.#observed === undefined) {
      const lease = await this.#store.get(req);
      this.#everAnswered = true;
      this.#observed =
        lease === undefined ? undefined : observe(this.#observed, lease, this.#clock.now());
    }
    const step = nextStep({
      observed: this.#observed,
      identity: this.identity,
      now: this.#clock.now(),
      wallNow: this.#wallClock(),
      leaseDurationSeconds: this.#leaseMs / 1000,
    });
    if (step.kind === 'wait') {
      this.#noteHolder(step.holder);
      return 'waiting';
    }
    const written =
      step.kind === 'create'
        ? await this.#store.create(step.spec, req)
        : await this.#store.update((this.#observed as Observed).lease, step.spec, req);
    this.#everAnswered = true;
    this.#observed = { lease: written, changedAt: this.#clock.now() };
    this.#noteHolder(this.identity);
    return 'held';
  }

  #deadlineAt(): number {
    return this.#lastRenewAt + this.#renewDeadlineMs;
  }

  #armDeadline(renewedAt: number): void {
    this.#lastRenewAt = renewedAt;
    this.#deadline?.cancel();
    this.#deadline = this.#clock.after(
      renewedAt + this.#renewDeadlineMs - this.#clock.now(),
      () => {
        this.#deadline = undefined;
        this.#endTerm(`not renewed within the renew deadline (${this.#renewDeadlineMs} ms)`);
      },
    );
  }

  #startTerm(work: LeaderWork): void {
    const controller = new AbortController();
    const spec = this.#observed?.lease.spec;
    this.#term = { controller, work: Promise.resolve() };
    this.#metrics?.setLeader(true);
    this.#log.info(
      {
        lease: this.#store.description,
        identity: this.identity,
        acquireTime: spec?.acquireTime,
        renewTime: spec?.renewTime,
      },
      'started leading',
    );
    const term = this.#term;
    // Never synchronously: the caller's work starts on a later tick.
    term.work = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => (controller.signal.aborted ? undefined : work(controller.signal)))
      .catch((err: unknown) => {
        this.#log.error({ err: (err as Error).message }, 'the leader work failed');
      });
  }

  #endTerm(reason: string): void {
    const term = this.#term;
    if (term === undefined) return;
    this.#term = undefined;
    this.#deadline?.cancel();
    this.#deadline = undefined;
    // A leader that lost its Lease reads it again before renewing anything.
    if (reason !== 'closed') this.#observed = undefined;
    this.#metrics?.setLeader(false);
    this.#log.info(
      {
        lease: this.#store.description,
        identity: this.identity,
        reason,
        renewTime: this.#observed?.lease.spec?.renewTime,
      },
      'stopped leading',
    );
    term.controller.abort(new Error(`leadership lost: ${reason}`));
  }

  /** Clears the holder, unless someone else took the Lease meanwhile (then the write fails on its resourceVersion). */
  async #release(): Promise<void> {
    const observed = this.#observed;
    if (observed === undefined || observed.lease.spec?.holderIdentity !== this.identity) return;
    const req = { signal: new AbortController().signal, timeoutMs: this.#renewDeadlineMs };
    const write = (lease: Lease): Promise<Lease> =>
      this.#store.update(lease, releasedSpec(lease.spec, this.#wallClock()), req);
    try {
      let released: Lease;
      try {
        released = await write(observed.lease);
      } catch (err) {
        // A renewal that close() cut short may have landed: read it and try once more.
        if (!(err instanceof KubeApiError && err.status === 409)) throw err;
        const current = await this.#store.get(req);
        if (current?.spec?.holderIdentity !== this.identity) return;
        released = await write(current);
      }
      this.#observed = { lease: released, changedAt: this.#clock.now() };
      this.#log.info(
        { lease: this.#store.description, renewTime: released.spec?.renewTime },
        'released the lease',
      );
    } catch (err) {
      this.#log.warn(
        { lease: this.#store.description, err: (err as Error).message },
        'could not release the lease; the others take it when it expires',
      );
    }
  }

  #noteHolder(holder: string): void {
    if (holder === this.#lastHolder) return;
    this.#lastHolder = holder;
    if (holder !== this.identity)
      this.#log.info(
        { lease: this.#store.description, holder },
        'the lease is held by another replica',
      );
  }

  /** Waits `ms` on the elector's clock, or until close(). */
  #sleep(ms: number): Promise<void> {
    return sleepOn(this.#clock, ms, this.#stop.signal);
  }
}
