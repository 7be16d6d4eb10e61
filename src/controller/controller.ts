// The controller: four informers fill caches; a keyed queue reconciles
// Devices (key `device:<ns>/<name>`), Discoveries' status (`discovery:<ns>/<name>`)
// and the slices of deleted Nodes (`node:<name>`), each from the caches'
// current state. The fold of a Discovery's slices is memoized per Discovery
// and recomputed whenever one of its inputs changed.
//
// A Discovery whose slices are changing is "settling" until they have been
// quiet for SETTLE_QUIET_MS (at most SETTLE_MAX_MS): meanwhile new Devices are
// created at once, but node lists (status) and deletions wait, so that fifty
// nodes reporting the same devices within a second or two cost one status
// write per Device, not fifty, and a device moving between two slices of a
// node is not deleted in between.
import type { Logger } from 'pino';
import type { Device, DeviceSlice, Discovery } from '../api/types.ts';
import {
  ReconcileQueue,
  TerminalError,
  done,
  requeue,
  requeueAfter,
  type Result,
} from '../reconcile/index.ts';
import { ControllerApi, statusOf } from './controller-api.ts';
import { objectDiffers, replacement, statusDiffers, wantedDevice } from './device-diff.ts';
import { discoveryStatus, statusChanged } from './discovery-status.ts';
import { fold, type DeviceConflict, type FoldResult } from './fold.ts';
import type { EventRecorder, EventType } from './event-recorder.ts';
import type { ControllerMetrics } from './metrics.ts';
import { readinessOf, type NodeObject, type NodeReadiness } from './node-readiness.ts';
import { ClaimHolders, staleClaims } from './stale-claims.ts';
import { keyOf, ObjectCache, type CacheDelta, type CachedObject } from './object-cache.ts';
import { slimDevice, slimDiscovery, slimNode, slimSlice } from './slim-objects.ts';

export const DEFAULT_NODE_GRACE_MS = 5 * 60_000;
export const DEFAULT_RESYNC_MS = 10 * 60_000;
/**
 * Keys reconciled at once. A Device's reconcile is two writes in a row, so
 * this many keys keep the API writes' adaptive limit (controller-api.ts) busy;
 * a waiting key costs only a pending promise.
 */
export const DEFAULT_WORKERS = 64;
/** How long a Discovery's inputs must be unchanged before its node lists and deletions are written. */
export const SETTLE_QUIET_MS = 250;
/** The longest a Discovery stays settling while its inputs keep changing. */
export const SETTLE_MAX_MS = 5_000;

export interface ControllerOptions {
  api: ControllerApi;
  log: Logger;
  metrics: ControllerMetrics;
  /** How long a Node may be NotReady before its entries leave the Devices. */
  nodeGraceMs?: number;
  /** How often every Device and Discovery is reconciled again, changed or not. */
  resyncMs?: number;
  /** Keys reconciled at once (default 64). */
  workers?: number;
  /** Where a Device's story is told (created, node added/removed, deleted). */
  events?: EventRecorder;
  /** Why a Discovery's brokers cannot be made (the broker reconciler's report), if they cannot. */
  brokerProblem?: (namespace: string, discovery: string) => string | undefined;
  /** Why a Discovery has no DRA DeviceClass (the DeviceClass reconciler's report), if it has none. */
  deviceClassProblem?: (namespace: string, discovery: string) => string | undefined;
}

/** A Discovery's fold, valid while its inputs' generation is the same. */
interface Memo {
  generation: string;
  result: FoldResult;
  byName: Map<string, Device>;
}

/** A readiness that drops a node's entries at once: its Node was deleted. */
const DELETED: NodeReadiness = { ready: false, since: 0 };

