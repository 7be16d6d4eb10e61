import type { DeviceStore } from '../registry/registry.ts';
import type { DeviceLabels } from './access.ts';

/** Subscriptions come in bursts when pods start; one list per namespace serves them all. */
const DEFAULT_TTL_MS = 5000;

/**
 * Device labels for access control, read from the registry: one list per
 * namespace, kept for a few seconds, shared by concurrent callers.
 */
export function registryDeviceLabels(store: DeviceStore, ttlMs = DEFAULT_TTL_MS): DeviceLabels {
  const cache = new Map<
    string,
    { at: number; byName: Promise<Map<string, Record<string, string>>> }
  >();
  return async (namespace, device) => {
    let entry = cache.get(namespace);
    if (entry === undefined || Date.now() - entry.at > ttlMs) {
      const byName = store
        .listDevices({ namespace })
        .then((list) => new Map(list.map((d) => [d.metadata.name, d.metadata.labels ?? {}])));
      const fresh = { at: Date.now(), byName };
      cache.set(namespace, fresh);
      // A failed list is not kept: the next subscription asks again.
      byName.catch(() => {
        if (cache.get(namespace) === fresh) cache.delete(namespace);
      });
      entry = fresh;
    }
    return (await entry.byName).get(device);
  };
}
