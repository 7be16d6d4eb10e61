// Devices as files: one JSON file per Device, the same object a Kubernetes
// API server would hold for the custom resource, at
// <root>/<namespace>/<name>.json. Each read-modify-write holds the object's
// lock, so two agents sharing the directory never lose each other's entry.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { API_VERSION, type Device, type DeviceNodeStatus } from '../../api/types.ts';
import { discoveryPart } from '../../api/names.ts';
import type { DeviceView } from '../registry.ts';
import { listDir, readObjectFile, removeFile, writeFileAtomic } from './atomic-file.ts';
import { InvalidObjectError } from './errors.ts';
import { checkObjectKey, isNamespace, plain, timestamp } from './meta.ts';
import { lockFileFor, withObjectLock, type LockOptions } from './object-lock.ts';

const READ_CONCURRENCY = 64;

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function isDevice(value: unknown): value is Device {
  if (typeof value !== 'object' || value === null) return false;
  const d = value as Partial<Device>;
  return (
    d.apiVersion === API_VERSION &&
    d.kind === 'Device' &&
    typeof d.metadata?.name === 'string' &&
    typeof d.spec === 'object'
  );
}

/** Without resourceVersion, which changes on every write and so is not "what changed". */
function content(device: Device): unknown {
  return { ...device, metadata: { ...device.metadata, resourceVersion: undefined } };
}

export class DeviceFiles {
  readonly #root: string;
  readonly #log: Logger;
  readonly #lock: LockOptions;

  constructor(root: string, log: Logger, lock: LockOptions = {}) {
    this.#root = root;
    this.#log = log;
    this.#lock = lock;
  }

  #file(namespace: string, name: string): string {
    return path.join(this.#root, namespace, `${name}.json`);
  }

  #read(file: string): Promise<Device | undefined> {
    return readObjectFile(file, isDevice, 'Device', this.#log);
  }

  /** Creates or updates the Device and sets view.node's entry; says which (unchanged: no write). */
  async apply(view: DeviceView): Promise<'created' | 'updated' | 'unchanged'> {
    checkObjectKey('Device', view.namespace, view.name);
    if (typeof view.node.name !== 'string' || view.node.name === '') {
      throw new InvalidObjectError('a Device node entry needs a node name');
    }
    const file = this.#file(view.namespace, view.name);
    return withObjectLock(
      lockFileFor(file),
      async () => {
        const existing = await this.#read(file);
        const desired = plain(build(existing, view));
        if (
          existing !== undefined &&
          isDeepStrictEqual(content(plain(existing)), content(desired))
        ) {
          return 'unchanged';
        }
        desired.metadata.resourceVersion = String(
          Number(existing?.metadata.resourceVersion ?? '0') + 1,
        );
        await writeFileAtomic(file, JSON.stringify(desired, null, 2) + '\n');
        return existing === undefined ? 'created' : 'updated';
      },
      this.#lock,
    );
  }

  /**
   * Removes node's entry; deletes the Device when no entry is left. Returns the
   * name of the Discovery of a Device it deleted.
   */
  async removeNode(namespace: string, name: string, node: string): Promise<string | undefined> {
    checkObjectKey('Device', namespace, name);
    const file = this.#file(namespace, name);
    return withObjectLock(
      lockFileFor(file),
      async () => {
        const existing = await this.#read(file);
        if (existing === undefined) return undefined;
        const nodes = existing.status?.nodes ?? [];
        const left = nodes.filter((n) => n.name !== node);
        if (left.length === nodes.length && left.length > 0) return undefined;
        if (left.length === 0) {
          return (await removeFile(file)) ? existing.spec.discovery : undefined;
        }
        const updated: Device = {
          ...existing,
          metadata: {
            ...existing.metadata,
            resourceVersion: String(Number(existing.metadata.resourceVersion ?? '0') + 1),
          },
          status: { ...existing.status, nodes: left },
        };
        await writeFileAtomic(file, JSON.stringify(updated, null, 2) + '\n');
        return undefined;
      },
      this.#lock,
    );
  }

