// Devices as files: one JSON file per Device, the same object a Kubernetes
// API server would hold for the custom resource, at
// <root>/<namespace>/<name>.json, written by the registry's fold of the
// DeviceSlices. Each read-modify-write holds the object's lock, so that two
// processes sharing the directory never lose each other's write.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { API_VERSION, type Device } from '../../api/types.ts';
import { listDir, readObjectFile, removeFile, writeFileAtomic } from './atomic-file.ts';
import { checkObjectKey, isNamespace, plain, timestamp } from './meta.ts';
import { lockFileFor, withObjectLock, type LockOptions } from './object-lock.ts';

const READ_CONCURRENCY = 64;

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

  /**
   * Writes the Device the fold wants, keeping what the store itself keeps
   * (uid, creation time, generation, annotations); says what it did
   * (unchanged: no write).
   */
  async put(wanted: Device): Promise<'created' | 'updated' | 'unchanged'> {
    const namespace = wanted.metadata.namespace ?? 'default';
    const { name } = wanted.metadata;
    checkObjectKey('Device', namespace, name);
    const file = this.#file(namespace, name);
    return withObjectLock(
      lockFileFor(file),
      async () => {
        const existing = await this.#read(file);
        const desired = plain(build(existing, wanted));
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

  /** Deletes the Device if `stillDoomed` says so once its lock is held (the check is made again). */
  async delete(device: Device, stillDoomed: (current: Device) => boolean): Promise<boolean> {
    const namespace = device.metadata.namespace ?? 'default';
    const file = this.#file(namespace, device.metadata.name);
    return withObjectLock(
      lockFileFor(file),
      async () => {
        const current = await this.#read(file);
        if (current === undefined || !stillDoomed(current)) return false;
        const removed = await removeFile(file);
        return removed;
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
        if (!placed(d, files[i] ?? '', ns)) {
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

/** Whether a Device read from file `f` in `namespace` is the one that belongs there. */
function placed(d: Device, f: string, namespace: string): boolean {
  return `${d.metadata.name}.json` === f && (d.metadata.namespace ?? 'default') === namespace;
}

/** The wanted Device with what the store keeps of the existing one. */
function build(existing: Device | undefined, wanted: Device): Device {
  const specChanged =
    existing !== undefined && !isDeepStrictEqual(plain(existing.spec), plain(wanted.spec));
  const generation = existing?.metadata.generation ?? 1;
  const metadata: Device['metadata'] = {
    ...wanted.metadata,
    uid: existing?.metadata.uid ?? randomUUID(),
    generation: specChanged ? generation + 1 : generation,
    creationTimestamp: existing?.metadata.creationTimestamp ?? timestamp(),
  };
  if (existing?.metadata.annotations !== undefined) {
    metadata.annotations = existing.metadata.annotations;
  }
  return { ...wanted, metadata, status: { ...existing?.status, ...wanted.status } };
}
