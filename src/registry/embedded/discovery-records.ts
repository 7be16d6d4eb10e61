// What the store remembers of each Discovery in the config file: the object as
// last seen (uid, generation, creation time, spec) and its status, one JSON
// file per Discovery at <root>/<namespace>/<name>.json, shaped like the custom
// resource. The generation goes up when the spec in the file differs from the
// recorded one, as the API server does on a spec update.
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import {
  API_VERSION,
  type Condition,
  type Discovery,
  type DiscoveryStatus,
} from '../../api/types.ts';
import { isCode, removeFile, writeFileAtomic } from './atomic-file.ts';
import { plain, stableUid, timestamp } from './meta.ts';
import { ObjectDir } from './object-dir.ts';
import { lockFileFor, withObjectLock, type LockOptions } from './object-lock.ts';

/** Spec values may be credentials the user wrote inline, so only the owner reads these files. */
const RECORD_MODE = 0o600;

function isRecord(value: unknown): value is Discovery {
  if (typeof value !== 'object' || value === null) return false;
  const d = value as Partial<Discovery>;
  return (
    d.apiVersion === API_VERSION &&
    d.kind === 'Discovery' &&
    typeof d.metadata?.name === 'string' &&
    typeof d.metadata.generation === 'number' &&
    typeof d.spec === 'object'
  );
}

/** A state directory this process may only read (the CLI as another user): work from memory. */
function readOnly(err: unknown): boolean {
  return isCode(err, 'EACCES') || isCode(err, 'EPERM') || isCode(err, 'EROFS');
}

export class DiscoveryRecords {
  readonly #dir: ObjectDir<Discovery>;
  readonly #log: Logger;
  readonly #lock: LockOptions;

  constructor(root: string, log: Logger, lock: LockOptions = {}) {
    this.#dir = new ObjectDir(root, 'Discovery', isRecord, log);
    this.#log = log;
    this.#lock = lock;
  }

  /**
   * The Discovery from the config file with what the store adds: uid,
   * generation, creation time and status. Records it (and bumps the
   * generation) if the spec is new or changed; `status`, if given, replaces the
   * stored status.
   */
  async observe(
    configured: Discovery,
    status?: DiscoveryStatus,
    condition?: ConditionUpdate,
  ): Promise<Discovery> {
    const namespace = configured.metadata.namespace ?? 'default';
    const file = this.#dir.file(namespace, configured.metadata.name);
    const update = async (persist: boolean): Promise<Discovery> => {
      let recorded: Discovery | undefined;
      try {
        recorded = await this.#dir.read(file);
      } catch (err) {
        if (persist || !readOnly(err)) throw err;
      }
      const next = merge(configured, recorded, status, condition);
      if (persist && (recorded === undefined || !isDeepStrictEqual(plain(recorded), next))) {
        await writeFileAtomic(file, JSON.stringify(next, null, 2) + '\n', RECORD_MODE);
      }
      return next;
    };
    try {
      return await withObjectLock(lockFileFor(file), () => update(true), this.#lock);
    } catch (err) {
      if (!readOnly(err) || status !== undefined) throw err;
      this.#log.debug({ err, file }, 'state directory is read-only here; not recording');
      return update(false);
    }
  }

  /**
   * Sets status.devices of a recorded Discovery; writes nothing if it already
   * says `count` or if there is no record (the Discovery is gone).
   */
  async setDeviceCount(namespace: string, name: string, count: number): Promise<void> {
    const file = this.#dir.file(namespace, name);
    await withObjectLock(
      lockFileFor(file),
      async () => {
        const recorded = await this.#dir.read(file);
        if (recorded === undefined || recorded.status?.devices === count) return;
        const next: Discovery = { ...recorded, status: { ...recorded.status, devices: count } };
        await writeFileAtomic(file, JSON.stringify(next, null, 2) + '\n', RECORD_MODE);
      },
      this.#lock,
    );
  }

  /** Every recorded Discovery: what the agent last ran, for a reader without the config file. */
  list(): Promise<Discovery[]> {
    return this.#dir.list();
  }

  /** Removes the records of Discoveries that are no longer in the config file. */
  async removeAllExcept(keep: ReadonlySet<string>): Promise<void> {
    for (const ns of await this.#dir.namespaces()) {
      for (const name of await this.#dir.names(ns)) {
        if (keep.has(`${ns}/${name}`)) continue;
        const file = this.#dir.file(ns, name);
        try {
          await withObjectLock(lockFileFor(file), () => removeFile(file), this.#lock);
        } catch (err) {
          // A stray entry (a directory named *.json) must not stop the collection of the rest.
          if (!isCode(err, 'EISDIR') && !isCode(err, 'EPERM')) throw err;
          this.#log.warn({ file, err: (err as Error).message }, 'cannot remove a stray record');
        }
      }
    }
  }
}

/** A condition the store itself keeps on a Discovery: set it, or (status undefined) drop it. */
export interface ConditionUpdate {
  type: string;
  set: Pick<Condition, 'status' | 'reason' | 'message'> | undefined;
}

function merge(
  configured: Discovery,
  recorded: Discovery | undefined,
  status: DiscoveryStatus | undefined,
  condition: ConditionUpdate | undefined,
): Discovery {
  const namespace = configured.metadata.namespace ?? 'default';
  const name = configured.metadata.name;
  const spec = plain(configured.spec);
  const generation =
    recorded === undefined
      ? 1
      : isDeepStrictEqual(plain(recorded.spec), spec)
        ? (recorded.metadata.generation ?? 1)
        : (recorded.metadata.generation ?? 1) + 1;
  const metadata: Discovery['metadata'] = {
    name,
    namespace,
    uid: stableUid('Discovery', namespace, name),
    generation,
    creationTimestamp: recorded?.metadata.creationTimestamp ?? timestamp(),
  };
  if (configured.metadata.labels !== undefined) metadata.labels = { ...configured.metadata.labels };
  if (configured.metadata.annotations !== undefined) {
    metadata.annotations = { ...configured.metadata.annotations };
  }
  const next: Discovery = { apiVersion: API_VERSION, kind: 'Discovery', metadata, spec };
  // status.devices is the store's own count: a caller's status never replaces it.
  const nextStatus: DiscoveryStatus = { ...(status ?? recorded?.status) };
  delete nextStatus.devices;
  const devices = recorded?.status?.devices;
  if (devices !== undefined) nextStatus.devices = devices;
  const conditions = withCondition(nextStatus.conditions, condition, generation);
  if (conditions === undefined) delete nextStatus.conditions;
  else nextStatus.conditions = conditions;
  if (Object.keys(nextStatus).length > 0) next.status = plain(nextStatus);
  return next;
}

/** `conditions` with the store's own condition set or dropped; the transition time moves only with its status. */
function withCondition(
  conditions: Condition[] | undefined,
  update: ConditionUpdate | undefined,
  generation: number,
): Condition[] | undefined {
  if (update === undefined) return conditions;
  const others = (conditions ?? []).filter((c) => c.type !== update.type);
  const set = update.set;
  if (set === undefined) return others.length > 0 ? others : undefined;
  const current = conditions?.find((c) => c.type === update.type);
  const lastTransitionTime =
    current !== undefined && current.status === set.status
      ? current.lastTransitionTime
      : timestamp();
  return [
    ...others,
    { type: update.type, ...set, observedGeneration: generation, lastTransitionTime },
  ];
}