/** contract: the only writer of Devices and Discovery status; run() until the signal aborts. */
export class Controller {
  readonly #opts: ControllerOptions;
  readonly #log: Logger;
  readonly #api: ControllerApi;
  readonly #graceMs: number;
  readonly #devices = new ObjectCache<Device>(slimDevice);
  readonly #discoveries = new ObjectCache<Discovery>(slimDiscovery);
  readonly #slices = new ObjectCache<DeviceSlice>(slimSlice);
  readonly #nodes = new ObjectCache<NodeObject>(slimNode);
  readonly #queue: ReconcileQueue;
  #readiness = new Map<string, NodeReadiness>();
  /** Nodes seen deleted whose slices may remain. */
  readonly #deletedNodes = new Set<string>();
  /** Device keys by the key of the Discovery they belong to (by spec.discovery). */
  readonly #devicesOf = new Map<string, Set<string>>();
  /** Generation of each Discovery's inputs (its slices and itself), and of the Nodes'. */
  readonly #inputGen = new Map<string, number>();
  #nodesGen = 0;
  readonly #memo = new Map<string, Memo>();
  /** Wanted Device key -> its Discovery's key, from the last folds. */
  readonly #wantedBy = new Map<string, string>();
  /** The conflict last reported per Device key: its Warning Event is recorded when it starts or changes, not on every resync. */
  readonly #conflicts = new Map<string, string>();
  /** The nodes that hold device plugin claims, Node object or not. */
  readonly #holders = new ClaimHolders();
  /** Discoveries whose inputs are changing (see the module comment): since when, and the timer that ends it. */
  readonly #settling = new Map<string, { since: number; timer: NodeJS.Timeout }>();

