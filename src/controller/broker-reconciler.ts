// Runs what Discoveries' `broker`, `deviceService` and `discoveryService` ask
// for: per Device its broker Pods (or Job) and Service, per Discovery its
// Service. Keys are `device:<ns>/<name>` and `discovery:<ns>/<name>`; each
// reconcile compares broker-workloads.ts's wanted objects with the ones this
// controller owns in the caches and creates, replaces or deletes the
// difference. A broker that was deleted or failed is made again; what the API
// server refuses is reported for the Discovery: an invalid spec is not retried
// until the Discovery changes, a forbidden one (a namespace's ResourceQuota or
// LimitRange, Pod Security) is retried with backoff, as the namespace may change.
import type { Logger } from 'pino';
import { GROUP, VERSION, type Device, type Discovery } from '../api/types.ts';
import {
  ReconcileQueue,
  TerminalError,
  UnavailableError,
  done,
  type QueueMetrics,
  type Result,
} from '../reconcile/index.ts';
import { KubeApiError } from '../registry/kubernetes/client/errors.ts';
import { runInformer } from '../registry/kubernetes/client/informer.ts';
import type { KubeClient } from '../registry/kubernetes/client/kube-client.ts';
import { listWatch } from '../registry/kubernetes/client/list-watch.ts';
import { resourcePath, type ResourceRef } from '../registry/kubernetes/client/paths.ts';
import {
  ANNOTATION_SPEC_HASH,
  LABEL_MANAGED_BY,
  MANAGED_BY,
  deviceWorkloads,
  discoveryWorkloads,
  type WorkloadObject,
} from './broker-workloads.ts';
import { BrokerProblems } from './broker-problems.ts';
import { slimDevice, slimDiscovery } from './slim-objects.ts';

type Kind = WorkloadObject['kind'];

/** What the caches keep of an owned Pod, Job or Service. */
interface Owned {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion?: string;
    deletionTimestamp?: string;
    annotations?: Record<string, string>;
    ownerReferences?: { kind: string; name: string; uid: string }[];
  };
  status?: { phase?: string; conditions?: { type: string; status: string }[] };
}

/** The fields of Owned only, as the informer decodes a Pod, Job or Service (their specs stay out of memory). */
function slimOwned(o: Owned): Owned {
  const { name, namespace, uid, resourceVersion, deletionTimestamp, annotations, ownerReferences } =
    o.metadata;
  const hash = annotations?.[ANNOTATION_SPEC_HASH];
  return {
    metadata: {
      name,
      namespace,
      uid,
      ...(resourceVersion !== undefined ? { resourceVersion } : {}),
      ...(deletionTimestamp !== undefined ? { deletionTimestamp } : {}),
      ...(hash !== undefined ? { annotations: { [ANNOTATION_SPEC_HASH]: hash } } : {}),
      ...(ownerReferences !== undefined
        ? {
            ownerReferences: ownerReferences.map((r) => ({
              kind: r.kind,
              name: r.name,
              uid: r.uid,
            })),
          }
        : {}),
    },
    ...(o.status !== undefined
      ? {
          status: {
            ...(o.status.phase !== undefined ? { phase: o.status.phase } : {}),
            ...(o.status.conditions !== undefined
              ? { conditions: o.status.conditions.map((c) => ({ type: c.type, status: c.status })) }
              : {}),
          },
        }
      : {}),
  };
}

const RESOURCES: Record<Kind, Omit<ResourceRef, 'namespace' | 'name'>> = {
  Pod: { version: 'v1', plural: 'pods' },
  Job: { group: 'batch', version: 'v1', plural: 'jobs' },
  Service: { version: 'v1', plural: 'services' },
};
const KINDS = Object.keys(RESOURCES) as Kind[];
const RESYNC_MS = 10 * 60_000;

export interface BrokerReconcilerOptions {
  client: KubeClient;
  log: Logger;
  metrics?: QueueMetrics;
  /** The extended resource a broker of `device` requests (the device plugin's name), if any. */
  resourceNameOf?: (device: Device) => string | undefined;
  /** Only this namespace (undefined: every namespace). */
  namespace?: string;
  /** How often every key is reconciled again, changed or not (default 10 min). */
  resyncMs?: number;
  /** Told when a Discovery's brokers cannot be made (the API server's reason), and when they can again. */
  onProblem?: (namespace: string, discovery: string, problem: string | undefined) => void;
}

