import type { Logger } from 'pino';
import type { Condition, Discovery } from '../api/types.ts';
import { checkedLists } from '../../discovery-handlers/checked-lists.ts';
import { InvalidDetailsError, type DiscoveryHandler } from '../../discovery-handlers/handler.ts';
import { findHandler, handlerNames } from '../../discovery-handlers/registry.ts';
import type { Registry } from '../registry/registry.ts';
import type { AdaptiveLimit } from '../util/adaptive-limit.ts';
import { Backoff, sleep } from '../util/backoff.ts';
import { setCondition, type ConditionInput } from './conditions.ts';
import { DeviceSync } from './device-sync.ts';
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
  registry: Registry;
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
 * properties, runs its handler and hands each device list to a DeviceSync.
 * Bad details end the run (the Discovery says why in DetailsValid); anything
 * else that fails is retried with backoff until the run is stopped.
 */
export class DiscoveryRun {
  readonly #opts: DiscoveryRunOptions;
  readonly #abort = new AbortController();
  /** A handler that fails at once, or a registry that is down, repeats its line every backoff. */
  readonly #limiter = new LogLimiter();
  readonly #done: Promise<void>;
  #sync: DeviceSync | undefined;
  #publisher: DiscoveryPublisher | undefined;
  /** The Discovery's conditions as this run last wrote them. */
  #conditions: Condition[] | undefined;
  /** The handler's current problem (Discovering=False; null until it first reports), and the write that reports it. */
  #problem: string | undefined | null = null;
  #problemWrite: Promise<void> = Promise.resolve();

  constructor(opts: DiscoveryRunOptions) {
    this.#opts = opts;
    this.#conditions = opts.discovery.status?.conditions;
    this.#done = this.#run().catch((err: unknown) => {
      if (!this.#abort.signal.aborted)
        opts.log.error({ err: (err as Error).message }, 'discovery run ended unexpectedly');
    });
  }

  /** Stops the handler; with `removeDevices` also removes this node from the Discovery's Devices. */
  async stop(removeDevices: boolean): Promise<void> {
    this.#abort.abort(new Error('discovery run stopped'));
    // A handler that ignores its signal is abandoned: the loop ignores whatever it yields later.
    const ms = this.#opts.stopTimeoutMs ?? DISCOVERY_STOP_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const returned = await Promise.race([
      this.#done.then(() => this.#problemWrite).then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms).unref())),
    ]);
    clearTimeout(timer);
    if (!returned)
      this.#opts.log.warn(
        { stopTimeoutMs: ms },
        'discovery handler (or its status write) did not return within the stop deadline; abandoned',
      );
    await this.#publisher?.close();
    if (removeDevices) await this.#sync?.removeAll();
    else await this.#sync?.close();
  }

  async #run(): Promise<void> {
    const { discovery, log } = this.#opts;
    const signal = this.#abort.signal;
    if (this.#opts.specProblem !== undefined) {
      log.warn(
        { reason: this.#opts.specProblem, gracePeriodSeconds: this.#opts.graceSeconds },
        'discovery spec is not valid; no handler runs; its devices go after the grace period',
      );
      await this.#ageOut();
      return;
    }
    const handler = (this.#opts.findHandler ?? findHandler)(discovery.spec.handler.name);
    if (handler === undefined) {
      await this.#setDetailsValid({
        status: 'False',
        reason: 'UnknownHandler',
        message: `no handler named ${quote(discovery.spec.handler.name)} (known: ${handlerNames().join(', ')})`,
      });
      await this.#ageOut();
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
      await this.#setDetailsValid({ status: 'False', reason: 'InvalidDetails', message });
      await this.#ageOut();
      return;
    }
    await this.#setDetailsValid({
      status: 'True',
      reason: 'Valid',
      message: 'details accepted by the handler',
    });

    const backoff = new Backoff();
    const secrets = await this.#retry('resolve properties', backoff, () =>
      resolveProperties(discovery, this.#opts.registry),
    );
    const sync = this.#newSync(handler.shared);
    const publisher = this.#opts.publishers(discovery, handler.shared);
    this.#publisher = publisher;
    await this.#retry('load devices', backoff, () => sync.load());
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

  #newSync(shared: boolean): DeviceSync {
    const sync = new DeviceSync({
      discovery: this.#opts.discovery,
      shared,
      node: this.#opts.node,
      store: this.#opts.registry,
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
   * handler): no handler lists anything, so the Devices this node holds for it
   * are removed once their grace period has passed, unless it is fixed first.
   */
  async #ageOut(): Promise<void> {
    const sync = this.#newSync(false);
    await this.#retry('load devices', new Backoff(), () => sync.load());
    sync.reconcile();
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
   * The handler's problem becomes Discovering=False, its message prefixed with
   * this node (the Discovery is shared by every node that runs it); undefined
   * clears it (Discovering=True) if this node set it. Writes happen in order.
   */
  #reportProblem(problem: string | undefined): void {
    if (problem === this.#problem) return;
    this.#problem = problem;
    const prefix = `node ${this.#opts.node}: `;
    this.#problemWrite = this.#problemWrite.then(async () => {
      if (problem !== undefined) {
        await this.#setCondition('Discovering', {
          status: 'False',
          reason: 'HandlerProblem',
          message: `${prefix}${problem}`,
        });
        return;
      }
      const current = this.#conditions?.find((c) => c.type === 'Discovering');
      if (current?.status === 'False' && current.message.startsWith(prefix))
        await this.#setCondition('Discovering', {
          status: 'True',
          reason: 'Listing',
          message: 'the handler lists devices',
        });
    });
  }

  #setDetailsValid(condition: Omit<ConditionInput, 'type'>): Promise<void> {
    return this.#setCondition('DetailsValid', condition);
  }

  /** Writes a condition if it differs from what the Discovery has; failures are logged, not fatal. */
  async #setCondition(type: string, condition: Omit<ConditionInput, 'type'>): Promise<void> {
    const { discovery, registry, log } = this.#opts;
    const generation = discovery.metadata.generation;
    const conditions = setCondition(this.#conditions, {
      type,
      ...condition,
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
    });
    if (conditions === undefined) return;
    try {
      await registry.updateDiscoveryStatus(
        discovery.metadata.namespace ?? 'default',
        discovery.metadata.name,
        { conditions },
      );
      this.#conditions = conditions;
    } catch (err) {
      this.#limiter.log(
        log,
        'warn',
        'status-update',
        '',
        { err: (err as Error).message },
        'could not update the discovery status',
      );
    }
  }
}
