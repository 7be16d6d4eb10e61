// The embedded registry: the Registry for running without a cluster.
// Discoveries (and the Secrets and ConfigMaps they refer to) come from a YAML
// config file; Devices and Discovery statuses are JSON files under the state
// directory, shaped like the custom resources, surviving restarts and shared
// safely by several processes (see object-lock.ts).
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Device, Discovery, DiscoveryStatus } from '../../api/types.ts';
import { RegistryUnsupportedError } from '../errors.ts';
import type { DeviceView, Query, Registry, TokenReviewStatus, ValueRef } from '../registry.ts';
import { DEVICE_FIELDS, DISCOVERY_FIELDS, deviceFields, discoveryFields } from '../selectors.ts';
import { ConfigSource, type ConfigSnapshot } from './config-file.ts';
import { DeviceFiles } from './device-files.ts';
import { DiscoveryRecords } from './discovery-records.ts';
import { runDiscoveryWatch } from './discovery-watch.ts';
import { classifyLocalError } from './classify.ts';
import { NotFoundError, RegistryClosedError } from './errors.ts';
import { ensureDir } from './atomic-file.ts';
import { checkStateDir, diagnoseStateDir } from './state-dir.ts';
import type { LockOptions } from './object-lock.ts';
import { selectObjects } from './query.ts';
import { KeyedRuns } from './keyed-runs.ts';
import { SPEC_VALID } from '../spec-valid.ts';
import type { ConditionUpdate } from './discovery-records.ts';

export interface EmbeddedRegistryOptions {
  /** Devices go to <stateDir>/registry/devices, Discovery records to <stateDir>/registry/discoveries. */
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

export class EmbeddedRegistry implements Registry {
  readonly kind = 'embedded' as const;
  readonly #options: EmbeddedRegistryOptions;
  readonly #log: Logger;
  readonly #config: ConfigSource;
  readonly #devices: DeviceFiles;
  readonly #records: DiscoveryRecords;
  readonly #root: string;
  readonly #counts = new KeyedRuns();
  /** Counts asked for and not yet written: this registry's reads of Discoveries wait for them. */
  readonly #pendingCounts = new Set<Promise<void>>();
  readonly #closing = new AbortController();
  readonly #watches = new Set<Promise<void>>();
  /**
   * "namespace/uid" of the Discoveries a running watch last saw: a Device
   * applied for an owner that is gone is not created (Kubernetes would
   * collect it at once).
   */
  #owners: Set<string> | undefined;

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

  /** Deletes Devices whose Discovery is gone, and the records of gone Discoveries. */
  async #collect(discoveries: Discovery[], version: number): Promise<boolean> {
    const owners = new Set(
      discoveries.map((d) => `${d.metadata.namespace ?? 'default'}/${d.metadata.uid ?? ''}`),
    );
    this.#owners = owners;
    const orphan = (device: Device): boolean => {
      const ref = controllerRef(device);
      return (
        ref !== undefined && !owners.has(`${device.metadata.namespace ?? 'default'}/${ref.uid}`)
      );
    };
    const orphans = (await this.#devices.list()).filter(orphan);
    // Never delete on the word of a read the file has since overtaken.
    if ((await this.#config.load()).version !== version) return false;
    for (const device of orphans) {
      if (await this.#devices.delete(device, orphan)) {
        this.#log.info(
          { namespace: device.metadata.namespace, device: device.metadata.name },
          'deleted a device whose discovery is gone',
        );
      }
    }
    await this.#records.removeAllExcept(
      new Set(discoveries.map((d) => `${d.metadata.namespace ?? 'default'}/${d.metadata.name}`)),
    );
    // Also makes the counts true again after a crash between a Device write and its count.
    await Promise.all(
      discoveries.map((d) => this.#recount(d.metadata.namespace ?? 'default', d.metadata.name)),
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
      if (this.#watches.size === 0) this.#owners = undefined;
    }
  }

  listDiscoveries(query: Query): Promise<Discovery[]> {
    return this.#guard('list discoveries', async () => {
      // Without the config file (the CLI beside a running agent), the records
      // the agent keeps in the state directory say what it runs.
      if (this.#options.configFile === undefined) await this.#checkReadable();
      await this.#countsWritten();
      const discoveries =
        this.#options.configFile === undefined
          ? await this.#records.list()
          : await this.#observe(await this.#config.load());
      return selectObjects(discoveries, query, DISCOVERY_FIELDS, discoveryFields);
    });
  }

  /**
   * Replaces the Discovery's status, except what the store keeps itself:
   * status.devices (its count of Devices) and the SpecValid condition.
   */
  updateDiscoveryStatus(namespace: string, name: string, status: DiscoveryStatus): Promise<void> {
    return this.#guard(`update the status of discovery ${namespace}/${name}`, async () => {
      const snapshot = await this.#config.load();
      const { objects } = snapshot;
      const configured = objects.discoveries.find(
        (d) => (d.metadata.namespace ?? 'default') === namespace && d.metadata.name === name,
      );
      if (configured === undefined) {
        throw new NotFoundError(`Discovery ${namespace}/${name} is not in the config file`);
      }
      await this.#records.observe(configured, status, specCondition(snapshot, configured));
    });
  }

