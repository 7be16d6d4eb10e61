// The embedded registry: the Registry for running without a cluster.
// Discoveries (and the Secrets and ConfigMaps they refer to) come from a YAML
// config file; DeviceSlices, Devices and Discovery statuses are JSON files
// under the state directory, shaped like the custom resources, surviving
// restarts and shared safely by several processes (see object-lock.ts). After
// each slice write the registry applies the controller's fold in-process, so
// that Devices come out as the controller would write them.
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { LABEL_NODE, type Device, type DeviceSlice, type Discovery } from '../../api/types.ts';
import { wantedDevice } from '../../controller/device-diff.ts';
import { discoveryStatus } from '../../controller/discovery-status.ts';
import { fold } from '../../controller/fold.ts';
import { RegistryUnsupportedError } from '../errors.ts';
import type { Query, Registry, TokenReviewStatus, ValueRef } from '../registry.ts';
import { DEVICE_FIELDS, DISCOVERY_FIELDS, deviceFields, discoveryFields } from '../selectors.ts';
import { ConfigSource, type ConfigSnapshot } from './config-file.ts';
import { DeviceFiles } from './device-files.ts';
import { SliceFiles } from './slice-files.ts';
import { DiscoveryRecords } from './discovery-records.ts';
import { runDiscoveryWatch } from './discovery-watch.ts';
import { classifyLocalError } from './classify.ts';
import { RegistryClosedError } from './errors.ts';
import { ensureDir } from './atomic-file.ts';
import { checkStateDir, diagnoseStateDir } from './state-dir.ts';
import type { LockOptions } from './object-lock.ts';
import { selectObjects } from './query.ts';
import { KeyedRuns } from './keyed-runs.ts';
import { SPEC_VALID } from '../spec-valid.ts';
import type { ConditionUpdate } from './discovery-records.ts';

export interface EmbeddedRegistryOptions {
  /** Devices go to <stateDir>/registry/devices, slices to …/deviceslices, Discovery records to …/discoveries. */
  stateDir: string;
  /** The multi-document YAML of Discoveries, Secrets and ConfigMaps; none means no Discoveries. */
  configFile?: string | undefined;
  /** The labels of this host for spec.nodeSelector (a standalone node has no Node object). */
  nodeLabels?: Record<string, string> | undefined;
  log: Logger;
  /**
   * The state directory must already be one an agent has used (the CLI):
   * listing a missing or foreign directory fails with a StateDirError instead
   * of finding nothing.
   */
  requireStateDir?: boolean | undefined;
  /** How often watchDiscoveries re-reads the config file whatever fs.watch says (default 2000). */
  pollIntervalMs?: number | undefined;
  lock?: LockOptions | undefined;
}

const DEFAULT_POLL_INTERVAL_MS = 2000;

function controllerRef(device: Device): { uid: string } | undefined {
  const refs = device.metadata.ownerReferences ?? [];
  return (
    refs.find((r) => r.kind === 'Discovery' && r.controller === true) ??
    refs.find((r) => r.kind === 'Discovery')
  );
}

/** The SpecValid condition the store keeps on a configured Discovery: False with the reason, or none. */
function specCondition(snapshot: ConfigSnapshot, d: Discovery): ConditionUpdate {
  const problem = snapshot.objects.invalidSpecs.get(
    `${d.metadata.namespace ?? 'default'}/${d.metadata.name}`,
  );
  return {
    type: SPEC_VALID,
    set:
      problem === undefined
        ? undefined
        : { status: 'False', reason: 'InvalidSpec', message: problem },
  };
}

/** Device files written at once by a fold: enough to hide each write's fsync, few enough for open files. */
const WRITE_BATCH = 32;

/** Runs `fn` on every item, WRITE_BATCH at a time. */
async function inBatches<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += WRITE_BATCH)
    await Promise.all(items.slice(i, i + WRITE_BATCH).map(fn));
}

export class EmbeddedRegistry implements Registry {
  readonly kind = 'embedded' as const;
  readonly #options: EmbeddedRegistryOptions;
  readonly #log: Logger;
  readonly #config: ConfigSource;
  readonly #devices: DeviceFiles;
  readonly #slices: SliceFiles;
  readonly #records: DiscoveryRecords;
  readonly #root: string;
  readonly #folds = new KeyedRuns();
  /** Folds asked for and not yet done: this registry's reads of Discoveries and Devices wait for them. */
  readonly #pendingFolds = new Set<Promise<void>>();
  /** Slice watches of this process, told after each slice write. */
  readonly #sliceListeners = new Set<() => void>();
  readonly #closing = new AbortController();
  readonly #watches = new Set<Promise<void>>();