/** contract: makes the brokers and Services Discoveries ask for; run() until the signal aborts. */
export class BrokerReconciler {
  readonly #opts: BrokerReconcilerOptions;
  readonly #queue: ReconcileQueue;
  readonly #devices = new Map<string, Device>();
  readonly #discoveries = new Map<string, Discovery>();
  readonly #owned: Record<Kind, Map<string, Owned>> = {
    Pod: new Map(),
    Job: new Map(),
    Service: new Map(),
  };
  readonly #synced = new Set<string>();
  /** Why owners' objects cannot be made, by owner key (`device:ns/name`, `discovery:ns/name`). */
  readonly #problems = new BrokerProblems();

  constructor(opts: BrokerReconcilerOptions) {
    this.#opts = opts;
    this.#queue = new ReconcileQueue({
      name: 'brokers',
      reconciler: { reconcile: (key, signal) => this.#reconcile(key, signal) },
      log: opts.log,
      ...(opts.metrics !== undefined ? { metrics: opts.metrics } : {}),
    });
  }

  /** Why some of a Discovery's brokers cannot be made (the first refusal, and how many more), or undefined. */
  problem(namespace: string, discovery: string): string | undefined {
    return this.#problems.get(`${namespace}/${discovery}`);
  }

  async run(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const { client, log } = this.#opts;
    const scope = this.#opts.namespace !== undefined ? { namespace: this.#opts.namespace } : {};
    const custom = (plural: string): string =>
      resourcePath({ group: GROUP, version: VERSION, plural, ...scope });
    const managed = { labelSelector: `${LABEL_MANAGED_BY}=${MANAGED_BY}` };
    const informers = [
      runInformer<Device>(
        {
          source: listWatch(client, custom('devices')),
          onSync: (items) => this.#onDevices(items),
          onEvent: (type, o) => this.#onDevices(eventDelta(this.#devices, type, o)),
          log: log.child({ watch: 'devices' }),
          what: 'devices',
          transform: slimDevice,
        },
        signal,
      ),
      runInformer<Discovery>(
        {
          source: listWatch(client, custom('discoveries')),
          onSync: (items) => this.#onDiscoveries(items),
          onEvent: (type, o) => this.#onDiscoveries(eventDelta(this.#discoveries, type, o)),
          log: log.child({ watch: 'discoveries' }),
          what: 'discoveries',
          transform: slimDiscovery,
        },
        signal,
      ),
      ...KINDS.map((kind) =>
        runInformer<Owned>(
          {
            source: listWatch(client, resourcePath({ ...RESOURCES[kind], ...scope }), managed),
            onSync: (items) => this.#onOwned(kind, items),
            onEvent: (type, o) => this.#onOwned(kind, eventDelta(this.#owned[kind], type, o)),
            log: log.child({ watch: RESOURCES[kind].plural }),
            what: RESOURCES[kind].plural,
            transform: slimOwned,
          },
          signal,
        ),
      ),
    ];
    // A missed change is put right within a resync: every key is looked at again.
    const resync = setInterval(() => {
      for (const key of this.#devices.keys()) this.#add(`device:${key}`);
      for (const key of this.#discoveries.keys()) this.#add(`discovery:${key}`);
    }, this.#opts.resyncMs ?? RESYNC_MS);
    resync.unref();
    try {
      await this.#queue.run(signal);
    } finally {
      clearInterval(resync);
    }
    await Promise.all(informers);
  }

  #onDevices(items: Device[] | Delta<Device>): void {
    const next = asDelta(this.#devices, items);
    for (const key of changedKeys(this.#devices, next)) this.#add(`device:${key}`);
    apply(this.#devices, next);
    this.#markSynced('devices');
  }

  #onDiscoveries(items: Discovery[] | Delta<Discovery>): void {
    const next = asDelta(this.#discoveries, items);
    for (const key of changedKeys(this.#discoveries, next)) {
      this.#add(`discovery:${key}`);
      const [ns, name] = split(key);
      // A Discovery's broker spec changed: every one of its Devices is looked at again.
      for (const device of this.#devices.values())
        if ((device.metadata.namespace ?? 'default') === ns && device.spec.discovery === name)
          this.#add(`device:${ns}/${device.metadata.name}`);
    }
    apply(this.#discoveries, next);
    this.#markSynced('discoveries');
  }

  #onOwned(kind: Kind, items: Owned[] | Delta<Owned>): void {
    const cache = this.#owned[kind];
    const next = asDelta(cache, items);
    for (const key of changedKeys(cache, next)) {
      const object = next.set.get(key) ?? cache.get(key);
      const owner = object?.metadata.ownerReferences?.find(
        (r) => r.kind === 'Device' || r.kind === 'Discovery',
      );
      if (object !== undefined && owner !== undefined)
        this.#add(
          `${owner.kind === 'Device' ? 'device' : 'discovery'}:${object.metadata.namespace}/${owner.name}`,
        );
    }
    apply(cache, next);
    this.#markSynced(kind);
  }

  /** Keys wait until every cache has its first list: a broker not listed yet would be made twice. */
  readonly #pending = new Set<string>();

  #add(key: string): void {
    if (this.#synced.size < 2 + KINDS.length) {
      this.#pending.add(key);
      return;
    }
    this.#queue.add(key);
  }

  #markSynced(what: string): void {
    this.#synced.add(what);
    if (this.#synced.size < 2 + KINDS.length) return;
    for (const key of this.#pending) this.#queue.add(key);
    this.#pending.clear();
  }

  async #reconcile(key: string, signal: AbortSignal): Promise<Result> {
    const [kind, rest] = [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)];
    const [ns, name] = split(rest);
    if (kind === 'discovery') {
      const discovery = this.#discoveries.get(rest);
      const wanted =
        discovery === undefined || discovery.metadata.deletionTimestamp !== undefined
          ? []
          : discoveryWorkloads(discovery);
      await this.#converge(
        key,
        ns,
        { kind: 'Discovery', name, uid: discovery?.metadata.uid },
        wanted,
        signal,
      );
      return done;
    }
    const device = this.#devices.get(rest);
    const discovery =
      device === undefined ? undefined : this.#discoveries.get(`${ns}/${device.spec.discovery}`);
    const live =
      device !== undefined &&
      device.metadata.deletionTimestamp === undefined &&
      discovery !== undefined;
    const resourceName = live ? this.#opts.resourceNameOf?.(device) : undefined;
    const wanted = live
      ? deviceWorkloads({
          discovery,
          device,
          ...(resourceName !== undefined ? { resourceName } : {}),
        })
      : [];
    await this.#converge(
      key,
      ns,
      { kind: 'Device', name, uid: device?.metadata.uid },
      wanted,
      signal,
      device?.spec.discovery,
    );
    return done;
  }

  /**
   * Makes the objects `owner` owns be exactly `wanted`; records why the API
   * server refused one (for Discovery `discovery`, by default the owner), or
   * that nothing was refused.
   */
  async #converge(
    key: string,
    namespace: string,
    owner: { kind: 'Device' | 'Discovery'; name: string; uid: string | undefined },
    wanted: WorkloadObject[],
    signal: AbortSignal,
    discovery = owner.name,
  ): Promise<void> {
    try {
      await this.#apply(namespace, owner, wanted, signal);
    } catch (err) {
      if (err instanceof BrokerRefusedError) {
        this.#setProblem(key, `${namespace}/${discovery}`, err.message);
        throw err.retry
          ? new UnavailableError(err.message, { cause: err })
          : new TerminalError(err.message, { cause: err });
      }
      throw err;
    }
    this.#setProblem(key, `${namespace}/${discovery}`, undefined);
  }

  async #apply(
    namespace: string,
    owner: { kind: 'Device' | 'Discovery'; name: string; uid: string | undefined },
    wanted: WorkloadObject[],
    signal: AbortSignal,
  ): Promise<void> {
    const wantedNames = new Set(wanted.map((o) => `${o.kind}/${o.metadata.name}`));
    for (const kind of KINDS) {
      for (const object of this.#owned[kind].values()) {
        if (object.metadata.namespace !== namespace) continue;
        const ref = object.metadata.ownerReferences?.find(
          (r) => r.kind === owner.kind && r.name === owner.name,
        );
        if (ref === undefined) continue;
        // An object of an earlier Device or Discovery of the same name goes too.
        const stale = owner.uid === undefined || ref.uid !== owner.uid;
        if (stale || !wantedNames.has(`${kind}/${object.metadata.name}`))
          await this.#delete(kind, object, signal);
      }
    }
    for (const object of wanted) {
      const current = this.#owned[object.kind].get(`${namespace}/${object.metadata.name}`);
      if (current !== undefined) {
        if (current.metadata.deletionTimestamp !== undefined) continue;
        const sameSpec =
          current.metadata.annotations?.[ANNOTATION_SPEC_HASH] ===
          object.metadata.annotations[ANNOTATION_SPEC_HASH];
        if (sameSpec && !failed(object.kind, current)) continue;
        // Pod and Job specs cannot be changed in place: a changed or failed one is made again.
        this.#opts.log.info(
          {
            kind: object.kind,
            name: object.metadata.name,
            namespace,
            reason: sameSpec ? 'failed' : 'spec changed',
          },
          'replacing a broker object',
        );
        await this.#delete(object.kind, current, signal);
        continue; // made once the cache has seen it go
      }
      await this.#create(object, signal);
    }
  }

  async #create(object: WorkloadObject, signal: AbortSignal): Promise<void> {
    const { namespace, name } = object.metadata;
    const path = resourcePath({ ...RESOURCES[object.kind], namespace });
    try {
      await this.#opts.client.request('POST', path, { body: object, signal });
      this.#opts.log.info({ kind: object.kind, name, namespace }, 'broker object created');
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) return; // made already; the cache catches up
      // 422/400: the spec itself; 403: the namespace's quota, limits or policy, which may change.
      if (
        err instanceof KubeApiError &&
        (err.status === 422 || err.status === 400 || err.status === 403)
      )
        throw new BrokerRefusedError(`${object.kind} ${name}: ${err.message}`, err.status === 403);
      throw err;
    }
  }

  async #delete(kind: Kind, object: Owned, signal: AbortSignal): Promise<void> {
    const { namespace, name, uid } = object.metadata;
    try {
      await this.#opts.client.request(
        'DELETE',
        resourcePath({ ...RESOURCES[kind], namespace, name }),
        {
          body: {
            kind: 'DeleteOptions',
            apiVersion: 'v1',
            preconditions: { uid },
            propagationPolicy: 'Background',
          },
          signal,
        },
      );
      this.#opts.log.info({ kind, name, namespace }, 'broker object deleted');
    } catch (err) {
      // Gone already, or replaced by a newer object of the same name: nothing to do.
      if (err instanceof KubeApiError && (err.status === 404 || err.status === 409)) return;
      throw err;
    }
  }

  /** Records (or clears) why `key`'s objects cannot be made; tells onProblem when the Discovery's problem changed. */
  #setProblem(key: string, discovery: string, problem: string | undefined): void {
    const change = this.#problems.set(key, discovery, problem);
    if (change === undefined) return;
    const [ns, name] = split(change.discovery);
    if (problem !== undefined)
      this.#opts.log.warn(
        { key, discovery: name, namespace: ns, problem },
        'brokers cannot be made',
      );
    this.#opts.onProblem?.(ns, name, change.problem);
  }
}

