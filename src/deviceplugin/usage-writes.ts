// Writes of a Device's status.usage: read, decide, write only if nobody wrote
// in between (resourceVersion), and on a conflict decide again on what the
// other writer left. A slot is therefore granted by exactly one write.
import type { Device } from '../api/types.ts';
import { formatClaim, mayUse } from './claims.ts';
import type { DeviceStore } from './device-store.ts';
import { DeviceUnavailableError, SlotTakenError } from './errors.ts';

/** Conflicts in a row before giving up; each means another writer made progress. */
const MAX_ATTEMPTS = 8;

/**
 * Applies `decide`'s changes to the current Device; undefined changes (or
 * none) write nothing. Resolves with the Device as written, or undefined if
 * there is no such Device.
 */
export async function updateUsage(
  store: DeviceStore,
  namespace: string,
  name: string,
  decide: (device: Device) => Record<string, string | null> | undefined,
  signal?: AbortSignal,
): Promise<Device | undefined> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const device = await store.get(namespace, name, signal);
    if (device === undefined) return undefined;
    const changes = decide(device);
    if (changes === undefined || Object.keys(changes).length === 0) return device;
    const written = await store.patchUsage(device, changes, signal);
    if (written !== 'conflict') return written;
  }
  throw new DeviceUnavailableError(
    `Device ${namespace}/${name}: ${MAX_ATTEMPTS} conflicting writes in a row; try again`,
  );
}

/** Claims slot `slot` of a Device for `node` through `resource`, or throws SlotTakenError. */
export async function claimSlot(
  store: DeviceStore,
  namespace: string,
  name: string,
  slot: number,
  node: string,
  resource: string,
  signal?: AbortSignal,
): Promise<Device> {
  const want = formatClaim({ node, resource });
  const device = await updateUsage(
    store,
    namespace,
    name,
    (d) => {
      const usage = d.status?.usage ?? {};
      if (slot >= d.spec.capacity)
        throw new SlotTakenError(name, slot, `capacity is ${d.spec.capacity}`);
      if (!mayUse(usage, slot, node, resource)) {
        throw new SlotTakenError(name, slot, usage[String(slot)] ?? '');
      }
      // Ours already (the kubelet gave a freed id to a new pod): back to "pod not
      // yet known", so that the next pod-resources pass names the new holder.
      return usage[String(slot)] === want ? undefined : { [String(slot)]: want };
    },
    signal,
  );
  if (device === undefined) {
    throw new DeviceUnavailableError(`Device ${namespace}/${name} is not registered (yet)`);
  }
  return device;
}
