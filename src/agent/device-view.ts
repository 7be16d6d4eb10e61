import {
  API_VERSION,
  LABEL_DISCOVERY,
  LABEL_HANDLER,
  type Device,
  type Discovery,
} from '../api/types.ts';
import { deviceName } from '../api/names.ts';
import { canonicalJson } from '../util/canonical-json.ts';
import type { DiscoveredDevice } from '../../discovery-handlers/handler.ts';
import type { DeviceView } from '../registry/registry.ts';

/** What this node should say of a device it discovered. */
export function viewOf(
  discovery: Discovery,
  device: DiscoveredDevice,
  shared: boolean,
  node: string,
): DeviceView {
  const namespace = discovery.metadata.namespace ?? 'default';
  const handler = discovery.spec.handler.name;
  return {
    namespace,
    name: deviceName(discovery.metadata.name, device.id, shared, node),
    discovery: { name: discovery.metadata.name, uid: discovery.metadata.uid ?? '' },
    labels: {
      ...device.labels,
      [LABEL_DISCOVERY]: discovery.metadata.name,
      [LABEL_HANDLER]: handler,
    },
    spec: {
      discovery: discovery.metadata.name,
      handler,
      shared,
      id: device.id,
      properties: device.properties,
      capacity: discovery.spec.capacity ?? 1,
    },
    node: {
      name: node,
      ...(device.deviceNodes !== undefined && device.deviceNodes.length > 0
        ? { deviceNodes: device.deviceNodes }
        : {}),
      ...(device.mounts !== undefined && device.mounts.length > 0 ? { mounts: device.mounts } : {}),
    },
  };
}

/** This node's view as stored in a Device, or undefined if the node has no entry. */
export function storedViewOf(device: Device, node: string): DeviceView | undefined {
  const entry = device.status?.nodes?.find((n) => n.name === node);
  if (entry === undefined) return undefined;
  const owner = device.metadata.ownerReferences?.find(
    (o) => o.kind === 'Discovery' && o.apiVersion === API_VERSION,
  );
  return {
    namespace: device.metadata.namespace ?? 'default',
    name: device.metadata.name,
    discovery: { name: device.spec.discovery, uid: owner?.uid ?? '' },
    labels: device.metadata.labels ?? {},
    spec: device.spec,
    node: entry,
  };
}

/** A canonical string of a view, for "did anything change" checks. */
export function canonicalView(view: DeviceView): string {
  return canonicalJson(view);
}
