// The device plugin's feed from today's agent: the agent's own writes (and
// start-up reads) of this node's entries in Devices tell which devices the
// node sees, after the grace period. Wrapping the registry keeps the agent
// unaware of the plugin; once agents write DeviceSlices, the feed becomes the
// registry's watch of this node's slices instead.
import type { Device, DeviceNodeStatus } from '../api/types.ts';
import type { DeviceStore, DeviceView } from '../registry/registry.ts';
import type { VisibleDevice } from './allocation.ts';
import type { DevicePluginFeed } from './device-plugin.ts';

type Tapped = Pick<DeviceStore, 'applyDevice' | 'removeDeviceNode' | 'listDevices'>;

/** `registry`, with every change to this node's devices also sent to `feed` (coalesced). */
export function tapNodeDevices<R extends Tapped>(
  registry: R,
  node: string,
  feed: DevicePluginFeed,
): R {
  const visible = new Map<string, VisibleDevice>();
  let pending: NodeJS.Immediate | undefined;
  const changed = () => {
    // A pass writes many devices at once: one update for all of them.
    pending ??= setImmediate(() => {
      pending = undefined;
      feed.update([...visible.values()]);
    });
  };
  const taps: Partial<Tapped> = {
    applyDevice: async (view, hint) => {
      await registry.applyDevice(view, hint);
      if (view.node.name !== node) return;
      visible.set(`${view.namespace}/${view.name}`, fromView(view));
      changed();
    },
    removeDeviceNode: async (namespace, name, from) => {
      await registry.removeDeviceNode(namespace, name, from);
      if (from === node && visible.delete(`${namespace}/${name}`)) changed();
    },
    listDevices: async (query) => {
      const devices = await registry.listDevices(query);
      for (const d of devices) {
        const entry = d.status?.nodes?.find((n) => n.name === node);
        if (entry === undefined) continue;
        visible.set(
          `${d.metadata.namespace ?? 'default'}/${d.metadata.name}`,
          fromDevice(d, entry),
        );
        changed();
      }
      return devices;
    },
  };
  return new Proxy(registry, {
    get(target, prop) {
      if (prop in taps) return taps[prop as keyof Tapped];
      const value: unknown = Reflect.get(target, prop, target);
      // Bound to the real registry: its methods use private fields.
      return typeof value === 'function'
        ? (value as (...a: unknown[]) => unknown).bind(target)
        : value;
    },
  });
}

function fromView(view: DeviceView): VisibleDevice {
  return {
    namespace: view.namespace,
    name: view.name,
    discovery: view.spec.discovery,
    capacity: view.spec.capacity,
    properties: view.spec.properties ?? {},
    ...(view.node.deviceNodes ? { deviceNodes: view.node.deviceNodes } : {}),
    ...(view.node.mounts ? { mounts: view.node.mounts } : {}),
  };
}

function fromDevice(d: Device, entry: DeviceNodeStatus): VisibleDevice {
  return {
    namespace: d.metadata.namespace ?? 'default',
    name: d.metadata.name,
    discovery: d.spec.discovery,
    capacity: d.spec.capacity,
    properties: d.spec.properties ?? {},
    ...(entry.deviceNodes ? { deviceNodes: entry.deviceNodes } : {}),
    ...(entry.mounts ? { mounts: entry.mounts } : {}),
  };
}