  constructor(opts: ControllerOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#api = opts.api;
    this.#graceMs = opts.nodeGraceMs ?? DEFAULT_NODE_GRACE_MS;
    this.#queue = new ReconcileQueue({
      name: 'controller',
      reconciler: { reconcile: (key, signal) => this.#reconcile(key, signal) },
      log: opts.log,
      metrics: opts.metrics.queue,
      workers: opts.workers ?? DEFAULT_WORKERS,
    });
  }

  /** Why the controller is not ready yet (caches not synced), or undefined. */
  notReady(): string | undefined {
    const waiting = this.#unsynced();
    return waiting.length === 0 ? undefined : `caches not synced: ${waiting.join(', ')}`;
  }

  /** How long the longest reconcile under way has run (ms); undefined when none runs. */
  busyForMs(): number | undefined {
    return this.#queue.busyForMs();
  }

  /** Watches and reconciles until the signal aborts; resolves when everything has stopped. */
  async run(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const api = this.#api;
    const informers = Promise.all([
      api.watch(
        'devices',
        this.#handlers(this.#devices, (d) => this.#onDevices(d)),
        signal,
      ),
      api.watch(
        'discoveries',
        this.#handlers(this.#discoveries, (d) => this.#onDiscoveries(d)),
        signal,
      ),
      api.watch(
        'deviceslices',
        this.#handlers(this.#slices, (d) => this.#onSlices(d)),
        signal,
      ),
      api.watch(
        'nodes',
        this.#handlers(this.#nodes, (d, listed) => this.#onNodes(d, listed)),
        signal,
      ),
    ]);
    // Nothing is reconciled before every cache is complete: a Device whose
    // slices were not listed yet would otherwise be deleted.
    const synced = await this.#whenSynced(signal);
    if (synced) {
      this.#log.info(
        {
          devices: this.#devices.size,
          discoveries: this.#discoveries.size,
          slices: this.#slices.size,
          nodes: this.#nodes.size,
        },
        'caches synced; reconciling',
      );
      this.#resync();
      const timer = setInterval(() => this.#resync(), this.#opts.resyncMs ?? DEFAULT_RESYNC_MS);
      timer.unref();
      try {
        await this.#queue.run(signal);
      } finally {
        clearInterval(timer);
        for (const { timer: t } of this.#settling.values()) clearTimeout(t);
        this.#settling.clear();
      }
    }
    await informers;
  }

  #unsynced(): string[] {
    const caches = {
      devices: this.#devices,
      discoveries: this.#discoveries,
      deviceslices: this.#slices,
      nodes: this.#nodes,
    };
    return Object.entries(caches)
      .filter(([, c]) => !c.synced)
      .map(([name]) => name);
  }

  #syncWaiter: (() => void) | undefined;

  /** Resolves true once every cache synced, false if the signal aborts first. */
  #whenSynced(signal: AbortSignal): Promise<boolean> {
    if (this.#unsynced().length === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onAbort = (): void => {
        this.#syncWaiter = undefined;
        resolve(false);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#syncWaiter = () => {
        if (this.#unsynced().length > 0) return;
        this.#syncWaiter = undefined;
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      };
    });
  }

  /** Looks at a Discovery's status again (e.g. its brokers' problem changed). */
  discoveryChanged(namespace: string, name: string): void {
    this.#queue.add(`discovery:${namespace}/${name}`);
  }

  #resync(): void {
    this.#log.debug(
      { devices: this.#devices.size, discoveries: this.#discoveries.size },
      'resync: every Device and Discovery queued',
    );
    for (const d of this.#discoveries.values()) this.#queue.add(`discovery:${keyOf(d)}`);
    for (const d of this.#devices.values()) this.#queue.add(`device:${keyOf(d)}`);
    for (const node of this.#deletedNodes) this.#queue.add(`node:${node}`);
    this.#holders.prune(Array.from(this.#devices.values(), (d) => d.status?.usage ?? {}));
  }

  #bump(discoveryKey: string): void {
    this.#inputGen.set(discoveryKey, (this.#inputGen.get(discoveryKey) ?? 0) + 1);
    this.#queue.add(`discovery:${discoveryKey}`);
    this.#settle(discoveryKey);
  }

  /** Starts or prolongs a Discovery's settling; its end reconciles the Discovery again. */
  #settle(discoveryKey: string): void {
    const now = Date.now();
    const current = this.#settling.get(discoveryKey);
    if (current !== undefined) clearTimeout(current.timer);
    const since = current?.since ?? now;
    const timer = setTimeout(
      () => {
        this.#settling.delete(discoveryKey);
        this.#queue.add(`discovery:${discoveryKey}`);
      },
      Math.max(0, Math.min(now + SETTLE_QUIET_MS, since + SETTLE_MAX_MS) - now),
    );
    timer.unref();
    this.#settling.set(discoveryKey, { since, timer });
  }

  /** Informer handlers that update `cache` and pass what changed on (`listed`: after a list). */
  #handlers<T extends CachedObject>(
    cache: ObjectCache<T>,
    onDelta: (delta: CacheDelta<T>, listed: boolean) => void,
  ): {
    onSync: (items: T[]) => void;
    onEvent: (type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T) => void;
    transform: (object: T) => T;
  } {
    return {
      transform: (object) => cache.slim(object),
      onSync: (items) => {
        const wasSynced = cache.synced;
        onDelta(cache.replace(items), wasSynced);
        this.#syncWaiter?.();
      },
      onEvent: (type, object) => onDelta(cache.apply(type, object), true),
    };
  }

  #onDevices({ changed, removed }: CacheDelta<Device>): void {
    for (const { object, previous } of changed) {
      if (previous !== undefined) this.#unindex(previous);
      this.#index(object);
      this.#queue.add(`device:${keyOf(object)}`);
    }
    for (const o of removed) {
      this.#unindex(o);
      this.#queue.add(`device:${keyOf(o)}`);
    }
  }

  #index(d: Device): void {
    const owner = `${d.metadata.namespace ?? ''}/${d.spec.discovery}`;
    const set = this.#devicesOf.get(owner) ?? new Set<string>();
    set.add(keyOf(d));
    this.#devicesOf.set(owner, set);
  }

  #unindex(d: Device): void {
    const owner = `${d.metadata.namespace ?? ''}/${d.spec.discovery}`;
    const set = this.#devicesOf.get(owner);
    set?.delete(keyOf(d));
    if (set?.size === 0) this.#devicesOf.delete(owner);
  }

  #onDiscoveries({ changed, removed }: CacheDelta<Discovery>): void {
    for (const { object } of changed) this.#bump(keyOf(object));
    for (const o of removed) this.#bump(keyOf(o));
  }

  #onSlices({ changed, removed }: CacheDelta<DeviceSlice>): void {
    const of = (s: DeviceSlice): string => `${s.metadata.namespace ?? ''}/${s.spec.discovery}`;
    for (const { object, previous } of changed) {
      this.#bump(of(object));
      if (previous !== undefined && of(previous) !== of(object)) this.#bump(of(previous));
    }
    for (const o of removed) {
      this.#bump(of(o));
      if (this.#deletedNodes.has(o.spec.node)) this.#queue.add(`node:${o.spec.node}`);
    }
  }

  /** `wasSynced`: the Nodes were listed before, so a Node missing now was deleted. */
  #onNodes({ changed, removed }: CacheDelta<NodeObject>, wasSynced: boolean): void {
    const touched = new Set<string>();
    const next = new Map(this.#readiness);
    for (const { object } of changed) {
      const name = object.metadata.name;
      const r = readinessOf(object);
      const old = this.#readiness.get(name);
      next.set(name, r);
      if (this.#deletedNodes.delete(name) || old?.ready !== r.ready || old.since !== r.since)
        touched.add(name);
    }
    for (const o of removed) {
      const name = o.metadata.name;
      next.delete(name);
      touched.add(name);
      // Only a Node seen deleted: a node that never had one (no kubelet) keeps its slices.
      if (wasSynced) {
        this.#deletedNodes.add(name);
        this.#holders.deleted(name);
        this.#log.info({ node: name }, 'node deleted; its slices go');
        this.#queue.add(`node:${name}`);
      }
    }
    this.#readiness = next;
    if (touched.size > 0 && wasSynced) {
      this.#nodesGen++;
      const discoveries = new Set<string>();
      for (const s of this.#slices.values())
        if (touched.has(s.spec.node))
          discoveries.add(`${s.metadata.namespace ?? ''}/${s.spec.discovery}`);
      for (const d of discoveries) this.#queue.add(`discovery:${d}`);
    }
  }

  async #reconcile(key: string, signal: AbortSignal): Promise<Result> {
    const colon = key.indexOf(':');
    const kind = key.slice(0, colon);
    const rest = key.slice(colon + 1);
    try {
      if (kind === 'device') return await this.#reconcileDevice(rest, signal);
      if (kind === 'discovery') return await this.#reconcileDiscovery(rest, signal);
      if (kind === 'node') return await this.#reconcileNode(rest, signal);
      throw new TerminalError(`unknown key ${key}`);
    } catch (err) {
      const status = statusOf(err);
      // Someone wrote in between (a device plugin's usage, another replica): read again.
      if (status === 409) return requeue;
      if (status === 400 || status === 422)
        throw new TerminalError((err as Error).message, { cause: err });
      throw err;
    }
  }

  /** The nodes' readiness for the fold, with deleted Nodes counted as gone at once. */
  #nodesForFold(): Map<string, NodeReadiness> {
    if (this.#deletedNodes.size === 0) return this.#readiness;
    const nodes = new Map(this.#readiness);
    for (const n of this.#deletedNodes) nodes.set(n, DELETED);
    return nodes;
  }

  #slicesOf(discoveryKey: string): DeviceSlice[] {
    const out: DeviceSlice[] = [];
    for (const s of this.#slices.values())
      if (`${s.metadata.namespace ?? ''}/${s.spec.discovery}` === discoveryKey) out.push(s);
    return out;
  }

  /** The fold of a Discovery's current slices: memoized while its inputs are unchanged. */
  #foldOf(discoveryKey: string, fresh = false): Memo | undefined {
    const discovery = this.#discoveries.get(discoveryKey);
    if (discovery === undefined) {
      this.#memo.delete(discoveryKey);
      return undefined;
    }
    const generation = `${this.#inputGen.get(discoveryKey) ?? 0}/${this.#nodesGen}/${discovery.metadata.resourceVersion ?? ''}`;
    const memo = this.#memo.get(discoveryKey);
    if (!fresh && memo?.generation === generation) return memo;
    const result = fold({
      discovery,
      slices: this.#slicesOf(discoveryKey),
      nodes: this.#nodesForFold(),
      nodeGraceMs: this.#graceMs,
      now: Date.now(),
    });
    const byName = new Map(result.devices.map((d) => [d.metadata.name, d]));
    const ns = discovery.metadata.namespace ?? '';
    for (const old of memo?.byName.keys() ?? [])
      if (!byName.has(old)) this.#wantedBy.delete(`${ns}/${old}`);
    for (const name of byName.keys()) this.#wantedBy.set(`${ns}/${name}`, discoveryKey);
    const next = { generation, result, byName };
    this.#memo.set(discoveryKey, next);
    return next;
  }

  async #reconcileDiscovery(key: string, signal: AbortSignal): Promise<Result> {
    const discovery = this.#discoveries.get(key);
    const memo = this.#foldOf(key, true);
    const ns = key.slice(0, key.indexOf('/'));
    // Devices the fold wants that differ from the stored ones, and stored ones it does not want.
    const stored = new Set(this.#devicesOf.get(key) ?? []);
    const settling = this.#settling.has(key);
    if (discovery !== undefined && memo !== undefined) {
      for (const [name, folded] of memo.byName) {
        const deviceKey = `${ns}/${name}`;
        stored.delete(deviceKey);
        const actual = this.#devices.get(deviceKey);
        const wanted = wantedDevice(folded, discovery);
        if (
          actual === undefined ||
          objectDiffers(actual, wanted) ||
          (!settling && statusDiffers(actual, wanted))
        )
          this.#queue.add(`device:${deviceKey}`);
      }
    }
    // Settling: what looks gone may be moving between slices; its end looks again.
    if (settling) return done;
    for (const deviceKey of stored) this.#queue.add(`device:${deviceKey}`);
    if (discovery === undefined || memo === undefined) {
      this.#opts.metrics.devices.remove({ namespace: ns, discovery: key.slice(ns.length + 1) });
      return done;
    }
    this.#opts.metrics.devices.set(
      { namespace: ns, discovery: discovery.metadata.name },
      memo.result.status.devices,
    );

    const status = discoveryStatus(
      discovery,
      memo.result,
      this.#slicesOf(key),
      new Date(),
      this.#opts.brokerProblem?.(ns, discovery.metadata.name),
      this.#opts.deviceClassProblem?.(ns, discovery.metadata.name),
    );
    if (statusChanged(discovery, status)) {
      const written = await this.#api.patchDiscoveryStatus(
        ns,
        discovery.metadata.name,
        discovery.metadata.resourceVersion ?? '',
        status,
        signal,
      );
      this.#discoveries.wrote(key, written);
      this.#log.info(
        {
          discovery: key,
          devices: status.devices,
          nodes: memo.result.status.reportingNodes.length,
          conflicts: memo.result.conflicts.length,
        },
        'discovery status written',
      );
    }
    return this.#untilGraceEnds(memo.result);
  }

  /** Requeues when the first NotReady node of the fold outlasts the grace period. */
  #untilGraceEnds(result: FoldResult): Result {
    const now = Date.now();
    let next: number | undefined;
    const dropped = new Set(result.status.droppedNodes);
    for (const node of result.status.reportingNodes) {
      const r = this.#readiness.get(node);
      if (r === undefined || r.ready || dropped.has(node)) continue;
      const at = r.since + this.#graceMs - now;
      if (next === undefined || at < next) next = at;
    }
    // A little after the end, so that the fold then sees it ended.
    return next === undefined ? done : requeueAfter(Math.max(0, next) + 100);
  }

  async #reconcileDevice(key: string, signal: AbortSignal): Promise<Result> {
    const actual = this.#devices.get(key);
    const ns = key.slice(0, key.indexOf('/'));
    const name = key.slice(ns.length + 1);
    const owner =
      this.#wantedBy.get(key) ??
      (actual !== undefined ? `${ns}/${actual.spec.discovery}` : undefined);
    if (owner === undefined) return done;
    const discovery = this.#discoveries.get(owner);
    const folded = this.#foldOf(owner)?.byName.get(name);
    // Node lists and deletions wait for the end of the settling, which queues this key again if need be.
    const settling = this.#settling.has(owner);
    if (discovery === undefined || folded === undefined) {
      if (actual === undefined || actual.metadata.deletionTimestamp !== undefined) return done;
      if (settling) return done;
      try {
        await this.#api.deleteDevice(ns, name, actual.metadata.resourceVersion ?? '', signal);
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
      this.#devices.wrote(key, null, actual.metadata.resourceVersion);
      this.#log.info(
        { device: key, discovery: owner },
        'device deleted: no slice of a counted node lists it',
      );
      this.#conflicts.delete(key);
      this.#event(actual, 'Deleted', 'no node that counts reports the device any more');
      return done;
    }
    const wanted = wantedDevice(folded, discovery);
    let current = actual;
    const creating = current === undefined;
    if (current === undefined) {
      current = await this.#api.createDevice(wanted, signal);
      this.#devices.wrote(key, current);
      this.#log.info({ device: key, discovery: owner, id: wanted.spec.id }, 'device created');
      this.#event(current, 'Created', `discovered by ${nodeNames(wanted)}`);
    } else if (objectDiffers(current, wanted)) {
      current = await this.#api.replaceDevice(replacement(current, wanted), signal);
      this.#devices.wrote(key, current);
      this.#log.info({ device: key, discovery: owner }, 'device updated');
    }
    if (!settling && statusDiffers(current, wanted)) {
      const before = new Set((current.status?.nodes ?? []).map((n) => n.name));
      const after = new Set((wanted.status?.nodes ?? []).map((n) => n.name));
      const status = {
        nodes: wanted.status?.nodes ?? [],
        ...(wanted.status?.topics !== undefined ? { topics: wanted.status.topics } : {}),
      };
      current = await this.#api.patchDeviceStatus(
        ns,
        name,
        current.metadata.resourceVersion ?? '',
        status,
        signal,
      );
      this.#devices.wrote(key, current);
      const added = [...after].filter((n) => !before.has(n));
      const removed = [...before].filter((n) => !after.has(n));
      // A new Device's first nodes are in its Created event.
      if (added.length > 0 && !creating)
        this.#event(current, 'NodeAdded', `seen by ${added.join(', ')}`);
      if (removed.length > 0)
        this.#event(current, 'NodeRemoved', `no longer seen by ${removed.join(', ')}`);
      this.#log.debug(
        { device: key, nodes: status.nodes.map((n) => n.name) },
        'device nodes written',
      );
    }
    // A conflict among the first nodes to report may be gone once all have.
    if (!settling)
      this.#reportConflict(
        key,
        current,
        this.#foldOf(owner)?.result.conflicts.find((c) => c.device === name),
      );
    // Slots claimed by nodes that are gone: their agents will never release them.
    const now = Date.now();
    const stale = staleClaims(
      current.status?.usage ?? {},
      (node) => this.#holders.readiness(node, this.#readiness.get(node), now),
      this.#graceMs,
      now,
    );
    if (stale.slots.length > 0) {
      const usage = Object.fromEntries(stale.slots.map((slot) => [slot, null]));
      const rv = current.metadata.resourceVersion ?? '';
      this.#devices.wrote(key, await this.#api.patchDeviceStatus(ns, name, rv, { usage }, signal));
      this.#log.info(
        { device: key, slots: stale.slots, nodes: stale.nodes },
        'claims of gone nodes released',
      );
    }
    return stale.recheckInMs === undefined ? done : requeueAfter(stale.recheckInMs + 100);
  }

  #reportConflict(key: string, device: Device, conflict: DeviceConflict | undefined): void {
    if (conflict === undefined) {
      this.#conflicts.delete(key);
      return;
    }
    // Keys only, never values: properties may be anything a node reports.
    const message = `${conflict.overruled.join(', ')} report ${conflict.keys.join(', ')} differently; the Device takes the view of ${conflict.chosen.join(', ')}`;
    if (this.#conflicts.get(key) === message) return;
    this.#conflicts.set(key, message);
    this.#event(device, 'Conflict', message, 'Warning');
  }

  #event(device: Device, reason: string, message: string, type: EventType = 'Normal'): void {
    this.#opts.events?.record(
      {
        apiVersion: device.apiVersion,
        kind: 'Device',
        name: device.metadata.name,
        namespace: device.metadata.namespace ?? 'default',
        ...(device.metadata.uid !== undefined ? { uid: device.metadata.uid } : {}),
      },
      type,
      reason,
      message,
    );
  }

  async #reconcileNode(node: string, signal: AbortSignal): Promise<Result> {
    if (!this.#deletedNodes.has(node)) return done;
    const slices = [...this.#slices.values()].filter(
      (s) => s.spec.node === node && s.metadata.deletionTimestamp === undefined,
    );
    if (slices.length === 0) {
      this.#deletedNodes.delete(node);
      return done;
    }
    for (const s of slices) {
      try {
        await this.#api.deleteSlice(
          s.metadata.namespace ?? '',
          s.metadata.name,
          s.metadata.uid ?? '',
          signal,
        );
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
      this.#slices.wrote(keyOf(s), null, s.metadata.resourceVersion);
    }
    this.#log.info({ node, slices: slices.length }, 'slices of a deleted node deleted');
    return done;
  }
}

/** The node names of a Device's status, for messages. */
function nodeNames(device: Device): string {
  const names = (device.status?.nodes ?? []).map((n) => n.name);
  return names.length === 0 ? 'no node' : names.join(', ');
}
