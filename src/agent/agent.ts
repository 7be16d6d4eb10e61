import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Discovery } from '../api/types.ts';
import type { AgentMetrics } from '../metrics.ts';
import type { Registry } from '../registry/registry.ts';
import { matchLabelSelector } from '../registry/selectors.ts';
import { handlerNameOf, specProblem } from '../registry/spec-valid.ts';
import { AdaptiveLimit } from '../util/adaptive-limit.ts';
import { Backoff, sleep } from '../util/backoff.ts';
import type { PublisherFactory } from './discovery-publisher.ts';
import { DiscoveryRun } from './discovery-run.ts';
import { LogLimiter } from '../util/log-limiter.ts';

/** How often the agent reconciles whatever its watches say: a missed event is not wrong for long. */
const RESYNC_MS = 60_000;

export interface AgentOptions {
  node: string;
  registry: Registry;
  log: Logger;
  metrics: AgentMetrics;
  /** Where each Discovery's handler publishes device data, state and events. */
  publishers: PublisherFactory;
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
 * no longer applies. Every pass starts from the complete current set.
 */
export class Agent {
  readonly #opts: AgentOptions;
  readonly #runs = new Map<string, Running>();
  /** One limit for all of this agent's registry writes: the server sees the agent, not its Discoveries. */
  readonly #writeLimit = new AdaptiveLimit();
  #latest: Discovery[] | undefined;
  /** This node's labels as the Node watch last reported them. */
  #labels: Record<string, string> | undefined;
  #ready = false;
  #pass: Promise<void> = Promise.resolve();
  #busySince: number | undefined;

  constructor(opts: AgentOptions) {
    this.#opts = opts;
  }

  /** True once the first set of Discoveries has been read and acted on. */
  get ready(): boolean {
    return this.#ready;
  }

  /** When the reconcile pass now running started (for /healthz); undefined when none runs. */
  get reconcileBusySince(): number | undefined {
    return this.#busySince;
  }

  /** Runs until the signal aborts; then stops every run (leaving their Devices in place) and resolves. */
  async run(signal: AbortSignal): Promise<void> {
    const { registry, node, log } = this.#opts;
    const resync = setInterval(() => this.#enqueue(), RESYNC_MS);
    resync.unref();
    // A relabelled node starts and stops its Discoveries at once, not at the next resync.
    const nodeWatch = keepWatching(
      'node',
      () =>
        registry.watchNodeLabels(
          node,
          (labels) => {
            if (this.#labels !== undefined && sameLabels(this.#labels, labels)) return;
            this.#labels = labels;
            this.#enqueue();
          },
          signal,
        ),
      signal,
      log,
    );
    try {
      await keepWatching(
        'discovery',
        () =>
          registry.watchDiscoveries((discoveries) => {
            this.#latest = discoveries;
            this.#enqueue();
          }, signal),
        signal,
        log,
      );
    } finally {
      await nodeWatch;
      clearInterval(resync);
      await this.#pass;
      await Promise.all([...this.#runs.values()].map((r) => r.run.stop(false)));
      this.#runs.clear();
    }
  }

  #enqueue(): void {
    this.#pass = this.#pass
      .then(async () => {
        this.#busySince = Date.now();
        try {
          await this.#reconcile();
        } finally {
          this.#busySince = undefined;
        }
      })
      .catch((err: unknown) => {
        this.#opts.metrics.reconcileErrors.inc({ kind: 'retryable' });
        this.#opts.log.warn(
          { err: (err as Error).message },
          'reconcile of discoveries failed; retrying at the next change or resync',
        );
      });
  }

  async #reconcile(): Promise<void> {
    const discoveries = this.#latest;
    if (discoveries === undefined) return;
    const { node, registry } = this.#opts;
    const problems = new Map(discoveries.map((d) => [d, specProblem(d)]));
    const selective = discoveries.some(
      (d) => problems.get(d) === undefined && d.spec.nodeSelector !== undefined,
    );
    const labels = selective ? (this.#labels ?? (await registry.nodeLabels(node))) : {};
    const wanted = new Map<string, { d: Discovery; problem: string | undefined }>();
    for (const d of discoveries) {
      if (d.metadata.deletionTimestamp !== undefined) continue;
      let problem = problems.get(d);
      // An invalid Discovery runs nowhere, but every node keeps its Devices for the grace period.
      if (problem === undefined && d.spec.nodeSelector !== undefined) {
        try {
          if (!matchLabelSelector(d.spec.nodeSelector, labels)) continue;
        } catch (err) {
          problem = `spec.nodeSelector: ${(err as Error).message}`;
        }
      }
      wanted.set(`${d.metadata.namespace ?? 'default'}/${d.metadata.name}`, { d, problem });
    }
    const previousGrace = new Map<string, number>();
    for (const [key, running] of this.#runs) {
      const w = wanted.get(key);
      if (w !== undefined && fingerprint(w.d, w.problem) === running.fingerprint) continue;
      this.#runs.delete(key);
      // Gone or no longer selecting this node: this node leaves its Devices.
      // Changed: the new run reads them back and takes them over (an invalid
      // one keeps them for the grace period).
      await running.run.stop(w === undefined);
      if (w === undefined) this.#opts.metrics.devices.remove(running.metricLabels);
      else previousGrace.set(key, running.graceSeconds);
    }
    for (const [key, { d, problem }] of wanted) {
      if (this.#runs.has(key)) continue;
      const metricLabels = {
        namespace: d.metadata.namespace ?? 'default',
        discovery: d.metadata.name,
        handler: handlerNameOf(d),
      };
      const graceSeconds =
        problem === undefined
          ? (d.spec.gracePeriodSeconds ?? DEFAULT_GRACE_SECONDS)
          : (usableGrace(d) ?? previousGrace.get(key) ?? DEFAULT_GRACE_SECONDS);
      this.#runs.set(key, {
        run: this.#start(d, metricLabels, problem, graceSeconds),
        fingerprint: fingerprint(d, problem),
        graceSeconds,
        metricLabels,
      });
    }
    this.#ready = true;
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
      registry,
      writeLimit: this.#writeLimit,
      log: runLog,
      publishers,
      onError: (kind) => metrics.reconcileErrors.inc({ kind }),
      onCount: (n) => metrics.devices.set(metricLabels, n),
    });
  }
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

/** Runs a watch again after it fails or ends (capped, jittered backoff) until the signal aborts. */
async function keepWatching(
  what: string,
  watch: () => Promise<void>,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  const backoff = new Backoff();
  const limiter = new LogLimiter();
  while (!signal.aborted) {
    let failure = 'the watch ended';
    try {
      await watch();
    } catch (err) {
      failure = (err as Error).message;
    }
    if (signal.aborted) break;
    const delay = backoff.nextDelay();
    limiter.log(
      log,
      'warn',
      'watch',
      '',
      { err: failure, retryInMs: delay },
      `${what} watch failed`,
    );
    await sleep(delay, signal).catch(() => undefined);
  }
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => b[k] === a[k]);
}
