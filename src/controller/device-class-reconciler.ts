// Gives every Discovery its DRA DeviceClass (src/dra/device-class.ts), so that
// a ResourceClaim can ask for "a device of this Discovery" without a class
// made by hand. Keys are `<ns>/<discovery>`; each reconcile compares the
// Discovery cache with the cache of the classes this controller made
// (labelled managed-by) and acts on device-class-plan.ts's plan. A class that
// exists is left as it is (an admin may have edited it); one deleted is made
// again; one whose Discovery is gone is deleted (cluster-scoped: the labels,
// not an owner reference, name its Discovery). Without resource.k8s.io/v1
// (Kubernetes < 1.34) it says so once and does nothing.
import type { Logger } from 'pino';
import { GROUP, VERSION, type Discovery } from '../api/types.ts';
import { LABEL_CLASS_NAMESPACE, type DeviceClass } from '../dra/device-class.ts';
import { RESOURCE_API_GROUP, RESOURCE_API_VERSION } from '../dra/driver.ts';
import {
  ReconcileQueue,
  TerminalError,
  done,
  type QueueMetrics,
  type Result,
} from '../reconcile/index.ts';
import { KubeApiError } from '../registry/kubernetes/client/errors.ts';
import { runInformer } from '../registry/kubernetes/client/informer.ts';
import type { KubeClient } from '../registry/kubernetes/client/kube-client.ts';
import { listWatch } from '../registry/kubernetes/client/list-watch.ts';
import { resourcePath } from '../registry/kubernetes/client/paths.ts';
import { Backoff, sleep } from '../util/backoff.ts';
import { LogLimiter } from '../util/log-limiter.ts';
import { LABEL_MANAGED_BY, MANAGED_BY } from './broker-workloads.ts';
import { classKey, planDeviceClass, type OwnedClass } from './device-class-plan.ts';

const RESYNC_MS = 10 * 60_000;
const CLASSES = {
  group: RESOURCE_API_GROUP,
  version: RESOURCE_API_VERSION,
  plural: 'deviceclasses',
};

export interface DeviceClassReconcilerOptions {
  client: KubeClient;
  log: Logger;
  metrics?: QueueMetrics;
  /** Only this namespace's Discoveries, and only their classes (undefined: every namespace). */
  namespace?: string;
  /** How often every key is reconciled again, changed or not (default 10 min). */
  resyncMs?: number;
  /** Told when a Discovery cannot have its DeviceClass (why), and when it can again. */
  onProblem?: (namespace: string, discovery: string, problem: string | undefined) => void;
}

/** contract: makes, remakes and deletes Discoveries' DeviceClasses; run() until the signal aborts. */
export class DeviceClassReconciler {
  readonly #opts: DeviceClassReconcilerOptions;
  readonly #queue: ReconcileQueue;
  readonly #limiter = new LogLimiter();
  readonly #discoveries = new Map<string, Discovery>();
  /** Classes of ours by name. */
  readonly #classes = new Map<string, OwnedClass>();
  readonly #synced = new Set<string>();
  /** Keys added before both caches had their first list. */
  readonly #pending = new Set<string>();
  /** Problems by Discovery key, as last reported. */
  readonly #problems = new Map<string, string>();

