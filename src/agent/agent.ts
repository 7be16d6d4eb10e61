import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Discovery } from '../api/types.ts';
import type { AgentMetrics } from '../metrics.ts';
import { ReconcileQueue, TerminalError, done, type Result } from '../reconcile/index.ts';
import { RegistryRejectedError } from '../registry/errors.ts';
import type { Registry } from '../registry/registry.ts';
import { matchLabelSelector } from '../registry/selectors.ts';
import { handlerNameOf, specProblem } from '../registry/spec-valid.ts';
import { AdaptiveLimit } from '../util/adaptive-limit.ts';
import type { PublisherFactory } from './discovery-publisher.ts';
import { DiscoveryRun } from './discovery-run.ts';
import { keepWatching } from './keep-watching.ts';
import { NodeSlices } from './node-slices.ts';
import type { RegistryReachability } from './registry-reachability.ts';

/** How often the agent reconciles whatever its watches say: a missed event is not wrong for long. */
const RESYNC_MS = 60_000;
/**
 * Discoveries reconciled at once: one whose run is slow to stop or whose
 * devices take long to remove does not hold up the others.
 */
const WORKERS = 4;

export interface AgentOptions {
  node: string;
  registry: Registry;
  log: Logger;
  metrics: AgentMetrics;
  /** Where each Discovery's handler publishes device data, state and events. */
  publishers: PublisherFactory;
  /** Discoveries reconciled at once (default 4). */
  workers?: number;
  /** How often every Discovery is reconciled whatever the watches say (default 60 s; tests shorten it). */
  resyncMs?: number;
  /** Outcomes of the registry's requests: once it answers again after a cut, failed slice writes retry within 0-2 s. */
  reachability?: RegistryReachability;
}

/** The default of spec.gracePeriodSeconds, for an invalid spec that has no usable one. */
const DEFAULT_GRACE_SECONDS = 60;

interface Running {
  run: DiscoveryRun;
  fingerprint: string;
  /** The grace period the run applies, kept for a successor whose spec is invalid. */
  graceSeconds: number;
  metricLabels: { namespace: string; discovery: string; handler: string };
}

/**
 * The agent's reconciler: runs one DiscoveryRun per Discovery that selects
 * this node, restarting it when the Discovery changes and stopping it when it
 * no longer applies. Each Discovery is a key ("namespace/name") of a reconcile
 * queue: a watch event or a resync adds keys, and a reconcile reads the key's
 * current Discovery from the watch's latest set.
 */
export class Agent {
  readonly #opts: AgentOptions;
  readonly #queue: ReconcileQueue;
  readonly #runs = new Map<string, Running>();
  /** Runs stopped because their Discovery went, whose Devices this node could not all leave yet. */
  readonly #leaving = new Map<string, Running>();
  /** One limit for all of this agent's registry writes: the server sees the agent, not its Discoveries. */
  readonly #writeLimit = new AdaptiveLimit();
  /** The watch's latest set of Discoveries by key; undefined until the first list. */
  #latest: Map<string, Discovery> | undefined;
  /** Keys of the first list not yet acted on: the agent is ready once none is left. */
  #firstKeys: Set<string> | undefined;
  /** This node's labels as the Node watch last reported them. */
  #labels: Record<string, string> | undefined;
  /** The uid of this node's Node object (an owner of its slices); undefined without one. */
  #nodeUid: string | undefined;
  /** This node's stored DeviceSlices, watched. */
  readonly #slices: NodeSlices;
  #ready = false;