  /**
   * How many Devices of the Discovery `discovery` there are in `namespace`.
   * Only files named as its Devices are (the Discovery's name, a dash, ...)
   * are read, so a count stays cheap beside other Discoveries' Devices.
   */
  async count(namespace: string, discovery: string): Promise<number> {
    const prefix = `${discoveryPart(discovery)}-`;
    const dir = path.join(this.#root, namespace);
    const files = (await listDir(dir)).filter(
      (f) => f.startsWith(prefix) && f.endsWith('.json') && !f.startsWith('.'),
    );
    let n = 0;
    for (let i = 0; i < files.length; i += READ_CONCURRENCY) {
      const slice = files.slice(i, i + READ_CONCURRENCY);
      const read = await Promise.all(slice.map((f) => this.#read(path.join(dir, f))));
      n += read.filter((d) => d?.spec.discovery === discovery).length;
    }
    return n;
  }

  /** Deletes the Device if `stillDoomed` says so once its lock is held (the check is made again). */
  async delete(device: Device, stillDoomed: (current: Device) => boolean): Promise<boolean> {
    const namespace = device.metadata.namespace ?? 'default';
    const file = this.#file(namespace, device.metadata.name);
    return withObjectLock(
      lockFileFor(file),
      async () => {
        const current = await this.#read(file);
        if (current === undefined || !stillDoomed(current)) return false;
        return removeFile(file);
      },
      this.#lock,
    );
  }

  /** Every Device (in one namespace if given), in no particular order. */
  async list(namespace?: string): Promise<Device[]> {
    const namespaces =
      namespace === undefined ? (await listDir(this.#root)).filter(isNamespace) : [namespace];
    const devices: Device[] = [];
    for (const ns of namespaces) {
      if (!isNamespace(ns)) continue;
      const dir = path.join(this.#root, ns);
      const files = (await listDir(dir)).filter((f) => f.endsWith('.json') && !f.startsWith('.'));
      const read: (Device | undefined)[] = [];
      // In slices, so that thousands of Devices do not open thousands of files at once.
      for (let i = 0; i < files.length; i += READ_CONCURRENCY) {
        const slice = files.slice(i, i + READ_CONCURRENCY);
        read.push(...(await Promise.all(slice.map((f) => this.#read(path.join(dir, f))))));
      }
      for (const [i, d] of read.entries()) {
        if (d === undefined) continue;
        if (`${d.metadata.name}.json` !== files[i] || (d.metadata.namespace ?? 'default') !== ns) {
          this.#log.warn(
            { file: path.join(dir, files[i] ?? '') },
            'ignoring a misplaced device file',
          );
          continue;
        }
        devices.push(d);
      }
    }
    return devices;
  }
}

/** The Device after applying one node's view to what is stored (other nodes' entries kept). */
function build(existing: Device | undefined, view: DeviceView): Device {
  const others = (existing?.status?.nodes ?? []).filter((n) => n.name !== view.node.name);
  const nodes: DeviceNodeStatus[] = [...others, view.node].sort(byName);
  const specChanged =
    existing !== undefined && !isDeepStrictEqual(plain(existing.spec), plain(view.spec));
  const generation = existing?.metadata.generation ?? 1;
  const metadata: Device['metadata'] = {
    name: view.name,
    namespace: view.namespace,
    uid: existing?.metadata.uid ?? randomUUID(),
    generation: specChanged ? generation + 1 : generation,
    creationTimestamp: existing?.metadata.creationTimestamp ?? timestamp(),
    labels: { ...view.labels },
    ownerReferences: [
      {
        apiVersion: API_VERSION,
        kind: 'Discovery',
        name: view.discovery.name,
        uid: view.discovery.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ],
  };
  if (existing?.metadata.annotations !== undefined) {
    metadata.annotations = existing.metadata.annotations;
  }
  return {
    apiVersion: API_VERSION,
    kind: 'Device',
    metadata,
    spec: view.spec,
    status: { ...existing?.status, nodes },
  };
}