  /** The registry; nothing is read or created until it is used (so a read-only CLI can open it). */
  static open(options: EmbeddedRegistryOptions): Promise<EmbeddedRegistry> {
    return Promise.resolve(new EmbeddedRegistry(options));
  }

  constructor(options: EmbeddedRegistryOptions) {
    this.#options = options;
    this.#log = options.log;
    const root = path.join(options.stateDir, 'registry');
    this.#root = root;
    this.#config = new ConfigSource(options.configFile, options.log);
    this.#devices = new DeviceFiles(path.join(root, 'devices'), options.log, options.lock);
    this.#slices = new SliceFiles(path.join(root, 'deviceslices'), options.log, options.lock);
    this.#records = new DiscoveryRecords(path.join(root, 'discoveries'), options.log, options.lock);
  }

  /** Runs fn unless closed, throwing the registry's shared error classes. */
  async #guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closing.signal.aborted) throw new RegistryClosedError();
    try {
      return await this.#diagnosed(fn);
    } catch (err) {
      throw classifyLocalError(err, what);
    }
  }

  /** Runs fn; a failure caused by the state directory becomes a StateDirError that says what to do. */
  async #diagnosed<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw (await diagnoseStateDir(this.#options.stateDir, err)) ?? err;
    }
  }

  /** For readers that require it, fails unless the state directory is one an agent has used. */
  async #checkReadable(): Promise<void> {
    if (this.#options.requireStateDir === true) {
      await checkStateDir(this.#options.stateDir, this.#root);
    }
  }

  async #observe(snapshot: ConfigSnapshot): Promise<Discovery[]> {
    const observed = await Promise.all(
      snapshot.objects.discoveries.map((d) =>
        this.#records.observe(d, undefined, specCondition(snapshot, d)),
      ),
    );
    return selectObjects(observed, {}, DISCOVERY_FIELDS, discoveryFields);
  }

  /**
   * Deletes the slices and Devices whose Discovery is gone (Kubernetes would
   * collect them), and the records of gone Discoveries; folds the rest again.
   */
  async #collect(discoveries: Discovery[], version: number): Promise<boolean> {
    const owners = new Set(
      discoveries.map((d) => `${d.metadata.namespace ?? 'default'}/${d.metadata.uid ?? ''}`),
    );
    const names = new Set(
      discoveries.map((d) => `${d.metadata.namespace ?? 'default'}/${d.metadata.name}`),
    );
    const orphan = (device: Device): boolean => {
      const ref = controllerRef(device);
      return (
        ref !== undefined && !owners.has(`${device.metadata.namespace ?? 'default'}/${ref.uid}`)
      );
    };
    const orphans = (await this.#devices.list()).filter(orphan);
    const orphanSlices = (await this.#slices.list()).filter(
      (s) => !names.has(`${s.metadata.namespace ?? 'default'}/${s.spec.discovery}`),
    );
    // Never delete on the word of a read the file has since overtaken.
    if ((await this.#config.load()).version !== version) return false;
    for (const slice of orphanSlices) {
      if (await this.#slices.delete(slice.metadata.namespace ?? 'default', slice.metadata.name))
        this.#sliceChanged();
    }
    for (const device of orphans) {
      if (await this.#devices.delete(device, orphan)) {
        this.#log.info(
          { namespace: device.metadata.namespace, device: device.metadata.name },
          'deleted a device whose discovery is gone',
        );
      }
    }
    await this.#records.removeAllExcept(names);
    // Also makes the Devices true again after a crash between a slice write and its fold.
    await Promise.all(
      discoveries.map((d) => this.#refold(d.metadata.namespace ?? 'default', d.metadata.name)),
    );
    return true;
  }

  async watchDiscoveries(
    onChange: (discoveries: Discovery[]) => void,
    signal: AbortSignal,
  ): Promise<void> {
    if (this.#closing.signal.aborted) throw new RegistryClosedError();
    if (signal.aborted) return;
    const stop = AbortSignal.any([signal, this.#closing.signal]);
    // Marks the directory as a state directory at once (the CLI looks for it),
    // and reports an unusable one before anything else is tried.
    await this.#guard('prepare the state directory', async () => {
      await ensureDir(this.#root);
      await access(this.#root, constants.W_OK);
    });
    const watch = runDiscoveryWatch(
      {
        file: this.#options.configFile,
        pollIntervalMs: this.#options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
        log: this.#log,
        config: () => this.#config.load(),
        observe: (snapshot) => this.#diagnosed(() => this.#observe(snapshot)),
        collect: (discoveries, version) =>
          this.#diagnosed(() => this.#collect(discoveries, version)),
      },
      onChange,
      stop,
    );
    this.#watches.add(watch);
    try {
      await watch;
    } finally {
      this.#watches.delete(watch);
    }
  }

  listDiscoveries(query: Query): Promise<Discovery[]> {
    return this.#guard('list discoveries', async () => {
      // Without the config file (the CLI beside a running agent), the records
      // the agent keeps in the state directory say what it runs.
      if (this.#options.configFile === undefined) await this.#checkReadable();
      await this.#foldsDone();
      const discoveries =
        this.#options.configFile === undefined
          ? await this.#records.list()
          : await this.#observe(await this.#config.load());
      return selectObjects(discoveries, query, DISCOVERY_FIELDS, discoveryFields);
    });
  }

  /**
   * Folds the Discovery's slices into its Devices and status, as the
   * controller would (src/controller/fold.ts). One fold per Discovery at a
   * time, and requests made while one runs share the next, so a burst of
   * slice writes costs a few folds; a failure is logged, and the next slice
   * write or watch pass folds again.
   */
  #refold(namespace: string, name: string): Promise<void> {
    const run = this.#folds.run(`${namespace}/${name}`, async () => {
      try {
        await this.#fold(namespace, name);
      } catch (err) {
        this.#log.warn(
          { namespace, discovery: name, err: (err as Error).message },
          'could not fold the slices of a discovery into devices',
        );
      }
    });
    this.#pendingFolds.add(run);
    void run.then(() => this.#pendingFolds.delete(run));
    return run;
  }

  async #fold(namespace: string, name: string): Promise<void> {
    const snapshot = await this.#config.load();
    const configured = snapshot.objects.discoveries.find(
      (d) => (d.metadata.namespace ?? 'default') === namespace && d.metadata.name === name,
    );
    if (configured === undefined) return;
    const discovery = await this.#records.observe(
      configured,
      undefined,
      specCondition(snapshot, configured),
    );
    const slices = (await this.#slices.list(namespace)).filter((s) => s.spec.discovery === name);
    // A standalone host has no Node objects: every node with slices counts.
    const result = fold({ discovery, slices, nodes: new Map(), nodeGraceMs: 0, now: Date.now() });
    const wanted = result.devices.map((folded) => wantedDevice(folded, discovery));
    const names = new Set(wanted.map((d) => d.metadata.name));
    await inBatches(wanted, async (device) => {
      if ((await this.#devices.put(device)) === 'created')
        this.#log.info({ namespace, device: device.metadata.name }, 'device registered');
    });
    const stale = (await this.#devices.list(namespace)).filter(
      (d) => d.spec.discovery === name && !names.has(d.metadata.name),
    );
    await inBatches(stale, async (device) => {
      if (await this.#devices.delete(device, (d) => d.spec.discovery === name))
        this.#log.info({ namespace, device: device.metadata.name }, 'device deleted');
    });
    const status = discoveryStatus(discovery, result, slices, new Date());
    await this.#records.observe(
      configured,
      { conditions: status.conditions ?? [] },
      specCondition(snapshot, configured),
    );
    await this.#records.setDeviceCount(namespace, name, result.status.devices);
  }

  /** Resolves once every fold asked for so far is done. */
  async #foldsDone(): Promise<void> {
    await Promise.all(this.#pendingFolds);
  }

  readValue(ref: ValueRef): Promise<string | undefined> {
    return this.#guard(`read ${ref.kind} ${ref.namespace}/${ref.name}`, async () => {
      const { objects } = await this.#config.load();
      const store = ref.kind === 'Secret' ? objects.secrets : objects.configMaps;
      return store.get(`${ref.namespace}/${ref.name}`)?.get(ref.key);
    });
  }

  /** The nodeLabels option whatever the node: a standalone host has no Node object. */
  nodeLabels(node: string): Promise<Record<string, string>> {
    return this.#guard(`read the labels of node ${node}`, () =>
      Promise.resolve({ ...this.#options.nodeLabels }),
    );
  }

  /** Reports the nodeLabels option once (they are fixed for the run); a standalone host has no Node object. */
  async watchNodeLabels(
    node: string,
    onLabels: (labels: Record<string, string>, uid: string | undefined) => void,
    signal: AbortSignal,
  ): Promise<void> {
    onLabels(await this.nodeLabels(node), undefined);
    const stop = AbortSignal.any([signal, this.#closing.signal]);
    if (stop.aborted) return;
    await new Promise((resolve) => stop.addEventListener('abort', resolve, { once: true }));
  }

  /**
   * Reports the node's slices after the first read, after each slice write of
   * this process, and every poll interval (another process's writes).
   */
  async watchNodeSlices(
    node: string,
    onChange: (slices: DeviceSlice[]) => void,
    signal: AbortSignal,
  ): Promise<void> {
    if (this.#closing.signal.aborted) throw new RegistryClosedError();
    const stop = AbortSignal.any([signal, this.#closing.signal]);
    if (stop.aborted) return;
    const read = async (): Promise<void> => {
      const all = await this.#guard('list deviceslices', () => this.#slices.list());
      if (!stop.aborted) onChange(all.filter((s) => s.metadata.labels?.[LABEL_NODE] === node));
    };
    await read();
    // One read at a time; a change during a read gets one more read after it.
    let reading: Promise<void> | undefined;
    let again = false;
    const kick = (): void => {
      if (reading !== undefined) {
        again = true;
        return;
      }
      reading = read()
        .catch((err: unknown) =>
          this.#log.warn({ err: (err as Error).message }, 'could not read the deviceslices'),
        )
        .finally(() => {
          reading = undefined;
          if (again && !stop.aborted) {
            again = false;
            kick();
          }
        });
    };
    this.#sliceListeners.add(kick);
    const poll = setInterval(kick, this.#options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS);
    poll.unref();
    try {
      await new Promise((resolve) => stop.addEventListener('abort', resolve, { once: true }));
    } finally {
      clearInterval(poll);
      this.#sliceListeners.delete(kick);
      await reading;
    }
  }

  putSlice(slice: DeviceSlice): Promise<DeviceSlice> {
    const namespace = slice.metadata.namespace ?? 'default';
    return this.#guard(`write deviceslice ${namespace}/${slice.metadata.name}`, async () => {
      const stored = await this.#slices.put(slice);
      this.#sliceChanged();
      await this.#refold(namespace, slice.spec.discovery);
      return stored;
    });
  }

  deleteSlice(namespace: string, name: string): Promise<void> {
    return this.#guard(`delete deviceslice ${namespace}/${name}`, async () => {
      const gone = (await this.#slices.list(namespace)).find((s) => s.metadata.name === name);
      if (!(await this.#slices.delete(namespace, name))) return;
      this.#sliceChanged();
      if (gone !== undefined) await this.#refold(namespace, gone.spec.discovery);
    });
  }

  #sliceChanged(): void {
    for (const kick of this.#sliceListeners) kick();
  }

  listDevices(query: Query): Promise<Device[]> {
    return this.#guard('list devices', async () => {
      await this.#checkReadable();
      await this.#foldsDone();
      const devices = await this.#devices.list(query.namespace);
      return selectObjects(devices, query, DEVICE_FIELDS, deviceFields);
    });
  }

  /** No API server to ask: ServiceAccount tokens need the Kubernetes registry. */
  reviewToken(): Promise<TokenReviewStatus> {
    return Promise.reject(
      new RegistryUnsupportedError('ServiceAccount tokens cannot be checked without a cluster'),
    );
  }

  /**
   * Stops the watches and waits for them and for the folds under way; later
   * calls fail with RegistryClosedError. Idempotent.
   */
  async close(): Promise<void> {
    this.#closing.abort(new RegistryClosedError());
    await Promise.all(this.#watches);
    await this.#foldsDone();
  }
}