  constructor(opts: AgentOptions) {
    this.#opts = opts;
    this.#slices = new NodeSlices(opts.registry, opts.node, opts.log);
    // A slice of a Discovery this node does not run (deleted while the agent
    // was down, or by hand) is reconciled too, so that its key deletes it.
    this.#slices.onAnyChange(() => {
      if (this.#ready) for (const key of this.#slices.keys()) this.#queue.add(key);
    });
    this.#queue = new ReconcileQueue({
      name: 'discovery',
      reconciler: { reconcile: (key, signal) => this.#reconcileKey(key, signal) },
      log: opts.log,
      workers: opts.workers ?? WORKERS,
      metrics: opts.metrics.discoveryQueue,
    });
  }

  /** True once the first set of Discoveries has been read and acted on. */
  get ready(): boolean {
    return this.#ready;
  }

  /** When the longest reconcile now running started (for /healthz); undefined when none runs. */
  get reconcileBusySince(): number | undefined {
    const busy = this.#queue.busyForMs();
    return busy === undefined ? undefined : Date.now() - busy;
  }

  /** Runs until the signal aborts; then stops every run (leaving their slices in place) and resolves. */
  async run(signal: AbortSignal): Promise<void> {
    const { registry, node, log } = this.#opts;
    const reconciling = this.#queue.run(signal);
    const slicesWatch = this.#slices.run(signal);
    const resync = setInterval(() => {
      this.#addAll();
      for (const r of this.#runs.values()) r.run.resync();
    }, this.#opts.resyncMs ?? RESYNC_MS);
    resync.unref();
    const stopListening = this.#opts.reachability?.onReturn(() => {
      log.info('registry answers again; retrying failed slice writes');
      for (const r of this.#runs.values()) r.run.retrySoon();
    });
    // Reading this node's labels: one small object, which the agent may always read.
    this.#opts.reachability?.probeWhileDown(() => registry.nodeLabels(node), signal);
    // A relabelled node starts and stops its Discoveries at once, not at the next resync.
    const nodeWatch = keepWatching(
      'node',
      () =>
        registry.watchNodeLabels(
          node,
          (labels, uid) => {
            if (uid !== this.#nodeUid) {
              // The slices' owner changes: each run rewrites its slices.
              this.#nodeUid = uid;
              for (const r of this.#runs.values()) r.run.resync();
            }
            if (this.#labels !== undefined && sameLabels(this.#labels, labels)) return;
            this.#labels = labels;
            this.#addAll();
          },
          signal,
        ),
      signal,
      log,
    );
    try {
      await keepWatching(
        'discovery',
        () => registry.watchDiscoveries((discoveries) => this.#observe(discoveries), signal),
        signal,
        log,
      );
    } finally {
      await nodeWatch;
      await slicesWatch;
      clearInterval(resync);
      stopListening?.();
      await reconciling;
      await Promise.all([...this.#runs.values()].map((r) => r.run.stop(false)));
      this.#runs.clear();
      this.#leaving.clear();
    }
  }

  /** Takes the watch's complete current set; adds the keys of Discoveries that changed, came or went. */
  #observe(discoveries: Discovery[]): void {
    const previous = this.#latest;
    const latest = new Map(discoveries.map((d) => [keyOf(d), d]));
    this.#latest = latest;
    if (this.#firstKeys === undefined) {
      this.#firstKeys = new Set(latest.keys());
      if (latest.size === 0) this.#ready = true;
    }
    for (const [key, d] of latest) {
      const before = previous?.get(key);
      const version = d.metadata.resourceVersion;
      if (
        before === undefined ||
        version === undefined ||
        before.metadata.resourceVersion !== version
      )
        this.#queue.add(key);
    }
    for (const key of previous?.keys() ?? []) if (!latest.has(key)) this.#queue.add(key);
  }

  /** Every key the agent knows of: the latest set's, and those it runs or is leaving. */
  #addAll(): void {
    for (const key of this.#latest?.keys() ?? []) this.#queue.add(key);
    for (const key of this.#runs.keys()) this.#queue.add(key);
    for (const key of this.#leaving.keys()) this.#queue.add(key);
    if (this.#ready) for (const key of this.#slices.keys()) this.#queue.add(key);
  }

  /**
   * Brings one Discovery's run on this node in line with the latest set: none
   * if it is gone or does not select this node, else one for its current spec.
   */
  async #reconcileKey(key: string, signal: AbortSignal): Promise<Result> {
    try {
      await this.#reconcile(key, signal);
    } catch (err) {
      if (signal.aborted) throw err;
      // Refused (e.g. no right to read the Node): the resync tries again, no sooner.
      const terminal = err instanceof RegistryRejectedError;
      this.#opts.metrics.reconcileErrors.inc({ kind: terminal ? 'terminal' : 'retryable' });
      throw terminal ? new TerminalError((err as Error).message, { cause: err }) : err;
    }
    if (this.#firstKeys?.delete(key) === true && this.#firstKeys.size === 0) this.#ready = true;
    return done;
  }

  async #reconcile(key: string, signal: AbortSignal): Promise<void> {
    const leaving = this.#leaving.get(key);
    if (leaving !== undefined) {
      // Its slices first: a Discovery made again under the same name starts from none of this node's.
      await leaving.run.stop(true);
      this.#leaving.delete(key);
      this.#opts.metrics.devices.remove(leaving.metricLabels);
    }
    const d = this.#latest?.get(key);
    const w = d === undefined ? undefined : await this.#wanted(d);
    if (signal.aborted) return;
    const running = this.#runs.get(key);
    let previousGrace: number | undefined;
    if (running !== undefined) {
      if (w !== undefined && fingerprint(w.d, w.problem) === running.fingerprint) return;
      this.#runs.delete(key);
      if (w === undefined) {
        // Gone or no longer selecting this node: this node deletes its slices.
        // What it cannot delete now is retried with the key's backoff.
        this.#leaving.set(key, running);
        await running.run.stop(true);
        this.#leaving.delete(key);
        this.#opts.metrics.devices.remove(running.metricLabels);
        return;
      }
      // Changed: the new run reads them back and takes them over (an invalid
      // one keeps them for the grace period).
      await running.run.stop(false);
      previousGrace = running.graceSeconds;
    }
    if (signal.aborted) return;
    if (w === undefined) {
      if (this.#latest !== undefined) await this.#deleteOrphans(key);
      return;
    }
    const { problem } = w;
    const metricLabels = {
      namespace: w.d.metadata.namespace ?? 'default',
      discovery: w.d.metadata.name,
      handler: handlerNameOf(w.d),
    };
    const graceSeconds =
      problem === undefined
        ? (w.d.spec.gracePeriodSeconds ?? DEFAULT_GRACE_SECONDS)
        : (usableGrace(w.d) ?? previousGrace ?? DEFAULT_GRACE_SECONDS);
    this.#runs.set(key, {
      run: this.#start(w.d, metricLabels, problem, graceSeconds),
      fingerprint: fingerprint(w.d, problem),
      graceSeconds,
      metricLabels,
    });
  }

  /**
   * Deletes this node's slices of a Discovery it does not run: one deleted or
   * unselected while the agent was down (with no garbage collector, or a Node
   * that never existed, nothing else would).
   */
  async #deleteOrphans(key: string): Promise<void> {
    const slices = this.#slices.of(key);
    if (slices.length === 0) return;
    await Promise.all(
      slices.map((s) =>
        this.#opts.registry.deleteSlice(s.metadata.namespace ?? 'default', s.metadata.name),
      ),
    );
    this.#opts.log.info(
      { key, slices: slices.length },
      'deleted slices of a discovery this node does not run',
    );
  }

  /**
   * Whether this node should run the Discovery, and with what spec problem.
   * An invalid Discovery runs nowhere, but every node keeps its Devices for
   * the grace period; a Discovery being deleted runs nowhere.
   */
  async #wanted(d: Discovery): Promise<{ d: Discovery; problem: string | undefined } | undefined> {
    if (d.metadata.deletionTimestamp !== undefined) return undefined;
    let problem = specProblem(d);
    if (problem === undefined && d.spec.nodeSelector !== undefined) {
      const labels = this.#labels ?? (await this.#opts.registry.nodeLabels(this.#opts.node));
      try {
        if (!matchLabelSelector(d.spec.nodeSelector, labels)) return undefined;
      } catch (err) {
        problem = `spec.nodeSelector: ${(err as Error).message}`;
      }
    }
    return { d, problem };
  }

  #start(
    d: Discovery,
    metricLabels: Running['metricLabels'],
    problem: string | undefined,
    graceSeconds: number,
  ): DiscoveryRun {
    const { node, registry, log, metrics, publishers } = this.#opts;
    const runLog = log.child(metricLabels);
    runLog.info('discovery started on this node');
    return new DiscoveryRun({
      discovery: d,
      ...(problem !== undefined ? { specProblem: problem } : {}),
      graceSeconds,
      node,
      nodeUid: () => this.#nodeUid,
      registry,
      slices: this.#slices,
      writeLimit: this.#writeLimit,
      log: runLog,
      publishers,
      onError: (kind) => metrics.reconcileErrors.inc({ kind }),
      onCount: (n) => metrics.devices.set(metricLabels, n),
    });
  }
}

function keyOf(d: Discovery): string {
  return `${d.metadata.namespace ?? 'default'}/${d.metadata.name}`;
}

/** What makes a run stale: another object under the same name, a changed spec, or a change of validity. */
function fingerprint(d: Discovery, problem: string | undefined): string {
  const spec = createHash('sha256')
    .update(JSON.stringify(d.spec ?? null))
    .digest('hex');
  return `${d.metadata.uid ?? ''}/${spec}/${problem === undefined ? 'valid' : 'invalid'}`;
}

/** spec.gracePeriodSeconds of a spec that may be invalid, if that field is usable. */
function usableGrace(d: Discovery): number | undefined {
  const g: unknown = (d.spec as { gracePeriodSeconds?: unknown } | undefined)?.gracePeriodSeconds;
  return typeof g === 'number' && Number.isSafeInteger(g) && g >= 0 ? g : undefined;
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => b[k] === a[k]);
}