  constructor(opts: DeviceClassReconcilerOptions) {
    this.#opts = opts;
    this.#queue = new ReconcileQueue({
      name: 'deviceclasses',
      reconciler: { reconcile: (key, signal) => this.#reconcile(key, signal) },
      log: opts.log,
      ...(opts.metrics !== undefined ? { metrics: opts.metrics } : {}),
    });
  }

  /** Why a Discovery has no DeviceClass, or undefined. */
  problem(namespace: string, discovery: string): string | undefined {
    return this.#problems.get(`${namespace}/${discovery}`);
  }

  async run(signal: AbortSignal): Promise<void> {
    if (signal.aborted || !(await this.#served(signal))) return;
    const { client, log, namespace } = this.#opts;
    const selector = [
      `${LABEL_MANAGED_BY}=${MANAGED_BY}`,
      ...(namespace !== undefined ? [`${LABEL_CLASS_NAMESPACE}=${namespace}`] : []),
    ].join(',');
    const informers = [
      runInformer<Discovery>(
        {
          source: listWatch(
            client,
            resourcePath({
              group: GROUP,
              version: VERSION,
              plural: 'discoveries',
              ...(namespace !== undefined ? { namespace } : {}),
            }),
          ),
          onSync: (items) => this.#onDiscoveries(items),
          log: log.child({ watch: 'discoveries' }),
          what: 'discoveries',
        },
        signal,
      ),
      runInformer<OwnedClass>(
        {
          source: listWatch(client, resourcePath(CLASSES), { labelSelector: selector }),
          onSync: (items) => this.#onClasses(items),
          log: log.child({ watch: 'deviceclasses' }),
          what: 'deviceclasses',
        },
        signal,
      ),
    ];
    // A missed change is put right within a resync: every key is looked at again.
    const resync = setInterval(() => {
      for (const key of this.#discoveries.keys()) this.#add(key);
      for (const c of this.#classes.values()) {
        const key = classKey(c);
        if (key !== undefined) this.#add(key);
      }
    }, this.#opts.resyncMs ?? RESYNC_MS);
    resync.unref();
    try {
      await this.#queue.run(signal);
    } finally {
      clearInterval(resync);
    }
    await Promise.all(informers);
  }

  /**
   * Whether the API server serves DeviceClasses; without them (404) it logs
   * once and waits for the signal. Other failures are retried with backoff.
   */
  async #served(signal: AbortSignal): Promise<boolean> {
    const api = `/apis/${RESOURCE_API_GROUP}/${RESOURCE_API_VERSION}`;
    const backoff = new Backoff();
    for (;;) {
      try {
        await this.#opts.client.request('GET', api, { signal });
        return true;
      } catch (err) {
        if (signal.aborted) return false;
        if (err instanceof KubeApiError && err.status === 404) {
          this.#opts.log.warn(
            { api },
            'the API server does not serve resource.k8s.io/v1 (DRA needs Kubernetes 1.34+): no DeviceClasses are made',
          );
          await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
          return false;
        }
        this.#limiter.log(
          this.#opts.log,
          'warn',
          'probe',
          '',
          { api, err: (err as Error).message },
          'cannot tell whether DRA is served; trying again',
        );
        await sleep(backoff.nextDelay(), signal).catch(() => undefined);
      }
    }
  }

  #onDiscoveries(items: Discovery[]): void {
    const next = new Map(
      items.map((d) => [`${d.metadata.namespace ?? 'default'}/${d.metadata.name}`, d]),
    );
    // Only what changes the plan: a Discovery added, removed, or being deleted (not its status).
    for (const [key, d] of next) {
      const before = this.#discoveries.get(key);
      if (
        before === undefined ||
        before.metadata.uid !== d.metadata.uid ||
        (before.metadata.deletionTimestamp === undefined) !==
          (d.metadata.deletionTimestamp === undefined)
      )
        this.#add(key);
    }
    for (const key of this.#discoveries.keys()) if (!next.has(key)) this.#add(key);
    this.#discoveries.clear();
    for (const [k, v] of next) this.#discoveries.set(k, v);
    this.#markSynced('discoveries');
  }

  #onClasses(items: OwnedClass[]): void {
    const next = new Map(items.map((c) => [c.metadata.name, c]));
    const touched = (c: OwnedClass | undefined): void => {
      const key = c === undefined ? undefined : classKey(c);
      if (key !== undefined) this.#add(key);
    };
    for (const [name, c] of next) {
      const before = this.#classes.get(name);
      if (before?.metadata.resourceVersion !== c.metadata.resourceVersion) {
        touched(c);
        if (before !== undefined && classKey(before) !== classKey(c)) touched(before);
      }
    }
    for (const [name, c] of this.#classes) if (!next.has(name)) touched(c);
    this.#classes.clear();
    for (const [k, v] of next) this.#classes.set(k, v);
    this.#markSynced('deviceclasses');
  }

  #add(key: string): void {
    if (this.#synced.size < 2) this.#pending.add(key);
    else this.#queue.add(key);
  }

  #markSynced(what: string): void {
    this.#synced.add(what);
    if (this.#synced.size < 2) return;
    for (const key of this.#pending) this.#queue.add(key);
    this.#pending.clear();
  }

  async #reconcile(key: string, signal: AbortSignal): Promise<Result> {
    const slash = key.indexOf('/');
    const [namespace, name] = [key.slice(0, slash), key.slice(slash + 1)];
    const discovery = this.#discoveries.get(key);
    const live = discovery !== undefined && discovery.metadata.deletionTimestamp === undefined;
    const owned = [...this.#classes.values()].filter((c) => classKey(c) === key);
    const plan = planDeviceClass(namespace, name, live, owned);
    if (!live) this.#problems.delete(key);
    for (const c of plan.delete) await this.#delete(c, key, signal);
    // A refusal stays reported until a create succeeds: no flapping condition on each retry.
    if (plan.create !== undefined) await this.#create(plan.create, namespace, name, signal);
    if (live) this.#setProblem(namespace, name, plan.problem);
    return done;
  }

  async #create(
    body: DeviceClass,
    namespace: string,
    discovery: string,
    signal: AbortSignal,
  ): Promise<void> {
    try {
      await this.#opts.client.request('POST', resourcePath(CLASSES), { body, signal });
      this.#opts.log.info(
        { deviceClass: body.metadata.name, discovery, namespace },
        'device class created',
      );
    } catch (err) {
      // Made already: by hand (then it is the admin's), or by us and not cached yet.
      if (err instanceof KubeApiError && err.status === 409) return;
      if (
        err instanceof KubeApiError &&
        (err.status === 422 || err.status === 400 || err.status === 403)
      ) {
        const problem = `DeviceClass ${body.metadata.name}: ${err.message}`;
        this.#setProblem(namespace, discovery, problem);
        throw new TerminalError(problem);
      }
      throw err;
    }
  }

  async #delete(c: OwnedClass, key: string, signal: AbortSignal): Promise<void> {
    const { name, uid } = c.metadata;
    try {
      await this.#opts.client.request('DELETE', resourcePath({ ...CLASSES, name }), {
        body: {
          kind: 'DeleteOptions',
          apiVersion: 'v1',
          ...(uid !== undefined ? { preconditions: { uid } } : {}),
        },
        signal,
      });
      const slash = key.indexOf('/');
      this.#opts.log.info(
        { deviceClass: name, discovery: key.slice(slash + 1), namespace: key.slice(0, slash) },
        'device class deleted: its Discovery is gone',
      );
    } catch (err) {
      // Gone already, or replaced by a newer class of the same name: nothing to do.
      if (err instanceof KubeApiError && (err.status === 404 || err.status === 409)) return;
      throw err;
    }
  }

  #setProblem(namespace: string, discovery: string, problem: string | undefined): void {
    const key = `${namespace}/${discovery}`;
    if (this.#problems.get(key) === problem) return;
    if (problem === undefined) this.#problems.delete(key);
    else {
      this.#problems.set(key, problem);
      this.#opts.log.warn({ discovery, namespace, problem }, 'no DeviceClass for this Discovery');
    }
    this.#opts.onProblem?.(namespace, discovery, problem);
  }
}
