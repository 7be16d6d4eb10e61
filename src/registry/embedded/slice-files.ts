// DeviceSlices as files: one JSON file per slice, the object an API server
// would hold, at <root>/<namespace>/<name>.json. Writes hold the object's
// lock and check its resourceVersion, as the API server's optimistic
// concurrency does, so two processes sharing the directory never lose a write.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { API_VERSION, type DeviceSlice } from '../../api/types.ts';
import { RegistryConflictError } from '../errors.ts';
import { removeFile, writeFileAtomic } from './atomic-file.ts';
import { checkObjectKey, plain, timestamp } from './meta.ts';
import { ObjectDir } from './object-dir.ts';
import { lockFileFor, withObjectLock, type LockOptions } from './object-lock.ts';

function isSlice(value: unknown): value is DeviceSlice {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Partial<DeviceSlice>;
  return (
    s.apiVersion === API_VERSION &&
    s.kind === 'DeviceSlice' &&
    typeof s.metadata?.name === 'string' &&
    typeof s.spec === 'object' &&
    s.spec !== null &&
    Array.isArray(s.spec.devices)
  );
}

export class SliceFiles {
  readonly #dir: ObjectDir<DeviceSlice>;
  readonly #lock: LockOptions;

  constructor(root: string, log: Logger, lock: LockOptions = {}) {
    this.#dir = new ObjectDir(root, 'DeviceSlice', isSlice, log);
    this.#lock = lock;
  }

  /**
   * Creates the slice, or replaces it when its resourceVersion matches the
   * stored one; else fails with a RegistryConflictError. Returns what is stored.
   */
  async put(slice: DeviceSlice): Promise<DeviceSlice> {
    const namespace = slice.metadata.namespace ?? 'default';
    const { name } = slice.metadata;
    checkObjectKey('DeviceSlice', namespace, name);
    const file = this.#dir.file(namespace, name);
    return withObjectLock(
      lockFileFor(file),
      async () => {
        const existing = await this.#dir.read(file);
        const expected = slice.metadata.resourceVersion;
        if (existing !== undefined && expected !== existing.metadata.resourceVersion)
          throw new RegistryConflictError(
            `deviceslice ${namespace}/${name} ${expected === undefined ? 'already exists' : 'was changed by another writer'}`,
          );
        if (existing === undefined && expected !== undefined)
          throw new RegistryConflictError(`deviceslice ${namespace}/${name} is gone`);
        const stored: DeviceSlice = plain({
          ...slice,
          metadata: {
            ...slice.metadata,
            namespace,
            uid: existing?.metadata.uid ?? randomUUID(),
            creationTimestamp: existing?.metadata.creationTimestamp ?? timestamp(),
            resourceVersion: String(Number(existing?.metadata.resourceVersion ?? '0') + 1),
          },
        });
        await writeFileAtomic(file, JSON.stringify(stored, null, 2) + '\n');
        return stored;
      },
      this.#lock,
    );
  }

  /** Deletes a slice; true if there was one. */
  async delete(namespace: string, name: string): Promise<boolean> {
    checkObjectKey('DeviceSlice', namespace, name);
    const file = this.#dir.file(namespace, name);
    return withObjectLock(lockFileFor(file), () => removeFile(file), this.#lock);
  }

  /** Every slice (in one namespace if given), in no particular order. */
  list(namespace?: string): Promise<DeviceSlice[]> {
    return this.#dir.list(namespace);
  }
}
