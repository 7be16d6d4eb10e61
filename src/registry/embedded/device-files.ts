// Devices as files: one JSON file per Device, the same object a Kubernetes
// API server would hold for the custom resource, at
// <root>/<namespace>/<name>.json, written by the registry's fold of the
// DeviceSlices. Each read-modify-write holds the object's lock, so that two
// processes sharing the directory never lose each other's write.
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { API_VERSION, type Device } from '../../api/types.ts';
import { removeFile, writeFileAtomic } from './atomic-file.ts';
import { checkObjectKey, plain, timestamp } from './meta.ts';
import { ObjectDir } from './object-dir.ts';
import { lockFileFor, withObjectLock, type LockOptions } from './object-lock.ts';

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
  readonly #dir: ObjectDir<Device>;
  readonly #lock: LockOptions;
  constructor(root: string, log: Logger, lock: LockOptions = {}) {
    this.#dir = new ObjectDir(root, 'Device', isDevice, log);
    this.#lock = lock;
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
    const file = this.#dir.file(namespace, name);
    return withObjectLock(
      lockFileFor(file),
      async () => {
        const existing = await this.#dir.read(file);
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
    const file = this.#dir.file(namespace, device.metadata.name);
    return withObjectLock(
      lockFileFor(file),
      async () => {
        const current = await this.#dir.read(file);
        if (current === undefined || !stillDoomed(current)) return false;
        const removed = await removeFile(file);
        return removed;
      },
      this.#lock,
    );
  }

  /** Every Device (in one namespace if given), in no particular order. */
  list(namespace?: string): Promise<Device[]> {
    return this.#dir.list(namespace);
  }
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
