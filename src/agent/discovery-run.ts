import type { Logger } from 'pino';
import type { Discovery } from '../api/types.ts';
import { checkedLists } from '../../discovery-handlers/checked-lists.ts';
import { InvalidDetailsError, type DiscoveryHandler } from '../../discovery-handlers/handler.ts';
import { findHandler, handlerNames } from '../../discovery-handlers/registry.ts';
import type { Registry } from '../registry/registry.ts';
import type { AdaptiveLimit } from '../util/adaptive-limit.ts';
import { Backoff, sleep } from '../util/backoff.ts';
import type { ConditionInput } from './conditions.ts';
import type { NodeSlices } from './node-slices.ts';
import { SliceSync } from './slice-sync.ts';
import type { DiscoveryPublisher, PublisherFactory } from './discovery-publisher.ts';
import { resolveProperties } from './properties.ts';
import { LogLimiter } from '../util/log-limiter.ts';
import { quote } from '../util/quote.ts';

export interface DiscoveryRunOptions {
  discovery: Discovery;
  /** Why the spec is not valid, if it is not: no handler runs and the Devices age out. */
  specProblem?: string;
  /** How long a device may be unseen (for an invalid spec, the last valid one's). */
  graceSeconds: number;
  node: string;
  /** The uid of this node's Node object, when known (an owner of its slices). */
  nodeUid: () => string | undefined;
  registry: Registry;
  /** This node's stored slices (the agent's watch). */
  slices: NodeSlices;
  writeLimit: AdaptiveLimit;
  log: Logger;
  publishers: PublisherFactory;
  onError: (kind: 'retryable' | 'terminal') => void;
  onCount: (devices: number) => void;
  /** How long stop() waits for the handler to return once its signal aborted; default DISCOVERY_STOP_TIMEOUT_MS. */
  stopTimeoutMs?: number;
  /** Where handlers are found by name; default the build's registry (tests pass their own). */
  findHandler?: (name: string) => DiscoveryHandler | undefined;
}

/** A handler that has not returned this long after its signal aborted is abandoned. */
export const DISCOVERY_STOP_TIMEOUT_MS = 5_000;

/**
 * One Discovery running on this node: checks its details, resolves its
 * properties, runs its handler and hands each device list to a SliceSync.
 * Bad details end the run (the node's slice says why in DetailsValid); anything
 * else that fails is retried with backoff until the run is stopped.
 */
export class DiscoveryRun {
  readonly #opts: DiscoveryRunOptions;
  readonly #abort = new AbortController();
  /** A handler that fails at once, or a registry that is down, repeats its line every backoff. */
  readonly #limiter = new LogLimiter();
  readonly #done: Promise<void>;
  #sync: SliceSync | undefined;
  #publisher: DiscoveryPublisher | undefined;
  /** The handler's current problem (Discovering=False; null until it first reports). */
  #problem: string | undefined | null = null;