  /**
   * Makes status.devices of the Discovery say how many Devices it has (after a
   * Device was created or deleted). Runs one count per Discovery at a time, and
   * requests made while one runs share the next, so a burst of writes costs a
   * few record writes, not one each; a failure is logged, and the next count
   * or watch pass corrects it.
   */
  #recount(namespace: string, discovery: string): Promise<void> {
    const run = this.#counts.run(`${namespace}/${discovery}`, async () => {
      try {
        const n = await this.#devices.count(namespace, discovery);
        await this.#records.setDeviceCount(namespace, discovery, n);
      } catch (err) {
        this.#log.warn(
          { namespace, discovery, err: (err as Error).message },
          'could not update the device count of a discovery',
        );
      }
    });
    this.#pendingCounts.add(run);
    void run.then(() => this.#pendingCounts.delete(run));
    return run;
  }

  /** Resolves once every count asked for so far is written. */
  async #countsWritten(): Promise<void> {
    await Promise.all(this.#pendingCounts);
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

  /** Reports the nodeLabels option once: they are fixed for the run. */
  async watchNodeLabels(
    node: string,
    onLabels: (labels: Record<string, string>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    onLabels(await this.nodeLabels(node));
    const stop = AbortSignal.any([signal, this.#closing.signal]);
    if (stop.aborted) return;
    await new Promise((resolve) => stop.addEventListener('abort', resolve, { once: true }));
  }

  applyDevice(view: DeviceView): Promise<void> {
    return this.#guard(`apply device ${view.namespace}/${view.name}`, async () => {
      const owners = this.#owners;
      if (owners !== undefined && !owners.has(`${view.namespace}/${view.discovery.uid}`)) {
        this.#log.debug(
          { namespace: view.namespace, device: view.name, discovery: view.discovery.name },
          'not applying a device whose discovery is gone',
        );
        return;
      }
      // Not awaited: a Device write does not wait for its Discovery's count.
      if ((await this.#devices.apply(view)) === 'created') {
        void this.#recount(view.namespace, view.discovery.name);
      }
    });
  }

  removeDeviceNode(namespace: string, name: string, node: string): Promise<void> {
    return this.#guard(`remove node ${node} from device ${namespace}/${name}`, async () => {
      const deletedOf = await this.#devices.removeNode(namespace, name, node);
      if (deletedOf !== undefined) void this.#recount(namespace, deletedOf);
    });
  }

  listDevices(query: Query): Promise<Device[]> {
    return this.#guard('list devices', async () => {
      await this.#checkReadable();
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
   * Stops the watches and waits for them and for the counts still to write;
   * later calls fail with RegistryClosedError. Idempotent.
   */
  async close(): Promise<void> {
    this.#closing.abort(new RegistryClosedError());
    await Promise.all(this.#watches);
    await this.#countsWritten();
  }
}