/** The API server refused an object; `retry`: for a reason outside its spec (quota, limits, policy). */
class BrokerRefusedError extends Error {
  readonly code = 'EDGEBRIDGE_BROKER_REFUSED';
  readonly retry: boolean;
  constructor(message: string, retry: boolean) {
    super(message);
    this.name = 'BrokerRefusedError';
    this.retry = retry;
  }
}

/** A broker Pod that ended (it is never restarted in place), or a Job that failed. */
function failed(kind: Kind, object: Owned): boolean {
  if (kind === 'Pod')
    return object.status?.phase === 'Failed' || object.status?.phase === 'Succeeded';
  if (kind === 'Job')
    return (
      object.status?.conditions?.some((c) => c.type === 'Failed' && c.status === 'True') ?? false
    );
  return false;
}

interface Keyed {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

function byKey<T extends Keyed>(items: T[]): Map<string, T> {
  return new Map(items.map((o) => [keyOf(o), o]));
}

function keyOf(o: Keyed): string {
  return `${o.metadata?.namespace ?? 'default'}/${o.metadata?.name ?? ''}`;
}

/** What changes in a cache: objects set (new or newer) and keys removed. */
interface Delta<T> {
  set: Map<string, T>;
  removed: string[];
}

/**
 * A list as a delta against `cache` (every listed object set, the rest
 * removed): a list costs O(n), a watch event (eventDelta) O(1).
 */
function asDelta<T extends Keyed>(cache: Map<string, T>, items: T[] | Delta<T>): Delta<T> {
  if (!Array.isArray(items)) return items;
  const set = byKey(items);
  return { set, removed: [...cache.keys()].filter((k) => !set.has(k)) };
}

function eventDelta<T extends Keyed>(
  cache: Map<string, T>,
  type: 'ADDED' | 'MODIFIED' | 'DELETED',
  object: T,
): Delta<T> {
  const key = keyOf(object);
  if (type !== 'DELETED') return { set: new Map([[key, object]]), removed: [] };
  return { set: new Map(), removed: cache.has(key) ? [key] : [] };
}

/** Keys added, removed, or whose resource version moved. */
function changedKeys<T extends Keyed>(before: Map<string, T>, delta: Delta<T>): string[] {
  const keys: string[] = [];
  for (const [key, o] of delta.set)
    if (before.get(key)?.metadata?.resourceVersion !== o.metadata?.resourceVersion) keys.push(key);
  keys.push(...delta.removed);
  return keys;
}

function apply<T>(target: Map<string, T>, delta: Delta<T>): void {
  for (const key of delta.removed) target.delete(key);
  for (const [k, v] of delta.set) target.set(k, v);
}

function split(key: string): [string, string] {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
}