  constructor(opts: DiscoveryRunOptions) {
    this.#opts = opts;
    this.#done = this.#run().catch((err: unknown) => {
      if (!this.#abort.signal.aborted)
        opts.log.error({ err: (err as Error).message }, 'discovery run ended unexpectedly');
    });
  }

  /** Stops the handler; with `removeDevices` also deletes this node's slices of the Discovery. */
  async stop(removeDevices: boolean): Promise<void> {
    this.#abort.abort(new Error('discovery run stopped'));
    // A handler that ignores its signal is abandoned: the loop ignores whatever it yields later.
    const ms = this.#opts.stopTimeoutMs ?? DISCOVERY_STOP_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const returned = await Promise.race([
      this.#done.then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms).unref())),
    ]);
    clearTimeout(timer);
    if (!returned)
      this.#opts.log.warn(
        { stopTimeoutMs: ms },
        'discovery handler did not return within the stop deadline; abandoned',
      );
    await this.#publisher?.close();
    if (removeDevices) await (this.#sync ?? this.#newSync(false)).removeAll();
    else await this.#sync?.close();
  }

  /** Runs a pass of the slices now (the agent's resync). */
  resync(): void {
    this.#sync?.reconcile();
  }

  /** The registry answers again: failed slice writes are retried soon (see SliceSync.retrySoon). */
  retrySoon(): void {
    this.#sync?.retrySoon();
  }

  async #run(): Promise<void> {
    const { discovery, log } = this.#opts;
    const signal = this.#abort.signal;
    // The sync starts from what is stored: a restart removes nothing still there.
    await this.#opts.slices.synced(signal);
    if (this.#opts.specProblem !== undefined) {
      log.warn(
        { reason: this.#opts.specProblem, gracePeriodSeconds: this.#opts.graceSeconds },
        'discovery spec is not valid; no handler runs; its devices go after the grace period',
      );
      this.#ageOut();
      return;
    }
    const handler = (this.#opts.findHandler ?? findHandler)(discovery.spec.handler.name);
    const sync = this.#newSync(handler?.shared ?? this.#storedShared());
    if (handler === undefined) {
      this.#setDetailsValid({
        status: 'False',
        reason: 'UnknownHandler',
        message: `no handler named ${quote(discovery.spec.handler.name)} (known: ${handlerNames().join(', ')})`,
      });
      this.#ageOut();
      return;
    }
    let details: unknown;
    try {
      details = handler.validate(discovery.spec.handler.details ?? {});
    } catch (err) {
      const message =
        err instanceof InvalidDetailsError
          ? err.message
          : `details rejected: ${(err as Error).message}`;
      log.warn(
        { reason: message },
        'discovery details are invalid; not retried until the Discovery changes',
      );
      this.#setDetailsValid({ status: 'False', reason: 'InvalidDetails', message });
      this.#ageOut();
      return;
    }
    this.#setDetailsValid({
      status: 'True',
      reason: 'Valid',
      message: 'details accepted by the handler',
    });

    const backoff = new Backoff();
    const secrets = await this.#retry('resolve properties', backoff, () =>
      resolveProperties(discovery, this.#opts.registry),
    );
    const publisher = this.#opts.publishers(discovery, handler.shared);
    this.#publisher = publisher;
    backoff.reset();
    while (!signal.aborted) {
      try {
        const lists = handler.discover(details, {
          signal,
          log,
          node: this.#opts.node,
          secrets,
          intervalSeconds: discovery.spec.intervalSeconds ?? 30,
          publish: publisher,
          reportProblem: (problem) => this.#reportProblem(problem),
        });
        for await (const devices of checkedLists(lists, log)) {
          if (signal.aborted) break;
          backoff.reset();
          sync.observe(devices);
          publisher.observe(devices);
        }
        if (signal.aborted) return;
        this.#limiter.log(
          log,
          'warn',
          'handler-restart',
          '',
          {},
          'handler stopped listing devices; restarting it',
        );
      } catch (err) {
        if (signal.aborted) return;
        this.#opts.onError('retryable');
        this.#limiter.log(
          log,
          'warn',
          'handler-restart',
          '',
          { err: (err as Error).message },
          'handler failed; restarting it',
        );
        this.#reportProblem(`handler failed: ${(err as Error).message}`);
      }
      await sleep(backoff.nextDelay(), signal).catch(() => undefined);
    }
  }

  /** Whether the stored slices say shared (for a run with no handler to say it). */
  #storedShared(): boolean {
    const { discovery } = this.#opts;
    const key = `${discovery.metadata.namespace ?? 'default'}/${discovery.metadata.name}`;
    return this.#opts.slices.of(key)[0]?.spec.shared ?? false;
  }

  #newSync(shared: boolean): SliceSync {
    const sync = new SliceSync({
      discovery: this.#opts.discovery,
      shared,
      node: this.#opts.node,
      store: this.#opts.registry,
      slices: this.#opts.slices,
      nodeUid: this.#opts.nodeUid,
      writeLimit: this.#opts.writeLimit,
      graceSeconds: this.#opts.graceSeconds,
      log: this.#opts.log,
      onError: this.#opts.onError,
      onCount: this.#opts.onCount,
    });
    this.#sync = sync;
    return sync;
  }

  /**
   * A Discovery this node cannot run (invalid spec or details, unknown
   * handler): no handler lists anything, so the devices this node's slices
   * hold for it leave once their grace period has passed, unless it is fixed first.
   */
  #ageOut(): void {
    (this.#sync ?? this.#newSync(this.#storedShared())).observe([]);
  }

  /** Runs `fn` until it succeeds or the run stops (then rejects with the abort reason). */
  async #retry<T>(what: string, backoff: Backoff, fn: () => Promise<T>): Promise<T> {
    const signal = this.#abort.signal;
    for (;;) {
      signal.throwIfAborted();
      try {
        return await fn();
      } catch (err) {
        this.#opts.onError('retryable');
        const delay = backoff.nextDelay();
        this.#limiter.log(
          this.#opts.log,
          'warn',
          'retry',
          what,
          { err: (err as Error).message, retryInMs: delay },
          `${what} failed; retrying`,
        );
        await sleep(delay, signal);
      }
    }
  }

  /**
   * The handler's problem becomes this node's Discovering=False; undefined
   * clears it (Discovering=True) if it was set. The controller gathers every
   * node's conditions into the Discovery's status.
   */
  #reportProblem(problem: string | undefined): void {
    if (problem === this.#problem) return;
    this.#problem = problem;
    if (problem !== undefined) {
      this.#setCondition('Discovering', {
        status: 'False',
        reason: 'HandlerProblem',
        message: problem,
      });
    } else if (this.#sync?.condition('Discovering')?.status === 'False') {
      this.#setCondition('Discovering', {
        status: 'True',
        reason: 'Listing',
        message: 'the handler lists devices',
      });
    }
  }

  #setDetailsValid(condition: Omit<ConditionInput, 'type'>): void {
    this.#setCondition('DetailsValid', condition);
  }

  /** Sets a condition on this node's first slice (written with the next pass, if it changed). */
  #setCondition(type: string, condition: Omit<ConditionInput, 'type'>): void {
    const generation = this.#opts.discovery.metadata.generation;
    this.#sync?.setCondition({
      type,
      ...condition,
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
    });
  }
}
