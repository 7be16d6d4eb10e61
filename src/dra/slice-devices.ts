// The devices a node sees, read from its own DeviceSlices (which only its
// agent writes): DRA publishes what the node reports, without waiting for
// the controller's Devices.
import { deviceName } from '../api/names.ts';
import { LABEL_DISCOVERY, LABEL_HANDLER, type DeviceSlice } from '../api/types.ts';
import type { NodeDevice } from './node-device.ts';

/**
 * Every device of `node`'s slices as a NodeDevice, named as its Device is.
 * Slices of other nodes are ignored; the handler comes from the slice's
 * edgebridge.io/handler label, which the agent sets from the Discovery (a
 * device's own label of that name only where a slice has none; "" without either).
 */
export function sliceDevices(node: string, slices: readonly DeviceSlice[]): NodeDevice[] {
  const out: NodeDevice[] = [];
  for (const slice of slices) {
    if (slice.spec.node !== node) continue;
    const namespace = slice.metadata.namespace ?? 'default';
    const { discovery, shared } = slice.spec;
    for (const d of slice.spec.devices) {
      const handler = slice.metadata.labels?.[LABEL_HANDLER] ?? d.labels?.[LABEL_HANDLER] ?? '';
      out.push({
        namespace,
        name: deviceName(discovery, d.id, shared, node),
        labels: { ...d.labels, [LABEL_DISCOVERY]: discovery },
        spec: { discovery, handler, shared, id: d.id, properties: d.properties ?? {} },
        node: {
          ...(d.deviceNodes !== undefined ? { deviceNodes: d.deviceNodes } : {}),
          ...(d.mounts !== undefined ? { mounts: d.mounts } : {}),
        },
      });
    }
  }
  return out;
}
