// Feeds the DRA driver from this node's DeviceSlices: a list-then-watch of the
// slices labelled with the node (a few objects, not the cluster's Devices).
import type { Logger } from 'pino';
import { GROUP, LABEL_NODE, VERSION, type DeviceSlice } from '../api/types.ts';
import { runInformer } from '../registry/kubernetes/client/informer.ts';
import type { KubeClient } from '../registry/kubernetes/client/kube-client.ts';
import { listWatch } from '../registry/kubernetes/client/list-watch.ts';
import { resourcePath } from '../registry/kubernetes/client/paths.ts';
import type { DraDevices } from './dra-driver.ts';
import { sliceDevices } from './slice-devices.ts';

/** Keeps `dra` told of the devices in `node`'s DeviceSlices until the signal aborts. */
export function feedFromNodeSlices(
  client: KubeClient,
  node: string,
  dra: DraDevices,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  return runInformer<DeviceSlice>(
    {
      source: listWatch(
        client,
        resourcePath({ group: GROUP, version: VERSION, plural: 'deviceslices' }),
        {
          labelSelector: `${LABEL_NODE}=${node}`,
        },
      ),
      onSync: (slices) => dra.update(sliceDevices(node, slices)),
      log,
      what: 'deviceslices of this node (DRA)',
    },
    signal,
  );
}
