// What the controller does about one Discovery's DeviceClass, from its cached
// state alone: pure, so that "an edited class is left alone", "a class whose
// Discovery is gone is deleted" and "a bad name is reported, not retried" are
// unit-tested.
import { LABEL_DISCOVERY } from '../api/types.ts';
import {
  DeviceClassNameError,
  LABEL_CLASS_NAMESPACE,
  deviceClassFor,
  type DeviceClass,
} from '../dra/device-class.ts';
import { LABEL_MANAGED_BY, MANAGED_BY } from './broker-workloads.ts';

/** What the caches keep of a DeviceClass this controller made (labelled managed-by). */
export interface OwnedClass {
  metadata: {
    name: string;
    uid?: string;
    resourceVersion?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
  };
}

export interface ClassPlan {
  /** The class to create; undefined when it exists (as the admin may have edited it) or is not wanted. */
  create?: DeviceClass;
  /** Classes of ours whose Discovery is gone. */
  delete: OwnedClass[];
  /** Why the Discovery can have no DeviceClass (its name), if so. */
  problem?: string;
}

/** "namespace/discovery" of a class of ours, from its labels; undefined if they do not say. */
export function classKey(c: OwnedClass): string | undefined {
  const labels = c.metadata.labels ?? {};
  const ns = labels[LABEL_CLASS_NAMESPACE];
  const discovery = labels[LABEL_DISCOVERY];
  if (ns === undefined || discovery === undefined || labels[LABEL_MANAGED_BY] !== MANAGED_BY)
    return undefined;
  return `${ns}/${discovery}`;
}

/**
 * The plan for Discovery `namespace/name`: `live` says whether it exists (and
 * is not being deleted); `owned` are the classes of ours that name it.
 */
export function planDeviceClass(
  namespace: string,
  name: string,
  live: boolean,
  owned: readonly OwnedClass[],
): ClassPlan {
  if (!live) return { delete: owned.filter((c) => c.metadata.deletionTimestamp === undefined) };
  let wanted: DeviceClass;
  try {
    wanted = deviceClassFor(namespace, name);
  } catch (err) {
    if (!(err instanceof DeviceClassNameError)) throw err;
    return { delete: [], problem: err.message };
  }
  // One that exists stays as it is, even one being deleted: it is made again once it has gone.
  if (owned.some((c) => c.metadata.name === wanted.metadata.name)) return { delete: [] };
  wanted.metadata.labels[LABEL_MANAGED_BY] = MANAGED_BY;
  return { create: wanted, delete: [] };
}
