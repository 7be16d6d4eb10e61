// The device plugin's feed: this node's DeviceSlices (which only its agent
// writes) say which devices the node sees, the Discoveries their slots. Two
// list-watches; every change sends the plugin the complete list again.
import type { Logger } from 'pino';
import { GROUP, LABEL_NODE, VERSION, type DeviceSlice, type Discovery } from '../api/types.ts';
import { sliceDevices } from '../dra/slice-devices.ts';
import { runInformer } from '../registry/kubernetes/client/informer.ts';
import type { KubeClient } from '../registry/kubernetes/client/kube-client.ts';
import { listWatch } from '../registry/kubernetes/client/list-watch.ts';
import { resourcePath } from '../registry/kubernetes/client/paths.ts';
import type { DevicePluginFeed } from './device-plugin.ts';

/** Keeps `feed` told of the devices in `node`'s slices until the signal aborts. */
export function feedFromNodeSlices(
  client: KubeClient,
  node: string,
  feed: DevicePluginFeed,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  let slices: DeviceSlice[] | undefined;
  let capacities: Map<string, number> | undefined;
  const send = (): void => {
    if (slices === undefined || capacities === undefined) return;
    const slots = capacities;
    feed.update(
      sliceDevices(node, slices).map((d) => ({
        namespace: d.namespace,
        name: d.name,
        discovery: d.spec.discovery,
        capacity: slots.get(`${d.namespace}/${d.spec.discovery}`) ?? 1,
        properties: d.spec.properties ?? {},
        ...(d.node.deviceNodes !== undefined ? { deviceNodes: d.node.deviceNodes } : {}),
        ...(d.node.mounts !== undefined ? { mounts: d.node.mounts } : {}),
      })),
    );
  };
  const path = (plural: string): string => resourcePath({ group: GROUP, version: VERSION, plural });
  return Promise.all([
    runInformer<DeviceSlice>(
      {
        source: listWatch(client, path('deviceslices'), { labelSelector: `${LABEL_NODE}=${node}` }),
        onSync: (items) => {
          slices = items;
          send();
        },
        log,
        what: 'deviceslices of this node (device plugin)',
      },
      signal,
    ),
    runInformer<Discovery>(
      {
        source: listWatch(client, path('discoveries')),
        onSync: (items) => {
          capacities = new Map(
            items.map((d) => [
              `${d.metadata.namespace ?? 'default'}/${d.metadata.name}`,
              d.spec.capacity ?? 1,
            ]),
          );
          send();
        },
        log,
        what: 'discoveries (device plugin)',
      },
      signal,
    ),
  ]).then(() => undefined);
}
